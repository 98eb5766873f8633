//! WAL checkpoints off the writer's thread. SQLite would otherwise checkpoint inside the commit
//! that crosses the threshold, stalling every caller in that group commit; a passive checkpoint
//! from its own connection copies pages back while the writer keeps appending.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use super::connect;

/// How often the WAL is copied back into the database file. Often, so each copy is small: a
/// checkpoint syncs the database file, and a commit's sync of the WAL waits behind that flush.
/// With 2,000 webhooks a second, the p99 of a webhook was 135 ms copying every second, 58–66 ms
/// every 200 ms, 25 ms every 50 ms and 8–12 ms every 20 ms (`handoff bench intake`).
const INTERVAL: Duration = Duration::from_millis(20);

/// Past this size the WAL is made to start over (counted in frames, one per page). A passive
/// checkpoint copies pages back but the WAL restarts only when a writer begins with every frame
/// copied and no reader in the WAL, which a busy hub never offers: under steady traffic the WAL
/// grew without end, and with it the WAL index every connection maps (8 GB of WAL and 15 MB of
/// index per connection after 800,000 orders, most of the hub's RSS growth).
///
/// A restart holds new writes back for a moment (the frames left to copy, one sync of the
/// database file, readers of older snapshots to finish): tens of milliseconds on a busy
/// machine. At 2,000 events/s the WAL grew 30 to 40 MB a second (each small commit writes
/// whole pages), so at 64 MiB that moment came every two seconds and was the p99 of a webhook;
/// at 256 MiB it comes four times less often and the WAL index stays small (512 KiB at most).
pub(super) const RESTART_BYTES: i64 = 256 << 20;

/// How long a restart may hold new writes back waiting for readers of older snapshots: short,
/// because every webhook waits behind it. A restart that cannot have its readers in that time
/// gives up and is tried again at the next interval (each read is short).
const RESTART_WAIT: Duration = Duration::from_millis(20);

pub(super) fn start(path: PathBuf, stop: Arc<AtomicBool>) {
    run(path, stop, RESTART_BYTES)
}

fn run(path: PathBuf, stop: Arc<AtomicBool>, restart_bytes: i64) {
    let spawned = std::thread::Builder::new().name("handoff-store-checkpoint".into()).spawn(move || {
        let conn = match connect(&path).and_then(|conn| {
            conn.busy_timeout(RESTART_WAIT)?;
            Ok(conn)
        }) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(message = "checkpointer cannot open the store; the WAL will grow", %error);
                return;
            }
        };
        // A frame is one page of the store (4 KiB in stores made before 8 KiB pages).
        let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap_or(4096);
        let restart_frames = restart_bytes / page;
        let mut frames = 0;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(INTERVAL);
            // RESTART rather than TRUNCATE: the file keeps its blocks (`journal_size_limit` bounds
            // it), so the writes after a restart overwrite them instead of growing the file again,
            // and the restart itself never waits on freeing them.
            let mode = if frames > restart_frames { "RESTART" } else { "PASSIVE" };
            if mode == "RESTART" {
                // Copy back what came since the last interval first, without holding writes, so
                // the restart itself has almost nothing left to copy.
                let _ = checkpoint(&conn, "PASSIVE");
            }
            let started = std::time::Instant::now();
            match checkpoint(&conn, mode) {
                Ok((busy, log)) if mode == "RESTART" => {
                    tracing::debug!(message = "WAL restart", busy, frames, ms = started.elapsed().as_millis() as u64);
                    // Done, the writer's next commit starts the WAL over; kept from it, try again.
                    frames = if busy { log } else { 0 };
                }
                Ok((_, log)) => frames = log,
                Err(error) => tracing::warn!(message = "WAL checkpoint failed", %error),
            }
        }
    });
    if let Err(error) = spawned {
        tracing::error!(message = "cannot start the checkpointer; the WAL will grow", %error);
    }
}

/// One checkpoint: whether it was kept from finishing, and the frames in the WAL after it.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get::<_, i64>(0)? != 0, r.get(1)?)))
}

#[cfg(test)]
mod tests {
    use super::super::PAGE_SIZE;
    use super::*;

    /// Writes `commits` small transactions while another connection is always reading, with the
    /// checkpointer restarting the WAL past `restart_bytes`; returns the WAL file's size.
    fn wal_bytes_after(commits: usize, restart_bytes: i64) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = connect(&path).unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.pragma_update(None, "synchronous", "OFF").unwrap();
        writer.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        run(path.clone(), stop.clone(), restart_bytes);
        let reading = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let reader = connect(&path).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    reader.execute_batch("BEGIN").unwrap();
                    reader.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)).unwrap();
                    std::thread::sleep(Duration::from_micros(500));
                    reader.execute_batch("COMMIT").unwrap();
                }
            })
        };
        for _ in 0..commits {
            writer.execute("INSERT INTO t (v) VALUES (zeroblob(3000))", []).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
        stop.store(true, Ordering::Relaxed);
        reading.join().unwrap();
        std::fs::metadata(path.with_extension("db-wal")).unwrap().len()
    }

    /// With a reader always in the WAL, it never starts over by itself; past its threshold the
    /// checkpointer makes it, so the file stays near the threshold instead of growing with
    /// every commit.
    #[test]
    fn the_wal_starts_over_past_its_threshold_while_readers_keep_reading() {
        let commits = 2000;
        let bounded = wal_bytes_after(commits, 64 * PAGE_SIZE);
        let unbounded = wal_bytes_after(commits, i64::MAX);
        assert!(
            unbounded > 2000 * PAGE_SIZE as u64,
            "without restarts every commit stays in the WAL: {unbounded} bytes"
        );
        assert!(bounded < unbounded / 2, "restarted: {bounded} bytes against {unbounded} without");
    }
}
