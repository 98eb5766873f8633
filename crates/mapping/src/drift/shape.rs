//! The shape of a payload: which field paths it has and what JSON types sit at them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The JSON type at a path. Integers and decimals are both `number`: vendors move between them
/// freely (`1` vs `1.0`) and that is not drift worth raising.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl JsonType {
    const ALL: [JsonType; 6] =
        [JsonType::Object, JsonType::Array, JsonType::String, JsonType::Number, JsonType::Bool, JsonType::Null];

    pub fn of(value: &Value) -> Self {
        match value {
            Value::Object(_) => JsonType::Object,
            Value::Array(_) => JsonType::Array,
            Value::String(_) => JsonType::String,
            Value::Number(_) => JsonType::Number,
            Value::Bool(_) => JsonType::Bool,
            Value::Null => JsonType::Null,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JsonType::Object => "object",
            JsonType::Array => "array",
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Bool => "bool",
            JsonType::Null => "null",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The types seen at one path. A path may hold several (an optional field is `string|null`, a
/// mixed array collapses its elements' types), so this is a set, stored as a bitmask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "Vec<JsonType>", into = "Vec<JsonType>")]
pub struct TypeSet(u8);

impl TypeSet {
    pub fn single(t: JsonType) -> Self {
        TypeSet(t.bit())
    }

    pub fn insert(&mut self, t: JsonType) {
        self.0 |= t.bit();
    }

    pub fn union(self, other: TypeSet) -> Self {
        TypeSet(self.0 | other.0)
    }

    pub fn contains(self, t: JsonType) -> bool {
        self.0 & t.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set without `null`: null is compatible with every type, so comparisons ignore it.
    pub fn non_null(self) -> Self {
        TypeSet(self.0 & !JsonType::Null.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = JsonType> {
        JsonType::ALL.into_iter().filter(move |t| self.contains(*t))
    }
}

impl From<Vec<JsonType>> for TypeSet {
    fn from(types: Vec<JsonType>) -> Self {
        let mut set = TypeSet::default();
        for t in types {
            set.insert(t);
        }
        set
    }
}

impl From<TypeSet> for Vec<JsonType> {
    fn from(set: TypeSet) -> Self {
        set.iter().collect()
    }
}

impl fmt::Display for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for t in self.iter() {
            if !first {
                f.write_str("|")?;
            }
            f.write_str(t.as_str())?;
            first = false;
        }
        Ok(())
    }
}

/// Bounds on shape extraction, so a hostile or runaway payload costs bounded time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeLimits {
    pub max_depth: usize,
    pub max_paths: usize,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        ShapeLimits { max_depth: 64, max_paths: 10_000 }
    }
}

/// A bound that was hit; the shape is then partial and says so instead of failing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "limit", rename_all = "snake_case")]
pub enum LimitHit {
    /// Nesting deeper than `max` below `path`; the subtree was not walked.
    Depth { path: String, max: usize },
    /// More than `max` distinct paths; walking stopped there.
    Paths { max: usize },
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitHit::Depth { path, max } => write!(f, "nesting deeper than {max} at {path}"),
            LimitHit::Paths { max } => write!(f, "more than {max} distinct field paths"),
        }
    }
}

/// The field paths of one payload with their JSON types. Object keys are joined with `.`,
/// array elements collapse into `[]` (`line_items[].sku`), so the shape does not grow with
/// the number of line items. The root itself is not a path. When a bound is hit, which paths
/// were kept follows walk order. Keys are used as they are: a key
/// that itself contains `.` or `[]` is not escaped (vendor payloads do not use such keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub paths: BTreeMap<String, TypeSet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitHit>,
}

impl Shape {
    /// The shape under the default limits (depth 64, 10,000 paths).
    pub fn of(value: &Value) -> Self {
        Self::with_limits(value, ShapeLimits::default())
    }

    pub fn with_limits(value: &Value, limits: ShapeLimits) -> Self {
        let mut walker = Walker { limits, shape: Shape::default(), path: String::new() };
        // The root's own type is not recorded; a non-container root has no paths.
        let _ = walker.children(value, 0);
        walker.shape
    }

    /// The shape straight from payload bytes, without building a `Value` first. Errors only when
    /// the bytes are not JSON (serde_json also refuses nesting beyond 128 levels); bounds are
    /// reported in `limit` as with [`Shape::with_limits`].
    pub fn from_slice(bytes: &[u8], limits: ShapeLimits) -> Result<Self, serde_json::Error> {
        let mut walker = Walker { limits, shape: Shape::default(), path: String::new() };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Streamed { walker: &mut walker, depth: 0 }.deserialize(&mut de)?;
        de.end()?;
        Ok(walker.shape)
    }

    /// The types at `path`, if the payload had it.
    pub fn get(&self, path: &str) -> Option<TypeSet> {
        self.paths.get(path).copied()
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, types) in &self.paths {
            writeln!(f, "{path}: {types}")?;
        }
        if let Some(limit) = &self.limit {
            writeln!(f, "(partial: {limit})")?;
        }
        Ok(())
    }
}

