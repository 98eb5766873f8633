//! One simulated system that speaks Handoff's generic `http-json` target protocol: records
//! in collections (orders, fulfillments, refunds), idempotency keys (or not), and faults that
//! fire at seeded rates. Transport-free: requests in, replies out. An update or cancel acts on
//! the record its body names (`record_id`), else on the first under its external reference;
//! records may share an external reference (a create retried without idempotency keys).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a misbehaving system does, each at a rate between 0 and 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Apply the write, then drop the response (the lost acknowledgment).
    pub lost_ack: f64,
    /// Drop the request before applying it.
    pub lost_request: f64,
    /// Answer after `slow_ack_ms`, later than a client will wait, and apply the write only then.
    pub slow_ack: f64,
    pub slow_ack_ms: u64,
    /// Apply the write, then answer 503.
    pub error_after_apply: f64,
    /// Answer 429 with `Retry-After: retry_after_s` without applying.
    pub throttle: f64,
    pub retry_after_s: u64,
    /// Answer every request 503 without applying.
    pub outage: bool,
    /// Fields of the order that must be present (dotted paths such as `customer.email`);
    /// an order missing one is refused with 422 naming the field.
    pub required_fields: Vec<String>,
    /// Whether `Idempotency-Key` is honoured; without it a retried create makes a second record.
    pub idempotency_keys: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            lost_ack: 0.0,
            lost_request: 0.0,
            slow_ack: 0.0,
            slow_ack_ms: 10_000,
            error_after_apply: 0.0,
            throttle: 0.0,
            retry_after_s: 1,
            outage: false,
            required_fields: Vec::new(),
            idempotency_keys: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Orders,
    Fulfillments,
    Refunds,
}

impl Collection {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "orders" => Some(Collection::Orders),
            "fulfillments" => Some(Collection::Fulfillments),
            "refunds" => Some(Collection::Refunds),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Create { collection: Collection, idempotency_key: Option<String>, body: Value },
    Update { body: Value },
    Cancel { body: Value },
    Find { collection: Collection, external_ref: String },
}

/// Why a route is not part of the protocol: (HTTP status, message).
pub type RouteError = (u16, String);

impl Request {
    /// The request a route of the `http-json` target protocol stands for; both the loopback
    /// transport and the in-process simulation go through here.
    pub fn route(
        method: &str,
        path: &str,
        external_ref: Option<String>,
        idempotency_key: Option<String>,
        body: Option<Value>,
    ) -> Result<Request, RouteError> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        // Called in one arm at most: the body moves into the request, never copied.
        let body = || body.ok_or((400, "a JSON body is required".to_owned()));
        match (method, segments.as_slice()) {
            ("GET", [collection]) => match (Collection::parse(collection), external_ref) {
                (Some(collection), Some(external_ref)) => Ok(Request::Find { collection, external_ref }),
                _ => Err((400, "GET /{collection}?external_ref=...".into())),
            },
            ("POST", [collection]) if Collection::parse(collection).is_some() => Ok(Request::Create {
                collection: Collection::parse(collection).expect("checked"),
                idempotency_key,
                body: body()?,
            }),
            ("POST", ["orders", "update"]) => Ok(Request::Update { body: body()? }),
            ("POST", ["orders", "cancel"]) => Ok(Request::Cancel { body: body()? }),
            _ => Err((404, format!("no route {method} {path}"))),
        }
    }
}

/// What the transport must do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Answer {
        status: u16,
        body: Value,
        retry_after_s: Option<u64>,
    },
    /// Close the connection without answering.
    Drop,
    /// Wait this many milliseconds, then apply the request ([`MockSystem::apply_late`]) and
    /// answer: a write that lands after the client may have given up.
    Late {
        after_ms: u64,
        request: Box<Request>,
    },
}

/// A record as the system keeps it: enough to answer read-backs and to fulfil it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub collection: Collection,
    pub external_ref: String,
    pub status: String,
    pub version: Option<u64>,
    /// The order's lines as (sku, quantity), for fulfilling it.
    #[serde(default)]
    pub lines: Vec<(String, u64)>,
    /// What the order adds up to in the system's own terms (a decimal), when its dialect sums
    /// it: the money a test compares with what the channel charged.
    #[serde(default)]
    pub amount: Option<String>,
}

/// Whether an ERP line is one of the items that carry an order's charges (shipping, discounts,
/// tips, duties, fees, tax: Handoff's `HANDOFF-*` defaults). A merchant creates them as
/// non-inventory or service items, so a simulated ERP ships none of them, as a real one would not.
pub fn is_charge_item(sku: &str) -> bool {
    handoff_mapping::prepare::DEFAULT_CHARGE_ITEMS.iter().any(|(_, item)| *item == sku)
}

