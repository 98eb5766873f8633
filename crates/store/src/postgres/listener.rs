//! LISTEN on a connection of its own: each notification (a commit of any process that added
//! events or commands) bumps the store's change counter, so idle workers wake. A lost
//! connection is opened again after a pause, and the counter bumped once, since notifications
//! sent meanwhile were missed. The same session holds the advisory lock naming this process
//! among the hubs, so its end (the process died) frees the process's claims.

use std::time::Duration;

use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::Result;

/// The first key of the advisory locks naming hub instances ("hand" in ASCII).
pub(super) const INSTANCE_LOCKS: i32 = 0x68616e64;

/// Stops a listener task when dropped (the supervisor's guard stops its connection's task in
/// turn, and the session ends with it).
pub(super) struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects and listens once before returning, so that a store that opened hears every
/// commit after it; then keeps listening in a task.
pub(super) async fn start(
    config: tokio_postgres::Config,
    channel: String,
    instance: i32,
    changed: std::sync::Arc<watch::Sender<u64>>,
) -> Result<Listening> {
    let first = listen(&config, &channel, instance, &changed).await?;
    let task = tokio::spawn(async move {
        let mut running = first;
        loop {
            let _ = (&mut running.0).await;
            tracing::warn!(message = "lost the store's notification connection; reconnecting", channel = %channel);
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match listen(&config, &channel, instance, &changed).await {
                    Ok(again) => {
                        running = again;
                        break;
                    }
                    Err(error) => tracing::warn!(message = "cannot listen for store notifications", error = %error),
                }
            }
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    Ok(Listening(task))
}

/// Opens a connection that listens on `channel`; the returned task ends when it is lost.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    instance: i32,
    changed: &std::sync::Arc<watch::Sender<u64>>,
) -> Result<Listening> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let changed = changed.clone();
    // The client must live as long as the connection (dropping it ends the session): the
    // task keeps it in a channel it never reads, while it polls the connection.
    let (keep, kept) = tokio::sync::oneshot::channel::<tokio_postgres::Client>();
    let task = tokio::spawn(async move {
        let _kept = kept;
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => changed.send_modify(|n| *n = n.wrapping_add(1)),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(message = "store notification connection failed", error = %error);
                    break;
                }
            }
        }
    });
    let quoted = format!("\"{}\"", channel.replace('"', "\"\""));
    client.batch_execute(&format!("LISTEN {quoted}")).await?;
    // This session also stands for the process among the hubs: while it holds the lock named
    // after the instance, the instance's claims are its own (see `writes::recover_in_flight`).
    let held: bool =
        client.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&INSTANCE_LOCKS, &instance]).await?.get(0);
    if !held {
        return Err(crate::StoreError::Schema(format!("hub instance {instance} is taken by another process")));
    }
    let _ = keep.send(client);
    Ok(Listening(task))
}
