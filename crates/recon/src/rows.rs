//! Export rows into compact records, in batches: dates and amounts parsed as the input's
//! columns say, text kept in one buffer per batch so that a row costs no allocation.

use std::path::Path;
use std::str::FromStr;

use csv::ByteRecord;
use handoff_model::Currency;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;

use crate::input::{BadRow, BadRows, Format, InputError, Row, Table, Wanted};
use crate::presets::{Columns, Role};

/// Seconds since the Unix epoch; [`NONE`] when unknown. Exports carry no sub-second times.
pub type Ts = i64;
pub const NONE: Ts = i64::MIN;

/// Records per batch sent from a reader to the join.
const BATCH_RECORDS: usize = 4096;

pub fn ts(t: Ts) -> Option<Timestamp> {
    (t != NONE).then(|| Timestamp::from_second(t).expect("parsed from a valid time"))
}

/// A piece of a batch's text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

impl Span {
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
}

#[derive(Debug)]
pub enum Rec {
    /// One row of a channel export: an order, or one line of it.
    Channel {
        system: u8,
        reference: Span,
        placed: Ts,
        updated: Ts,
        email: Span,
        currency: Option<Currency>,
        total: Option<Decimal>,
        /// This row's share of the total, where rows add up to it.
        items: Option<Decimal>,
        lines: u32,
        fulfilled: Ts,
        closed: Ts,
    },
    Payment {
        id: Span,
        reference: Span,
        at: Ts,
        amount: Decimal,
        currency: Currency,
        email: Span,
        refunded: bool,
    },
    Erp {
        id: Span,
        reference: Span,
        at: Ts,
        total: Option<Decimal>,
        currency: Option<Currency>,
        lines: Option<u32>,
        email: Span,
        fulfilled: Ts,
        cancelled: Ts,
    },
    /// An ERP fulfillment of the record `erp_id`.
    Shipment {
        erp_id: Span,
        at: Ts,
    },
}

#[derive(Debug, Default)]
pub struct Batch {
    text: Vec<u8>,
    pub recs: Vec<Rec>,
    pub rows: u64,
    pub bad: BadRows,
    /// Rows read and deliberately left out (a payment not captured).
    pub skipped: u64,
}

impl Batch {
    pub fn text(&self, span: Span) -> &str {
        let bytes = &self.text[span.start as usize..(span.start + span.len) as usize];
        // Only whole UTF-8 fields (or their lossy copies) are pushed.
        std::str::from_utf8(bytes).expect("batch text is UTF-8")
    }

    fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.text.len() as u32;
        match std::str::from_utf8(bytes) {
            Ok(_) => self.text.extend_from_slice(bytes),
            Err(_) => self.text.extend_from_slice(String::from_utf8_lossy(bytes).as_bytes()),
        }
        Span { start, len: self.text.len() as u32 - start }
    }

    fn push_lower(&mut self, bytes: &[u8]) -> Span {
        let span = self.push(bytes);
        self.text[span.start as usize..].make_ascii_lowercase();
        span
    }

    fn push_reference(&mut self, bytes: &[u8], strip: Option<&str>, prefix: Option<&str>) -> Span {
        let bytes = strip.and_then(|s| bytes.strip_prefix(s.as_bytes())).unwrap_or(bytes).trim_ascii();
        match prefix {
            Some(p) if !bytes.is_empty() && !bytes.starts_with(p.as_bytes()) => {
                let start = self.text.len() as u32;
                self.text.extend_from_slice(p.as_bytes());
                let rest = self.push(bytes);
                Span { start, len: rest.len + p.len() as u32 }
            }
            _ => self.push(bytes),
        }
    }
}

/// How dates are read.
#[derive(Debug, Clone)]
pub struct Dates {
    format: Option<String>,
    tz: TimeZone,
}

