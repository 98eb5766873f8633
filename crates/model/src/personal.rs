//! Which parts of an order's JSON are a person's data, and how they are masked for a reader
//! who may not see them (the API's answers; a viewer, once roles exist).
//!
//! Canonical events, ERP payloads and the vendors' raw bodies all pass through here, so the
//! rules are by field name, the way the vendors name them: everything inside a person's block
//! (`customer`, `billing_address`, `shipTo`, `BuyerInfo`, ...) and, anywhere, a field whose name
//! says email, phone, first/last/full name, user name, IP address or user agent. A country is
//! kept (it decides tax and currency questions). JSON carried inside a string (an event's
//! `payload`, a vendor's `raw` body) is masked too, so nothing is hidden from the masker.

use serde_json::Value;

/// What a masked value reads as.
pub const MASK: &str = "•••";

/// Blocks whose every text is a person's (names compared lowercase, without `_` or `-`).
const PERSON_BLOCKS: &[&str] = &[
    "customer",
    "customerdetails",
    "billing",
    "billingaddress",
    "billingdetails",
    "shipping",
    "shipping_address",
    "shippingaddress",
    "defaultaddress",
    "addresses",
    "address",
    "buyer",
    "buyerinfo",
    "shipto",
    "contactaddress",
    "taxaddress",
    "buyerregistrationaddress",
    "recipient",
];

/// Parts of a field name that mark it personal wherever it appears.
const PERSONAL_NAME_PARTS: &[&str] = &[
    "email",
    "phone",
    "firstname",
    "lastname",
    "fullname",
    "username",
    "buyername",
    "company",
    "ipaddress",
    "browserip",
    "useragent",
];

/// Inside a person's block, these stay readable: where the order goes, not who gets it.
const KEPT_IN_BLOCKS: &[&str] = &["country", "countrycode", "currency", "id", "locale"];

fn normalised(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// A person's block is an object or a list under one of those names: a Stripe `customer` that
/// is an id, or a `shipping` that is an amount, is not one.
fn personal_block(key: &str, value: &Value) -> bool {
    let key = normalised(key);
    (value.is_object() || value.is_array()) && PERSON_BLOCKS.iter().any(|b| normalised(b) == key)
}

/// Fields that carry a whole body as text.
const BODY_FIELDS: &[&str] = &["raw", "payload", "body"];

fn personal_field(key: &str) -> bool {
    let key = normalised(key);
    PERSONAL_NAME_PARTS.iter().any(|p| key.contains(p))
}

/// What a field of an object is, for whoever hides personal data (the API's mask here, the
/// store's purge): one list of what is personal for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Its value is a person's (an email, a phone, a name, or any text in a person's block).
    Personal,
    /// It opens a person's block: every text below it is personal, but what is kept.
    PersonBlock,
    /// Inside a person's block but not the person's (a country, an id).
    Kept,
    /// Anything else: look inside.
    Other,
}

/// What the field `key` holding `value` is, `in_person` when it sits inside a person's block.
pub fn classify(key: &str, value: &Value, in_person: bool) -> Field {
    if in_person && KEPT_IN_BLOCKS.contains(&normalised(key).as_str()) {
        Field::Kept
    } else if personal_field(key) {
        Field::Personal
    } else if personal_block(key, value) {
        Field::PersonBlock
    } else if in_person && !(value.is_object() || value.is_array()) {
        Field::Personal
    } else {
        Field::Other
    }
}

/// Masks every personal value in `value`, in place.
pub fn mask(value: &mut Value) {
    walk(value, false);
}

/// `mask` for JSON held as text; text that is not JSON is shown by its size only, since
/// nothing says what it holds.
pub fn mask_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            mask(&mut v);
            v.to_string()
        }
        Err(_) => format!("({} bytes, not JSON, not shown)", text.len()),
    }
}

fn walk(value: &mut Value, in_person: bool) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields.iter_mut() {
                let field = classify(key, v, in_person);
                if field == Field::Kept {
                    continue;
                }
                if field == Field::Personal && !matches!(v, Value::String(s) if looks_like_json(s)) {
                    blank(v);
                } else if field == Field::PersonBlock {
                    walk(v, true);
                } else if let Value::String(s) = v
                    && (looks_like_json(s) || BODY_FIELDS.contains(&key.as_str()))
                {
                    *s = mask_text(s);
                    if in_person {
                        blank(v);
                    }
                } else {
                    walk(v, in_person);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, in_person)),
        Value::String(_) if in_person => blank(value),
        _ => {}
    }
}

