//! Target (ERP) record schemas as snapshots, and what changed between two snapshots: a field
//! the ERP newly requires is known when the snapshot is refreshed, before an order fails on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DriftError;

/// One field of a target record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetField {
    pub required: bool,
    /// The target's own type name (NetSuite: JSON Schema type, or its `format` for strings such as
    /// `date`; Odoo: the field type such as `many2one`). Compared only against the same target.
    #[serde(rename = "type")]
    pub field_type: String,
    /// Allowed values, for enumerations (NetSuite `enum`, Odoo `selection` keys).
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub enum_values: Option<Vec<String>>,
    /// The record this field references (`customer`, `res.partner`, `item`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The target fills it when a payload leaves it out: it has a default, is computed from
    /// other fields, or is the inverse of the one2many it is created through (Odoo reports such
    /// fields as required all the same).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub defaulted: bool,
}

impl TargetField {
    pub fn new(field_type: impl Into<String>, required: bool) -> Self {
        TargetField {
            required,
            field_type: field_type.into(),
            enum_values: None,
            lookup: None,
            label: None,
            defaulted: false,
        }
    }

    /// Whether a payload must carry it: required, and not filled by the target.
    pub fn must_send(&self) -> bool {
        self.required && !self.defaulted
    }
}

/// A snapshot of a target record's fields, kept as JSON next to the mappings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetSchema {
    pub record: String,
    pub fields: BTreeMap<String, TargetField>,
    /// The records written through a field as a list (Odoo `order_line` → `sale.order.line`),
    /// each checked against its own schema.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lines: BTreeMap<String, TargetSchema>,
}

/// A change of a field's type between snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldTypeChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// Enum values added to or removed from a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumChange {
    pub field: String,
    pub values: Vec<String>,
}

/// A change of the record a field references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// What changed from one snapshot of a target record to the next. Field lists are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDiff {
    /// Required now and not before (and not filled by the target): fields that became
    /// required and new required fields. A line record's fields are named `order_line.x`.
    pub newly_required: Vec<String>,
    pub no_longer_required: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub type_changed: Vec<FieldTypeChange>,
    pub enum_removed: Vec<EnumChange>,
    pub enum_added: Vec<EnumChange>,
    pub lookup_changed: Vec<LookupChange>,
}

impl SchemaDiff {
    pub fn is_empty(&self) -> bool {
        *self == SchemaDiff::default()
    }

    /// Changes that can make a write that worked before fail now.
    pub fn is_breaking(&self) -> bool {
        !(self.newly_required.is_empty()
            && self.removed.is_empty()
            && self.type_changed.is_empty()
            && self.enum_removed.is_empty()
            && self.lookup_changed.is_empty())
    }
}

impl TargetSchema {
    pub fn new(record: impl Into<String>) -> Self {
        TargetSchema { record: record.into(), fields: BTreeMap::new(), lines: BTreeMap::new() }
    }

