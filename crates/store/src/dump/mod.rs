//! A store's whole content in a form neither backend owns (`handoff export` / `handoff import`):
//! one JSON object a line, a header, then every row of every table in key order (`{"t": table,
//! "r": {column: value}}`, ids kept), then an end line with each table's row count and content
//! hash. Values are neutral: integers, text, booleans, times as UTC RFC 3339, money as the
//! decimal text stored, bytes as hex.
//!
//! The hash of a table is computed the same way wherever its rows are read (a store being
//! exported, a dump being read, a store just imported): SHA-256 over each row's canonical form
//! (its values in column order, money normalized, times as UTC RFC 3339), rows in key order.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::{Result, StoreError};

/// The dump format this build writes and reads.
pub const FORMAT: u32 = 1;

/// What a column holds, whatever each backend stores it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    /// SQLite: unix microseconds; PostgreSQL: `timestamptz`.
    Time,
    /// SQLite: 0 or 1; PostgreSQL: `boolean`.
    Bool,
    /// SQLite: decimal text; PostgreSQL: `NUMERIC`.
    Money,
    /// SQLite: BLOB; PostgreSQL: `bytea`.
    Bytes,
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Where SQLite keeps no such column: the expression it is read as (and it is not written
    /// back as a column). `None`: a column of that name.
    pub sqlite: Option<&'static str>,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, sqlite: None }
}

/// The expression of a column SQLite does not keep: a PostgreSQL hub's claim of a command
/// (SQLite has one hub, whose boot takes back every command in flight).
const NOT_IN_SQLITE: &str = "NULL";

/// A column only PostgreSQL keeps.
const fn postgres_only(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, sqlite: Some(NOT_IN_SQLITE) }
}

impl Column {
    /// Whether SQLite keeps this column's value, as a column or folded into another table.
    pub fn kept_by_sqlite(&self) -> bool {
        self.sqlite != Some(NOT_IN_SQLITE)
    }
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// The primary key: rows are dumped and hashed in its order (bytewise for text).
    pub key: &'static [&'static str],
    /// Whether `id` comes from a sequence (PostgreSQL's is set past the ids imported).
    pub serial: bool,
    pub columns: &'static [Column],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

use Kind::{Bool, Bytes, Int, Money, Text, Time};

