//! Pre-flight validation: a mapped payload checked against the target's schema snapshot
//! before anything is sent, so a payload the target would refuse is held with its field named.

use serde_json::Value;

use crate::drift::TargetSchema;

/// Why a payload would be refused: the target field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub reason: String,
}

/// A reference field the target's connector fills itself, by looking its record up from keys
/// the mapping writes instead (the Odoo connector finds the partner by `partner.email` or
/// `partner.name`, creating it when absent, and each line's product by `default_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup {
    /// The target field, a line's field prefixed with the field the lines go through
    /// (`order_line.product_id`).
    pub field: &'static str,
    /// Paths in the same record (the payload, or the line); any one non-empty names the record.
    pub keys: &'static [&'static str],
}

const ODOO_SALE_ORDER: &[Lookup] = &[
    Lookup { field: "partner_id", keys: &["partner.email", "partner.name"] },
    Lookup { field: "order_line.product_id", keys: &["default_code"] },
];

/// The lookups a target's connector does for a resource's mapped payload.
pub fn lookups_for(target: &str, resource: &str) -> &'static [Lookup] {
    match (target, resource) {
        ("odoo", "sale_order") => ODOO_SALE_ORDER,
        _ => &[],
    }
}

/// Every required field present (and not null) unless the target fills it or the connector
/// looks it up from keys the payload carries, enumerations within their values, the JSON kind
/// right where the snapshot's type says it, references named; each line of a field with a line
/// schema (`order_line`) likewise.
pub fn check(schema: &TargetSchema, payload: &Value, lookups: &[Lookup]) -> Result<(), Violation> {
    check_record(schema, payload, lookups, "")?;
    for (through, lines) in &schema.lines {
        let Some(items) = payload.get(through).and_then(Value::as_array) else { continue };
        let prefix = format!("{through}.");
        for (i, item) in items.iter().enumerate() {
            check_record(lines, line_values(item), lookups, &prefix)
                .map_err(|v| Violation { field: v.field, reason: format!("line {}: {}", i + 1, v.reason) })?;
        }
    }
    Ok(())
}

/// Whether a payload writes a field (`order_line.x`: every line does), itself or through a lookup.
pub fn provides(payload: &Value, field: &str, lookups: &[Lookup]) -> bool {
    let present = |record: &Value, name: &str, full: &str| {
        record.get(name).is_some_and(|v| !v.is_null()) || resolved(lookups, full, record)
    };
    match field.split_once('.') {
        Some((through, name)) if payload.get(through).is_some_and(Value::is_array) => {
            payload[through].as_array().into_iter().flatten().all(|item| present(line_values(item), name, field))
        }
        _ => present(payload, field, field),
    }
}

/// A line's values: the line itself, or the values of an Odoo create command `[0, 0, vals]`.
fn line_values(item: &Value) -> &Value {
    match item {
        Value::Array(command) => command.get(2).unwrap_or(item),
        _ => item,
    }
}

/// Whether the connector will look the field up from a key the record carries.
fn resolved(lookups: &[Lookup], field: &str, record: &Value) -> bool {
    lookups.iter().filter(|l| l.field == field).any(|l| {
        l.keys.iter().any(|key| {
            let value = key.split('.').try_fold(record, |v, part| v.get(part));
            match value {
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(Value::Number(_)) => true,
                _ => false,
            }
        })
    })
}

