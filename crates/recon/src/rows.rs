//! Export rows into compact records, in batches: dates and amounts parsed as the input's
//! columns say, text kept in one buffer per batch so that a row costs no allocation.

use std::path::Path;

use csv::ByteRecord;
use handoff_model::Currency;
use jiff::Timestamp;
use rust_decimal::Decimal;

use crate::infer::Layout;
use crate::input::{BadRow, BadRows, Format, InputError, Row, Table, Wanted};
use crate::presets::{Columns, Role};
use crate::values::{Amounts, DateReader, flag};
pub use crate::values::{NONE, Ts};

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
        /// Cancelled in the channel.
        closed: Ts,
        /// Refunded in the channel: an amount, or in full (`refunded_in_full`), at `refunded_at`.
        refunded: Option<Decimal>,
        refunded_in_full: bool,
        refunded_at: Ts,
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
    /// Checked as UTF-8 once, when a field is pushed: the join reads it without checking again.
    text: String,
    pub recs: Vec<Rec>,
    pub rows: u64,
    pub bad: BadRows,
    /// Rows read and deliberately left out (a payment not captured).
    pub skipped: u64,
    pub signs: Signs,
}

/// Example lines kept per sign of a discount.
const SIGN_LINES: usize = 5;

/// The signs of an input's discounts: the vendors do not say which one theirs carry, so every
/// discount is subtracted as a magnitude, and a report whose rows disagree is flagged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signs {
    pub negative: u64,
    pub positive: u64,
    pub negative_lines: Vec<u64>,
    pub positive_lines: Vec<u64>,
}

impl Signs {
    fn add(&mut self, amount: Decimal, line: u64) {
        let (count, lines) = match amount.is_sign_negative() {
            true => (&mut self.negative, &mut self.negative_lines),
            false => (&mut self.positive, &mut self.positive_lines),
        };
        *count += 1;
        if lines.len() < SIGN_LINES {
            lines.push(line);
        }
    }

    pub fn extend(&mut self, other: &Signs) {
        self.negative += other.negative;
        self.positive += other.positive;
        for (mine, theirs) in
            [(&mut self.negative_lines, &other.negative_lines), (&mut self.positive_lines, &other.positive_lines)]
        {
            mine.extend(theirs.iter().take(SIGN_LINES.saturating_sub(mine.len())));
        }
    }

    /// A warning when the rows disagree: the fewer sign, with counts and example lines.
    pub fn warning(&self, input: &str) -> Option<String> {
        if self.negative == 0 || self.positive == 0 {
            return None;
        }
        let (few, few_n, lines, many, many_n) = match self.negative < self.positive {
            true => ("negative", self.negative, &self.negative_lines, "positive", self.positive),
            false => ("positive", self.positive, &self.positive_lines, "negative", self.negative),
        };
        let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
        Some(format!(
            "{input}: {few_n} discounts are {few} where {many_n} are {many} (lines {}{}); every discount was subtracted as a magnitude: check those rows",
            lines.join(", "),
            if few_n as usize > lines.len() { ", ..." } else { "" }
        ))
    }
}

impl Batch {
    pub fn text(&self, span: Span) -> &str {
        &self.text[span.start as usize..(span.start + span.len) as usize]
    }

    fn push(&mut self, bytes: &[u8]) -> Span {
        let start = self.text.len() as u32;
        match std::str::from_utf8(bytes) {
            Ok(text) => self.text.push_str(text),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(bytes)),
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
                self.text.push_str(p);
                let rest = self.push(bytes);
                Span { start, len: rest.len + p.len() as u32 }
            }
            _ => self.push(bytes),
        }
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
    format: Format,
    delimiter: u8,
    fields: Fields,
    at: At,
    /// How each wanted date column is read, by its index in the wanted list.
    dates: Vec<Option<DateReader>>,
    amounts: Amounts,
    fulfilled_is_flag: bool,
}