impl Dates {
    pub fn new(format: Option<String>, timezone: Option<&str>) -> Result<Dates, String> {
        let tz = match timezone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| format!("time zone {name:?}: {e}"))?,
        };
        Ok(Dates { format, tz })
    }

    pub fn parse(&self, field: &[u8]) -> Result<Ts, String> {
        let text = std::str::from_utf8(field).map_err(|_| "a date that is not UTF-8".to_owned())?;
        let parsed = match &self.format {
            Some(format) => self.strtime(format, text),
            None => iso(field).map(|(dt, offset)| match offset {
                Some(secs) => Ok(utc_seconds(dt) - secs as i64),
                None if self.tz == TimeZone::UTC => Ok(utc_seconds(dt)),
                None => dt.to_zoned(self.tz.clone()).map(|z| z.timestamp().as_second()),
            }),
        };
        match parsed {
            Some(Ok(t)) => Ok(t),
            _ => Err(format!("unreadable date {text:?}")),
        }
    }

    fn strtime(&self, format: &str, text: &str) -> Option<Result<Ts, jiff::Error>> {
        let tm = jiff::fmt::strtime::parse(format, text).ok()?;
        if tm.offset().is_some() {
            return Some(tm.to_timestamp().map(|t| t.as_second()));
        }
        let dt = tm.to_datetime().or_else(|_| tm.to_date().map(|d| d.to_datetime(jiff::civil::Time::midnight())));
        Some(dt.and_then(|dt| dt.to_zoned(self.tz.clone())).map(|z| z.timestamp().as_second()))
    }
}

/// `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z | [ ]±HH[:]MM]`, by hand: it is most of a reconcile's
/// parsing time. The offset is in seconds east of UTC.
fn iso(b: &[u8]) -> Option<(DateTime, Option<i32>)> {
    fn num(b: &[u8]) -> Option<i32> {
        b.iter().try_fold(0i32, |n, &c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as i32))
    }
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' {
        return None;
    }
    let (y, mo, d, h, mi) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?, num(&b[11..13])?, num(&b[14..16])?);
    let mut rest = &b[16..];
    let mut sec = 0;
    if rest.first() == Some(&b':') && rest.len() >= 3 {
        sec = num(&rest[1..3])?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            rest = &rest[1 + digits..];
        }
    }
    let rest = rest.trim_ascii_start();
    let offset = match rest {
        [] => None,
        [b'Z'] | b"UTC" => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let tail: Vec<u8> = tail.iter().copied().filter(|c| *c != b':').collect();
            if tail.len() != 4 {
                return None;
            }
            let secs = num(&tail[0..2])? * 3600 + num(&tail[2..4])? * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    let dt = DateTime::new(y as i16, mo as i8, d as i8, h as i8, mi as i8, sec as i8, 0).ok()?;
    Some((dt, offset))
}

