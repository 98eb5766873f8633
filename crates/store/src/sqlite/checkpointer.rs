//! WAL checkpoints off the writer's thread. SQLite would otherwise checkpoint inside the commit
//! that crosses the threshold, stalling every caller in that group commit; a passive checkpoint
//! from its own connection copies pages back while the writer keeps appending.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::connect;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(200);

pub(super) fn start(path: PathBuf, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new().name("handoff-store-checkpoint".into()).spawn(move || {
        let conn = match connect(&path) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(message = "checkpointer cannot open the store; the WAL will grow", %error);
                return;
            }
        };
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(INTERVAL);
            if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(message = "WAL checkpoint failed", %error);
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!(message = "cannot start the checkpointer; the WAL will grow", %error);
    }
}