/// What an update writes of an order: its lines (sku, quantity) and its amount.
type Contents = (Vec<(String, u64)>, Option<String>);

/// The lines of an order that a delivery ships: its products, not its charges.
pub fn shippable(lines: &[(String, u64)]) -> Vec<(String, u64)> {
    lines.iter().filter(|(sku, _)| !is_charge_item(sku)).cloned().collect()
}

/// One write the system applied, in the order it applied them: the history the checker reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub seq: u64,
    pub op: String,
    pub collection: Collection,
    pub external_ref: String,
    pub record_id: String,
    pub version: Option<u64>,
    pub idempotency_key: Option<String>,
}

/// The fencing token a write carries (`Handoff-Fencing-Token`), and the command it fences
/// (its idempotency key): the claim that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: String,
    pub token: u64,
}

/// The fault count of writes refused for a stale fencing token (`/_fired`).
pub const STALE_FENCING_TOKEN: &str = "stale_fencing_token";

#[derive(Default)]
struct State {
    records: Vec<Record>,
    by_key: HashMap<String, usize>,
    by_ref: HashMap<(Collection, String), Vec<usize>>,
    applied: Vec<Applied>,
    /// The highest fencing token taken for each command (idempotency key).
    fences: HashMap<String, u64>,
}

pub struct MockSystem {
    name: String,
    faults: Mutex<Faults>,
    /// How often each fault fired.
    fired: Mutex<BTreeMap<&'static str, u64>>,
    rng: Mutex<ChaCha8Rng>,
    state: Mutex<State>,
}

fn error(status: u16, message: &str, field: Option<&str>) -> Reply {
    Reply::Answer { status, body: json!({"error": message, "field": field}), retry_after_s: None }
}

fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |v, key| v.get(key)).filter(|v| !v.is_null())
}

fn amount_of(body: &Value) -> Option<String> {
    body["order"]["amount"].as_str().map(str::to_owned)
}

fn lines_of(body: &Value) -> Vec<(String, u64)> {
    body["order"]["lines"]
        .as_array()
        .map(|ls| ls.iter().filter_map(|l| Some((l["sku"].as_str()?.to_owned(), l["quantity"].as_u64()?))).collect())
        .unwrap_or_default()
}