    pub fn required_fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter(|(_, f)| f.required).map(|(name, _)| name.as_str())
    }

    /// What changed from `old` to `new`, line records included (their fields prefixed with
    /// the field they are written through).
    pub fn diff(old: &TargetSchema, new: &TargetSchema) -> SchemaDiff {
        let mut diff = SchemaDiff::default();
        diff_into(old, new, "", &mut diff);
        for (through, lines) in &new.lines {
            let empty = TargetSchema::new(lines.record.clone());
            let before = old.lines.get(through).unwrap_or(&empty);
            diff_into(before, lines, &format!("{through}."), &mut diff);
        }
        for (through, lines) in old.lines.iter().filter(|(through, _)| !new.lines.contains_key(*through)) {
            diff.removed.extend(lines.fields.keys().map(|name| format!("{through}.{name}")));
        }
        for list in [&mut diff.newly_required, &mut diff.no_longer_required, &mut diff.added, &mut diff.removed] {
            list.sort();
        }
        diff
    }

    /// From NetSuite REST record metadata: `GET /services/rest/record/v1/metadata-catalog/<record>`
    /// with `Accept: application/schema+json`. That is a JSON Schema: `properties` per field with
    /// `type` (and `format` for dates), `title`, `enum` (on the field or on its `id` for select
    /// fields returned as `{id, refName}`), `$ref` to `.../metadata-catalog/<record>` for
    /// references, `x-ns-*` annotations; required fields are listed in `required`.
    pub fn from_netsuite(record: impl Into<String>, schema: &Value) -> Result<Self, DriftError> {
        let record = record.into();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| DriftError::Metadata(format!("NetSuite {record}: no `properties` object")))?;
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = BTreeMap::new();
        for (name, property) in properties {
            let lookup = property.get("$ref").and_then(Value::as_str).and_then(netsuite_reference);
            let json_type = match property.get("type") {
                Some(Value::String(t)) => Some(t.as_str()),
                // Some tools rewrite types as `["null", "string"]`; the non-null one is the type.
                Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null"),
                _ => None,
            };
            let format = property.get("format").and_then(Value::as_str);
            let field_type = match (json_type, format) {
                (Some("string"), Some(format)) => format,
                (Some(t), _) => t,
                (None, _) if property.get("$ref").is_some() => "object",
                (None, _) => "unknown",
            };
            let enum_values = property
                .get("enum")
                .or_else(|| property.pointer("/properties/id/enum"))
                .and_then(Value::as_array)
                .map(|values| values.iter().map(enum_value).collect());
            let label = property.get("title").and_then(Value::as_str).map(str::to_owned);
            let field = TargetField {
                required: required.contains(name.as_str()),
                field_type: field_type.to_owned(),
                enum_values,
                lookup,
                label,
                defaulted: false,
            };
            fields.insert(name.clone(), field);
        }
        Ok(TargetSchema { record, fields, lines: BTreeMap::new() })
    }

    /// From Odoo `fields_get` (`/json/2/<model>/fields_get` or `execute_kw(model, 'fields_get', …)`):
    /// a map field → `{type, string, required, selection: [[value, label]], relation, depends}`.
    /// Odoo's `required` ignores defaults and computations (`name` on `sale.order` is required
    /// but defaults to "New"; `partner_invoice_id` is computed from `partner_id`): a field with
    /// a non-empty `depends` is marked `defaulted` here, and [`TargetSchema::with_odoo_defaults`]
    /// marks the ones `default_get` fills.
    pub fn from_odoo(model: impl Into<String>, fields_get: &Value) -> Result<Self, DriftError> {
        let record = model.into();
        let map = fields_get
            .as_object()
            .ok_or_else(|| DriftError::Metadata(format!("Odoo {record}: fields_get is not an object")))?;
        let mut fields = BTreeMap::new();
        for (name, attrs) in map {
            let field_type = attrs
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| DriftError::Metadata(format!("Odoo {record}.{name}: no `type`")))?;
            let enum_values = attrs.get("selection").and_then(Value::as_array).map(|pairs| {
                pairs.iter().filter_map(|pair| pair.as_array().and_then(|p| p.first())).map(enum_value).collect()
            });
            let lookup = attrs.get("relation").and_then(Value::as_str).filter(|r| !r.is_empty()).map(str::to_owned);
            let field = TargetField {
                required: attrs.get("required").and_then(Value::as_bool).unwrap_or(false),
                field_type: field_type.to_owned(),
                enum_values,
                lookup,
                label: attrs.get("string").and_then(Value::as_str).map(str::to_owned),
                defaulted: attrs.get("depends").and_then(Value::as_array).is_some_and(|d| !d.is_empty()),
            };
            fields.insert(name.clone(), field);
        }
        Ok(TargetSchema { record, fields, lines: BTreeMap::new() })
    }

    /// Marks the fields Odoo's `default_get` answered a value for as filled by the target.
    pub fn with_odoo_defaults(mut self, defaults: &Value) -> Self {
        if let Some(defaults) = defaults.as_object() {
            for name in defaults.keys() {
                if let Some(field) = self.fields.get_mut(name) {
                    field.defaulted = true;
                }
            }
        }
        self
    }

    /// Adds the schema of the records written through `field` (an Odoo one2many); the field
    /// that points back at this record (`relation_field`, e.g. `order_id`) is filled by Odoo.
    pub fn with_lines(mut self, field: &str, mut lines: TargetSchema, inverse: Option<&str>) -> Self {
        if let Some(back) = inverse.and_then(|name| lines.fields.get_mut(name)) {
            back.defaulted = true;
        }
        self.lines.insert(field.to_owned(), lines);
        self
    }

    pub fn load(path: &Path) -> Result<Self, DriftError> {
        super::load_json(path)
    }

    pub fn save(&self, path: &Path) -> Result<(), DriftError> {
        super::save_json(path, self)
    }
}

