//! What a webhook must get past before its handler sees it: the rate of its client address
//! (429 with Retry-After), its declared size (413 before any of it is read), room in the memory
//! all bodies in flight may take (503 with Retry-After: back-pressure, not unbounded memory),
//! its body arriving whole in time (408) and within the size limit (413, also for a chunked
//! body of unknown length), and room among the webhooks being written to the store (503 with
//! Retry-After).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use handoff_contract::Hub;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde_json::json;
use tokio::sync::Semaphore;

/// Body memory is reserved in units of this many bytes.
const UNIT: usize = 1024;

/// Checks between two sweeps of the rate limiter's idle client addresses.
const SWEEP_EVERY: u64 = 10_000;

pub(crate) struct Guard {
    rate: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
    max_body: usize,
    body_memory: Arc<Semaphore>,
    body_timeout: Duration,
    recording: Arc<Semaphore>,
}

impl Guard {
    pub(crate) fn new(hub: &Hub) -> Guard {
        let limits = &hub.limits;
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(nonzero(limits.rate_per_source)).allow_burst(nonzero(limits.rate_burst));
        Guard {
            rate: DefaultKeyedRateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
            max_body: hub.max_event_bytes,
            body_memory: Arc::new(Semaphore::new(units(limits.max_body_bytes_in_flight))),
            body_timeout: limits.body_timeout.unsigned_abs(),
            recording: Arc::new(Semaphore::new(limits.max_recording.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// `Err(seconds to wait)` when `source` is over its rate.
    fn admit(&self, source: IpAddr) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            // Addresses seen once stay in the map until swept: a spoofed-address flood must not grow it for ever.
            self.rate.retain_recent();
            self.rate.shrink_to_fit();
        }
        self.rate.check_key(&source).map_err(|wait| wait.wait_time_from(DefaultClock::default().now()).as_secs() + 1)
    }
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT).min(Semaphore::MAX_PERMITS)
}

fn refusal(status: StatusCode, error: String, retry_after_s: Option<u64>) -> Response {
    let mut response = (status, Json(json!({ "error": error }))).into_response();
    if let Some(seconds) = retry_after_s {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    // A body refused before it was read whole leaves the connection mid-request: close it, so
    // no client sends its next request after the rest of an unread body.
    if matches!(status, StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The middleware in front of `/webhooks/{system}`.
pub(crate) async fn webhook(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let source = crate::listen::source_of(&request);
    if let Err(wait_s) = guard.admit(source) {
        let error = format!("more webhooks from {source} than its rate allows; retry in {wait_s} s");
        return refusal(StatusCode::TOO_MANY_REQUESTS, error, Some(wait_s));
    }
    // Exact for a Content-Length (or no body at all); no upper bound for a chunked body.
    let declared = request.body().size_hint().upper().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let max = guard.max_body;
    if declared.is_some_and(|n| n > max) {
        return refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("a body of at most {max} bytes is accepted"), None);
    }
    // A chunked body of unknown length may grow to the limit: it reserves the limit.
    let reserve = u32::try_from(units(declared.unwrap_or(max))).unwrap_or(u32::MAX);
    let Ok(_memory) = guard.body_memory.clone().try_acquire_many_owned(reserve) else {
        tracing::warn!(message = "webhook refused: bodies in flight fill their memory", %source);
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "too many webhooks in flight; retry".into(), Some(1));
    };
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(guard.body_timeout, Limited::new(body, max).collect()).await {
        Err(_) => {
            let error = format!("the body did not arrive within {} s", guard.body_timeout.as_secs());
            return refusal(StatusCode::REQUEST_TIMEOUT, error, None);
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return refusal(StatusCode::PAYLOAD_TOO_LARGE, format!("a body of at most {max} bytes is accepted"), None);
        }
        Ok(Err(e)) => return refusal(StatusCode::BAD_REQUEST, format!("the body could not be read: {e}"), None),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    // Back-pressure on the store: past this many webhooks being checked and written at once,
    // a sender is told to come back rather than queued without bound.
    let Ok(_recording) = guard.recording.clone().try_acquire_owned() else {
        tracing::warn!(message = "webhook refused: the store's writes are behind", %source);
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "too many webhooks being recorded; retry".into(), Some(1));
    };
    // The reservation is held until the handler answers: the body lives that long.
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Bytes;
    use axum::routing::post;
    use tower::ServiceExt as _;

    /// A router whose webhook handler waits until `release` is notified, so requests stay in
    /// flight as long as a test wants.
    fn app(hub: &Hub, release: Arc<tokio::sync::Notify>) -> Router {
        let guard = Arc::new(Guard::new(hub));
        Router::new()
            .route(
                "/webhooks/{system}",
                post(move || async move {
                    release.notified().await;
                    StatusCode::ACCEPTED
                }),
            )
            .layer(axum::middleware::from_fn_with_state(guard, webhook))
    }

    /// The answer to a request the first one should be holding back (a bug waits, not hangs).
    async fn answer(app: &Router, request: Request) -> Response {
        tokio::time::timeout(Duration::from_secs(5), app.clone().oneshot(request))
            .await
            .expect("answered at once, not held")
            .unwrap()
    }

    fn post_body(body: &'static str) -> Request {
        Request::post("/webhooks/shop").header("content-length", body.len()).body(Body::from(body)).unwrap()
    }

    /// Posts small webhooks until one is answered 503 (the first request may not hold its
    /// place yet), for at most a second; returns the last answer.
    async fn until_unavailable(app: &Router) -> Response {
        let mut answered = answer(app, post_body("{}")).await;
        for _ in 0..100 {
            if answered.status() == StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            answered = answer(app, post_body("{}")).await;
        }
        answered
    }

    #[tokio::test]
    async fn past_the_writes_in_flight_a_sender_is_told_to_retry() {
        let mut hub = Hub::default();
        hub.limits.max_recording = 1;
        let release = Arc::new(tokio::sync::Notify::new());
        let app = app(&hub, release.clone());
        let first = tokio::spawn(app.clone().oneshot(post_body("{}")));
        tokio::task::yield_now().await;
        let second = until_unavailable(&app).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(second.headers()[header::RETRY_AFTER], "1");
        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::ACCEPTED);
        release.notify_one();
        assert_eq!(
            app.oneshot(post_body("{}")).await.unwrap().status(),
            StatusCode::ACCEPTED,
            "its place is free again"
        );
    }

    #[tokio::test]
    async fn bodies_past_their_memory_or_size_are_refused_before_they_are_read() {
        let mut hub = Hub { max_event_bytes: 1024, ..Hub::default() };
        hub.limits.max_body_bytes_in_flight = 1024;
        let release = Arc::new(tokio::sync::Notify::new());
        let app = app(&hub, release.clone());
        // A body of known length (a Content-Length, as hyper reads it) is measured before it is read.
        let too_big = Request::post("/webhooks/shop").body(Body::from(vec![b' '; 2048])).unwrap();
        assert_eq!(answer(&app, too_big).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // A body of unknown length reserves the whole limit: with one in flight, memory is full.
        let chunked =
            || Request::post("/webhooks/shop").body(Body::new(Unsized(Some(Bytes::from_static(b"{}"))))).unwrap();
        let first = tokio::spawn(app.clone().oneshot(chunked()));
        tokio::task::yield_now().await;
        let second = until_unavailable(&app).await;
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        release.notify_waiters();
        release.notify_one();
        let _ = first.await;
    }

    /// A body that does not say its length, as a chunked one.
    struct Unsized(Option<Bytes>);

    impl hyper::body::Body for Unsized {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.take().map(|b| Ok(hyper::body::Frame::data(b))))
        }
    }
}