/// Every table a store keeps, parents before the tables that refer to them.
pub const TABLES: &[Table] = &[
    Table {
        name: "inbox",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("system", Text),
            col("event_id", Text),
            col("kind", Text),
            col("order_ref", Text),
            col("received_at", Time),
            col("payload", Text),
            col("raw", Text),
            // SQLite plans behind one cursor; PostgreSQL marks each row.
            Column { name: "planned", kind: Bool, sqlite: Some("id <= (SELECT last_row FROM intake_cursor)") },
        ],
    },
    Table {
        name: "orders",
        key: &["order_ref"],
        serial: false,
        columns: &[
            col("order_ref", Text),
            col("source", Text),
            col("created", Bool),
            col("cancelled", Bool),
            col("last_version", Int),
            col("last_fingerprint", Text),
            col("first_seen", Time),
            col("updated_at", Time),
            col("channel", Text),
            col("email_key", Text),
        ],
    },
    Table {
        name: "ledger",
        key: &["order_ref", "system"],
        serial: false,
        columns: &[
            col("order_ref", Text),
            col("system", Text),
            col("state", Text),
            col("record_id", Text),
            col("updated_at", Time),
        ],
    },
    Table {
        name: "outbox",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("flow", Text),
            col("target", Text),
            col("order_ref", Text),
            col("kind", Text),
            col("event_row", Int),
            col("idempotency_key", Text),
            col("external_ref", Text),
            col("version", Int),
            // SQLite keeps a command's payload in a table of its own (`outbox_payloads`).
            Column { name: "payload", kind: Text, sqlite: Some(crate::sqlite::COMMAND_PAYLOAD) },
            col("state", Text),
            col("attempts", Int),
            col("ambiguous", Bool),
            col("next_attempt_at", Time),
            col("budget_attempts", Int),
            col("budget_start", Time),
            col("created_at", Time),
            col("updated_at", Time),
            col("record_id", Text),
            col("last_error", Text),
            // A hub's claim: only PostgreSQL's hubs share commands.
            postgres_only("claimed_by", Int),
            postgres_only("lease_until", Time),
        ],
    },
    Table {
        name: "attempts",
        key: &["command_id", "attempt"],
        serial: false,
        columns: &[
            col("command_id", Int),
            col("attempt", Int),
            col("started_at", Time),
            col("finished_at", Time),
            col("outcome", Text),
            col("detail", Text),
            col("mapping", Text),
        ],
    },
    Table {
        name: "exceptions",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("pattern", Text),
            col("order_ref", Text),
            col("flow", Text),
            col("command_id", Int),
            col("field", Text),
            col("detail", Text),
            col("state", Text),
            col("opened_at", Time),
            col("updated_at", Time),
            col("subject", Text),
            col("channel", Text),
            col("mapping", Text),
            col("amount", Money),
            col("currency", Text),
            col("action", Text),
            col("evidence", Text),
            col("rechecked", Bool),
        ],
    },
    Table {
        name: "audit",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("at", Time),
            col("actor", Text),
            col("action", Text),
            col("order_ref", Text),
            col("detail", Text),
        ],
    },
    Table {
        name: "poll_cursor",
        key: &["system"],
        serial: false,
        columns: &[col("system", Text), col("cursor", Text), col("updated_at", Time)],
    },
    Table {
        name: "facts",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("order_ref", Text),
            col("system", Text),
            col("kind", Text),
            col("event_row", Int),
            col("command_id", Int),
            col("record_id", Text),
            col("at", Time),
        ],
    },
    Table {
        name: "quarantine",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("system", Text),
            col("source", Text),
            col("fingerprint", Text),
            col("order_ref", Text),
            col("headers", Text),
            col("body", Bytes),
            col("field", Text),
            col("reason", Text),
            col("source_version", Text),
            col("flow", Text),
            col("received_at", Time),
            col("state", Text),
            col("exception_id", Int),
            col("event_row", Int),
            col("replayed_at", Time),
            col("body_sha256", Text),
        ],
    },
    Table { name: "rules_checkpoint", key: &["id"], serial: false, columns: &[col("id", Int), col("position", Int)] },
    Table { name: "rules_board", key: &["order_ref"], serial: false, columns: &[col("order_ref", Text)] },
    Table {
        name: "retention_cursor",
        key: &["step"],
        serial: false,
        columns: &[col("step", Text), col("last_id", Int)],
    },
    Table {
        name: "retention_deferred",
        key: &["step", "row_id"],
        serial: false,
        columns: &[col("step", Text), col("row_id", Int)],
    },
    Table {
        name: "api_tokens",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("name", Text),
            col("role", Text),
            col("hash", Text),
            col("created_at", Time),
            col("expires_at", Time),
            col("revoked_at", Time),
        ],
    },
    Table {
        name: "console_users",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("name", Text),
            col("role", Text),
            col("password_hash", Text),
            col("created_at", Time),
        ],
    },
    Table {
        name: "console_sessions",
        key: &["id"],
        serial: true,
        columns: &[
            col("id", Int),
            col("hash", Text),
            col("user_id", Int),
            col("csrf", Text),
            col("link", Bool),
            col("created_at", Time),
            col("last_seen_at", Time),
            col("ended_at", Time),
        ],
    },
];

/// SQLite tables whose content travels in another table's column.
pub const FOLDED: &[(&str, &str)] = &[("intake_cursor", "inbox.planned"), ("outbox_payloads", "outbox.payload")];

/// Columns a store computes on import from the row's other columns, never taken from a dump:
/// an exception's fingerprint is `handoff_model::cluster::fingerprint` of its detail.
pub const DERIVED: &[(&str, &str)] = &[("exceptions", "fingerprint")];

