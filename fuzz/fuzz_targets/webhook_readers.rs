//! Every reader of a vendor body, on arbitrary bytes: the webhook path of `inbound` for each
//! connector that takes webhooks (signed validly over the fuzzed body, so the readers past the
//! signature are reached), eBay notifications (signed with a P-256 key), Amazon's and eBay's
//! order readers and Amazon's ORDER_CHANGE notification, and `reread` of a held webhook and a
//! held polled record for every connector; the one-pass read of a body held to the JSON limits
//! (`json_limits::parse`). A body that verified is never refused, and the one pass says what the
//! limits' check and then the plain parse say.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use handoff_connectors::signature::{sign_base64, sign_timestamped};
use handoff_connectors::{HANDOFF_SIGNATURE, Inbound, SourceError, amazon, ebay, inbound, json_limits, reread};
use handoff_contract::{ConnectorKind, JsonLimits, System};
use handoff_fuzz::{Request, SECRET, now, system};
use handoff_model::InboundEvent;
use handoff_store::{QuarantineSource, QuarantineState, Quarantined};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use sha1::Digest as _;

struct Systems {
    shopify: System,
    woocommerce: System,
    stripe: System,
    http_json: System,
    polled: Vec<System>,
}

static SYSTEMS: LazyLock<Systems> = LazyLock::new(|| Systems {
    shopify: system(ConnectorKind::Shopify),
    woocommerce: system(ConnectorKind::Woocommerce),
    stripe: system(ConnectorKind::Stripe),
    http_json: system(ConnectorKind::HttpJson),
    polled: [
        ConnectorKind::Shopify,
        ConnectorKind::Woocommerce,
        ConnectorKind::Amazon,
        ConnectorKind::Ebay,
        ConnectorKind::Netsuite,
        ConnectorKind::Odoo,
        ConnectorKind::Stripe,
    ]
    .into_iter()
    .map(system)
    .collect(),
});

/// eBay's signing key for the run, and its public half as eBay publishes it (PEM).
static EBAY_KEY: LazyLock<(SigningKey, String)> = LazyLock::new(|| {
    let key = SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar");
    let der = key.verifying_key().to_public_key_der().expect("encodable");
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der.as_bytes()));
    (key, pem)
});

const SHOPIFY_TOPICS: [&str; 6] =
    ["orders/create", "orders/updated", "orders/cancelled", "orders/paid", "fulfillments/create", "refunds/create"];
const WOO_TOPICS: [&str; 4] = ["order.created", "order.updated", "order.deleted", "coupon.created"];

fn deliver(system: &System, headers: &BTreeMap<String, String>, body: &[u8]) -> Result<Inbound, SourceError> {
    let header = |name: &str| headers.get(name).map(String::as_str);
    inbound("fuzz", system, header, body, now(), &JsonLimits::default())
}

/// A vendor body whose signature verified is held, not refused.
fn verified(connector: &str, outcome: Result<Inbound, SourceError>) {
    if let Err(e) = outcome {
        panic!("{connector}: a verified delivery was refused: {e}");
    }
}

fn with(mut headers: BTreeMap<String, String>, pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    for (name, value) in pairs {
        headers.entry((*name).to_owned()).or_insert_with(|| (*value).to_owned());
    }
    headers
}

fn webhooks(request: &Request) {
    let body = request.body;
    let hmac_base64 = sign_base64(SECRET, body);
    let stamped = sign_timestamped(SECRET, now().as_second(), body);
    let systems = &*SYSTEMS;
    if request.own_headers {
        // The input's own headers, signature included if it names one.
        let _ = deliver(&systems.shopify, &request.headers, body);
        let _ = deliver(&systems.woocommerce, &request.headers, body);
        let _ = deliver(&systems.stripe, &request.headers, body);
        let _ = deliver(&systems.http_json, &request.headers, body);
        // The same headers with a valid signature added where none was given.
        let shopify = with(request.headers.clone(), &[("x-shopify-hmac-sha256", hmac_base64.as_str())]);
        let woo = with(request.headers.clone(), &[("x-wc-webhook-signature", hmac_base64.as_str())]);
        let stripe = with(request.headers.clone(), &[("stripe-signature", stamped.as_str())]);
        let _ = deliver(&systems.shopify, &shopify, body);
        let _ = deliver(&systems.woocommerce, &woo, body);
        let _ = deliver(&systems.stripe, &stripe, body);
        let http = with(request.headers.clone(), &[(HANDOFF_SIGNATURE, stamped.as_str())]);
        let _ = deliver(&systems.http_json, &http, body);
        return;
    }
    for topic in SHOPIFY_TOPICS {
        let headers = with(
            BTreeMap::new(),
            &[
                ("x-shopify-topic", topic),
                ("x-shopify-event-id", "evt-1"),
                ("x-shopify-api-version", "2026-07"),
                ("x-shopify-triggered-at", "2026-01-01T00:00:00Z"),
                ("x-shopify-hmac-sha256", hmac_base64.as_str()),
            ],
        );
        verified("shopify", deliver(&systems.shopify, &headers, body));
    }
    for topic in WOO_TOPICS {
        let headers = with(
            BTreeMap::new(),
            &[
                ("x-wc-webhook-topic", topic),
                ("x-wc-webhook-delivery-id", "77"),
                ("x-wc-webhook-resource", "order"),
                ("x-wc-webhook-signature", hmac_base64.as_str()),
            ],
        );
        verified("woocommerce", deliver(&systems.woocommerce, &headers, body));
    }
    let stripe = with(BTreeMap::new(), &[("stripe-signature", stamped.as_str())]);
    verified("stripe", deliver(&systems.stripe, &stripe, body));
    let http = with(BTreeMap::new(), &[(HANDOFF_SIGNATURE, stamped.as_str())]);
    if let Err(SourceError::Unauthenticated(e)) = deliver(&systems.http_json, &http, body) {
        panic!("http-json: a valid signature was refused: {e}");
    }
}

