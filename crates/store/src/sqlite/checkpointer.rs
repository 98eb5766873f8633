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

/// Past this size the WAL is truncated. A passive checkpoint copies pages back but never lets
/// the WAL start over while readers keep reading from it (the hub always has some), so under
/// steady traffic the file grew without end, and with it the WAL index every connection maps:
/// 8 GB of WAL and 15 MB of index per connection after 800,000 orders, most of the hub's RSS
/// growth. A truncating checkpoint waits for the readers of old snapshots (each read is short)
/// and holds the writer only while it copies the last frames the passive ones left.
const WAL_TRUNCATE_BYTES: u64 = 64 << 20;

pub(super) fn start(path: PathBuf, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new().name("handoff-store-checkpoint".into()).spawn(move || {
        let conn = match connect(&path) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(message = "checkpointer cannot open the store; the WAL will grow", %error);
                return;
            }
        };
        let wal = path.with_extension("db-wal");
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(INTERVAL);
            let large = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES);
            let mode = if large { "PRAGMA wal_checkpoint(TRUNCATE)" } else { "PRAGMA wal_checkpoint(PASSIVE)" };
            if let Err(error) = conn.query_row(mode, [], |_| Ok(())) {
                tracing::warn!(message = "WAL checkpoint failed", %error);
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!(message = "cannot start the checkpointer; the WAL will grow", %error);
    }
}
