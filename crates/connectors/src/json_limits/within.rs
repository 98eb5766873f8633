//! A body parsed into its reader's type and held to the hub's limits in the same pass: the
//! typed parse is driven through a deserializer that checks what passes through it as
//! [`super::check`] does, and checks what the type ignores with `check`'s own visitor. It only
//! ever vouches for a body: any error, of a limit or of the type, and any key it cannot read
//! as text, gives `None`, and the caller judges the body as before (`check`, then the plain
//! parse). Reading a canonical event twice cost a twentieth of the hub's CPU at its peak.

use std::borrow::Cow;
use std::fmt;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::{Keys, Value};
use handoff_contract::JsonLimits;

/// `body` as a `T`, when it parses so and holds to `limits`; `None` otherwise.
pub(super) fn parse<'de, T: Deserialize<'de>>(body: &'de str, limits: &JsonLimits) -> Option<T> {
    let mut de = serde_json::Deserializer::from_str(body);
    let parsed = T::deserialize(Checked { inner: &mut de, at: Value { limits, depth: 0 }, key: None }).ok()?;
    de.end().ok()?;
    Some(parsed)
}

/// Where an object's key is put as it is read, to be checked once the map has it.
type KeySlot<'s, 'de> = Option<&'s mut Option<Cow<'de, str>>>;

/// A deserializer of one value at `at`; for an object's key, `key` receives its text.
struct Checked<'s, 'l, 'de, D> {
    inner: D,
    at: Value<'l>,
    key: KeySlot<'s, 'de>,
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method($($arg,)* Watch { inner: visitor, at: self.at, key: self.key })
        })*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Checked<'_, '_, 'de, D> {
    type Error = D::Error;

    forward! {
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(), deserialize_i32(),
        deserialize_i64(), deserialize_i128(), deserialize_u8(), deserialize_u16(), deserialize_u32(),
        deserialize_u64(), deserialize_u128(), deserialize_f32(), deserialize_f64(), deserialize_char(),
        deserialize_str(), deserialize_string(), deserialize_bytes(), deserialize_byte_buf(),
        deserialize_option(), deserialize_unit(), deserialize_unit_struct(name: &'static str),
        deserialize_newtype_struct(name: &'static str), deserialize_seq(), deserialize_tuple(len: usize),
        deserialize_tuple_struct(name: &'static str, len: usize), deserialize_map(),
        deserialize_struct(name: &'static str, fields: &'static [&'static str]),
        deserialize_enum(name: &'static str, variants: &'static [&'static str]), deserialize_identifier(),
    }

    /// What the type does not read is still held to the limits, by `check`'s own visitor.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.at.deserialize(self.inner)?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The type's visitor of a value at `at`, with what it is shown checked first.
struct Watch<'s, 'l, 'de, V> {
    inner: V,
    at: Value<'l>,
    key: KeySlot<'s, 'de>,
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        })*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Watch<'_, '_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    pass! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64), visit_i128(i128),
        visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64), visit_u128(u128), visit_f32(f32),
        visit_f64(f64), visit_char(char),
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<V::Value, E> {
        self.at.string(s)?;
        if let Some(slot) = self.key {
            *slot = Some(Cow::Owned(s.to_owned()));
        }
        self.inner.visit_str(s)
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<V::Value, E> {
        self.at.string(s)?;
        if let Some(slot) = self.key {
            *slot = Some(Cow::Borrowed(s));
        }
        self.inner.visit_borrowed_str(s)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<V::Value, E> {
        self.at.string(&s)?;
        if let Some(slot) = self.key {
            *slot = Some(Cow::Owned(s.clone()));
        }
        self.inner.visit_string(s)
    }

    // A JSON string read as bytes is held to the strings' limit.
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<V::Value, E> {
        self.at.bytes(b.len())?;
        self.inner.visit_bytes(b)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, b: &'de [u8]) -> Result<V::Value, E> {
        self.at.bytes(b.len())?;
        self.inner.visit_borrowed_bytes(b)
    }

    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<V::Value, E> {
        self.at.bytes(b.len())?;
        self.inner.visit_byte_buf(b)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Checked { inner: d, at: self.at, key: None })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Checked { inner: d, at: self.at, key: None })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Seq { inner: seq, at: self.at.nested()?, items: 0 })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let at = self.at.nested()?;
        self.inner.visit_map(Map { inner: map, outer: self.at, at, keys: Keys::default() })
    }

    // An enum written as an object nests its value, written as a string it does not: counted
    // as nested either way, stricter than `check` at worst (then the caller judges it).
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(Enum { inner: data, at: self.at.nested()? })
    }
}

/// A value's seed, its deserializer checked at `at`.
struct Seed<'s, 'l, 'de, T> {
    inner: T,
    at: Value<'l>,
    key: KeySlot<'s, 'de>,
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, '_, 'de, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.inner.deserialize(Checked { inner: d, at: self.at, key: self.key })
    }
}

/// An array's items, each at `at`, counted.
struct Seq<'l, A> {
    inner: A,
    at: Value<'l>,
    items: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        let item = self.inner.next_element_seed(Seed { inner: seed, at: self.at, key: None })?;
        if item.is_some() {
            self.items += 1;
            self.at.items(self.items)?;
        }
        Ok(item)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An object's keys, read as text and checked as `check` checks them (at `outer`, the
