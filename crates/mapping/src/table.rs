//! A mapping as a field-by-field table for people, read off its first golden case: each field
//! of the target payload, the canonical fields holding the same value, and an example.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

/// One row: the target field, where its value comes from, an example value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub target: String,
    /// Canonical fields with the same value; empty when the mapping computes or fixes it.
    pub sources: Vec<String>,
    pub example: String,
}

/// Leaves of a JSON value by path, array indices collapsed to `[]` (every element's value kept,
/// so a field is traced only to a source that agrees on every line).
fn leaves(value: &Value, path: String, out: &mut BTreeMap<String, Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                leaves(v, if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                leaves(item, format!("{path}[]"), out);
            }
        }
        leaf => out.entry(path).or_default().push(leaf.clone()),
    }
}

/// Equal as data: the same text, or the same decimal whether written as a string or a number.
fn same(a: &Value, b: &Value) -> bool {
    let decimal = |v: &Value| match v {
        Value::String(s) => s.parse::<Decimal>().ok(),
        Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
        _ => None,
    };
    match (decimal(a), decimal(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b && !a.is_null(),
    }
}

/// The rows for a mapping's output on `input` (`{"command": ..., "settings": ...}`).
pub fn field_table(input: &Value, output: &Value) -> Vec<FieldRow> {
    let (mut from, mut to) = (BTreeMap::new(), BTreeMap::new());
    leaves(input, String::new(), &mut from);
    leaves(output, String::new(), &mut to);
    to.into_iter()
        .map(|(target, values)| {
            let agree = |v: &Vec<Value>| v.len() == values.len() && v.iter().zip(&values).all(|(a, b)| same(a, b));
            let sources = from.iter().filter(|(_, v)| agree(v)).map(|(p, _)| p.clone()).collect();
            FieldRow { target, sources, example: values.first().map(Value::to_string).unwrap_or_default() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_traced_to_their_sources() {
        let input = serde_json::json!({"command": {"order": {"currency": "EUR", "lines": [{"unit_price": "9.90"}]}}});
        let output =
            serde_json::json!({"currency": {"externalId": "EUR"}, "item": {"items": [{"rate": 9.9}]}, "memo": "x"});
        let rows = field_table(&input, &output);
        assert_eq!(rows[0].target, "currency.externalId");
        assert_eq!(rows[0].sources, ["command.order.currency"]);
        assert_eq!(rows[1].target, "item.items[].rate");
        assert_eq!(rows[1].sources, ["command.order.lines[].unit_price"]);
        assert!(rows[2].sources.is_empty());
    }
}
