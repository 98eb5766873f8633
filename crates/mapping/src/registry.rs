//! Mappings by target, resource and version; golden cases beside each one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::drift::TargetSchema;
use crate::jq::Program;
use crate::prepare::prepare;

/// Largest mapping or case file read.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The mappings shipped with Handoff (the `mappings/` directory of the repository).
const SHIPPED: &[(&str, &str)] = &[
    ("netsuite/sales_order@1", include_str!("../../../mappings/netsuite/sales_order/v1.jq")),
    ("netsuite/sales_order@2", include_str!("../../../mappings/netsuite/sales_order/v2.jq")),
    ("odoo/sale_order@1", include_str!("../../../mappings/odoo/sale_order/v1.jq")),
    ("odoo/sale_order@2", include_str!("../../../mappings/odoo/sale_order/v2.jq")),
];

/// The golden cases shipped with them: (mapping, case name, case).
const SHIPPED_CASES: &[(&str, &str, &str)] = &[
    (
        "netsuite/sales_order@1",
        "shopify_order_with_address",
        include_str!("../../../mappings/netsuite/sales_order/v1.cases/shopify_order_with_address.json"),
    ),
    (
        "netsuite/sales_order@1",
        "web_customer_no_address",
        include_str!("../../../mappings/netsuite/sales_order/v1.cases/web_customer_no_address.json"),
    ),
    (
        "netsuite/sales_order@2",
        "shopify_order_1001_net_of_discounts",
        include_str!("../../../mappings/netsuite/sales_order/v2.cases/shopify_order_1001_net_of_discounts.json"),
    ),
    (
        "odoo/sale_order@2",
        "split_line_shipping_and_charges",
        include_str!("../../../mappings/odoo/sale_order/v2.cases/split_line_shipping_and_charges.json"),
    ),
    (
        "odoo/sale_order@1",
        "shopify_order_with_discount",
        include_str!("../../../mappings/odoo/sale_order/v1.cases/shopify_order_with_discount.json"),
    ),
];

/// The target schema snapshots shipped with Handoff: (target/resource, snapshot).
const SHIPPED_SCHEMAS: &[(&str, &str)] = &[
    ("netsuite/sales_order", include_str!("../../../mappings/netsuite/sales_order/schema.json")),
    ("odoo/sale_order", include_str!("../../../mappings/odoo/sale_order/schema.json")),
];

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("mapping {id} does not compile: {reason}")]
    Compile { id: String, reason: String },
    #[error("mapping {id} failed: {reason}")]
    Run { id: String, reason: String },
    #[error("{0:?} is not a mapping id (target/resource@version, e.g. netsuite/sales_order@1)")]
    Id(String),
}

/// `netsuite/sales_order@1`: the target connector, the resource it writes, the version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MappingId {
    pub target: String,
    pub resource: String,
    pub version: u32,
}

impl fmt::Display for MappingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.target, self.resource, self.version)
    }
}

impl FromStr for MappingId {
    type Err = MappingError;
    fn from_str(s: &str) -> Result<Self, MappingError> {
        let bad = || MappingError::Id(s.to_owned());
        let (path, version) = s.split_once('@').ok_or_else(bad)?;
        let (target, resource) = path.split_once('/').ok_or_else(bad)?;
        let version = version.trim_start_matches('v').parse().map_err(|_| bad())?;
        let name = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name(target) || !name(resource) {
            return Err(bad());
        }
        Ok(MappingId { target: target.to_owned(), resource: resource.to_owned(), version })
    }
}

/// One version of one mapping, compiled once.
pub struct Mapping {
    pub id: MappingId,
    pub source: String,
    program: Program,
}

impl Mapping {
    pub fn compile(id: MappingId, source: &str) -> Result<Mapping, MappingError> {
        let program =
            Program::compile(source).map_err(|reason| MappingError::Compile { id: id.to_string(), reason })?;
        Ok(Mapping { id, source: source.to_owned(), program })
    }

    /// Maps a command's canonical payload, with the target's settings, to the target's payload
    /// (JSON text, money digits as the source gave them).
    pub fn apply(&self, command: &Value, settings: &Value) -> Result<String, MappingError> {
        let mut command = command.clone();
        prepare(&mut command, settings);
        self.run(&json!({"command": command, "settings": settings}))
    }

    fn run(&self, input: &Value) -> Result<String, MappingError> {
        let bytes = serde_json::to_vec(input).map_err(|e| self.failed(e.to_string()))?;
        self.program.run(&bytes).map_err(|reason| self.failed(reason))
    }