/// Columns PostgreSQL computes once an import's rows are all in, from the other rows: whether a
/// command waits behind an unfinished one of its order (`held`; SQLite finds that at each claim).
pub const DERIVED_AFTER_IMPORT: &[(&str, &str)] = &[("outbox", "held")];

/// What a store keeps for itself and not for the installation: its schema's version, on
/// PostgreSQL the epochs of the leads of running hubs (a new store starts without), and on
/// SQLite the count of changes to the exceptions that its kept cluster sums are checked against.
pub const BOOKKEEPING: &[&str] = &["schema_version", "leads", "generations"];

/// SQLite's index of customers' email keys (migration 0019): an FTS5 table, and its own tables
/// named after it, that the writer keeps from `orders.email_key` and an import rebuilds.
pub const SQLITE_INDEXES: &[&str] = &["orders_email"];

/// Whether a SQLite table is one of [`SQLITE_INDEXES`] or a table of one.
pub fn sqlite_index(table: &str) -> bool {
    SQLITE_INDEXES.iter().any(|i| table.strip_prefix(i).is_some_and(|rest| rest.is_empty() || rest.starts_with('_')))
}

pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The first line of a dump.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub handoff_dump: u32,
    /// The backend it was read from (`sqlite`, `postgres`).
    pub from: String,
}

/// Per table: its rows and their hash.
pub type Tally = BTreeMap<String, TableTally>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTally {
    pub rows: u64,
    pub sha256: String,
}

/// The tables where `found` is not `expected`, in words.
pub fn differences(expected: &Tally, found: &Tally) -> Vec<String> {
    let mut names: Vec<&String> = expected.keys().chain(found.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (expected.get(name), found.get(name)) {
            (Some(e), Some(f)) if e == f => None,
            (Some(e), Some(f)) if e.rows != f.rows => {
                Some(format!("{name}: {} rows expected, {} found", e.rows, f.rows))
            }
            (Some(_), Some(_)) => Some(format!("{name}: same row count, different content")),
            (Some(_), None) => Some(format!("{name}: missing")),
            (None, _) => Some(format!("{name}: not expected")),
        })
        .collect()
}

/// Counts and hashes rows table by table, as they are read.
pub struct Hashes {
    tables: BTreeMap<&'static str, (u64, sha2::Sha256)>,
}

impl Default for Hashes {
    fn default() -> Self {
        Hashes { tables: TABLES.iter().map(|t| (t.name, (0, sha2::Sha256::new()))).collect() }
    }
}

impl Hashes {
    /// Adds one row (its values in the table's column order); rows come in key order.
    pub fn add(&mut self, table: &'static Table, row: &[Value]) -> Result<()> {
        let canonical: Vec<Value> =
            table.columns.iter().zip(row).map(|(c, v)| canonical(table, c, v)).collect::<Result<_>>()?;
        let (rows, hash) = self.tables.get_mut(table.name).expect("every table has its hash");
        *rows += 1;
        hash.update(serde_json::to_vec(&canonical).map_err(|e| StoreError::Invalid(e.to_string()))?);
        hash.update(b"\n");
        Ok(())
    }

    pub fn tally(&self) -> Tally {
        self.tables
            .iter()
            .map(|(name, (rows, hash))| {
                ((*name).to_owned(), TableTally { rows: *rows, sha256: hex::encode(hash.clone().finalize()) })
            })
            .collect()
    }
}