/// Seconds since the epoch of a civil time read as UTC, by arithmetic (days from civil, after
/// H. Hinnant): a time zone lookup per field would be most of the parsing time.
fn utc_seconds(dt: DateTime) -> Ts {
    let (y, m, d) = (dt.year() as i64, dt.month() as i64, dt.day() as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + dt.hour() as i64 * 3600 + dt.minute() as i64 * 60 + dt.second() as i64
}

/// How amounts are read.
#[derive(Debug, Clone, Copy)]
pub struct Amounts {
    decimal: u8,
    thousands: Option<u8>,
}

impl Amounts {
    pub fn parse(&self, field: &[u8]) -> Result<Decimal, String> {
        let plain = self.decimal == b'.' && self.thousands.is_none();
        let parsed = if plain {
            std::str::from_utf8(field).ok().and_then(|s| Decimal::from_str(s).ok())
        } else {
            let mut s = String::with_capacity(field.len());
            for &c in field {
                match c {
                    c if Some(c) == self.thousands => {}
                    c if c == self.decimal => s.push('.'),
                    c => s.push(c as char),
                }
            }
            Decimal::from_str(&s).ok()
        };
        parsed.ok_or_else(|| format!("unreadable amount {:?}", String::from_utf8_lossy(field)))
    }
}

/// The wanted list and where each of the reader's fields sits in it.
#[derive(Default)]
struct Fields {
    wanted: Vec<Wanted>,
}

impl Fields {
    fn want(&mut self, name: &Option<String>, required: bool) -> Option<usize> {
        let name = name.as_ref()?;
        if let Some(i) = self.wanted.iter().position(|w| w.name == *name) {
            self.wanted[i].required |= required;
            return Some(i);
        }
        self.wanted.push(Wanted { name: name.clone(), required });
        Some(self.wanted.len() - 1)
    }
}

struct At {
    id: Option<usize>,
    reference: Option<usize>,
    created: Option<usize>,
    updated: Option<usize>,
    email: Option<usize>,
    currency: Option<usize>,
    total: Option<usize>,
    add: Vec<usize>,
    subtract: Vec<usize>,
    lines: Option<usize>,
    fulfilled_status: Option<usize>,
    fulfilled_at: Option<usize>,
    closed_status: Option<usize>,
    cancelled_at: Option<usize>,
    amount_refunded: Option<usize>,
    captured: Option<usize>,
}

/// Reads one export and sends its records to the join in batches.
pub struct Reader {
    role: Role,
    system: u8,
    columns: Columns,
    fields: Fields,
    at: At,
    dates: Dates,
    amounts: Amounts,
}

fn missing(name: &str) -> String {
    format!("the reader needs a {name} column; name it in the columns")
}

impl Reader {
    pub fn new(role: Role, system: u8, columns: Columns) -> Result<Reader, String> {
        let mut f = Fields::default();
        let c = &columns;
        let needs_id = matches!(role, Role::Payments | Role::Erp);
        let at = At {
            id: f.want(&c.id, needs_id),
            reference: f.want(&c.reference, matches!(role, Role::Channel | Role::ErpFulfillments)),
            created: f.want(&c.created_at, true),
            updated: f.want(&c.updated_at, false),
            email: f.want(&c.email, false),
            currency: f.want(&c.currency, role == Role::Payments),
            total: f.want(&c.total, role == Role::Payments),
            add: c.add.iter().flatten().filter_map(|n| f.want(&Some(n.clone()), false)).collect(),
            subtract: c.subtract.iter().flatten().filter_map(|n| f.want(&Some(n.clone()), false)).collect(),
            lines: f.want(&c.lines, false),
            fulfilled_status: f.want(&c.fulfilled_status, false),
            fulfilled_at: f.want(&c.fulfilled_at, false),
            closed_status: f.want(&c.closed_status, false),
            cancelled_at: f.want(&c.cancelled_at, false),
            amount_refunded: f.want(&c.amount_refunded, false),
            captured: f.want(&c.captured, false),
        };
        if needs_id && at.id.is_none() {
            return Err(missing("record id (`id`)"));
        }
        if at.created.is_none() {
            return Err(missing("created time (`created_at`)"));
        }
        if matches!(role, Role::Channel | Role::ErpFulfillments) && at.reference.is_none() {
            return Err(missing("order reference (`reference`)"));
        }
        if role == Role::Payments && (at.total.is_none() || at.currency.is_none()) {
            return Err(missing("amount (`total`) and currency"));
        }
        let dates = Dates::new(c.date_format.clone(), c.timezone.as_deref())?;
        let decimal = c.decimal.unwrap_or('.');
        if !matches!(decimal, '.' | ',') {
            return Err(format!("decimal separator must be '.' or ',', not {decimal:?}"));
        }
        let amounts = Amounts { decimal: decimal as u8, thousands: c.thousands.map(|t| t as u8) };
        Ok(Reader { role, system, columns, fields: f, at, dates, amounts })
    }

    /// Reads `path` to the end, handing batches to `send` (which says `false` when nobody
    /// listens any more). Only a file that cannot be read at all (or lacks a required column)
    /// is an error; bad rows go in the batches.
    pub fn run(&self, path: &Path, mut send: impl FnMut(Batch) -> bool) -> Result<(), InputError> {
        let format = self.columns.format.unwrap_or_else(|| Format::of(path));
        let mut table = Table::open(path, format, &self.fields.wanted)?;
        let mut record = ByteRecord::new();
        let mut batch = Batch::default();
        let file = table.file.clone();
        loop {
            match table.next(&mut record, &self.fields.wanted) {
                Ok(None) => break,
                Ok(Some(row)) => {
                    batch.rows += 1;
                    if let Err(reason) = self.record(&row, &mut batch) {
                        batch.bad.push(BadRow { file: file.clone(), line: row.line, reason });
                    }
                }
                Err(Ok(bad)) => {
                    batch.rows += 1;
                    batch.bad.push(bad);
                }
                Err(Err(e)) => return Err(e),
            }
            if batch.recs.len() >= BATCH_RECORDS || batch.rows as usize >= 4 * BATCH_RECORDS {
                // The join hangs up only when the run is failing anyway.
                if !send(std::mem::take(&mut batch)) {
                    return Ok(());
                }
            }
        }
        send(batch);
        Ok(())
    }

    fn time(&self, row: &Row<'_>, at: Option<usize>) -> Result<Ts, String> {
        match at.map(|i| row.get(i)) {
            None | Some(b"") => Ok(NONE),
            Some(field) => self.dates.parse(field),
        }
    }

    fn amount(&self, row: &Row<'_>, at: Option<usize>) -> Result<Option<Decimal>, String> {
        match at.map(|i| row.get(i)) {
            None | Some(b"") => Ok(None),
            Some(field) => self.amounts.parse(field).map(Some),
        }
    }

    fn currency(row: &Row<'_>, at: Option<usize>) -> Result<Option<Currency>, String> {
        match at.map(|i| row.get(i)) {
            None | Some(b"") => Ok(None),
            Some(field) => std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| format!("unreadable currency {:?}", String::from_utf8_lossy(field))),
        }
    }

    fn is(row: &Row<'_>, at: Option<usize>, values: &Option<Vec<String>>) -> bool {
        let Some(field) = at.map(|i| row.get(i)) else { return false };
        !field.is_empty() && values.iter().flatten().any(|v| v.as_bytes().eq_ignore_ascii_case(field))
    }

    fn reference(&self, row: &Row<'_>, batch: &mut Batch) -> Span {
        let c = &self.columns;
        match self.at.reference {
            Some(i) => batch.push_reference(row.get(i), c.reference_strip.as_deref(), c.reference_prefix.as_deref()),
            None => Span::default(),
        }
    }

    fn text(row: &Row<'_>, at: Option<usize>, batch: &mut Batch) -> Span {
        at.map_or(Span::default(), |i| batch.push(row.get(i)))
    }

    fn email(row: &Row<'_>, at: Option<usize>, batch: &mut Batch) -> Span {
        at.map_or(Span::default(), |i| batch.push_lower(row.get(i)))
    }

    fn record(&self, row: &Row<'_>, batch: &mut Batch) -> Result<(), String> {
        let at = &self.at;
        let c = &self.columns;
        let created = self.time(row, at.created)?;
        let updated = self.time(row, at.updated)?;
        let latest = if updated != NONE { updated } else { created };
        match self.role {
            Role::Channel => {
                let mut items = None;
                for (&i, sign) in at.add.iter().map(|i| (i, 1)).chain(at.subtract.iter().map(|i| (i, -1))) {
                    if let Some(a) = self.amount(row, Some(i))? {
                        *items.get_or_insert(Decimal::ZERO) += if sign > 0 { a } else { -a };
                    }
                }
                let lines = match at.lines.map(|i| row.get(i)) {
                    Some(f) if !f.is_empty() => parse_count(f)?,
                    _ => 1,
                };
                let fulfilled = match self.time(row, at.fulfilled_at)? {
                    NONE if Self::is(row, at.fulfilled_status, &c.fulfilled_values) => latest,
                    t => t,
                };
                let closed = match self.time(row, at.cancelled_at)? {
                    NONE if Self::is(row, at.closed_status, &c.closed_values) => latest,
                    t => t,
                };
                let total = self.amount(row, at.total)?;
                let currency = Self::currency(row, at.currency)?;
                let reference = self.reference(row, batch);
                if reference.is_empty() {
                    return Err(format!("no order reference in {:?}", c.reference.as_deref().unwrap_or_default()));
                }
                let email = Self::email(row, at.email, batch);
                batch.recs.push(Rec::Channel {
                    system: self.system,
                    reference,
                    placed: created,
                    updated,
                    email,
                    currency,
                    total,
                    items,
                    lines,
                    fulfilled,
                    closed,
                });
            }
            Role::Payments => {
                if Self::is(row, at.closed_status, &c.failed_values)
                    || at.captured.is_some_and(|i| row.get(i).eq_ignore_ascii_case(b"false"))
                {
                    batch.skipped += 1;
                    return Ok(());
                }
                if created == NONE {
                    return Err("no capture time".into());
                }
                let amount = self.amount(row, at.total)?.ok_or("no amount")?;
                let currency = Self::currency(row, at.currency)?.ok_or("no currency")?;
                let refunded = Self::is(row, at.closed_status, &c.closed_values)
                    || self.amount(row, at.amount_refunded)?.is_some_and(|r| r >= amount && r > Decimal::ZERO);
                let id = Self::text(row, at.id, batch);
                if id.is_empty() {
                    return Err("no payment id".into());
                }
                let reference = self.reference(row, batch);
                let email = Self::email(row, at.email, batch);
                batch.recs.push(Rec::Payment { id, reference, at: created, amount, currency, email, refunded });
            }
            Role::Erp => {
                if created == NONE {
                    return Err("no creation time".into());
                }
                let fulfilled = match self.time(row, at.fulfilled_at)? {
                    NONE if Self::is(row, at.fulfilled_status, &c.fulfilled_values) => latest,
                    t => t,
                };
                let cancelled = match self.time(row, at.cancelled_at)? {
                    NONE if Self::is(row, at.closed_status, &c.closed_values) => latest,
                    t => t,
                };
                let total = self.amount(row, at.total)?;
                let currency = Self::currency(row, at.currency)?;
                let lines = match at.lines.map(|i| row.get(i)) {
                    Some(f) if !f.is_empty() => Some(parse_count(f)?),
                    _ => None,
                };
                let id = Self::text(row, at.id, batch);
                if id.is_empty() {
                    return Err("no record id".into());
                }
                let reference = self.reference(row, batch);
                let email = Self::email(row, at.email, batch);
                batch.recs.push(Rec::Erp {
                    id,
                    reference,
                    at: created,
                    total,
                    currency,
                    lines,
                    email,
                    fulfilled,
                    cancelled,
                });
            }
            Role::ErpFulfillments => {
                if created == NONE {
                    return Err("no fulfillment time".into());
                }
                let erp_id = self.reference(row, batch);
                if erp_id.is_empty() {
                    return Err("names no ERP record".into());
                }
                batch.recs.push(Rec::Shipment { erp_id, at: created });
            }
        }
        Ok(())
    }
}