    fn failed(&self, reason: String) -> MappingError {
        MappingError::Run { id: self.id.to_string(), reason }
    }
}

/// A golden case: a command and settings in, the target payload expected out.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    #[serde(skip)]
    pub name: String,
    pub command: Value,
    #[serde(default)]
    pub settings: Value,
    pub expected: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub mapping: MappingId,
    pub case: String,
    /// `Err` says what differs.
    pub outcome: Result<(), String>,
}

/// The versions of one target resource's mapping, each with its golden cases.
type Versions = BTreeMap<u32, (Mapping, Vec<Case>)>;

/// Every version of every mapping, with its golden cases, and each target resource's schema
/// snapshot (`<target>/<resource>/schema.json`).
#[derive(Default)]
pub struct Mappings {
    versions: BTreeMap<(String, String), Versions>,
    schemas: BTreeMap<(String, String), TargetSchema>,
    /// The snapshot a refresh replaced (`schema.previous.json`), to diff against.
    previous: BTreeMap<(String, String), TargetSchema>,
}

/// The key of a command payload that pins the mapping version it is sent with.
pub const PIN: &str = "mapping";

/// Why a command cannot go out as its target's payload: it is held, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub mapping: String,
    pub field: String,
    pub reason: String,
}

impl Mappings {
    /// The mappings built into the binary.
    pub fn shipped() -> Result<Mappings, MappingError> {
        let mut mappings = Mappings::default();
        for (id, source) in SHIPPED {
            let cases = SHIPPED_CASES
                .iter()
                .filter(|(of, _, _)| of == id)
                .map(|(_, name, text)| {
                    let mut case: Case = serde_json::from_str(text)
                        .map_err(|e| MappingError::File { path: format!("{id} case {name}"), reason: e.to_string() })?;
                    case.name = (*name).to_owned();
                    Ok(case)
                })
                .collect::<Result<Vec<_>, MappingError>>()?;
            mappings.insert(Mapping::compile(id.parse()?, source)?, cases);
        }
        for (key, text) in SHIPPED_SCHEMAS {
            let schema = serde_json::from_str(text)
                .map_err(|e| MappingError::File { path: format!("{key}/schema.json"), reason: e.to_string() })?;
            let (target, resource) = key.split_once('/').unwrap_or((key, ""));
            mappings.schemas.insert((target.to_owned(), resource.to_owned()), schema);
        }
        Ok(mappings)
    }