impl MockSystem {
    pub fn new(name: impl Into<String>, faults: Faults, seed: u64) -> Self {
        MockSystem {
            name: name.into(),
            faults: Mutex::new(faults),
            fired: Mutex::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            state: Mutex::new(State::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn faults(&self) -> Faults {
        self.faults.lock().expect("faults lock").clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().expect("faults lock") = faults;
    }

    pub fn applied(&self) -> Vec<Applied> {
        self.state.lock().expect("state lock").applied.clone()
    }

    pub fn records(&self) -> Vec<Record> {
        self.state.lock().expect("state lock").records.clone()
    }

    /// The records of one collection under one external reference.
    pub fn find(&self, collection: Collection, external_ref: &str) -> Vec<Record> {
        let state = self.state.lock().expect("state lock");
        let rows = state.by_ref.get(&(collection, external_ref.to_owned()));
        rows.map(|rows| rows.iter().map(|&i| state.records[i].clone()).collect()).unwrap_or_default()
    }

    /// How often each fault fired so far.
    pub fn fired(&self) -> BTreeMap<&'static str, u64> {
        self.fired.lock().expect("fired lock").clone()
    }

    /// Rolls the dice for one fault, counting it when it fires.
    fn roll(&self, fault: &'static str, rate: f64) -> bool {
        let fires = rate > 0.0 && self.rng.lock().expect("rng lock").random_bool(rate.min(1.0));
        if fires {
            *self.fired.lock().expect("fired lock").entry(fault).or_default() += 1;
        }
        fires
    }

    pub fn handle(&self, request: Request) -> Reply {
        self.handle_fenced(request, None)
    }

    /// Handles a write that may carry a fencing token: one lower than the highest this system
    /// took for the same command is refused (409) and counted ([`STALE_FENCING_TOKEN`]), so a
    /// hub that was paused past its claim's lease cannot write over the hub that took the
    /// command over. The token is taken as the write reaches the system, before its faults.
    pub fn handle_fenced(&self, request: Request, fence: Option<Fence>) -> Reply {
        let faults = self.faults();
        if faults.outage {
            *self.fired.lock().expect("fired lock").entry("refused_in_outage").or_default() += 1;
            return error(503, "service unavailable", None);
        }
        if let Request::Find { collection, external_ref } = &request {
            let found = self.find(*collection, external_ref);
            return Reply::Answer { status: 200, body: json!({ "records": found }), retry_after_s: None };
        }
        if let Some(fence) = fence
            && let Err(highest) = self.take_fence(fence)
        {
            *self.fired.lock().expect("fired lock").entry(STALE_FENCING_TOKEN).or_default() += 1;
            return error(409, &format!("stale fencing token: a write with token {highest} was taken"), None);
        }
        if self.roll("throttle", faults.throttle) {
            return Reply::Answer {
                status: 429,
                body: json!({"error": "too many requests"}),
                retry_after_s: Some(faults.retry_after_s),
            };
        }
        if self.roll("lost_request", faults.lost_request) {
            return Reply::Drop;
        }
        if self.roll("slow_ack", faults.slow_ack) {
            return Reply::Late { after_ms: faults.slow_ack_ms, request: Box::new(request) };
        }
        let (status, body) = match self.apply(request, &faults) {
            Ok(ok) => ok,
            Err(refused) => return refused,
        };
        if self.roll("lost_ack", faults.lost_ack) {
            Reply::Drop
        } else if self.roll("error_after_apply", faults.error_after_apply) {
            error(503, "internal error after commit", None)
        } else {
            Reply::Answer { status, body, retry_after_s: None }
        }
    }

    /// Takes a write's token unless a higher one was taken for its command: `Err(highest)`.
    fn take_fence(&self, fence: Fence) -> Result<(), u64> {
        let mut state = self.state.lock().expect("state lock");
        let highest = state.fences.entry(fence.key).or_insert(fence.token);
        if fence.token < *highest {
            return Err(*highest);
        }
        *highest = fence.token;
        Ok(())
    }

    /// Applies a request whose answer was late (see [`Reply::Late`]).
    pub fn apply_late(&self, request: Request) -> Reply {
        match self.apply(request, &self.faults()) {
            Ok((status, body)) => Reply::Answer { status, body, retry_after_s: None },
            Err(refused) => refused,
        }
    }

    fn apply(&self, request: Request, faults: &Faults) -> Result<(u16, Value), Reply> {
        let mut state = self.state.lock().expect("state lock");
        let external_ref = |body: &Value| -> Result<String, Reply> {
            body.get("external_ref")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| error(422, "external_ref is required", Some("external_ref")))
        };
        let version = |body: &Value| body.get("version").and_then(Value::as_u64);
        match request {
            Request::Create { collection, idempotency_key, body } => {
                let external_ref = external_ref(&body)?;
                if collection == Collection::Orders {
                    for field in &faults.required_fields {
                        if lookup(&body["order"], field).is_none() {
                            let path = format!("order.{field}");
                            return Err(error(422, &format!("{path} is required"), Some(&path)));
                        }
                    }
                }
                if faults.idempotency_keys
                    && let Some(key) = &idempotency_key
                    && let Some(&i) = state.by_key.get(key)
                {
                    return Ok((200, json!({"id": state.records[i].id})));
                }
                let i = state.records.len();
                let id = format!("{}-{}", self.name, i + 1);
                let status = if collection == Collection::Orders { "open" } else { "done" };
                state.records.push(Record {
                    id: id.clone(),
                    collection,
                    external_ref: external_ref.clone(),
                    status: status.into(),
                    version: version(&body),
                    lines: lines_of(&body),
                    amount: amount_of(&body),
                });
                state.by_ref.entry((collection, external_ref.clone())).or_default().push(i);
                if let Some(key) = &idempotency_key {
                    state.by_key.insert(key.clone(), i);
                }
                let seq = state.applied.len() as u64;
                state.applied.push(Applied {
                    seq,
                    op: "create".into(),
                    collection,
                    external_ref,
                    record_id: id.clone(),
                    version: version(&body),
                    idempotency_key,
                });
                Ok((201, json!({ "id": id })))
            }
            Request::Update { body } => {
                let lines = (lines_of(&body), amount_of(&body));
                let at = Self::record_of(&state, &body, external_ref)?;
                self.change(&mut state, at, "update", version(&body), Some(lines))
            }
            Request::Cancel { body } => {
                let at = Self::record_of(&state, &body, external_ref)?;
                self.change(&mut state, at, "cancel", version(&body), None)
            }
            Request::Find { .. } => unreachable!("finds are answered before any fault"),
        }
    }

    /// The order an update or cancel acts on: the record its body names (`record_id`), else
    /// the first under its external reference.
    fn record_of(
        state: &State,
        body: &Value,
        external_ref: impl Fn(&Value) -> Result<String, Reply>,
    ) -> Result<usize, Reply> {
        if let Some(id) = body.get("record_id").and_then(Value::as_str) {
            let at = state.records.iter().position(|r| r.collection == Collection::Orders && r.id == id);
            return at.ok_or_else(|| error(404, &format!("no order record {id}"), Some("record_id")));
        }
        let external_ref = external_ref(body)?;
        let first = state.by_ref.get(&(Collection::Orders, external_ref.clone())).and_then(|rows| rows.first());
        first
            .copied()
            .ok_or_else(|| error(404, &format!("no order with external_ref {external_ref}"), Some("external_ref")))
    }

    fn change(
        &self,
        state: &mut State,
        i: usize,
        op: &str,
        version: Option<u64>,
        lines: Option<Contents>,
    ) -> Result<(u16, Value), Reply> {
        let record = &mut state.records[i];
        let external_ref = record.external_ref.clone();
        if op == "cancel" {
            record.status = "cancelled".into();
        } else if let Some((lines, amount)) = lines {
            record.lines = lines;
            record.amount = amount;
            record.version = version;
        }
        let id = record.id.clone();
        let seq = state.applied.len() as u64;
        state.applied.push(Applied {
            seq,
            op: op.into(),
            collection: Collection::Orders,
            external_ref,
            record_id: id.clone(),
            version,
            idempotency_key: None,
        });
        Ok((200, json!({ "id": id })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(key: &str, ext: &str) -> Request {
        Request::Create {
            collection: Collection::Orders,
            idempotency_key: Some(key.into()),
            body: json!({"external_ref": ext, "version": 1, "order": {"customer": {"email": "a@b.c"}}}),
        }
    }

    #[test]
    fn idempotency_key_gives_one_record() {
        let s = MockSystem::new("erp", Faults::default(), 1);
        let a = s.handle(create("k1", "#1"));
        let b = s.handle(create("k1", "#1"));
        assert!(matches!(a, Reply::Answer { status: 201, .. }));
        assert!(matches!(b, Reply::Answer { status: 200, .. }));
        assert_eq!(s.records().len(), 1);
    }

    #[test]
    fn without_key_support_a_retry_duplicates() {
        let s = MockSystem::new("erp", Faults { idempotency_keys: false, ..Faults::default() }, 1);
        s.handle(create("k1", "#1"));
        s.handle(create("k1", "#1"));
        assert_eq!(s.records().len(), 2);
    }

    #[test]
    fn lost_ack_applies_then_drops() {
        let s = MockSystem::new("erp", Faults { lost_ack: 1.0, ..Faults::default() }, 1);
        assert_eq!(s.handle(create("k1", "#1")), Reply::Drop);
        assert_eq!(s.applied().len(), 1);
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let faults = Faults { required_fields: vec!["customer.name".into()], ..Faults::default() };
        let s = MockSystem::new("erp", faults, 1);
        let Reply::Answer { status, body, .. } = s.handle(create("k1", "#1")) else { panic!("answered") };
        assert_eq!(status, 422);
        assert_eq!(body["field"], "order.customer.name");
        assert!(s.applied().is_empty());
    }

    #[test]
    fn a_write_with_a_stale_fencing_token_is_refused_and_counted() {
        let s = MockSystem::new("erp", Faults { idempotency_keys: false, ..Faults::default() }, 1);
        let fence = |token| Some(Fence { key: "k1".into(), token });
        // The hub that took the command over (token 4) writes first; the paused one (3) wakes.
        assert!(matches!(s.handle_fenced(create("k1", "#1"), fence(4)), Reply::Answer { status: 201, .. }));
        let Reply::Answer { status, .. } = s.handle_fenced(create("k1", "#1"), fence(3)) else { panic!("answered") };
        assert_eq!(status, 409);
        assert_eq!(s.applied().len(), 1, "the stale write was applied");
        assert_eq!(s.fired().get(STALE_FENCING_TOKEN), Some(&1));
        // The same token again, a later one, and another command's lower one all pass.
        assert!(matches!(s.handle_fenced(create("k1", "#1"), fence(4)), Reply::Answer { status: 201, .. }));
        assert!(matches!(s.handle_fenced(create("k1", "#1"), fence(5)), Reply::Answer { status: 201, .. }));
        let other = Some(Fence { key: "k2".into(), token: 1 });
        assert!(matches!(s.handle_fenced(create("k2", "#2"), other), Reply::Answer { status: 201, .. }));
        assert_eq!(s.fired().get(STALE_FENCING_TOKEN), Some(&1));
    }

    #[test]
    fn outage_applies_nothing() {
        let s = MockSystem::new("erp", Faults { outage: true, ..Faults::default() }, 1);
        assert!(matches!(s.handle(create("k1", "#1")), Reply::Answer { status: 503, .. }));
        assert!(s.applied().is_empty());
    }
}
