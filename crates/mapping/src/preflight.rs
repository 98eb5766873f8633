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

/// Every required field present (and not null), enumerations within their values, and the
/// JSON kind right where the snapshot's type is a plain JSON type.
pub fn check(schema: &TargetSchema, payload: &Value) -> Result<(), Violation> {
    for (name, field) in &schema.fields {
        let value = payload.get(name).filter(|v| !v.is_null());
        let Some(value) = value else {
            if field.required {
                return Err(Violation { field: name.clone(), reason: format!("{} requires {name}", schema.record) });
            }
            continue;
        };
        if let Some(allowed) = &field.enum_values {
            let got = value.get("id").unwrap_or(value);
            let got = got.as_str().map(str::to_owned).unwrap_or_else(|| got.to_string());
            if !allowed.contains(&got) {
                return Err(Violation { field: name.clone(), reason: format!("{got} is not one of {allowed:?}") });
            }
        }
        let kind_ok = match field.field_type.as_str() {
            "string" | "date" | "date-time" => value.is_string(),
            "number" | "integer" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => true,
        };
        if !kind_ok {
            return Err(Violation {
                field: name.clone(),
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
                field: name.clone(),
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
        assert_eq!(check(&schema(), &ok), Ok(()));
        let missing = serde_json::json!({"entity": {"id": "1"}});
        assert_eq!(check(&schema(), &missing).unwrap_err().field, "tranDate");
        let nobody = serde_json::json!({"entity": {"externalId": null}, "tranDate": "2026-11-26"});
        assert_eq!(check(&schema(), &nobody).unwrap_err().field, "entity");
        let wrong = serde_json::json!({"entity": {"id": "1"}, "tranDate": 20261126});
        assert!(check(&schema(), &wrong).unwrap_err().reason.contains("expects tranDate as date"));
        let status = serde_json::json!({"entity": {"id": "1"}, "tranDate": "x", "orderStatus": {"id": "C"}});
        assert_eq!(check(&schema(), &status).unwrap_err().field, "orderStatus");
    }
}