fn check_record(schema: &TargetSchema, payload: &Value, lookups: &[Lookup], prefix: &str) -> Result<(), Violation> {
    let at = |name: &str| format!("{prefix}{name}");
    for (name, field) in &schema.fields {
        let value = payload.get(name).filter(|v| !v.is_null());
        let Some(value) = value else {
            if field.must_send() && !resolved(lookups, &at(name), payload) {
                let reason = match lookups.iter().find(|l| l.field == at(name)) {
                    Some(l) => format!("{} requires {name} (looked up by {})", schema.record, l.keys.join(" or ")),
                    None => format!("{} requires {name}", schema.record),
                };
                return Err(Violation { field: at(name), reason });
            }
            continue;
        };
        if let Some(allowed) = &field.enum_values {
            let got = value.get("id").unwrap_or(value);
            let got = got.as_str().map(str::to_owned).unwrap_or_else(|| got.to_string());
            if !allowed.contains(&got) {
                return Err(Violation { field: at(name), reason: format!("{got} is not one of {allowed:?}") });
            }
        }
        let decimal =
            |v: &Value| v.is_number() || v.as_str().is_some_and(|s| s.parse::<rust_decimal::Decimal>().is_ok());
        let kind_ok = match field.field_type.as_str() {
            // NetSuite (JSON Schema types and string formats).
            "string" | "date" | "date-time" => value.is_string(),
            "number" | "integer" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            // Odoo (`fields_get` types); floats are read from decimal strings exactly.
            "char" | "text" | "html" | "datetime" | "selection" => value.is_string(),
            "float" | "monetary" => decimal(value),
            "many2one" => value.is_u64() || value.is_object(),
            "one2many" | "many2many" => value.is_array(),
            _ => true,
        };
        if !kind_ok {
            return Err(Violation {
                field: at(name),
                reason: format!("{} expects {name} as {}, got {value}", schema.record, field.field_type),
            });
        }
    }
    // A reference must name its record one way or the other.
    for (name, field) in &schema.fields {
        if field.lookup.is_some()
            && let Some(reference) = payload.get(name).filter(|v| v.is_object())
            && ["id", "externalId", "refName"].iter().all(|k| reference.get(k).is_none_or(Value::is_null))
        {
            return Err(Violation {
                field: at(name),
                reason: format!(
                    "{name} references a {} by neither id nor externalId",
                    field.lookup.as_deref().unwrap_or("record")
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TargetSchema {
        serde_json::from_value(serde_json::json!({"record": "salesOrder", "fields": {
            "entity": {"required": true, "type": "object", "lookup": "customer"},
            "tranDate": {"required": true, "type": "date"},
            "orderStatus": {"required": false, "type": "object", "enum": ["A", "B"]},
        }}))
        .unwrap()
    }

    #[test]
    fn the_field_at_fault_is_named() {
        let ok = serde_json::json!({"entity": {"externalId": "a@b.c"}, "tranDate": "2026-11-26"});
        assert_eq!(check(&schema(), &ok, &[]), Ok(()));
        let missing = serde_json::json!({"entity": {"id": "1"}});
        assert_eq!(check(&schema(), &missing, &[]).unwrap_err().field, "tranDate");
        let nobody = serde_json::json!({"entity": {"externalId": null}, "tranDate": "2026-11-26"});
        assert_eq!(check(&schema(), &nobody, &[]).unwrap_err().field, "entity");
        let wrong = serde_json::json!({"entity": {"id": "1"}, "tranDate": 20261126});
        assert!(check(&schema(), &wrong, &[]).unwrap_err().reason.contains("expects tranDate as date"));
        let status = serde_json::json!({"entity": {"id": "1"}, "tranDate": "x", "orderStatus": {"id": "C"}});
        assert_eq!(check(&schema(), &status, &[]).unwrap_err().field, "orderStatus");
    }

    /// The shipped Odoo sale.order snapshot: Odoo reports `name`, `date_order`, `company_id`…
    /// as required, but fills them; only the partner must be named, and the connector looks it
    /// up from the draft's `partner`.
    #[test]
    fn an_odoo_draft_is_checked_with_its_lookups() {
        let mappings = crate::Mappings::shipped().unwrap();
        let schema = mappings.schema("odoo", "sale_order").expect("shipped");
        assert!(schema.fields["name"].required && !schema.fields["name"].must_send());
        assert!(schema.fields["partner_id"].must_send());
        let lookups = lookups_for("odoo", "sale_order");
        let draft = serde_json::json!({
            "client_order_ref": "1001", "origin": "#1001",
            "partner": {"email": "ada@example.com", "name": null},
            "order_line": [{"default_code": "A", "name": "A", "product_uom_qty": 2, "price_unit": "19.990"}],
        });
        assert_eq!(check(schema, &draft, lookups), Ok(()));
        assert!(provides(&draft, "partner_id", lookups) && provides(&draft, "order_line.product_id", lookups));
        assert!(!provides(&draft, "x_studio_channel", lookups));

        let mut nobody = draft.clone();
        nobody["partner"] = serde_json::json!({"email": "", "name": null});
        let v = check(schema, &nobody, lookups).unwrap_err();
        assert_eq!(v.field, "partner_id");
        assert!(v.reason.contains("looked up by partner.email or partner.name"), "{}", v.reason);
        assert_eq!(check(schema, &nobody, &[]).unwrap_err().field, "partner_id");

        let mut no_product = draft.clone();
        no_product["order_line"][0].as_object_mut().unwrap().remove("default_code");
        no_product["order_line"][0]["price_unit"] = serde_json::json!("12,50");
        let v = check(schema, &no_product, lookups).unwrap_err();
        assert_eq!(v.field, "order_line.price_unit");
        assert!(v.reason.starts_with("line 1: "), "{}", v.reason);

        let mut state = draft.clone();
        state["state"] = serde_json::json!("shipped");
        assert_eq!(check(schema, &state, lookups).unwrap_err().field, "state");
    }
}