    /// Mappings from a directory laid out as `<target>/<resource>/v<N>.jq`, with golden
    /// cases in `<target>/<resource>/v<N>.cases/*.json`.
    pub fn load(dir: &Path) -> Result<Mappings, MappingError> {
        let mut mappings = Mappings::default();
        for target in read_dir(dir)? {
            for resource in read_dir(&target)? {
                let key = (name(&target), name(&resource));
                if let Some(schema) = load_schema(&resource.join("schema.json"))? {
                    mappings.schemas.insert(key.clone(), schema);
                }
                if let Some(schema) = load_schema(&resource.join("schema.previous.json"))? {
                    mappings.previous.insert(key, schema);
                }
                for file in read_dir(&resource)? {
                    let Some(version) = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_prefix('v')?.strip_suffix(".jq")?.parse::<u32>().ok())
                    else {
                        continue;
                    };
                    let id = MappingId { target: name(&target), resource: name(&resource), version };
                    let mapping = Mapping::compile(id, &read(&file)?)?;
                    let cases = load_cases(&resource.join(format!("v{version}.cases")))?;
                    mappings.insert(mapping, cases);
                }
            }
        }
        Ok(mappings)
    }

    fn insert(&mut self, mapping: Mapping, cases: Vec<Case>) {
        let key = (mapping.id.target.clone(), mapping.id.resource.clone());
        self.versions.entry(key).or_default().insert(mapping.id.version, (mapping, cases));
    }

    /// The newest version of a target's mapping of a resource.
    pub fn latest(&self, target: &str, resource: &str) -> Option<&Mapping> {
        let versions = self.versions.get(&(target.to_owned(), resource.to_owned()))?;
        versions.values().next_back().map(|(m, _)| m)
    }

    /// The target's schema snapshot for a resource, if one is kept.
    pub fn schema(&self, target: &str, resource: &str) -> Option<&TargetSchema> {
        self.schemas.get(&(target.to_owned(), resource.to_owned()))
    }

    /// Maps a command with the latest mapping and checks the result against the target's
    /// schema snapshot: the target's payload, stamped with the mapping that made it, or why
    /// it is held.
    ///
    /// A command replayed "as ran" carries the version it ran with in its payload (`mapping`);
    /// that version is used instead of the latest.
    pub fn transform(
        &self,
        target: &str,
        resource: &str,
        command: &Value,
        settings: &Value,
    ) -> Result<(MappingId, String), Held> {
        let pinned = command.get(PIN).and_then(Value::as_str);
        let chosen = match pinned {
            Some(pin) => pin
                .parse::<MappingId>()
                .ok()
                .filter(|id| id.target == target && id.resource == resource)
                .and_then(|id| self.get(&id)),
            None => self.latest(target, resource),
        };
        let Some(mapping) = chosen else {
            if let Some(pin) = pinned {
                let reason = format!("the pinned mapping {pin} is not loaded");
                return Err(Held { mapping: pin.to_owned(), field: "mapping".into(), reason });
            }
            let reason = format!("no mapping for {target}/{resource}");
            return Err(Held { mapping: format!("{target}/{resource}"), field: "mapping".into(), reason });
        };
        let source = command.get("source_version").and_then(Value::as_str);
        let held = |field: String, reason: String| Held {
            mapping: mapping.id.to_string(),
            field,
            reason: match source {
                Some(version) => format!("{reason} (source payload version {version})"),
                None => reason,
            },
        };
        let payload = mapping.apply(command, settings).map_err(|e| held("mapping".into(), e.to_string()))?;
        let value: Value = serde_json::from_str(&payload).map_err(|e| held("mapping".into(), e.to_string()))?;
        if let Some(schema) = self.schema(target, resource) {
            let lookups = crate::preflight::lookups_for(target, resource);
            crate::preflight::check(schema, &value, lookups).map_err(|v| held(v.field, v.reason))?;
        }
        // The money invariant: what reaches the ERP adds up to what the channel charged.
        crate::totals::check(target, resource, command, settings, &value)
            .map_err(|crate::totals::Mismatch(reason)| held("totals".into(), reason))?;
        Ok((mapping.id.clone(), payload))
    }

    pub fn get(&self, id: &MappingId) -> Option<&Mapping> {
        let versions = self.versions.get(&(id.target.clone(), id.resource.clone()))?;
        versions.get(&id.version).map(|(m, _)| m)
    }

    pub fn ids(&self) -> impl Iterator<Item = &MappingId> {
        self.versions.values().flat_map(|v| v.values().map(|(m, _)| &m.id))
    }

    /// What changed between the snapshot a refresh replaced and the current one.
    pub fn schema_diff(&self, target: &str, resource: &str) -> Option<crate::drift::SchemaDiff> {
        let key = (target.to_owned(), resource.to_owned());
        Some(TargetSchema::diff(self.previous.get(&key)?, self.schemas.get(&key)?))
    }

    /// The latest mapping's output on each of its golden cases (`Err` when it fails to run).
    pub fn case_outputs(&self, target: &str, resource: &str) -> Vec<(String, Result<Value, String>)> {
        let Some((mapping, cases)) =
            self.versions.get(&(target.to_owned(), resource.to_owned())).and_then(|v| v.values().next_back())
        else {
            return Vec::new();
        };
        cases
            .iter()
            .map(|case| {
                let out = mapping
                    .apply(&case.command, &case.settings)
                    .map_err(|e| e.to_string())
                    .and_then(|out| serde_json::from_str(&out).map_err(|e| e.to_string()));
                (case.name.clone(), out)
            })
            .collect()
    }

    /// The latest mapping's field-by-field table, read off its first golden case.
    pub fn field_table(&self, target: &str, resource: &str) -> Option<Vec<crate::table::FieldRow>> {
        let (_, cases) = self.versions.get(&(target.to_owned(), resource.to_owned()))?.values().next_back()?;
        let case = cases.first()?;
        let output = self.case_outputs(target, resource).into_iter().next()?.1.ok()?;
        let mut command = case.command.clone();
        prepare(&mut command, &case.settings);
        Some(crate::table::field_table(&json!({"command": command, "settings": case.settings}), &output))
    }

    /// How many golden cases each mapping has.
    pub fn case_counts(&self) -> Vec<(MappingId, usize)> {
        self.versions.values().flat_map(|v| v.values().map(|(m, cases)| (m.id.clone(), cases.len()))).collect()
    }

    /// Runs every golden case.
    pub fn test(&self) -> Vec<CaseResult> {
        let mut results = Vec::new();
        for (mapping, cases) in self.versions.values().flat_map(|v| v.values()) {
            for case in cases {
                let outcome = mapping.apply(&case.command, &case.settings).map_err(|e| e.to_string()).and_then(|out| {
                    let got: Value = serde_json::from_str(&out).map_err(|e| format!("output is not JSON: {e}"))?;
                    if got == case.expected { Ok(()) } else { Err(difference(&case.expected, &got, "")) }
                });
                results.push(CaseResult { mapping: mapping.id.clone(), case: case.name.clone(), outcome });
            }
        }
        results
    }
}

