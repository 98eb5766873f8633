//! Customers' personal data in the JSON the store keeps (canonical events, command payloads,
//! evidence), found by its keys, and what a purge leaves in its place: nothing in a payload, a
//! hash in an exception's evidence (it can still show that two values were the same, and what
//! it referred to, without holding the value).

use handoff_model::personal::{Field, classify};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// `sha256:<hex>` of some bytes: what evidence keeps of a value or a body once it is purged.
pub fn hash(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Removes the personal fields of stored JSON: an email, phone or name becomes `null`, an
/// address keeps its country and its other texts become empty (the canonical `Address` needs
/// them present). `None` when the text is not JSON or holds nothing personal.
pub fn scrub(json: &str) -> Option<String> {
    rewrite(json, &mut |key, v| match v {
        Value::String(_) if key.ends_with("line1") || key == "city" || key == "postal_code" => {
            Value::String(String::new())
        }
        _ => Value::Null,
    })
}

/// As [`scrub`], with each personal value replaced by its [`hash`] (for evidence).
pub fn hash_personal(json: &str) -> Option<String> {
    rewrite(json, &mut |_, v| match v {
        Value::String(s) => Value::String(hash(s.as_bytes())),
        other => Value::String(hash(other.to_string().as_bytes())),
    })
}

fn rewrite(json: &str, replace: &mut dyn FnMut(&str, &Value) -> Value) -> Option<String> {
    let mut value: Value = serde_json::from_str(json).ok()?;
    let mut changed = false;
    walk(&mut value, false, replace, &mut changed);
    changed.then(|| value.to_string())
}

fn walk(value: &mut Value, in_person: bool, replace: &mut dyn FnMut(&str, &Value) -> Value, changed: &mut bool) {
    match value {
        Value::Object(map) => walk_object(map, in_person, replace, changed),
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, in_person, replace, changed)),
        _ => {}
    }
}

fn walk_object(
    map: &mut Map<String, Value>,
    in_person: bool,
    replace: &mut dyn FnMut(&str, &Value) -> Value,
    changed: &mut bool,
) {
    // What is personal is decided once, in `handoff_model::personal`, for the API's mask too.
    for (key, v) in map.iter_mut() {
        let personal_text = matches!(v, Value::String(s) if !s.is_empty() && !s.starts_with("sha256:"));
        match classify(key, v, in_person) {
            Field::Personal if personal_text => {
                *v = replace(key, v);
                *changed = true;
            }
            Field::Personal | Field::Kept => {}
            Field::PersonBlock => walk(v, true, replace, changed),
            Field::Other => walk(v, in_person, replace, changed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_order_keeps_its_shape_and_loses_the_person() {
        let event = serde_json::json!({
            "order_ref": "#1", "kind": "order.created",
            "order": {"customer": {"email": "ada@example.com", "name": "Ada"},
                      "shipping_address": {"name": "Ada", "line1": "1 Road", "city": "Town", "postal_code": "N1", "country": "GB"},
                      "lines": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]},
            "payment": {"payment_id": "p1", "email": "ada@example.com"}
        });
        let out = scrub(&event.to_string()).unwrap();
        assert!(!out.contains("ada@") && !out.contains("Ada") && !out.contains("1 Road"), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["order"]["shipping_address"]["country"], "GB");
        assert_eq!(v["order"]["shipping_address"]["line1"], "");
        assert_eq!(v["order"]["lines"][0]["sku"], "A");
        assert_eq!(v["order_ref"], "#1");
        assert_eq!(scrub(&out), None, "a scrubbed payload holds nothing personal");
    }

    #[test]
    fn evidence_keeps_hashes() {
        let evidence = r#"{"ledger":{"email":"ada@example.com","payments":[{"email":"ada@example.com"}]}}"#;
        let out = hash_personal(evidence).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ledger"]["email"], hash(b"ada@example.com"));
        assert_eq!(v["ledger"]["email"], v["ledger"]["payments"][0]["email"]);
        assert_eq!(hash_personal(&out), None);
    }
}
