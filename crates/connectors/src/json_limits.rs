//! A webhook's JSON held to the hub's limits (`[hub.json]`) before any reader parses it: depth,
//! string, array and object sizes, and no key twice in one object (readers would silently keep
//! the last one, and a signed body could then mean two things). One pass through serde_json's
//! own parser that keeps nothing but the keys of the open objects, so a hostile body costs at
//! most its own size.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use handoff_contract::JsonLimits;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::SourceError;

mod within;

/// `body` held to `limits` and parsed as a `T`: what [`check`] then `serde_json::from_str` do,
/// in one pass for a body that holds to the limits and parses (see `within`); a refusal of
/// either kind as they give it.
pub fn parse<'de, T: serde::Deserialize<'de>>(body: &'de str, limits: &JsonLimits) -> Result<T, SourceError> {
    if let Some(parsed) = within::parse(body, limits) {
        return Ok(parsed);
    }
    check(body, limits)?;
    Ok(serde_json::from_str(body)?)
}

/// Checks `body` against `limits`; the refusal names the limit crossed (400, nothing stored).
/// The body is text already (checked once by the caller, which reads it as text after: a parse
/// of bytes checks every string's UTF-8 again, a tenth of this check's time).
pub fn check(body: &str, limits: &JsonLimits) -> Result<(), SourceError> {
    let mut de = serde_json::Deserializer::from_str(body);
    Value { limits, depth: 0 }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| crate::http_json::invalid("body", e.to_string()))
}

/// One JSON value at `depth`.
#[derive(Clone, Copy)]
struct Value<'l> {
    limits: &'l JsonLimits,
    depth: usize,
}

impl Value<'_> {
    fn nested<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= self.limits.max_depth {
            return Err(E::custom(format_args!("nested deeper than {}", self.limits.max_depth)));
        }
        Ok(Value { limits: self.limits, depth: self.depth + 1 })
    }

    fn string<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.bytes(s.len())
    }

    fn bytes<E: de::Error>(self, len: usize) -> Result<(), E> {
        if len > self.limits.max_string_bytes {
            let max = self.limits.max_string_bytes;
            return Err(E::custom(format_args!("a string of {len} bytes; at most {max} are accepted")));
        }
        Ok(())
    }

    /// An array of this place has `items` items so far.
    fn items<E: de::Error>(self, items: usize) -> Result<(), E> {
        let max = self.limits.max_array_items;
        if items > max {
            return Err(E::custom(format_args!("an array of more than {max} items")));
        }
        Ok(())
    }

    /// `key` joins `keys`, the keys so far of an object of this place.
    fn key<'de, E: de::Error>(self, keys: &mut Keys<'de>, key: Cow<'de, str>) -> Result<(), E> {
        self.string(&key)?;
        let max = self.limits.max_object_keys;
        if keys.len() == max {
            return Err(E::custom(format_args!("an object of more than {max} keys")));
        }
        if !keys.insert(key) {
            return Err(E::custom("a key appears twice in one object"));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Value<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Value<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    // serde_json reads a number too long for an integer as a float, and refuses one beyond
    // the float's range ("number out of range"): a 10,000-digit integer never gets here.
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.string(s)
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let item = self.nested()?;
        let mut items = 0usize;
        while seq.next_element_seed(item)?.is_some() {
            items += 1;
            self.items(items)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let value = self.nested()?;
        let mut keys = Keys::default();
        while let Some(key) = map.next_key_seed(Key)? {
            self.key(&mut keys, key)?;
            map.next_value_seed(value)?;
        }
        Ok(())
    }
}

/// Objects of at most this many keys are checked for a repeated key by comparing each new key
/// with the ones before: cheaper than hashing for the few keys most objects have (hashing every
/// key was half of this check's time, and the check a tenth of a webhook's).
const FEW_KEYS: usize = 32;

/// The keys of one object so far: a list while they are few, a set past that, so a hostile
/// object of many keys still costs time in proportion to its size.
enum Keys<'de> {
    Few(Vec<Cow<'de, str>>),
    Many(HashSet<Cow<'de, str>>),
}

impl Default for Keys<'_> {
    fn default() -> Self {
        Keys::Few(Vec::new())
    }
}

impl<'de> Keys<'de> {
    fn len(&self) -> usize {
        match self {
            Keys::Few(keys) => keys.len(),
            Keys::Many(keys) => keys.len(),
        }
    }

    /// Adds `key`; `false` when the object had it already.
    fn insert(&mut self, key: Cow<'de, str>) -> bool {
        match self {
            Keys::Few(keys) if keys.contains(&key) => false,
            Keys::Few(keys) if keys.len() < FEW_KEYS => {
                keys.push(key);
                true
            }
            Keys::Few(keys) => {
                let mut set: HashSet<_> = keys.drain(..).collect();
                set.insert(key);
                *self = Keys::Many(set);
                true
            }
            Keys::Many(keys) => keys.insert(key),
        }
    }
}

/// An object's key, borrowed from the body unless it has escapes to undo (most keys have none:
/// no allocation per key).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object's key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str, limits: &JsonLimits) -> String {
        check(body, limits).unwrap_err().to_string()
    }

    #[test]
    fn each_limit_names_itself() {
        let small = JsonLimits { max_depth: 3, max_string_bytes: 4, max_array_items: 2, max_object_keys: 2 };
        assert!(check(r#"{"a":[1,{"b":"abcd"}],"c":null}"#, &small).is_ok());
        assert!(refusal("[[[[1]]]]", &small).contains("nested deeper than 3"));
        assert!(refusal(r#"{"a":"abcde"}"#, &small).contains("string of 5 bytes"));
        assert!(refusal(r#"{"abcde":1}"#, &small).contains("string of 5 bytes"), "keys too");
        assert!(refusal("[1,2,3]", &small).contains("more than 2 items"));
        assert!(refusal(r#"{"a":1,"b":2,"c":3}"#, &small).contains("more than 2 keys"));
        assert!(refusal(r#"{"a":1,"a":2}"#, &small).contains("twice"));
        assert!(refusal(r#"{"a":1,"\u0061":2}"#, &small).contains("twice"), "one key, two spellings");
    }

    /// A key repeated is found wherever it falls, among an object's first keys or past them.
    #[test]
    fn a_repeated_key_is_found_in_objects_of_few_keys_and_of_many() {
        let limits = JsonLimits::default();
        let object = |keys: &[String]| {
            format!("{{{}}}", keys.iter().map(|k| format!("\"{k}\":1")).collect::<Vec<_>>().join(","))
        };
        for n in [2, FEW_KEYS, FEW_KEYS + 1, 3 * FEW_KEYS] {
            let mut keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            assert!(check(&object(&keys), &limits).is_ok(), "{n} distinct keys");
            for repeated in [0, n / 2, n - 1] {
                keys.push(format!("k{repeated}"));
                assert!(refusal(&object(&keys), &limits).contains("twice"), "k{repeated} again after {n} keys");
                keys.pop();
            }
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        let limits = JsonLimits::default();
        let digits = format!("{{\"n\":{}}}", "9".repeat(10_000));
        assert!(refusal(&digits, &limits).contains("out of range"));
        assert!(check("{} {}", &limits).is_err(), "trailing characters");
        assert!(check("", &limits).is_err());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(refusal(&deep, &limits).contains("nested deeper than 64"));
    }
}
