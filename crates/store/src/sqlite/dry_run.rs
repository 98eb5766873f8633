//! The purge's dry run, off the writer. Its steps must see each other's work to count exactly
//! (a command goes once its journal entries went), so it cannot just read; run on the writer and
//! rolled back, it held every webhook for as long as it counted. Instead it takes a private
//! snapshot of the store (`VACUUM INTO` a temporary file beside it: a read transaction, which in
//! WAL mode never holds up the writer), runs the purge's own code for real on that copy, and
//! removes the copy, also on error: what it counts is what the purge would remove, by
//! construction. Writes committed after the snapshot are not counted.
//!
//! The copy needs room: about the store's size less its free pages. A dry run killed midway
//! leaves its copy behind, named [`COPY_PREFIX`]`…`, to delete by hand.

use std::path::Path;

use rusqlite::{Connection, ErrorCode};

use super::retention::{self, Budget};
use crate::{PurgeBefore, Purged, Result, StoreError};

/// The start of the copy's file name, in the store's directory.
pub(super) const COPY_PREFIX: &str = "handoff.db.dry-run-";

/// What a purge call of `limit` rows per step would remove from the store `source` reads,
/// counted on a copy. `db` is the store's file.
pub(super) fn count(source: &Connection, db: &Path, before: &PurgeBefore, limit: usize) -> Result<Purged> {
    let dir = db.parent().unwrap_or(Path::new("."));
    let needed = bytes_in_use(source)?;
    let no_room = |reason: String| StoreError::NoRoomForDryRun {
        dir: dir.display().to_string(),
        needed_mb: needed.div_ceil(1_000_000),
        reason,
    };
    // Removed when dropped, whatever happens from here on.
    let copy = tempfile::Builder::new().prefix(COPY_PREFIX).tempfile_in(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::StorageFull => no_room(e.to_string()),
        _ => StoreError::DataDir { path: dir.display().to_string(), source: e },
    })?;
    let path = copy.path().to_str().ok_or_else(|| StoreError::Invalid(format!("{}: not UTF-8", dir.display())))?;
    let disk_full = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => no_room(e.to_string()),
        _ => StoreError::Database(e),
    };
    // `VACUUM INTO` syncs its copy as the store's connection says (`synchronous = FULL`): a
    // sync of the whole copy, which held the webhooks' own syncs behind it. The copy is thrown
    // away, so it is written without one; the read connection gets its setting back after.
    let synchronous: i64 = source.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    source.pragma_update(None, "synchronous", "OFF")?;
    let copied = source.execute("VACUUM INTO ?1", [path]);
    source.pragma_update(None, "synchronous", synchronous)?;
    copied.map_err(disk_full)?;

    let conn = Connection::open(copy.path())?;
    // A throwaway file: no journal to roll back with, nothing synced; foreign keys checked as
    // on the store.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    super::functions::register(&conn)?;
    conn.execute_batch("BEGIN")?;
    let counted = retention::run(&conn, before, Budget::rows(limit)).map_err(|e| match e {
        StoreError::Database(e) => disk_full(e),
        other => other,
    })?;
    drop(conn);
    let path = path.to_owned();
    copy.close().map_err(|source| StoreError::DataDir { path, source })?;
    Ok(counted)
}

/// The store's pages less its free ones: about what a compacted copy of it takes.
fn bytes_in_use(conn: &Connection) -> Result<u64> {
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    let pages = pragma("page_count")? - pragma("freelist_count")?;
    Ok((pages.max(0) as u64) * pragma("page_size")? as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use handoff_model::EventKind;
    use jiff::{SignedDuration, Timestamp};

    use super::super::{SqliteOptions, SqliteStore, writes};
    use crate::{NewEvent, PurgeBefore, Recorded, Store};

    fn event(i: usize, at: Timestamp) -> NewEvent {
        NewEvent {
            system: "shop".into(),
            event_id: format!("e-{i}"),
            kind: EventKind::OrderCreated,
            order_ref: format!("#{i}"),
            received_at: at,
            payload: r#"{"customer": {"email": "ada@example.com"}}"#.into(),
            raw: Some(format!(r#"{{"id": {i}, "email": "ada@example.com"}}"#)),
        }
    }

    /// A webhook's write holds the writer, mid-transaction, from before the dry run starts
    /// until after it returned: the dry run counts all the same (it never waits for the writer,
    /// so no webhook waits for it), from a snapshot without that write, and leaves no copy.
    #[tokio::test]
    async fn a_dry_run_counts_while_a_webhook_holds_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        for i in 0..50 {
            store.record_event(event(i, t0)).await.unwrap();
        }
        let day = SignedDuration::from_hours(24);
        let before = PurgeBefore { personal_data: t0 + day, history: t0, dedup: t0 };

        let (started, is_started) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let webhook = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .inner
                    .writer
                    .run(move |conn| {
                        let recorded = writes::record_event(conn, &event(50, t0))?;
                        started.send(()).unwrap();
                        released.recv().unwrap();
                        Ok(recorded)
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || is_started.recv().unwrap()).await.unwrap();
        // Only a guard against a dry run that waits for the writer, which would never return.
        let dry = tokio::time::timeout(Duration::from_secs(120), store.purge(before, usize::MAX, true))
            .await
            .expect("the dry run waited for the writer")
            .unwrap();
        release.send(()).unwrap();
        assert!(matches!(webhook.await.unwrap().unwrap(), Recorded::New(_)), "the webhook's write committed");
        assert_eq!(dry.inbox_scrubbed, 50, "counted from before the webhook's write: {dry:?}");

        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(super::COPY_PREFIX))
            .collect();
        assert!(left.is_empty(), "the dry run's copy is left: {left:?}");
        let mut purged = crate::Purged { more: true, ..Default::default() };
        while purged.more {
            purged.add(&store.purge(before, usize::MAX, false).await.unwrap());
        }
        assert_eq!(purged.inbox_scrubbed, 51, "the purge, after, scrubs the webhook's row too");
    }

    /// The copy is written without a sync, and the store's read connection that made it keeps
    /// the store's own setting: a sync of every write it might make (`synchronous = FULL`).
    #[tokio::test]
    async fn the_read_connection_keeps_its_sync_setting_after_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        store.record_event(event(0, t0)).await.unwrap();
        let conn = super::super::connect(store.path()).unwrap();
        let before = PurgeBefore { personal_data: t0 + SignedDuration::from_hours(24), history: t0, dedup: t0 };
        let dry = super::count(&conn, store.path(), &before, usize::MAX).unwrap();
        assert_eq!(dry.inbox_scrubbed, 1);
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(synchronous, 2, "FULL, as before the dry run");
    }
}