/// Signals that walking must stop (the path limit was hit).
struct Stop;

struct Walker {
    limits: ShapeLimits,
    shape: Shape,
    /// The current path, grown and truncated in place to avoid an allocation per node.
    path: String,
}

impl Walker {
    fn stopped(&self) -> bool {
        matches!(self.shape.limit, Some(LimitHit::Paths { .. }))
    }

    fn record(&mut self, t: JsonType) -> Result<(), Stop> {
        if let Some(types) = self.shape.paths.get_mut(self.path.as_str()) {
            types.insert(t);
            return Ok(());
        }
        if self.shape.paths.len() >= self.limits.max_paths {
            self.hit(LimitHit::Paths { max: self.limits.max_paths });
            return Err(Stop);
        }
        self.shape.paths.insert(self.path.clone(), TypeSet::single(t));
        Ok(())
    }

    fn hit(&mut self, limit: LimitHit) {
        if self.shape.limit.is_none() {
            self.shape.limit = Some(limit);
        }
    }

    /// Records `value` at the current path, then walks into it; `depth` is the path's depth.
    fn node(&mut self, value: &Value, depth: usize) -> Result<(), Stop> {
        self.record(JsonType::of(value))?;
        self.children(value, depth)
    }

    fn children(&mut self, value: &Value, depth: usize) -> Result<(), Stop> {
        let is_container = matches!(value, Value::Object(map) if !map.is_empty())
            || matches!(value, Value::Array(items) if !items.is_empty());
        if is_container && depth >= self.limits.max_depth {
            let path = self.path.clone();
            self.hit(LimitHit::Depth { path, max: self.limits.max_depth });
            return Ok(());
        }
        let base = self.path.len();
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if base > 0 {
                        self.path.push('.');
                    }
                    self.path.push_str(key);
                    let walked = self.node(child, depth + 1);
                    self.path.truncate(base);
                    walked?;
                }
            }
            Value::Array(items) => {
                self.path.push_str("[]");
                for item in items {
                    let walked = self.node(item, depth + 1);
                    if walked.is_err() {
                        self.path.truncate(base);
                        return walked;
                    }
                }
                self.path.truncate(base);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Streaming counterpart of [`Walker::node`]: records each value as serde_json reads it.
struct Streamed<'w> {
    walker: &'w mut Walker,
    depth: usize,
}

impl Streamed<'_> {
    /// Records `t` at the current path, unless this is the root or walking has stopped.
    fn record(&mut self, t: JsonType) -> bool {
        if self.walker.stopped() {
            return false;
        }
        self.depth == 0 || self.walker.record(t).is_ok()
    }

    fn child(&mut self) -> Streamed<'_> {
        Streamed { walker: &mut *self.walker, depth: self.depth + 1 }
    }
}

impl<'de> DeserializeSeed<'de> for Streamed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Streamed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, _: bool) -> Result<(), E> {
        self.record(JsonType::Bool);
        Ok(())
    }

    fn visit_i64<E>(mut self, _: i64) -> Result<(), E> {
        self.record(JsonType::Number);
        Ok(())
    }

    fn visit_u64<E>(mut self, _: u64) -> Result<(), E> {
        self.record(JsonType::Number);
        Ok(())
    }

    fn visit_f64<E>(mut self, _: f64) -> Result<(), E> {
        self.record(JsonType::Number);
        Ok(())
    }

    fn visit_str<E>(mut self, _: &str) -> Result<(), E> {
        self.record(JsonType::String);
        Ok(())
    }

    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.record(JsonType::Null);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        if !self.record(JsonType::Array) {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let base = self.walker.path.len();
        let mut first = true;
        loop {
            if first && self.depth >= self.walker.limits.max_depth {
                let more = seq.next_element::<IgnoredAny>()?.is_some();
                if more {
                    let path = self.walker.path.clone();
                    self.walker.hit(LimitHit::Depth { path, max: self.walker.limits.max_depth });
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                }
                return Ok(());
            }
            first = false;
            self.walker.path.push_str("[]");
            let item = seq.next_element_seed(self.child());
            self.walker.path.truncate(base);
            if item?.is_none() {
                return Ok(());
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        if !self.record(JsonType::Object) {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        let base = self.walker.path.len();
        let mut first = true;
        loop {
            if base > 0 {
                self.walker.path.push('.');
            }
            let key = map.next_key_seed(KeyInto(&mut self.walker.path));
            let Some(()) = key? else {
                self.walker.path.truncate(base);
                return Ok(());
            };
            if first && self.depth >= self.walker.limits.max_depth {
                self.walker.path.truncate(base);
                let path = self.walker.path.clone();
                self.walker.hit(LimitHit::Depth { path, max: self.walker.limits.max_depth });
                map.next_value::<IgnoredAny>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(());
            }
            first = false;
            let value = map.next_value_seed(self.child());
            self.walker.path.truncate(base);
            value?;
        }
    }
}

/// Appends an object key to the current path without allocating it separately.
struct KeyInto<'p>(&'p mut String);

impl<'de> DeserializeSeed<'de> for KeyInto<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        self.0.push_str(key);
        Ok(())
    }
}

