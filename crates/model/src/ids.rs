//! Vendor ids: strings or 64-bit integers on the wire, always strings here; never floats.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An id assigned by another system. Shopify ids reach 2^53 and beyond, so a float would
/// silently corrupt them: integers are taken exactly, floats are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

/// Longest id accepted from any system; real vendor ids are far shorter.
pub const MAX_ID_LEN: usize = 200;

impl ExternalId {
    pub fn new(id: impl Into<String>) -> Result<Self, String> {
        let id = id.into();
        if id.is_empty() {
            return Err("id is empty".into());
        }
        if id.len() > MAX_ID_LEN {
            return Err(format!("id is longer than {MAX_ID_LEN} bytes"));
        }
        if id.chars().any(char::is_control) {
            return Err("id contains control characters".into());
        }
        Ok(ExternalId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExternalId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ExternalId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an id as a string or an integer")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExternalId, E> {
                ExternalId::new(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ExternalId, E> {
                Ok(ExternalId(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ExternalId, E> {
                Ok(ExternalId(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<ExternalId, E> {
                Err(E::custom("an id must not be a floating-point number"))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_integer_ids_stay_exact() {
        let id: ExternalId = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(id.as_str(), "18446744073709551615");
        let id: ExternalId = serde_json::from_str("\"gid://shopify/Order/1\"").unwrap();
        assert_eq!(id.as_str(), "gid://shopify/Order/1");
    }

    #[test]
    fn float_and_empty_ids_are_refused() {
        assert!(serde_json::from_str::<ExternalId>("4.5e15").is_err());
        assert!(serde_json::from_str::<ExternalId>("\"\"").is_err());
    }
}