/// One value as the hash sees it: money as its normalized decimal (`10.50` is `10.5`), a time
/// as UTC RFC 3339 read back.
fn canonical(table: &Table, column: &Column, value: &Value) -> Result<Value> {
    let bad = |why: &str| StoreError::Invalid(format!("{}.{}: {why}: {value}", table.name, column.name));
    Ok(match (column.kind, value) {
        (_, Value::Null) => Value::Null,
        (Kind::Money, Value::String(s)) => {
            let amount: rust_decimal::Decimal = s.trim().parse().map_err(|_| bad("not a decimal"))?;
            Value::String(amount.normalize().to_string())
        }
        (Kind::Time, Value::String(s)) => {
            let at: jiff::Timestamp = s.parse().map_err(|_| bad("not an RFC 3339 time"))?;
            Value::String(at.to_string())
        }
        (Kind::Int, Value::Number(n)) if n.is_i64() => value.clone(),
        (Kind::Bool, Value::Bool(_)) | (Kind::Text | Kind::Bytes, Value::String(_)) => value.clone(),
        _ => return Err(bad("not a value of its kind")),
    })
}

/// One line of a dump.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    header: Option<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<Tally>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("the dump: {e}"))
}

/// Writes a dump: the header, the rows table by table, the end line.
pub struct DumpWriter<W: Write> {
    out: W,
    hashes: Hashes,
}

impl<W: Write> DumpWriter<W> {
    pub fn new(mut out: W, from: &str) -> Result<Self> {
        let header = Line { header: Some(Header { handoff_dump: FORMAT, from: from.to_owned() }), ..Line::default() };
        serde_json::to_writer(&mut out, &header).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        Ok(DumpWriter { out, hashes: Hashes::default() })
    }

    /// One row, its values in the table's column order.
    pub fn row(&mut self, table: &'static Table, row: Vec<Value>) -> Result<()> {
        self.hashes.add(table, &row)?;
        let r: Map<String, Value> = table.columns.iter().map(|c| c.name.to_owned()).zip(row).collect();
        serde_json::to_writer(&mut self.out, &Line { t: Some(table.name.to_owned()), r: Some(r), ..Line::default() })
            .map_err(io)?;
        self.out.write_all(b"\n").map_err(io)
    }

    /// The end line; returns the output and what was written.
    pub fn finish(mut self) -> Result<(W, Tally)> {
        let tally = self.hashes.tally();
        serde_json::to_writer(&mut self.out, &Line { end: Some(tally.clone()), ..Line::default() }).map_err(io)?;
        self.out.write_all(b"\n").map_err(io)?;
        self.out.flush().map_err(io)?;
        Ok((self.out, tally))
    }
}

/// Reads a dump row by row, checking it as it goes: known tables in order, every column and
/// no other, and at the end that the rows read are those its end line counted and hashed (a
/// dump cut short or changed is refused).
pub struct DumpReader<R: BufRead> {
    input: R,
    pub header: Header,
    hashes: Hashes,
    /// The index in [`TABLES`] of the last row's table: tables come in that order.
    at: usize,
    line: u64,
    end: Option<Tally>,
    buf: String,
}

/// Longest line read (a row with a large raw body is still far below this).
const MAX_LINE: usize = 256 << 20;

impl<R: BufRead> DumpReader<R> {
    pub fn new(input: R) -> Result<Self> {
        let mut reader = DumpReader {
            input,
            header: Header { handoff_dump: 0, from: String::new() },
            hashes: Hashes::default(),
            at: 0,
            line: 0,
            end: None,
            buf: String::new(),
        };
        let first = reader.read_line()?.ok_or_else(|| io("it is empty"))?;
        let header = first.header.ok_or_else(|| io("its first line is no Handoff dump header"))?;
        if header.handoff_dump != FORMAT {
            return Err(io(format!(
                "it is of format {}, this build reads format {FORMAT}: use the build that wrote it",
                header.handoff_dump
            )));
        }
        reader.header = header;
        Ok(reader)
    }

    fn read_line(&mut self) -> Result<Option<Line>> {
        self.buf.clear();
        let mut bounded = <&mut R as std::io::Read>::take(&mut self.input, MAX_LINE as u64 + 1);
        let n = bounded.read_line(&mut self.buf).map_err(io)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if n > MAX_LINE {
            return Err(io(format!("line {} is longer than {MAX_LINE} bytes", self.line)));
        }
        serde_json::from_str(&self.buf).map(Some).map_err(|e| io(format!("line {}: {e}", self.line)))
    }