/// object's own place), and its values at `at`.
struct Map<'l, 'de, A> {
    inner: A,
    outer: Value<'l>,
    at: Value<'l>,
    keys: Keys<'de>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let mut text = None;
        let Some(key) = self.inner.next_key_seed(Seed { inner: seed, at: self.outer, key: Some(&mut text) })? else {
            return Ok(None);
        };
        let Some(text) = text else {
            return Err(de::Error::custom("a key not read as text"));
        };
        self.outer.key(&mut self.keys, text)?;
        Ok(Some(key))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Seed { inner: seed, at: self.at, key: None })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An enum's variant and its value, at `at`.
struct Enum<'l, A> {
    inner: A,
    at: Value<'l>,
}

impl<'l, 'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<'l, A> {
    type Error = A::Error;
    type Variant = Enum<'l, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(Seed { inner: seed, at: self.at, key: None })?;
        Ok((value, Enum { inner: variant, at: self.at }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Enum<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(Seed { inner: seed, at: self.at, key: None })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, Watch { inner: visitor, at: self.at, key: None })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, Watch { inner: visitor, at: self.at, key: None })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use handoff_model::InboundEvent;

    use super::*;
    use crate::json_limits::check;

    /// A reader's type that ignores the fields it does not name.
    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Reader {
        name: Option<String>,
        #[serde(default)]
        lines: Vec<Line>,
        #[serde(default)]
        tags: BTreeMap<String, String>,
        kind: Option<Kind>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Line {
        sku: String,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Order,
        Refund { amount: String },
    }

    const SMALL: JsonLimits = JsonLimits { max_depth: 4, max_string_bytes: 8, max_array_items: 3, max_object_keys: 4 };
    const SHALLOW: JsonLimits = JsonLimits { max_depth: 2, ..SMALL };

    /// Bodies within [`SMALL`], then bodies crossing a limit in a field the type reads, in one it
    /// ignores, in a key, or not parsing as the type.
    const WITHIN: &[&str] = &[
        r#"{"name":"a","lines":[{"sku":"x"},{"sku":"y"}],"tags":{"k":"v"},"kind":"order"}"#,
        r#"{"kind":{"refund":{"amount":"1.50"}},"other":[1,{"a":[true,null]}]}"#,
        r#"{"name":"a\"b","tags":{"\u006b":"v"}}"#,
        "{}",
    ];
    const BEYOND: &[&str] = &[
        r#"{"name":"abcdefghi"}"#,
        r#"{"name":"a","other":"abcdefghi"}"#,
        r#"{"name":"a","abcdefghi":1}"#,
        r#"{"tags":{"abcdefghi":"v"}}"#,
        r#"{"lines":[{"sku":"a"},{"sku":"b"},{"sku":"c"},{"sku":"d"}]}"#,
        r#"{"other":[1,2,3,4]}"#,
        r#"{"other":[[[[1]]]]}"#,
        r#"{"name":"a","b":1,"c":2,"d":3,"e":4}"#,
        r#"{"tags":{"a":"1","b":"2","c":"3","d":"4","e":"5"}}"#,
        r#"{"name":"a","name":"b"}"#,
        r#"{"x":1,"x":2}"#,
        r#"{"x":1,"\u0078":2}"#,
        r#"{"tags":{"k":"v","k":"w"}}"#,
        r#"{"lines":[{"sku":"x","sku":"y"}]}"#,
        r#"{"kind":{"refund":{"amount":"abcdefghi"}}}"#,
        r#"{"name":1}"#,
        r#"{"name":"a"} x"#,
        "",
    ];

    /// What `check` then serde_json say of `body` as a [`Reader`], as text to compare.
    fn apart(body: &str, limits: &JsonLimits) -> String {
        let parsed = check(body, limits).and_then(|()| Ok(serde_json::from_str::<Reader>(body)?));
        format!("{parsed:?}")
    }

    /// The one pass never vouches for a body `check` or the type refuses, wherever the fault
    /// lies, and the refusal is the one given before.
    #[test]
    fn a_body_over_a_limit_or_not_of_the_type_is_never_vouched_for() {
        for limits in [SMALL, SHALLOW] {
            for body in BEYOND.iter().chain(WITHIN) {
                let before = apart(body, &limits);
                if before.starts_with("Err") {
                    assert!(parse::<Reader>(body, &limits).is_none(), "{body} vouched for within {limits:?}");
                }
                let now = format!("{:?}", super::super::parse::<Reader>(body, &limits));
                assert_eq!(now, before, "{body} within {limits:?}");
            }
        }
    }

    /// A body within the limits is read in the one pass, as serde_json reads it.
    #[test]
    fn a_body_within_the_limits_is_read_in_one_pass() {
        for body in WITHIN {
            let read = parse::<Reader>(body, &SMALL).unwrap_or_else(|| panic!("{body} read in one pass"));
            assert_eq!(read, serde_json::from_str::<Reader>(body).unwrap());
        }
        let event = include_str!("../../../../examples/events/order-created.json");
        let read = parse::<InboundEvent>(event, &JsonLimits::default()).expect("the canonical event in one pass");
        assert_eq!(read, serde_json::from_str::<InboundEvent>(event).unwrap());
    }
}