/// The one pass over a body held to the JSON limits says what `check` then the plain parse say,
/// for a reader of any JSON and for the canonical event, at limits small enough to be reached.
fn limits(body: &[u8]) {
    let Ok(text) = std::str::from_utf8(body) else { return };
    let small = JsonLimits { max_depth: 3, max_string_bytes: 8, max_array_items: 3, max_object_keys: 3 };
    for limits in [JsonLimits::default(), small] {
        one_pass_as_two::<serde_json::Value>(text, &limits);
        one_pass_as_two::<InboundEvent>(text, &limits);
    }
}

fn one_pass_as_two<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str, limits: &JsonLimits) {
    let one = json_limits::parse::<T>(text, limits);
    let two = json_limits::check(text, limits).and_then(|()| Ok(serde_json::from_str::<T>(text)?));
    assert_eq!(format!("{one:?}"), format!("{two:?}"), "{}", std::any::type_name::<T>());
}

fn ebay_notification(request: &Request) {
    let (key, pem) = &*EBAY_KEY;
    let body = request.body;
    if let Some(header) = request.headers.get("x-ebay-signature") {
        let _ = ebay::key_id(header);
        let _ = ebay::inbound(Some(header), body, pem);
    }
    for (digest, prehash) in
        [("SHA1", sha1::Sha1::digest(body).to_vec()), ("SHA256", sha2::Sha256::digest(body).to_vec())]
    {
        let signature: Signature = key.sign_prehash(&prehash).expect("signs any digest");
        let header = STANDARD.encode(
            serde_json::json!({"alg": "ecdsa", "kid": "fuzz", "signature": STANDARD.encode(signature.to_der().as_bytes()), "digest": digest})
                .to_string(),
        );
        if let Err(SourceError::Unauthenticated(e)) = ebay::inbound(Some(&header), body, pem) {
            panic!("ebay: a valid {digest} signature was refused: {e}");
        }
    }
}

fn orders(body: &[u8]) {
    let _ = amazon::order_change(body);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let _ = amazon::order_2026(&v);
    let _ = amazon::order_v0(&v, &v);
    let _ = amazon::order_v0(&v["order"], &v["items"]);
    if let Ok(order) = ebay::order(&v) {
        let modified = v["lastModifiedDate"].as_str().unwrap_or("2026-01-01T00:00:00.000Z");
        let _ = order.event(modified);
    }
}

fn held(request: &Request) {
    for system in &SYSTEMS.polled {
        for (source, version) in [
            (QuarantineSource::Webhook, None),
            (QuarantineSource::Poll, None),
            (QuarantineSource::Poll, Some("2026-01-01")),
        ] {
            let held = Quarantined {
                id: 1,
                system: "fuzz".into(),
                source,
                order_ref: None,
                headers: request.headers.clone(),
                body: request.body.to_vec(),
                field: String::new(),
                reason: String::new(),
                source_version: version.map(str::to_owned),
                flow: None,
                received_at: now(),
                state: QuarantineState::Held,
                exception_id: None,
                event_row: None,
                replayed_at: None,
            };
            let _ = reread("fuzz", system, &held);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let request = Request::split(data);
    webhooks(&request);
    ebay_notification(&request);
    orders(request.body);
    held(&request);
    limits(request.body);
});