/// The differences of one record's fields, their names prefixed with `prefix`.
fn diff_into(old: &TargetSchema, new: &TargetSchema, prefix: &str, diff: &mut SchemaDiff) {
    let named = |name: &str| format!("{prefix}{name}");
    for (name, field) in &new.fields {
        let Some(before) = old.fields.get(name) else {
            diff.added.push(named(name));
            if field.must_send() {
                diff.newly_required.push(named(name));
            }
            continue;
        };
        match (before.must_send(), field.must_send()) {
            (false, true) => diff.newly_required.push(named(name)),
            (true, false) => diff.no_longer_required.push(named(name)),
            _ => {}
        }
        if before.field_type != field.field_type {
            let (old, new) = (before.field_type.clone(), field.field_type.clone());
            diff.type_changed.push(FieldTypeChange { field: named(name), old, new });
        }
        if let (Some(was), Some(now)) = (&before.enum_values, &field.enum_values) {
            let (was, now): (BTreeSet<&String>, BTreeSet<&String>) = (was.iter().collect(), now.iter().collect());
            let removed: Vec<String> = was.difference(&now).map(|v| (*v).clone()).collect();
            let added: Vec<String> = now.difference(&was).map(|v| (*v).clone()).collect();
            if !removed.is_empty() {
                diff.enum_removed.push(EnumChange { field: named(name), values: removed });
            }
            if !added.is_empty() {
                diff.enum_added.push(EnumChange { field: named(name), values: added });
            }
        }
        if before.lookup != field.lookup {
            let (old, new) = (before.lookup.clone(), field.lookup.clone());
            diff.lookup_changed.push(LookupChange { field: named(name), old, new });
        }
    }
    diff.removed.extend(old.fields.keys().filter(|name| !new.fields.contains_key(*name)).map(|name| named(name)));
}

/// The record a NetSuite `$ref` points at (`…/metadata-catalog/customer` → `customer`). `nsLink`
/// is the schema of the `links` arrays, not a record.
fn netsuite_reference(reference: &str) -> Option<String> {
    let name = reference.rsplit('/').next().filter(|name| !name.is_empty())?;
    (name != "nsLink").then(|| name.to_owned())
}