/// Every text and number below `value` becomes the mask; the shape (which fields were
/// known) stays, so a reader still sees that an email was there.
fn blank(value: &mut Value) {
    match value {
        Value::Object(fields) => fields.values_mut().for_each(blank),
        Value::Array(items) => items.iter_mut().for_each(blank),
        Value::Null | Value::Bool(_) => {}
        Value::String(_) | Value::Number(_) => *value = Value::String(MASK.into()),
    }
}

fn looks_like_json(s: &str) -> bool {
    let t = s.trim_start();
    t.starts_with('{') || t.starts_with('[')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn masked(mut v: Value) -> Value {
        mask(&mut v);
        v
    }

    #[test]
    fn a_canonical_order_keeps_its_money_and_loses_its_person() {
        let order = json!({
            "order_ref": "#1001",
            "customer": {"email": "canary@example.invalid", "name": "Canary Name"},
            "shipping_address": {"name": "Canary", "line1": "1 Canary St", "city": "Canaryville",
                                 "postal_code": "C1", "country": "DE"},
            "lines": [{"sku": "MUG-1", "name": "Blue mug", "quantity": 2, "unit_price": "9.95"}],
            "totals": {"total": "19.90"}
        });
        let m = masked(order);
        assert!(!m.to_string().to_lowercase().contains("canary"), "{m}");
        assert_eq!(m["customer"]["email"], MASK);
        assert_eq!(m["shipping_address"]["country"], "DE");
        assert_eq!(m["lines"][0]["name"], "Blue mug", "a product's name is not a person's");
        assert_eq!(m["totals"]["total"], "19.90");
        assert_eq!(m["order_ref"], "#1001");
    }

    #[test]
    fn vendor_bodies_inside_strings_are_masked_by_the_vendors_own_field_names() {
        let shopify = json!({"id": 1, "contact_email": "a@b.c", "browser_ip": "10.0.0.1",
            "billing_address": {"first_name": "Ann", "phone": "+49 1", "zip": "10115", "country_code": "DE"},
            "customer": {"id": 7, "first_name": "Ann", "default_address": {"address1": "Street 1"}}});
        let amazon = json!({"BuyerInfo": {"BuyerEmail": "x@marketplace.amazon.de", "BuyerName": "Bob"},
            "ShippingAddress": {"AddressLine1": "Way 2", "CountryCode": "US"}});
        let ebay = json!({"buyer": {"username": "bob99", "taxAddress": {"postalCode": "95125"}},
            "fulfillmentStartInstructions": [{"shippingStep": {"shipTo": {"fullName": "Bob B",
            "primaryPhone": {"phoneNumber": "555"}, "email": "b@c.d"}}}]});
        let event = json!({"payload": shopify.to_string(), "raw": amazon.to_string(), "other": ebay});
        let m = masked(event);
        let payload: Value = serde_json::from_str(m["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["contact_email"], MASK);
        assert_eq!(payload["browser_ip"], MASK);
        assert_eq!(payload["billing_address"]["zip"], MASK);
        assert_eq!(payload["billing_address"]["country_code"], "DE");
        assert_eq!(payload["customer"]["id"], 7, "an id is a reference, not a person");
        assert_eq!(payload["customer"]["default_address"]["address1"], MASK);
        let raw: Value = serde_json::from_str(m["raw"].as_str().unwrap()).unwrap();
        assert_eq!(raw["BuyerInfo"]["BuyerName"], MASK);
        assert_eq!(raw["ShippingAddress"]["CountryCode"], "US");
        let ship_to = &m["other"]["fulfillmentStartInstructions"][0]["shippingStep"]["shipTo"];
        assert_eq!(ship_to["primaryPhone"]["phoneNumber"], MASK);
        assert_eq!(m["other"]["buyer"]["username"], MASK);
        for text in [&payload.to_string(), &raw.to_string(), &m.to_string()] {
            for secret in ["a@b.c", "Ann", "Street 1", "Bob", "bob99", "555", "95125", "10.0.0.1"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn text_that_is_not_json_is_shown_by_its_size() {
        assert_eq!(mask_text("name=Canary"), "(11 bytes, not JSON, not shown)");
        assert_eq!(masked(json!({"customer": null})), json!({"customer": null}));
        let form = masked(json!({"raw": "billing_email=canary%40x"}));
        assert_eq!(form["raw"], "(24 bytes, not JSON, not shown)");
        let stripe = masked(json!({"customer": "cus_1", "shipping": {"name": "Ann", "address": {"country": "FR"}},
            "totals": {"shipping": "4.90"}}));
        assert_eq!(
            stripe,
            json!({"customer": "cus_1", "shipping": {"name": MASK, "address": {"country": "FR"}},
            "totals": {"shipping": "4.90"}})
        );
    }
}
