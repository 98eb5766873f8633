//! `SqliteReader`: what `handoff doctor` opens. It reads a hub's database as it is and never
//! migrates or writes it.

use handoff_store::Store;
use handoff_store::sqlite::{DB_FILE, SqliteOptions, SqliteReader, SqliteStore};

#[tokio::test]
async fn the_reader_reads_the_store_as_it_is_and_refuses_another_schema_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert!(store.exceptions(None, 10).await.unwrap().is_empty());
    drop(store);

    let reader = SqliteReader::open(dir.path()).unwrap();
    assert!(reader.exceptions(None, 10).await.unwrap().is_empty());
    assert!(reader.flow_stats(jiff::Timestamp::UNIX_EPOCH).await.unwrap().is_empty());

    // A database an older build wrote: refused, naming both versions, and left at its version.
    let path = dir.path().join(DB_FILE);
    let version =
        |conn: &rusqlite::Connection| conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let latest = version(&conn);
    conn.pragma_update(None, "user_version", latest - 1).unwrap();
    drop(conn);
    let refused = SqliteReader::open(dir.path()).err().expect("another schema is refused");
    assert!(refused.to_string().contains(&format!("schema version {}", latest - 1)), "{refused}");
    assert_eq!(version(&rusqlite::Connection::open(&path).unwrap()), latest - 1, "not migrated");
}