fn parse_count(field: &[u8]) -> Result<u32, String> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.split('.').next()?.parse().ok())
        .ok_or_else(|| format!("unreadable count {:?}", String::from_utf8_lossy(field)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Ts {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn dates_of_every_preset() {
        let auto = Dates::new(None, None).unwrap();
        assert_eq!(auto.parse(b"2026-01-15 10:23:45 -0500").unwrap(), t("2026-01-15T15:23:45Z"));
        assert_eq!(auto.parse(b"2026-01-15T10:23:45+00:00").unwrap(), t("2026-01-15T10:23:45Z"));
        assert_eq!(auto.parse(b"2026-01-15 10:23").unwrap(), t("2026-01-15T10:23:00Z"));
        assert_eq!(auto.parse(b"2026-01-15T10:23:45.123Z").unwrap(), t("2026-01-15T10:23:45Z"));
        assert!(auto.parse(b"15/01/2026").is_err());
        assert!(auto.parse(b"2026-02-30 10:00").is_err());
        for t in ["1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2026-12-31T12:00:00Z", "1969-07-20T20:17:00Z"] {
            let dt: DateTime = t.trim_end_matches('Z').parse().unwrap();
            assert_eq!(utc_seconds(dt), self::t(t), "{t}");
        }
        let netsuite = Dates::new(Some("%m/%d/%Y %I:%M %p".into()), Some("America/New_York")).unwrap();
        assert_eq!(netsuite.parse(b"1/15/2026 10:23 am").unwrap(), t("2026-01-15T15:23:00Z"));
        assert_eq!(netsuite.parse(b"01/15/2026 12:05 PM").unwrap(), t("2026-01-15T17:05:00Z"));
        let day = Dates::new(Some("%d.%m.%Y".into()), None).unwrap();
        assert_eq!(day.parse(b"15.01.2026").unwrap(), t("2026-01-15T00:00:00Z"));
    }

    #[test]
    fn amounts_with_a_decimal_comma() {
        let comma = Amounts { decimal: b',', thousands: Some(b'.') };
        assert_eq!(comma.parse(b"1.234,56").unwrap(), Decimal::from_str("1234.56").unwrap());
        let plain = Amounts { decimal: b'.', thousands: None };
        assert_eq!(plain.parse(b"28.58").unwrap(), Decimal::from_str("28.58").unwrap());
        assert!(plain.parse(b"28,58 EUR").is_err());
    }
}