    /// The next row, or `None` once the end line was read and checked.
    pub fn next_row(&mut self) -> Result<Option<(&'static Table, Vec<Value>)>> {
        let Some(line) = self.read_line()? else {
            return match self.end {
                Some(_) => Ok(None),
                None => Err(io("it ends before its end line: it was cut short")),
            };
        };
        if self.end.is_some() {
            return Err(io(format!("line {} comes after the end line", self.line)));
        }
        if let Some(end) = line.end {
            let found = self.hashes.tally();
            let differ = differences(&end, &found);
            if !differ.is_empty() {
                return Err(io(format!("its rows are not those its end line counted: {}", differ.join("; "))));
            }
            self.end = Some(end);
            return self.next_row();
        }
        let (Some(name), Some(mut r)) = (line.t, line.r) else {
            return Err(io(format!("line {} is neither a row nor the end", self.line)));
        };
        let at = TABLES
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| io(format!("line {}: no table {name:?} in this build's store", self.line)))?;
        if at < self.at {
            return Err(io(format!("line {}: table {name} comes after {}", self.line, TABLES[self.at].name)));
        }
        self.at = at;
        let table = &TABLES[at];
        let row: Vec<Value> = table
            .columns
            .iter()
            .map(|c| r.remove(c.name).ok_or_else(|| io(format!("line {}: {name} without {}", self.line, c.name))))
            .collect::<Result<_>>()?;
        if let Some(extra) = r.keys().next() {
            return Err(io(format!("line {}: {name}.{extra} is no column this build keeps", self.line)));
        }
        self.hashes.add(table, &row)?;
        Ok(Some((table, row)))
    }

    /// What the end line counted and hashed, once every row was read.
    pub fn tally(&self) -> Option<&Tally> {
        self.end.as_ref()
    }
}

/// What an import did: each table's rows and hash, read back from the store it wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub tally: Tally,
    /// Values of the dump the importing store does not keep (a PostgreSQL hub's claims, in
    /// SQLite): the tables holding them hash differently from the dump, by exactly these.
    pub not_kept: u64,
}

/// An import's refusal of a store that holds rows: nothing is merged.
pub(crate) fn not_empty(table: &Table) -> StoreError {
    StoreError::Schema(format!("the store is not empty (table {} has rows): import only into a new store", table.name))
}

/// An import's last check before its commit: every table read back from the store (`found`)
/// has the count and hash of the rows it wrote (`expected`).
pub(crate) fn check_read_back(expected: &Tally, found: &Tally) -> Result<()> {
    let differ = differences(expected, found);
    if !differ.is_empty() {
        return Err(StoreError::NotCommitted(format!(
            "the store read back differs from the dump, nothing imported: {}",
            differ.join("; ")
        )));
    }
    Ok(())
}

/// A value read from a store as the dump writes it.
pub(crate) fn time(at: Option<jiff::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

pub(crate) fn text(s: Option<String>) -> Value {
    s.map_or(Value::Null, Value::String)
}

pub(crate) fn bytes(b: Option<Vec<u8>>) -> Value {
    b.map_or(Value::Null, |b| Value::String(hex::encode(b)))
}

/// A dump's value as a store writes it.
pub(crate) fn parse_time(table: &Table, column: &Column, v: &Value) -> Result<Option<jiff::Timestamp>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("{}.{}: {s:?} is no time: {e}", table.name, column.name))),
        _ => Err(StoreError::Invalid(format!("{}.{}: {v} is no time", table.name, column.name))),
    }
}

pub(crate) fn parse_bytes(table: &Table, column: &Column, v: &Value) -> Result<Option<Vec<u8>>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => hex::decode(s)
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("{}.{}: not hex: {e}", table.name, column.name))),
        _ => Err(StoreError::Invalid(format!("{}.{}: {v} is no bytes", table.name, column.name))),
    }
}