/// The parent of a path: `a.b` → `a`, `a[]` → `a`, `a[].b` → `a[]`, `a` → `` (the root).
pub(crate) fn parent(path: &str) -> &str {
    if let Some(stripped) = path.strip_suffix("[]") {
        return stripped;
    }
    match path.rfind('.') {
        Some(i) => &path[..i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_collapse_arrays_and_record_types() {
        let shape = Shape::of(&json!({
            "id": 1,
            "email": null,
            "tags": ["a", "b"],
            "line_items": [{"sku": "A-1", "qty": 2}, {"sku": null, "qty": 1.5}],
            "customer": {"id": 7, "default_address": {"zip": "10001"}},
        }));
        let text = shape.to_string();
        assert_eq!(
            text,
            "customer: object\ncustomer.default_address: object\ncustomer.default_address.zip: string\n\
             customer.id: number\nemail: null\nid: number\nline_items: array\nline_items[]: object\n\
             line_items[].qty: number\nline_items[].sku: string|null\ntags: array\ntags[]: string\n"
        );
        assert!(shape.limit.is_none());
    }

    #[test]
    fn depth_limit_is_reported_not_a_panic() {
        let mut deep = json!("leaf");
        for _ in 0..200 {
            deep = json!({ "n": deep });
        }
        let shape = Shape::of(&deep);
        assert_eq!(shape.len(), 64);
        match &shape.limit {
            Some(LimitHit::Depth { path, max: 64 }) => assert_eq!(path.matches('n').count(), 64),
            other => panic!("expected a depth limit, got {other:?}"),
        }
    }

    #[test]
    fn path_limit_is_reported_and_walking_stops() {
        let wide: serde_json::Map<String, Value> = (0..50).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let shape = Shape::with_limits(&Value::Object(wide), ShapeLimits { max_depth: 8, max_paths: 10 });
        assert_eq!(shape.len(), 10);
        assert_eq!(shape.limit, Some(LimitHit::Paths { max: 10 }));
    }

    #[test]
    fn type_set_serialises_as_a_list_of_names() {
        let mut set = TypeSet::single(JsonType::String);
        set.insert(JsonType::Null);
        let text = serde_json::to_string(&set).unwrap_or_default();
        assert_eq!(text, r#"["string","null"]"#);
        let back: TypeSet = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, set);
        assert_eq!(set.non_null(), TypeSet::single(JsonType::String));
    }

    #[test]
    fn streaming_from_bytes_gives_the_same_shape() {
        let samples = [
            r#"{"id":1,"email":null,"tags":["a",2],"line_items":[{"sku":"A","p":{"x":[[1],[]]}},{"sku":null}],"e":{},"f":[]}"#,
            r#"[{"a":1},{"b":"x"}]"#,
            r#""scalar root""#,
            r#"{"k\"ey":{"n\u00e9":true}}"#,
        ];
        for text in samples {
            let value: Value = serde_json::from_str(text).unwrap_or_default();
            let streamed = Shape::from_slice(text.as_bytes(), ShapeLimits::default()).ok();
            assert_eq!(streamed.as_ref(), Some(&Shape::of(&value)), "{text}");
        }
        let text = samples[0];
        let value: Value = serde_json::from_str(text).unwrap_or_default();
        let shallow = ShapeLimits { max_depth: 2, max_paths: 100 };
        let streamed = Shape::from_slice(text.as_bytes(), shallow).ok();
        assert_eq!(streamed.as_ref(), Some(&Shape::with_limits(&value, shallow)));
        // Which paths make it under a path limit follows walk order (document order when
        // streaming, sorted keys for a `Value`); the count and the report agree.
        let narrow = ShapeLimits { max_depth: 64, max_paths: 4 };
        let streamed = Shape::from_slice(text.as_bytes(), narrow).unwrap_or_default();
        let walked = Shape::with_limits(&value, narrow);
        assert_eq!((streamed.len(), &streamed.limit), (walked.len(), &walked.limit));
        assert!(Shape::from_slice(b"{\"a\":", ShapeLimits::default()).is_err());
        assert!(Shape::from_slice(b"{} {}", ShapeLimits::default()).is_err());
    }

    #[test]
    fn parents() {
        assert_eq!(parent("a"), "");
        assert_eq!(parent("a.b"), "a");
        assert_eq!(parent("a[]"), "a");
        assert_eq!(parent("a[].b"), "a[]");
        assert_eq!(parent("a[][]"), "a[]");
    }
}