/// Enum values as text: NetSuite ids are strings, Odoo selection keys are usually strings but
/// may be integers.
fn enum_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shortened `metadata-catalog/salesOrder` in `application/schema+json`, in the documented shape.
    fn netsuite_sales_order(extra_required: &[&str]) -> Value {
        let mut required = vec!["entity"];
        required.extend_from_slice(extra_required);
        json!({
            "type": "object",
            "properties": {
                "entity": {
                    "title": "Customer",
                    "type": "object",
                    "$ref": "/services/rest/record/v1/metadata-catalog/customer",
                    "x-ns-filterable": true
                },
                "tranDate": {"title": "Date", "type": "string", "format": "date", "nullable": true, "x-ns-filterable": true},
                "otherRefNum": {"title": "PO/Check #", "type": "string", "nullable": true},
                "orderStatus": {
                    "title": "Status",
                    "type": "object",
                    "properties": {
                        "id": {"title": "Internal identifier", "type": "string", "enum": ["A", "B", "C", "D", "E", "F", "G", "H"]},
                        "refName": {"title": "Reference Name", "type": "string"}
                    }
                },
                "custbody_channel": {"title": "Sales Channel", "type": "string", "nullable": true, "x-ns-custom-field": true},
                "item": {"title": "Items", "type": "object", "$ref": "/services/rest/record/v1/metadata-catalog/salesOrder-itemCollection"},
                "links": {"title": "Links", "type": "array", "readOnly": true, "items": {"$ref": "/services/rest/record/v1/metadata-catalog/nsLink"}}
            },
            "required": required,
            "$schema": "https://json-schema.org/draft-06/hyper-schema#"
        })
    }

    fn odoo_sale_order(partner_required: bool, states: &[(&str, &str)]) -> Value {
        let selection: Vec<Value> = states.iter().map(|(value, label)| json!([value, label])).collect();
        json!({
            "partner_id": {"type": "many2one", "string": "Customer", "required": partner_required, "readonly": false, "relation": "res.partner"},
            "client_order_ref": {"type": "char", "string": "Customer Reference", "required": false, "readonly": false},
            "date_order": {"type": "datetime", "string": "Order Date", "required": true, "readonly": false},
            "state": {"type": "selection", "string": "Status", "required": false, "readonly": true, "selection": selection},
            "order_line": {"type": "one2many", "string": "Order Lines", "required": false, "readonly": false, "relation": "sale.order.line", "relation_field": "order_id"},
            "amount_total": {"type": "monetary", "string": "Total", "required": false, "readonly": true}
        })
    }

    const SALE_STATES: [(&str, &str); 4] =
        [("draft", "Quotation"), ("sent", "Quotation Sent"), ("sale", "Sales Order"), ("cancel", "Cancelled")];

    #[test]
    fn netsuite_metadata_becomes_a_target_schema() {
        let schema = TargetSchema::from_netsuite("salesOrder", &netsuite_sales_order(&[])).expect("valid metadata");
        let entity = &schema.fields["entity"];
        assert!(entity.required);
        assert_eq!(entity.lookup.as_deref(), Some("customer"));
        assert_eq!(schema.fields["tranDate"].field_type, "date");
        assert_eq!(schema.fields["item"].lookup.as_deref(), Some("salesOrder-itemCollection"));
        assert_eq!(schema.fields["links"].lookup, None);
        let statuses = schema.fields["orderStatus"].enum_values.clone().unwrap_or_default();
        assert_eq!(statuses.len(), 8);
        assert_eq!(schema.required_fields().collect::<Vec<_>>(), vec!["entity"]);
        assert!(TargetSchema::from_netsuite("salesOrder", &json!({"type": "object"})).is_err());
    }

    #[test]
    fn refreshed_netsuite_schema_with_a_new_required_field_is_reported() {
        let old = TargetSchema::from_netsuite("salesOrder", &netsuite_sales_order(&[])).expect("valid metadata");
        let mut refreshed = netsuite_sales_order(&["custbody_channel", "custbody_region"]);
        refreshed["properties"]["custbody_region"] =
            json!({"title": "Region", "type": "string", "x-ns-custom-field": true});
        refreshed["properties"]["orderStatus"]["properties"]["id"]["enum"] = json!(["A", "B", "C", "D", "E", "F", "G"]);
        let new = TargetSchema::from_netsuite("salesOrder", &refreshed).expect("valid metadata");
        let diff = TargetSchema::diff(&old, &new);
        assert_eq!(diff.newly_required, vec!["custbody_channel", "custbody_region"]);
        assert_eq!(diff.added, vec!["custbody_region"]);
        assert_eq!(diff.enum_removed, vec![EnumChange { field: "orderStatus".into(), values: vec!["H".into()] }]);
        assert!(diff.removed.is_empty() && diff.type_changed.is_empty());
        assert!(diff.is_breaking());
        assert!(TargetSchema::diff(&new, &new).is_empty());
    }

    #[test]
    fn odoo_fields_get_becomes_a_target_schema() {
        let schema = TargetSchema::from_odoo("sale.order", &odoo_sale_order(true, &SALE_STATES)).expect("valid");
        assert_eq!(schema.fields["partner_id"].lookup.as_deref(), Some("res.partner"));
        assert_eq!(schema.fields["order_line"].lookup.as_deref(), Some("sale.order.line"));
        assert_eq!(
            schema.fields["state"].enum_values.as_deref(),
            Some(&["draft".to_owned(), "sent".into(), "sale".into(), "cancel".into()][..])
        );
        assert_eq!(schema.required_fields().collect::<Vec<_>>(), vec!["date_order", "partner_id"]);
        assert!(TargetSchema::from_odoo("sale.order", &json!({"x": {"string": "X"}})).is_err());
    }

    #[test]
    fn refreshed_odoo_schema_with_a_newly_required_field_is_reported() {
        let old = TargetSchema::from_odoo("sale.order", &odoo_sale_order(false, &SALE_STATES)).expect("valid");
        let mut refreshed =
            odoo_sale_order(true, &[("draft", "Quotation"), ("sale", "Sales Order"), ("done", "Locked")]);
        refreshed["amount_total"]["type"] = json!("float");
        let new = TargetSchema::from_odoo("sale.order", &refreshed).expect("valid");
        let diff = TargetSchema::diff(&old, &new);
        assert_eq!(diff.newly_required, vec!["partner_id"]);
        assert_eq!(
            diff.enum_removed,
            vec![EnumChange { field: "state".into(), values: vec!["cancel".into(), "sent".into()] }]
        );
        assert_eq!(diff.enum_added, vec![EnumChange { field: "state".into(), values: vec!["done".into()] }]);
        assert_eq!(
            diff.type_changed,
            vec![FieldTypeChange { field: "amount_total".into(), old: "monetary".into(), new: "float".into() }]
        );
        let mut dropped = new.clone();
        dropped.fields.remove("client_order_ref");
        assert_eq!(TargetSchema::diff(&new, &dropped).removed, vec!["client_order_ref"]);
    }

    #[test]
    fn snapshot_round_trips_as_json() {
        let schema = TargetSchema::from_odoo("sale.order", &odoo_sale_order(true, &SALE_STATES)).expect("valid");
        let text = serde_json::to_string(&schema).expect("serialises");
        assert!(text.contains(r#""type":"many2one""#) && text.contains(r#""lookup":"res.partner""#));
        let back: TargetSchema = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, schema);
    }

    /// A required field Odoo fills (a default, a computation, the inverse of the lines) is not
    /// demanded of a payload; one without becomes newly required, in a line record too.
    #[test]
    fn odoo_fields_it_fills_are_not_newly_required_and_line_fields_are_named_through_their_field() {
        let mut order = odoo_sale_order(true, &SALE_STATES);
        order["name"] = json!({"type": "char", "string": "Order Reference", "required": true});
        order["partner_invoice_id"] = json!({"type": "many2one", "required": true, "relation": "res.partner",
            "depends": ["partner_id"]});
        let line = json!({
            "order_id": {"type": "many2one", "required": true, "relation": "sale.order"},
            "name": {"type": "text", "required": true, "depends": ["product_id"]},
        });
        let snapshot = |order: &Value, line: &Value| {
            let lines = TargetSchema::from_odoo("sale.order.line", line).expect("valid");
            TargetSchema::from_odoo("sale.order", order)
                .expect("valid")
                .with_odoo_defaults(&json!({"name": "New", "date_order": "2026-11-26 10:00:00"}))
                .with_lines("order_line", lines, Some("order_id"))
        };
        let old = snapshot(&order, &line);
        assert!(old.fields["name"].required && !old.fields["name"].must_send());
        assert!(!old.fields["partner_invoice_id"].must_send() && old.fields["partner_id"].must_send());
        assert!(!old.lines["order_line"].fields["order_id"].must_send());

        let mut line2 = line.clone();
        line2["x_batch"] = json!({"type": "char", "required": true});
        order["x_studio_channel"] = json!({"type": "char", "required": true});
        let diff = TargetSchema::diff(&old, &snapshot(&order, &line2));
        assert_eq!(diff.newly_required, vec!["order_line.x_batch", "x_studio_channel"]);
        assert_eq!(diff.added, vec!["order_line.x_batch", "x_studio_channel"]);
        let text = serde_json::to_string(&old).expect("serialises");
        assert_eq!(serde_json::from_str::<TargetSchema>(&text).expect("parses"), old);
    }
}
