//! The embedded store read into a dump (`handoff export`), in one read transaction: a snapshot
//! a running hub keeps writing beside (WAL), never blocked by it; and a dump written into an
//! empty store (`handoff import`), in one transaction checked before it commits.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, TransactionBehavior};
use serde_json::Value;

use super::{DB_FILE, SqliteReader};
use crate::dump::{self, DumpReader, DumpWriter, Hashes, Imported, Kind, Table, Tally};
use crate::{Result, StoreError};

impl SqliteReader {
    /// Writes every table of the store to `out`; returns it and what was written. Blocking:
    /// call it off the async threads.
    pub fn export<W: Write>(&self, out: W) -> Result<(W, Tally)> {
        let conn = Self::connect(&self.path)?;
        // One snapshot for every table: the transaction's first read fixes it.
        let tx = conn.unchecked_transaction()?;
        let mut writer = DumpWriter::new(out, "sqlite")?;
        for table in dump::TABLES {
            read_table(&tx, table, |row| writer.row(table, row))?;
        }
        tx.finish()?;
        writer.finish()
    }
}

/// Every row of `table`, in key order, as the dump writes it.
pub(crate) fn read_table(
    conn: &Connection,
    table: &'static Table,
    mut each: impl FnMut(Vec<Value>) -> Result<()>,
) -> Result<()> {
    let columns: Vec<String> = table.columns.iter().map(|c| c.sqlite.unwrap_or(c.name).to_owned()).collect();
    let sql = format!("SELECT {} FROM {} ORDER BY {}", columns.join(", "), table.name, table.key.join(", "));
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(table.columns.len());
        for (i, c) in table.columns.iter().enumerate() {
            row.push(match c.kind {
                Kind::Int => r.get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::from),
                Kind::Text | Kind::Money => dump::text(r.get(i)?),
                Kind::Bool => r.get::<_, Option<i64>>(i)?.map_or(Value::Null, |b| Value::Bool(b != 0)),
                Kind::Bytes => dump::bytes(r.get(i)?),
                Kind::Time => dump::time(
                    r.get::<_, Option<i64>>(i)?
                        .map(jiff::Timestamp::from_microsecond)
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(format!("{}.{}: {e}", table.name, c.name)))?,
                ),
            });
        }
        each(row)?;
    }
    Ok(())
}

/// Writes the dump `input` into the store in `data_dir` (created and migrated if need be),
/// which must hold no row yet, in one transaction that holds the store's write lock: rows
/// inserted with their ids (SQLite hands out the next id past the largest), derived columns
/// computed, the intake cursor set from the inbox's `planned` flags, then every table read
/// back and its count and hash compared with the rows written: the transaction commits only
/// if all agree. Blocking: call it off the async threads.
pub fn import<R: BufRead>(data_dir: &Path, mut input: DumpReader<R>) -> Result<Imported> {
    std::fs::create_dir_all(data_dir)
        .map_err(|source| StoreError::DataDir { path: data_dir.display().to_string(), source })?;
    let mut conn = super::connect(&data_dir.join(DB_FILE))?;
    super::migrations().to_latest(&mut conn)?;
    // A running hub's writer waits (and gives up) rather than writing beside the import.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for table in dump::TABLES {
        let any: bool = tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {})", table.name), [], |r| r.get(0))?;
        if any {
            return Err(dump::not_empty(table));
        }
    }
    // Rows refer to rows of tables written before them, or of their own table further on.
    tx.pragma_update(None, "defer_foreign_keys", "ON")?;
    let mut statements: HashMap<&'static str, String> = HashMap::new();
    let mut kept = Hashes::default();
    let mut not_kept = 0;
    let mut cursor = IntakeCursor::default();
    while let Some((table, row)) = input.next_row()? {
        let sql = statements.entry(table.name).or_insert_with(|| insert_sql(table));
        let mut values = Vec::with_capacity(table.columns.len() + 1);
        let mut as_kept = Vec::with_capacity(table.columns.len());
        for (c, v) in table.columns.iter().zip(&row) {
            if !c.kept_by_sqlite() {
                not_kept += u64::from(!v.is_null());
                as_kept.push(Value::Null);
                continue;
            }
            as_kept.push(v.clone());
            if c.sqlite.is_none() {
                values.push(sql_value(table, c, v)?);
            }
        }
        for (derived_table, _) in dump::DERIVED {
            if *derived_table == table.name {
                let detail =
                    table.columns.iter().position(|c| c.name == "detail").expect("an exception has its detail");
                values.push(row[detail].as_str().map_or(Sql::Null, |d| Sql::Text(super::writes::fingerprint(d))));
            }
        }
        if table.name == "inbox" {
            cursor.add(table, &row)?;
        }
        tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(values))?;
        if table.name == "outbox" {
            let payload = table.columns.iter().position(|c| c.name == "payload").expect("a command has its payload");
            let payload = sql_value(table, &table.columns[payload], &row[payload])?;
            let insert = "INSERT INTO outbox_payloads (command_id, payload) VALUES (last_insert_rowid(), ?1)";
            tx.prepare_cached(insert)?.execute([payload])?;
        }
        kept.add(table, &as_kept)?;
    }
    tx.execute("UPDATE intake_cursor SET last_row = ?1", [cursor.last_row])?;
    let mut found = Hashes::default();
    for table in dump::TABLES {
        read_table(&tx, table, |row| found.add(table, &row))?;
    }
    let found = found.tally();
    dump::check_read_back(&kept.tally(), &found)?;
    tx.execute(crate::search::SHORTEN_EMAIL_KEYS, [])?;
    tx.execute(super::writes::FILL_EMAIL_INDEX, [])?;
    tx.commit()?;
    Ok(Imported { tally: found, not_kept })
}

