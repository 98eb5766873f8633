//! The hub's limits on what the internet may send it (`[hub.limits]` and `[hub.json]`): every
//! resource a client can make the hub spend has a bound, and crossing it has its own answer.

use jiff::SignedDuration;
use serde::Deserialize;

/// Limits of the HTTP face (`[hub.limits]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Connections open at once; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Connections open at once from one client address, so one client cannot take them all.
    pub max_connections_per_source: usize,
    /// Time a client has to send a request's headers (and an idle connection stays open);
    /// past it the connection is closed (slowloris).
    pub header_timeout: SignedDuration,
    /// Time a client has to send a request's body once its headers are in; past it: 408.
    pub body_timeout: SignedDuration,
    /// Time a whole request may take, from its headers to its answer (body, checks and the
    /// durable write); past it: 408, and a webhook not answered is the vendor's to retry.
    pub request_timeout: SignedDuration,
    /// Largest request head (request line and headers); past it: 431.
    pub max_header_bytes: usize,
    /// Most headers in one request; past it: 431.
    pub max_headers: usize,
    /// Webhook bodies held in memory at once, all clients together; past it: 503 with
    /// Retry-After (back-pressure instead of unbounded memory).
    pub max_body_bytes_in_flight: usize,
    /// Webhooks waiting for the store's durable write at once; past it: 503 with Retry-After,
    /// so a store slower than the traffic fills no queue without bound (the store's own write
    /// queue is deeper than this, and is then never what makes a sender wait).
    pub max_recording: usize,
    /// Webhooks per second one client address may send, sustained; past it: 429 with
    /// Retry-After.
    pub rate_per_source: u32,
    /// Webhooks one client address may send in a burst above the sustained rate.
    pub rate_burst: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            max_connections_per_source: 256,
            header_timeout: SignedDuration::from_secs(10),
            body_timeout: SignedDuration::from_secs(30),
            request_timeout: SignedDuration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes_in_flight: 64 << 20,
            max_recording: 4096,
            rate_per_source: 200,
            rate_burst: 400,
        }
    }
}

/// Limits on a webhook's JSON, checked after its signature and before any reader parses it
/// (`[hub.json]`). Each is far above what a vendor sends and far below what hurts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonLimits {
    /// Arrays and objects nested in one another at most.
    pub max_depth: usize,
    /// Bytes of one string (key or value) at most.
    pub max_string_bytes: usize,
    /// Items of one array at most.
    pub max_array_items: usize,
    /// Keys of one object at most.
    pub max_object_keys: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits { max_depth: 64, max_string_bytes: 1 << 20, max_array_items: 10_000, max_object_keys: 10_000 }
    }
}

type Refusal = (String, String);

fn between(key: &str, value: usize, low: usize, high: usize) -> Result<(), Refusal> {
    if (low..=high).contains(&value) {
        Ok(())
    } else {
        Err((key.to_owned(), format!("must be between {low} and {high}, got {value}")))
    }
}

impl HttpLimits {
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        between("hub.limits.max_connections", self.max_connections, 1, 1_000_000)?;
        between("hub.limits.max_connections_per_source", self.max_connections_per_source, 1, self.max_connections)?;
        // hyper reads a request head into a buffer of at least 8 KiB.
        between("hub.limits.max_header_bytes", self.max_header_bytes, 8192, 1 << 20)?;
        between("hub.limits.max_headers", self.max_headers, 8, 1000)?;
        between("hub.limits.max_body_bytes_in_flight", self.max_body_bytes_in_flight, 1, 4 << 30)?;
        between("hub.limits.max_recording", self.max_recording, 1, 1_000_000)?;
        between("hub.limits.rate_per_source", self.rate_per_source as usize, 1, 1_000_000)?;
        between("hub.limits.rate_burst", self.rate_burst as usize, 1, 1_000_000)?;
        for (key, d) in [
            ("hub.limits.header_timeout", self.header_timeout),
            ("hub.limits.body_timeout", self.body_timeout),
            ("hub.limits.request_timeout", self.request_timeout),
        ] {
            if !d.is_positive() {
                return Err((key.to_owned(), format!("must be longer than zero, got {d:#}")));
            }
        }
        Ok(())
    }
}

impl JsonLimits {
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        // serde_json refuses nesting deeper than 128 on its own.
        between("hub.json.max_depth", self.max_depth, 1, 128)?;
        between("hub.json.max_string_bytes", self.max_string_bytes, 1, 16 << 20)?;
        between("hub.json.max_array_items", self.max_array_items, 1, 10_000_000)?;
        between("hub.json.max_object_keys", self.max_object_keys, 1, 10_000_000)
    }
}
