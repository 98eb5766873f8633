//! A simulated system as an engine `Target`, in process: the same requests the `http-json`
//! connector would send, through the same router as the loopback transport, with the
//! transport's failures (timeouts, dropped connections) turned into the same errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handoff_connectors::http_json::{FoundRecord, applied_record, classify, collection, command_path};
use handoff_engine::{Ack, BoxFuture, DeliveryError, Target};
use handoff_store::Command;
use jiff::SignedDuration;
use serde_json::Value;

use crate::system::{Fence, MockSystem, Reply, Request};

/// Round trip of an answered request on the simulated network.
pub const ANSWER_MS: u64 = 20;

#[derive(Default)]
pub struct Observed {
    /// Writes answered after the client's timeout, to apply later: (delay in ms, request).
    pub late: Vec<(u64, Request)>,
    /// How long the last attempt of each command took, in ms.
    pub latency_ms: HashMap<i64, u64>,
    /// Retry-After of the 429s each command met, in seconds.
    pub throttled: HashMap<i64, u64>,
}

pub struct SimTarget {
    pub system: Arc<MockSystem>,
    timeout_ms: u64,
    idempotency_keys: bool,
    pub observed: Arc<Mutex<Observed>>,
}

impl SimTarget {
    pub fn new(system: Arc<MockSystem>, timeout_ms: u64, idempotency_keys: bool) -> Self {
        SimTarget { system, timeout_ms, idempotency_keys, observed: Arc::default() }
    }

    /// Sends one request and turns the reply into what a client would see.
    fn exchange(&self, command_id: i64, request: Request, fence: Option<Fence>) -> Result<Value, DeliveryError> {
        let (reply, took_ms) = match self.system.handle_fenced(request, fence) {
            Reply::Late { after_ms, request } if after_ms >= self.timeout_ms => {
                self.observed.lock().expect("observed lock").late.push((after_ms, *request));
                (None, self.timeout_ms)
            }
            Reply::Late { after_ms, request } => (Some(self.system.apply_late(*request)), after_ms),
            Reply::Drop => (None, self.timeout_ms),
            answer => (Some(answer), ANSWER_MS),
        };
        let mut observed = self.observed.lock().expect("observed lock");
        let latency = observed.latency_ms.entry(command_id).or_default();
        *latency += took_ms;
        match reply {
            Some(Reply::Answer { status, body, .. }) if (200..300).contains(&status) => Ok(body),
            Some(Reply::Answer { status, body, retry_after_s }) => {
                if let Some(s) = retry_after_s {
                    observed.throttled.insert(command_id, s);
                }
                let status = reqwest::StatusCode::from_u16(status).expect("mock statuses are valid");
                let retry_after = retry_after_s.map(|s| SignedDuration::from_secs(s as i64));
                Err(classify(status, body.to_string().as_bytes(), retry_after))
            }
            _ => Err(DeliveryError::Transient { reason: "timed out".into(), ambiguous: true, retry_after: None }),
        }
    }

    fn send_now(&self, c: &Command) -> Result<Ack, DeliveryError> {
        let body: Value = serde_json::from_str(&c.payload).expect("commands carry JSON");
        let request = Request::route("POST", command_path(c.kind), None, Some(c.idempotency_key.clone()), Some(body))
            .expect("every command has a route");
        let fence = Fence { key: c.idempotency_key.clone(), token: c.fencing_token().into() };
        let body = self.exchange(c.id, request, Some(fence))?;
        match body.get("id").and_then(Value::as_str) {
            Some(id) => Ok(Ack { record_id: id.to_owned() }),
            None => {
                Err(DeliveryError::Transient { reason: "2xx without an id".into(), ambiguous: true, retry_after: None })
            }
        }
    }

    fn read_back_now(&self, c: &Command) -> Result<Option<Ack>, DeliveryError> {
        let request = Request::route("GET", collection(c.kind), Some(c.external_ref.clone()), None, None)
            .expect("every command has a collection");
        let body = self.exchange(c.id, request, None).map_err(|e| match e {
            DeliveryError::Permanent { reason, .. } => {
                DeliveryError::Transient { reason, ambiguous: true, retry_after: None }
            }
            transient => transient,
        })?;
        let records: Vec<FoundRecord> = serde_json::from_value(body["records"].clone()).unwrap_or_default();
        Ok(applied_record(c, records))
    }
}

impl Target for SimTarget {
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Ack, DeliveryError>> {
        Box::pin(std::future::ready(self.send_now(command)))
    }

    fn read_back<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<Option<Ack>, DeliveryError>> {
        Box::pin(std::future::ready(self.read_back_now(command)))
    }

    fn honours_idempotency_keys(&self) -> bool {
        self.idempotency_keys
    }
}
