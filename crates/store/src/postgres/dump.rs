//! The shared database read into a dump (`handoff export`: one read-only, repeatable-read
//! transaction, so running hubs keep writing beside it) and a dump written into an empty one
//! (`handoff import`: one transaction, checked before it commits).

use std::io::{BufRead, Write};

use deadpool_postgres::Transaction;
use serde_json::Value;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::{PgOptions, PgReader, config, migrate, pool, writes};
use crate::dump::{self, DumpReader, DumpWriter, Imported, Kind, Table, Tally};
use crate::{Result, StoreError};

/// Rows fetched, or inserted, per round trip.
const BATCH: usize = 2_000;

impl PgReader {
    /// Writes every table of the database to `out`; returns it and what was written.
    pub async fn export<W: Write>(&self, out: W) -> Result<(W, Tally)> {
        let mut client = self.pool.get().await?;
        let tx = client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true);
        let tx = tx.start().await?;
        let mut writer = DumpWriter::new(out, "postgres")?;
        for table in dump::TABLES {
            read_table(&tx, table, |row| writer.row(table, row)).await?;
        }
        tx.commit().await?;
        writer.finish()
    }
}

/// Every row of `table`, in key order (text bytewise, as SQLite orders it), through a cursor.
async fn read_table(
    tx: &Transaction<'_>,
    table: &'static Table,
    mut each: impl FnMut(Vec<Value>) -> Result<()>,
) -> Result<()> {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            // Read as one type whatever the column's width or scale.
            Kind::Int => format!("{}::bigint", c.name),
            Kind::Money => format!("{}::text", c.name),
            _ => c.name.to_owned(),
        })
        .collect();
    let order: Vec<String> = table
        .key
        .iter()
        .map(|k| match table.column(k).map(|c| c.kind) {
            Some(Kind::Text) => format!("{k} COLLATE \"C\""),
            _ => (*k).to_owned(),
        })
        .collect();
    tx.batch_execute(&format!(
        "DECLARE dump NO SCROLL CURSOR FOR SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        table.name,
        order.join(", ")
    ))
    .await?;
    loop {
        let rows = tx.query(&format!("FETCH {BATCH} FROM dump"), &[]).await?;
        for r in &rows {
            let mut row = Vec::with_capacity(table.columns.len());
            for (i, c) in table.columns.iter().enumerate() {
                row.push(match c.kind {
                    Kind::Int => r.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::from),
                    Kind::Text | Kind::Money => dump::text(r.try_get(i)?),
                    Kind::Bool => r.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
                    Kind::Bytes => dump::bytes(r.try_get(i)?),
                    Kind::Time => dump::time(r.try_get(i)?),
                });
            }
            each(row)?;
        }
        if rows.len() < BATCH {
            break;
        }
    }
    tx.batch_execute("CLOSE dump").await?;
    Ok(())
}

/// Writes the dump `input` into the database at `url`, which must hold no row yet (migrated
/// first if need be), in one transaction: the tables locked against writers, rows inserted in
/// batches with their ids, each sequence set past the largest id, derived columns computed,
/// then every table read back and its count and hash compared with the dump's: the
/// transaction commits only if all agree.
pub async fn import<R: BufRead>(url: &str, options: PgOptions, mut input: DumpReader<R>) -> Result<Imported> {
    let pool = pool(&config(url, &options)?, &PgOptions { max_connections: 1, ..options })?;
    let mut client = pool.get().await?;
    migrate::to_latest(&mut client).await?;
    let tx = client.transaction().await?;
    let names: Vec<&str> = dump::TABLES.iter().map(|t| t.name).collect();
    // Readers go on; no hub writes until the import committed.
    tx.batch_execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "))).await?;
    for table in dump::TABLES {
        let any: bool = tx.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {})", table.name), &[]).await?.get(0);
        if any {
            return Err(dump::not_empty(table));
        }
    }
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
    let mut current: Option<&'static Table> = None;
    while let Some((table, row)) = input.next_row()? {
        if current.is_some_and(|c| c.name != table.name) || batch.len() == BATCH {
            insert(&tx, current.expect("a batch has its table"), &std::mem::take(&mut batch)).await?;
        }
        current = Some(table);
        batch.push(row);
    }
    if let Some(table) = current {
        insert(&tx, table, &batch).await?;
    }
    for table in dump::TABLES.iter().filter(|t| t.serial) {
        tx.query_one(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM {0}",
                table.name
            ),
            &[],
        )
        .await?;
    }
    // Which commands wait behind an unfinished one of their order is not in a dump: derived
    // (`dump::DERIVED_AFTER_IMPORT`).
    writes::hold_waiting(&tx).await?;
    let expected = input.tally().cloned().ok_or_else(|| StoreError::Invalid("the dump has no end line".into()))?;
    let mut hashes = dump::Hashes::default();
    for table in dump::TABLES {
        read_table(&tx, table, |row| hashes.add(table, &row)).await?;
    }
    let found = hashes.tally();
    dump::check_read_back(&expected, &found)?;
    tx.execute(crate::search::SHORTEN_EMAIL_KEYS, &[]).await?;
    tx.commit().await?;
    Ok(Imported { tally: found, not_kept: 0 })
}