/// SQLite plans the inbox behind one cursor: the planned rows must be the first ones.
#[derive(Default)]
struct IntakeCursor {
    last_row: i64,
    first_unplanned: Option<i64>,
}

impl IntakeCursor {
    fn add(&mut self, inbox: &Table, row: &[Value]) -> Result<()> {
        let value = |name: &str| &row[inbox.columns.iter().position(|c| c.name == name).expect("an inbox column")];
        let id = value("id").as_i64().ok_or_else(|| StoreError::Invalid("inbox.id: not an integer".into()))?;
        match (value("planned").as_bool() == Some(true), self.first_unplanned) {
            (true, Some(before)) => Err(StoreError::Invalid(format!(
                "inbox row {id} is planned but row {before} before it is not, and SQLite plans the inbox in id \
                 order behind one cursor: let one hub's intake plan every event on the store the dump came from, \
                 then export it again"
            ))),
            (true, None) => {
                self.last_row = id;
                Ok(())
            }
            (false, _) => {
                self.first_unplanned.get_or_insert(id);
                Ok(())
            }
        }
    }
}

/// The statement inserting one row of `table`: the columns SQLite keeps as columns, then the
/// ones it derives.
fn insert_sql(table: &Table) -> String {
    let mut names: Vec<&str> = table.columns.iter().filter(|c| c.sqlite.is_none()).map(|c| c.name).collect();
    names.extend(dump::DERIVED.iter().filter(|(t, _)| *t == table.name).map(|(_, column)| *column));
    let places: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO {} ({}) VALUES ({})", table.name, names.join(", "), places.join(", "))
}

/// A dump's value as SQLite stores it.
fn sql_value(table: &Table, c: &dump::Column, v: &Value) -> Result<Sql> {
    let bad = || StoreError::Invalid(format!("{}.{}: {v} is not a value of its kind", table.name, c.name));
    if v.is_null() {
        return Ok(Sql::Null);
    }
    Ok(match c.kind {
        Kind::Int => Sql::Integer(v.as_i64().ok_or_else(bad)?),
        Kind::Text | Kind::Money => Sql::Text(v.as_str().ok_or_else(bad)?.to_owned()),
        Kind::Bool => Sql::Integer(i64::from(v.as_bool().ok_or_else(bad)?)),
        Kind::Time => Sql::Integer(dump::parse_time(table, c, v)?.ok_or_else(bad)?.as_microsecond()),
        Kind::Bytes => Sql::Blob(dump::parse_bytes(table, c, v)?.ok_or_else(bad)?),
    })
}