impl Reader {
    pub fn new(role: Role, system: u8, layout: Layout) -> Reader {
        let mut f = Fields::default();
        let c = &layout.columns;
        let at = At {
            id: f.want(&c.id, false),
            reference: f.want(&c.reference, false),
            created: f.want(&c.created_at, true),
            updated: f.want(&c.updated_at, false),
            email: f.want(&c.email, false),
            currency: f.want(&c.currency, false),
            total: f.want(&c.total, false),
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
        let mut dates = vec![None; f.wanted.len()];
        for (name, reader) in layout.dates {
            if let Some(i) = f.wanted.iter().position(|w| w.name == name) {
                dates[i] = Some(reader);
            }
        }
        Reader {
            role,
            system,
            columns: layout.columns,
            format: layout.format,
            delimiter: layout.delimiter,
            fields: f,
            at,
            dates,
            amounts: layout.amounts,
            fulfilled_is_flag: layout.fulfilled_is_flag,
        }
    }

    /// Reads `path` to the end, handing batches to `send` (which says `false` when nobody
    /// listens any more). Only a file that cannot be read at all (or lacks a required column)
    /// is an error; bad rows go in the batches.
    pub fn run(mut self, path: &Path, mut send: impl FnMut(Batch) -> bool) -> Result<(), InputError> {
        let mut table = Table::open(path, self.format, self.delimiter, &self.fields.wanted)?;
        let mut record = ByteRecord::new();
        let mut batch = Batch::default();
        let file = table.file.clone();
        loop {
            match table.next(&mut record, &self.fields.wanted) {
                Ok(None) => break,
                Ok(Some(row)) if row.blank => continue,
                Ok(Some(row)) => {
                    batch.rows += 1;
                    if let Err(reason) = self.record(&row, &mut batch) {
                        batch.bad.push(BadRow { file: file.clone(), line: table.line_of_last(), reason });
                    }
                }
                Err(Ok(mut bad)) => {
                    batch.rows += 1;
                    bad.line = table.line_of_last();
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

    fn time(&mut self, row: &Row<'_>, at: Option<usize>) -> Result<Ts, String> {
        let Some(i) = at else { return Ok(NONE) };
        match row.get(i) {
            b"" => Ok(NONE),
            field => self.dates[i].as_mut().expect("every date column has its reader").parse(field),
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

    fn shows_fulfilled(&self, row: &Row<'_>) -> bool {
        match self.at.fulfilled_status.map(|i| row.get(i)) {
            None => false,
            Some(field) if self.fulfilled_is_flag => flag(field) == Some(true),
            Some(_) => Self::is(row, self.at.fulfilled_status, &self.columns.fulfilled_values),
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

    fn record(&mut self, row: &Row<'_>, batch: &mut Batch) -> Result<(), String> {
        let created = self.time(row, self.at.created)?;
        let updated = self.time(row, self.at.updated)?;
        let fulfilled_at = self.time(row, self.at.fulfilled_at)?;
        let cancelled_at = self.time(row, self.at.cancelled_at)?;
        let at = &self.at;
        let c = &self.columns;
        let latest = if updated != NONE { updated } else { created };
        let fulfilled = match fulfilled_at {
            NONE if self.shows_fulfilled(row) => latest,
            t => t,
        };
        let cancelled = match cancelled_at {
            NONE if Self::is(row, at.closed_status, &c.closed_values) => latest,
            t => t,
        };
        match self.role {
            Role::Channel => {
                let mut items = None;
                for &i in &at.add {
                    if let Some(a) = self.amount(row, Some(i))? {
                        *items.get_or_insert(Decimal::ZERO) += a;
                    }
                }
                for &i in &at.subtract {
                    if let Some(a) = self.amount(row, Some(i))? {
                        if !a.is_zero() {
                            batch.signs.add(a, row.line);
                        }
                        *items.get_or_insert(Decimal::ZERO) -= a.abs();
                    }
                }
                let lines = match at.lines.map(|i| row.get(i)) {
                    Some(f) if !f.is_empty() => parse_count(f)?,
                    _ => 1,
                };
                let refunded_in_full = Self::is(row, at.closed_status, &c.refunded_values);
                let refunded = self.amount(row, at.amount_refunded)?.filter(|r| *r > Decimal::ZERO);
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
                    closed: cancelled,
                    refunded,
                    refunded_in_full,
                    // The exports carry no refund time: the row's latest.
                    refunded_at: if refunded_in_full || refunded.is_some() { latest } else { NONE },
                });
            }
            Role::Payments => {
                if Self::is(row, at.closed_status, &c.failed_values)
                    || at.captured.is_some_and(|i| flag(row.get(i)) == Some(false))
                {
                    batch.skipped += 1;
                    return Ok(());
                }
                if created == NONE {
                    return Err("no capture time".into());
                }
                let amount = self.amount(row, at.total)?.ok_or("no amount")?;
                let currency = Self::currency(row, at.currency)?.ok_or("no currency")?;
                let refunded = Self::is(row, at.closed_status, &c.refunded_values)
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
