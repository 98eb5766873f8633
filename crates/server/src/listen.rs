//! The accept loop of the HTTP face, with the limits axum's own `serve` cannot set: connections
//! open at once (in all and from one client address), the time a client has to send its
//! request head (an idle or slowloris connection is closed once it is spent), and the size and
//! count of headers (431). A connection over a cap is closed as soon as it is accepted, so the
//! kernel's backlog never fills and the clients under their caps keep being served.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use handoff_contract::HttpLimits;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

/// How long connections still open at shutdown may finish their request.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets open
/// requests finish (at most [`DRAIN`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let caps = Caps {
        all: Arc::new(Semaphore::new(limits.max_connections)),
        per_source: limits.max_connections_per_source,
        sources: Arc::default(),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout.unsigned_abs())
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let graceful = GracefulShutdown::new();
    let mut refused: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: give the open connections time to close.
                    tracing::warn!(message = "accepting a connection failed", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = caps.take(peer.ip()) else {
            refused += 1;
            // Once per power of two: a flood is visible without writing a line per connection.
            if refused.is_power_of_two() {
                tracing::warn!(message = "connections over the limit closed", total = refused, source = %peer.ip());
            }
            continue;
        };
        let service = app.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            // A client that goes away or sends garbage ends its own connection, nothing more.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(message = "connections still open after the drain time were closed");
    }
    Ok(())
}

/// The connection caps: a permit of all connections, and a count per client address.
struct Caps {
    all: Arc<Semaphore>,
    per_source: usize,
    sources: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Caps {
    fn take(&self, source: IpAddr) -> Option<Slot> {
        let permit = self.all.clone().try_acquire_owned().ok()?;
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let open = sources.entry(source).or_default();
        if *open >= self.per_source {
            return None;
        }
        *open += 1;
        Some(Slot { _permit: permit, source, sources: self.sources.clone() })
    }
}

/// One open connection's place under the caps, given back when it closes.
struct Slot {
    _permit: OwnedSemaphorePermit,
    source: IpAddr,
    sources: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = sources.get_mut(&self.source) {
            *open -= 1;
            if *open == 0 {
                sources.remove(&self.source);
            }
        }
    }
}

/// The client address of a request served by [`serve`] (unspecified when served otherwise).
pub(crate) fn source_of<B>(request: &Request<B>) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_source_and_give_back() {
        let caps = Caps { all: Arc::new(Semaphore::new(3)), per_source: 2, sources: Arc::default() };
        let (a, b) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 1]));
        let first = caps.take(a).unwrap();
        let _second = caps.take(a).unwrap();
        assert!(caps.take(a).is_none(), "a third from one source");
        let _other = caps.take(b).unwrap();
        assert!(caps.take(b).is_none(), "all taken");
        drop(first);
        assert!(caps.take(a).is_some(), "a closed connection frees its place");
    }
}