/// Every place two JSON values differ (at most `limit`), as `path: was -> now` lines.
pub fn differences(before: &Value, after: &Value, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    walk_differences(before, after, String::new(), limit, &mut out);
    out
}

fn walk_differences(before: &Value, after: &Value, path: String, limit: usize, out: &mut Vec<String>) {
    if out.len() >= limit || before == after {
        return;
    }
    let child = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let (bv, av) = (b.get(k).unwrap_or(&Value::Null), a.get(k).unwrap_or(&Value::Null));
                walk_differences(bv, av, child(k), limit, out);
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                walk_differences(bv, av, format!("{path}[{i}]"), limit, out);
            }
        }
        _ => out.push(format!("{path}: {before} -> {after}")),
    }
}

/// The first place two JSON values differ, as a field path.
pub fn difference(expected: &Value, got: &Value, path: &str) -> String {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match g.get(k) {
                    None => return format!("{p}: expected {ev}, missing"),
                    Some(gv) if gv != ev => return difference(ev, gv, &p),
                    Some(_) => {}
                }
            }
            let extra = g.keys().find(|k| !e.contains_key(*k)).map(String::as_str).unwrap_or("?");
            format!("{path}{}{extra}: not expected", if path.is_empty() { "" } else { "." })
        }
        (Value::Array(e), Value::Array(g)) if e.len() == g.len() => {
            let i = e.iter().zip(g).position(|(a, b)| a != b).unwrap_or(0);
            difference(&e[i], &g[i], &format!("{path}[{i}]"))
        }
        _ => format!("{path}: expected {expected}, got {got}"),
    }
}

fn name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned()
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, MappingError> {
    let err = |e: std::io::Error| MappingError::File { path: dir.display().to_string(), reason: e.to_string() };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(err)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>().map_err(err)?;
    entries.sort();
    Ok(entries)
}

