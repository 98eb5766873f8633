//! The embedded store read into a dump (`handoff export`), in one read transaction: a snapshot
//! a running hub keeps writing beside (WAL), never blocked by it.

use std::io::Write;

use rusqlite::Connection;
use serde_json::Value;

use super::SqliteReader;
use crate::dump::{self, DumpWriter, Kind, Table, Tally};
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
