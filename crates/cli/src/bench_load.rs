//! The load generator of `bench intake` and `bench e2e`: webhooks posted as fast as the hubs
//! answer. It shares the hubs' cores, so it spends as little of them as wrk would: one
//! keep-alive HTTP/1.1 connection per sender, no pool to look up, no URL parsed and no body
//! copied per request, every body made before the clock starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::http::{Request, Uri, header};
use hyper_util::rt::TokioIo;

/// Posts every body once from `concurrency` connections, each as soon as its connection's last
/// answer came back; connection `c` posts to `urls[c mod urls]`. Answers the bodies posted a
/// second and the time each took to a 2xx, in microseconds; any other answer fails the run.
pub(crate) async fn closed_loop(
    urls: &[String],
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let mut senders = Vec::with_capacity(concurrency);
    for c in 0..concurrency {
        senders.push(Sender::connect(&urls[c % urls.len()]).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> =
        senders.into_iter().map(|sender| tokio::spawn(sender.post_until_done(bodies.clone(), next.clone()))).collect();
    let mut hist = Histogram::<u64>::new(3)?;
    for t in tasks {
        hist.add(t.await??)?;
    }
    Ok((bodies.len() as f64 / start.elapsed().as_secs_f64(), hist))
}

/// One connection to a hub's webhook URL.
struct Sender {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    path: Uri,
    host: header::HeaderValue,
}

impl Sender {
    async fn connect(url: &str) -> anyhow::Result<Sender> {
        let url: Uri = url.parse().with_context(|| format!("the webhook URL {url}"))?;
        let authority = url.authority().context("a webhook URL with a host")?.clone();
        let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
        stream.set_nodelay(true)?;
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let path = url.path_and_query().context("a webhook URL with a path")?.as_str().parse()?;
        Ok(Sender { send, path, host: authority.as_str().parse()? })
    }

    /// Posts the body numbered by `next` until none is left: the time each took to its 2xx.
    async fn post_until_done(
        mut self,
        bodies: Arc<Vec<Bytes>>,
        next: Arc<AtomicUsize>,
    ) -> anyhow::Result<Histogram<u64>> {
        let mut hist = Histogram::<u64>::new(3)?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(body) = bodies.get(i) else { return Ok(hist) };
            let request = Request::post(self.path.clone())
                .header(header::HOST, self.host.clone())
                .body(Full::new(body.clone()))?;
            let sent = Instant::now();
            self.send.ready().await?;
            let response = self.send.send_request(request).await?;
            let status = response.status();
            // The answer read whole, so the connection is ready for the next request.
            response.into_body().collect().await?;
            if !status.is_success() {
                bail!("hub answered {status}");
            }
            hist.record(sent.elapsed().as_micros() as u64)?;
        }
    }
}