/// One column of a batch, as an array PostgreSQL unnests.
enum Array {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Time(Vec<Option<jiff::Timestamp>>),
    Bool(Vec<Option<bool>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl Array {
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Array::Int(v) => v,
            Array::Text(v) => v,
            Array::Time(v) => v,
            Array::Bool(v) => v,
            Array::Bytes(v) => v,
        }
    }
}

fn sql_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "bigint",
        Kind::Text | Kind::Money => "text",
        Kind::Time => "timestamptz",
        Kind::Bool => "boolean",
        Kind::Bytes => "bytea",
    }
}

/// Inserts `rows` of `table` in one statement, with the columns the store derives.
async fn insert(tx: &Transaction<'_>, table: &'static Table, rows: &[Vec<Value>]) -> Result<()> {
    let mut arrays = Vec::with_capacity(table.columns.len() + 1);
    for (i, c) in table.columns.iter().enumerate() {
        let bad = |v: &Value| StoreError::Invalid(format!("{}.{}: {v} is not a value of its kind", table.name, c.name));
        let values = rows.iter().map(|r| &r[i]);
        arrays.push(match c.kind {
            Kind::Int => Array::Int(
                values
                    .map(|v| if v.is_null() { Ok(None) } else { v.as_i64().map(Some).ok_or_else(|| bad(v)) })
                    .collect::<Result<_>>()?,
            ),
            Kind::Text | Kind::Money => Array::Text(
                values
                    .map(|v| {
                        if v.is_null() {
                            Ok(None)
                        } else {
                            v.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| bad(v))
                        }
                    })
                    .collect::<Result<_>>()?,
            ),
            Kind::Bool => Array::Bool(
                values
                    .map(|v| if v.is_null() { Ok(None) } else { v.as_bool().map(Some).ok_or_else(|| bad(v)) })
                    .collect::<Result<_>>()?,
            ),
            Kind::Time => Array::Time(values.map(|v| dump::parse_time(table, c, v)).collect::<Result<_>>()?),
            Kind::Bytes => Array::Bytes(values.map(|v| dump::parse_bytes(table, c, v)).collect::<Result<_>>()?),
        });
    }
    let mut names: Vec<String> = table.columns.iter().map(|c| c.name.to_owned()).collect();
    let mut selected: Vec<String> = table
        .columns
        .iter()
        .map(|c| if c.kind == Kind::Money { format!("{}::numeric", c.name) } else { c.name.to_owned() })
        .collect();
    let mut types: Vec<String> = table.columns.iter().map(|c| format!("{}[]", sql_type(c.kind))).collect();
    for (derived_table, column) in dump::DERIVED {
        if *derived_table != table.name {
            continue;
        }
        // Never taken from the dump: computed here as every write of the store computes it.
        let detail = table.columns.iter().position(|c| c.name == "detail").expect("an exception has its detail");
        let prints = rows.iter().map(|r| r[detail].as_str().map(writes::fingerprint)).collect();
        arrays.push(Array::Text(prints));
        names.push((*column).to_owned());
        selected.push((*column).to_owned());
        types.push("text[]".to_owned());
    }
    let params: Vec<String> = types.iter().enumerate().map(|(i, t)| format!("${}::{t}", i + 1)).collect();
    let sql = format!(
        "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u ({})",
        table.name,
        names.join(", "),
        selected.join(", "),
        params.join(", "),
        names.join(", ")
    );
    let params: Vec<&(dyn ToSql + Sync)> = arrays.iter().map(Array::param).collect();
    tx.execute(&sql, &params).await?;
    Ok(())
}