fn read(path: &Path) -> Result<String, MappingError> {
    let err = |reason: String| MappingError::File { path: path.display().to_string(), reason };
    let size = std::fs::metadata(path).map_err(|e| err(e.to_string()))?.len();
    if size > MAX_FILE_BYTES {
        return Err(err(format!("{size} bytes; at most {MAX_FILE_BYTES}")));
    }
    std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

fn load_schema(path: &Path) -> Result<Option<TargetSchema>, MappingError> {
    if !path.is_file() {
        return Ok(None);
    }
    let schema = serde_json::from_str(&read(path)?)
        .map_err(|e| MappingError::File { path: path.display().to_string(), reason: e.to_string() })?;
    Ok(Some(schema))
}

fn load_cases(dir: &Path) -> Result<Vec<Case>, MappingError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut cases = Vec::new();
    for file in read_dir(dir)?.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        let mut case: Case = serde_json::from_str(&read(&file)?)
            .map_err(|e| MappingError::File { path: file.display().to_string(), reason: e.to_string() })?;
        case.name = file.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        cases.push(case);
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_mappings() -> Mappings {
        Mappings::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mappings")).unwrap()
    }

    #[test]
    fn a_payload_the_target_would_refuse_is_held_with_its_field() {
        let m = Mappings::shipped().unwrap();
        let command = json!({"external_ref": "1", "order": {
            "order_ref": "1", "customer": {}, "currency": "EUR", "placed_at": "2026-11-26T10:00:00Z",
            "totals": {"total": "1.00"}, "lines": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}]}});
        let held = m.transform("netsuite", "sales_order", &command, &json!({})).unwrap_err();
        assert_eq!((held.mapping.as_str(), held.field.as_str()), ("netsuite/sales_order@2", "entity"));
        let (id, _) = m.transform("netsuite", "sales_order", &command, &json!({"customer_id": "42"})).unwrap();
        assert_eq!(id.to_string(), "netsuite/sales_order@2");
        assert_eq!(m.transform("shopify", "fulfillment", &command, &json!({})).unwrap_err().field, "mapping");
    }

    /// The invariant of the write path: a payload that does not add up to the order, by as
    /// little as a cent, is held naming `totals`, whichever mapping made it.
    #[test]
    fn a_payload_a_cent_off_the_order_is_held_naming_totals() {
        let mut m = Mappings::shipped().unwrap();
        let order = json!({"order_ref": "1", "customer": {"email": "a@b.c"}, "currency": "USD",
            "placed_at": "2026-11-26T10:00:00Z",
            "totals": {"subtotal": "19.99", "tax": "1.60", "shipping": "5.00", "total": "26.59"},
            "lines": [{"sku": "A", "quantity": 1, "unit_price": "19.99"}]});
        let command = json!({"external_ref": "1", "order": order});
        let settings = json!({"customer_id": "42"});
        for target in [("netsuite", "sales_order"), ("odoo", "sale_order")] {
            let (_, payload) = m.transform(target.0, target.1, &command, &settings).unwrap();
            assert!(!payload.is_empty());
        }
        // The tax as a line of its own: the payload then carries the whole 26.59.
        let (_, payload) = m.transform("odoo", "sale_order", &command, &json!({"tax": "line"})).unwrap();
        assert!(payload.contains(r#""default_code":"HANDOFF-TAX""#), "{payload}");
        // A mapping that loses a cent of shipping.
        let lossy = m.latest("netsuite", "sales_order").unwrap().source.replace(
            "shippingCost: ($erp.shipping | tonumber)",
            r#"shippingCost: (if $erp.shipping == "5.00" then 4.99 else ($erp.shipping | tonumber) end)"#,
        );
        m.insert(Mapping::compile("netsuite/sales_order@3".parse().unwrap(), &lossy).unwrap(), Vec::new());
        let held = m.transform("netsuite", "sales_order", &command, &settings).unwrap_err();
        assert_eq!((held.mapping.as_str(), held.field.as_str()), ("netsuite/sales_order@3", "totals"));
        assert!(held.reason.contains("24.98") && held.reason.contains("24.99"), "{}", held.reason);
    }

    #[test]
    fn ids_parse_and_print() {
        let id: MappingId = "netsuite/sales_order@v2".parse().unwrap();
        assert_eq!(id.to_string(), "netsuite/sales_order@2");
        assert!("netsuite@1".parse::<MappingId>().is_err());
        assert!("a/b@x".parse::<MappingId>().is_err());
    }

    #[test]
    fn the_shipped_mappings_are_the_repository_s_and_pass_their_golden_cases() {
        let shipped = Mappings::shipped().unwrap();
        let repo = repo_mappings();
        for id in shipped.ids() {
            assert_eq!(shipped.get(id).unwrap().source, repo.get(id).unwrap().source, "{id}");
        }
        assert_eq!(shipped.case_counts(), repo.case_counts(), "every case in the repository is shipped");
        let results = repo.test();
        assert!(!results.is_empty());
        for r in &results {
            assert_eq!(r.outcome, Ok(()), "{} {}", r.mapping, r.case);
        }
    }

    #[test]
    fn money_keeps_its_digits_and_differences_name_the_field() {
        let m = Mappings::shipped().unwrap();
        let ns = m.latest("netsuite", "sales_order").unwrap();
        let command = json!({"external_ref": "1", "version": 3, "order": {
            "order_ref": "1", "customer": {"email": "a@b.c"}, "currency": "EUR",
            "placed_at": "2026-11-26T10:00:00Z", "totals": {"shipping": "4.90", "total": "0.30"},
            "lines": [{"sku": "A", "quantity": 3, "unit_price": "0.10"}]}});
        let out = ns.apply(&command, &json!({"version_field": "custbody_v"})).unwrap();
        assert!(out.contains(r#""rate":0.10,"amount":0.30"#), "{out}");
        assert!(out.contains(r#""shippingCost":4.90"#), "{out}");
        let got: Value = serde_json::from_str(&out).unwrap();
        let mut expected = got.clone();
        expected["item"]["items"][0]["item"]["externalId"] = json!("B");
        assert_eq!(difference(&expected, &got, ""), r#"item.items[0].item.externalId: expected "B", got "A""#);
    }
}
