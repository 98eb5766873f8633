//! Reading a vendor's JSON fields: what every mapping of a `serde_json::Value` body needs.

use handoff_model::Address;
use jiff::Timestamp;
use serde_json::Value;

use crate::SourceError;
use crate::http_json::invalid;

/// A non-empty string field.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A required RFC 3339 timestamp field, refused with its name.
pub(crate) fn time(v: &Value, key: &'static str) -> Result<Timestamp, SourceError> {
    let s = text(v, key).ok_or_else(|| invalid(key, "is missing"))?;
    s.parse().map_err(|_| invalid(key, format!("{s:?} is not a timestamp")))
}

/// How a vendor names the parts of an address.
pub(crate) struct AddressKeys {
    pub line1: &'static str,
    pub line2: &'static str,
    pub city: &'static str,
    pub region: &'static str,
    pub postal_code: &'static str,
    pub country: &'static str,
}

/// The address in `v` under the vendor's `keys`, or `None` when it has no first line.
pub(crate) fn address(v: &Value, keys: &AddressKeys, name: Option<String>) -> Option<Address> {
    text(v, keys.line1).map(|line1| Address {
        name,
        line1,
        line2: text(v, keys.line2),
        city: text(v, keys.city).unwrap_or_default(),
        region: text(v, keys.region),
        postal_code: text(v, keys.postal_code).unwrap_or_default(),
        country: text(v, keys.country).unwrap_or_default(),
    })
}
