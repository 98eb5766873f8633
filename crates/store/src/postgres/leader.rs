//! One hub at a time runs each part that must be alone (intake, the rules driver, each
//! poller): the one whose session holds that part's advisory lock. The lock lives on a
//! connection of its own that pings the database; the server ends the session of a hub that
//! stopped pinging (paused, cut off) after `idle_session_timeout`, and a dead hub's session ends
//! with its connections, so the lock frees and another hub takes the part over.

use std::time::Duration;

use sha2::Digest;
use tokio::sync::watch;
use tokio_postgres::NoTls;

use super::PgStore;
use crate::Result;

/// The first key of the advisory locks naming singleton parts ("lead" in ASCII).
const LEADER_LOCKS: i32 = 0x6c656164;

/// How often a leader pings, and how long the server waits for a ping before it ends the
/// session (and the lead with it).
const PING: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: &str = "30s";

/// How often a follower asks for the lead.
const ASK_EVERY: Duration = Duration::from_secs(2);

/// This hub leads a part while it holds this; dropping it gives the lead up.
pub struct Leadership(tokio::task::JoinHandle<()>);

impl Leadership {
    /// Resolves when the lead is lost (the connection holding it ended).
    pub async fn lost(&mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The lock key of a part, the same in every hub.
fn key(part: &str) -> i32 {
    let digest = sha2::Sha256::digest(part.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

impl PgStore {
    /// Waits until this hub leads `part`; `None` when `stop` fires first.
    pub async fn lead(&self, part: &str, stop: &mut watch::Receiver<bool>) -> Result<Option<Leadership>> {
        loop {
            if *stop.borrow() {
                return Ok(None);
            }
            match self.try_lead(part).await {
                Ok(Some(lead)) => return Ok(Some(lead)),
                Ok(None) => {}
                Err(error) => tracing::warn!(message = "cannot ask for the lead", part, error = %error),
            }
            tokio::select! {
                _ = tokio::time::sleep(ASK_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn try_lead(&self, part: &str) -> Result<Option<Leadership>> {
        let mut config = self.inner.config.clone();
        let options = config.get_options().unwrap_or_default().to_owned();
        config.options(format!("{options} -c idle_session_timeout={IDLE_TIMEOUT}"));
        let (client, connection) = config.connect(NoTls).await?;
        let mut running = tokio::spawn(connection);
        let held: bool =
            client.query_one("SELECT pg_try_advisory_lock($1, $2)", &[&LEADER_LOCKS, &key(part)]).await?.get(0);
        if !held {
            return Ok(None);
        }
        // A new epoch for the part: a former leader's writes still carrying the old one are
        // refused from now on (see `writes::check_lead`); one in progress is waited for.
        let epoch: i64 = client
            .query_one(
                "INSERT INTO leads (part, epoch) VALUES ($1, 1)
                 ON CONFLICT (part) DO UPDATE SET epoch = leads.epoch + 1 RETURNING epoch",
                &[&part],
            )
            .await?
            .get(0);
        // Kept after the lead is lost too, so this hub's late writes are checked and refused.
        self.inner.epochs.lock().expect("epochs lock").insert(part.to_owned(), epoch);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut running => return,
                    _ = tokio::time::sleep(PING) => {
                        if client.simple_query("SELECT 1").await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Some(Leadership(task)))
    }
}
