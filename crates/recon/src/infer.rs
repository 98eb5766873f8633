//! Which column of an export is which, and how its values are written, decided from the file
//! itself: the header against every known variant of the vendor's export (and the names
//! merchants give saved-search columns), then a sample of rows for date, amount and yes/no
//! formats. The merchant's columns (`--columns`, the contract) win over anything inferred.
//! Every choice carries its reason, for `reconcile --explain` and the run's summary; a required
//! column that is missing or ambiguous stops the run, naming what was looked for and found.

use std::fmt::Write as _;
use std::path::Path;

use csv::ByteRecord;
use jiff::tz::TimeZone;

use crate::input::{self, Format, InputError, Table, Wanted};
use crate::presets::{Candidate, Columns, Field, Known, Preset};
use crate::values::{Amounts, DateEvidence, DateReader, Zone, flag};
use crate::{Input, ReconError};

/// Rows read to infer formats from (the day order may read on, until a value decides it).
const SAMPLE_ROWS: usize = 2000;

/// One field's column, and why.
#[derive(Debug, Clone)]
pub struct Choice {
    pub field: Field,
    pub column: String,
    pub why: String,
}

/// An input's columns and value formats, resolved.
#[derive(Debug, Clone)]
pub struct Layout {
    pub input: String,
    pub file: String,
    pub preset: Preset,
    pub why_preset: String,
    pub format: Format,
    pub delimiter: u8,
    /// Concrete column names and status values.
    pub columns: Columns,
    /// How each date column is read, by column name.
    pub dates: Vec<(String, DateReader)>,
    pub amounts: Amounts,
    pub amounts_why: String,
    /// The fulfilled column holds yes/no rather than status values.
    pub fulfilled_is_flag: bool,
    pub choices: Vec<Choice>,
}

impl Layout {
    /// The choices in words, one line each.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let format = match self.format {
            Format::Jsonl => "JSON lines".to_owned(),
            _ => match self.delimiter {
                b'\t' => "tab-separated".to_owned(),
                b',' => "comma-separated".to_owned(),
                d => format!("separated by {:?}", d as char),
            },
        };
        let _ = writeln!(s, "{} ({}): {}, {format}", self.input, self.file, self.why_preset);
        for c in &self.choices {
            let _ = writeln!(s, "  {:<17} {:<28} {}", c.field.words(), format!("`{}`", c.column), c.why);
        }
        if self.choices.iter().any(|c| is_amount(c.field)) {
            let _ = writeln!(s, "  {:<17} {:<28} {}", "amounts", self.amounts.words(), self.amounts_why);
        }
        s
    }
}

fn is_amount(f: Field) -> bool {
    matches!(f, Field::Total | Field::Add | Field::Subtract | Field::AmountRefunded)
}

fn is_date(f: Field) -> bool {
    matches!(f, Field::CreatedAt | Field::UpdatedAt | Field::FulfilledAt | Field::CancelledAt)
}

/// The header and the first rows of a file.
struct Sample {
    names: Vec<String>,
    rows: Vec<ByteRecord>,
}

impl Sample {
    fn position(&self, name: &str) -> Option<usize> {
        let names = &self.names;
        names.iter().position(|n| n == name).or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(name)))
    }

    fn values(&self, at: usize) -> impl Iterator<Item = &[u8]> {
        self.rows.iter().filter_map(move |r| r.get(at)).map(<[u8]>::trim_ascii).filter(|v| !v.is_empty())
    }

    fn has_values(&self, at: usize) -> bool {
        self.values(at).next().is_some()
    }
}

fn columns_error(input: &Input, reason: String) -> ReconError {
    ReconError::Columns { input: input.name.clone(), reason }
}

/// Resolves an input's columns and formats from its file.
pub fn layout(input: &Input) -> Result<Layout, ReconError> {
    let over = &input.columns;
    let format = over.format.unwrap_or_else(|| Format::of(&input.path));
    let delimiter = match (format, over.format) {
        (Format::Tsv, _) => b'\t',
        (Format::Csv, Some(_)) => b',',
        (Format::Csv, None) => input::delimiter(&input.path)?,
        (Format::Jsonl, _) => b',',
    };
    let sample = sample(&input.path, format, delimiter)?;
    let given = over.preset.or(input.preset);
    let presets: Vec<Preset> = match given {
        Some(p) => vec![p],
        None => {
            let default = input.default_preset();
            std::iter::once(default)
                .chain(Preset::ALL.into_iter().filter(|p| *p != default && p.role() == input.role))
                .collect()
        }
    };
    let mut best: Option<(usize, Preset, Vec<Choice>)> = None;
    let mut first_error = None;
    for preset in &presets {
        match choose(input, *preset, &sample) {
            Ok(choices) => {
                let found = choices.len();
                if best.as_ref().is_none_or(|(n, _, _)| found > *n) {
                    best = Some((found, *preset, choices));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((found, preset, mut choices)) = best else {
        return Err(columns_error(input, first_error.expect("at least one preset was tried")));
    };
    let why_preset = match (given, presets.len()) {
        (Some(_), _) => format!("preset {} (as given)", preset.name()),
        (None, 1) => format!("preset {}", preset.name()),
        (None, _) => format!("preset {} ({found} of its columns found; presets tried: {})", preset.name(), {
            presets.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
        }),
    };
    let known = preset.known();
    let mut columns = concrete(&known, over);
    for c in &choices {
        c.field.set(&mut columns, c.column.clone());
    }

    let mut dates = Vec::new();
    for c in choices.iter_mut().filter(|c| is_date(c.field)) {
        if dates.iter().any(|(name, _)| *name == c.column) {
            continue;
        }
        let (reader, why) = date_reader(input, &c.column, &sample, format, delimiter)?;
        c.why = format!("{}; {why}", c.why);
        dates.push((c.column.clone(), reader));
    }
    let (amounts, amounts_why) = match over.decimal {
        Some(d) => {
            if !matches!(d, '.' | ',') {
                return Err(columns_error(input, format!("decimal separator must be '.' or ',', not {d:?}")));
            }
            (Amounts { decimal: d as u8, thousands: over.thousands.map(|t| t as u8) }, "as the columns say".to_owned())
        }
        None => {
            let at: Vec<usize> =
                choices.iter().filter(|c| is_amount(c.field)).filter_map(|c| sample.position(&c.column)).collect();
            let values = at.iter().flat_map(|&i| sample.values(i));
            let amounts = Amounts::infer(values);
            (amounts, format!("from the values of the first {} rows", sample.rows.len()))
        }
    };
    let mut fulfilled_is_flag = false;
    if let Some(c) = choices.iter_mut().find(|c| c.field == Field::FulfilledStatus)
        && let Some(at) = sample.position(&c.column)
        && sample.has_values(at)
        && sample.values(at).all(|v| flag(v).is_some())
    {
        fulfilled_is_flag = true;
        c.why = format!("{}; yes/no values", c.why);
    }
    Ok(Layout {
        input: input.name.clone(),
        file: input.path.display().to_string(),
        preset,
        why_preset,
        format,
        delimiter,
        columns,
        dates,
        amounts,
        amounts_why,
        fulfilled_is_flag,
        choices,
    })
}

/// The preset's status values and system, with the merchant's columns over them.
fn concrete(known: &Known, over: &Columns) -> Columns {
    let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| (*s).to_owned()).collect());
    let base = Columns {
        system: Some(known.system.to_owned()),
        format: Some(known.format),
        fulfilled_values: list(known.fulfilled_values),
        closed_values: list(known.closed_values),
        refunded_values: list(known.refunded_values),
        failed_values: list(known.failed_values),
        reference_strip: known.reference_strip.map(str::to_owned),
        ..Columns::default()
    };
    let mut names_cleared = over.clone();
    // Column names come from the choices; the lists of added and subtracted amounts too.
    for f in FIELDS {
        clear(f, &mut names_cleared);
    }
    base.with(names_cleared)
}

const FIELDS: [Field; 16] = [
    Field::Id,
    Field::Reference,
    Field::CreatedAt,
    Field::UpdatedAt,
    Field::Email,
    Field::Currency,
    Field::Total,
    Field::Add,
    Field::Subtract,
    Field::Lines,
    Field::FulfilledStatus,
    Field::FulfilledAt,
    Field::ClosedStatus,
    Field::CancelledAt,
    Field::AmountRefunded,
    Field::Captured,
];

fn clear(f: Field, c: &mut Columns) {
    match f {
        Field::Id => c.id = None,
        Field::Reference => c.reference = None,
        Field::CreatedAt => c.created_at = None,
        Field::UpdatedAt => c.updated_at = None,
        Field::Email => c.email = None,
        Field::Currency => c.currency = None,
        Field::Total => c.total = None,
        Field::Add => c.add = None,
        Field::Subtract => c.subtract = None,
        Field::Lines => c.lines = None,
        Field::FulfilledStatus => c.fulfilled_status = None,
        Field::FulfilledAt => c.fulfilled_at = None,
        Field::ClosedStatus => c.closed_status = None,
        Field::CancelledAt => c.cancelled_at = None,
        Field::AmountRefunded => c.amount_refunded = None,
        Field::Captured => c.captured = None,
    }
}

/// Each field's column under `preset`, or why the file does not fit it.
fn choose(input: &Input, preset: Preset, sample: &Sample) -> Result<Vec<Choice>, String> {
    let over = &input.columns;
    let known = preset.known();
    let mut choices = Vec::new();
    let seen = || sample.names.join(", ");
    // The merchant's names first: they must be in the file.
    for f in FIELDS {
        let named: Vec<String> = match f {
            Field::Add => over.add.clone().unwrap_or_default(),
            Field::Subtract => over.subtract.clone().unwrap_or_default(),
            _ => f.named(over).map(str::to_owned).into_iter().collect(),
        };
        for name in named {
            let Some(at) = sample.position(&name) else {
                return Err(format!(
                    "the columns name {name:?} for {}, but the file has no such column (its columns: {})",
                    f.key(),
                    seen()
                ));
            };
            choices.push(Choice { field: f, column: sample.names[at].clone(), why: "named in the columns".into() });
        }
    }
    for s in known.slots {
        let named_by_merchant = match s.field {
            Field::Add => over.add.is_some(),
            Field::Subtract => over.subtract.is_some(),
            f => f.named(over).is_some(),
        };
        if named_by_merchant {
            continue;
        }
        if let Some(choice) = pick(s.field, s.candidates, sample)? {
            choices.push(choice);
        }
    }
    for f in FIELDS.into_iter().filter(|f| f.required(input.role)) {
        if !choices.iter().any(|c| c.field == f) {
            let looked: Vec<&str> =
                known.slots.iter().filter(|s| s.field == f).flat_map(|s| s.candidates.iter().map(|c| c.name)).collect();
            return Err(format!(
                "no {} column for preset {}: looked for {}; the file has {} (name it as `{}` in the columns)",
                f.words(),
                preset.name(),
                looked.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
                seen(),
                f.key()
            ));
        }
    }
    Ok(choices)
}

/// The candidate to use: the best rank present in the file, preferring one with values; two of
/// one rank is ambiguous.
fn pick(field: Field, candidates: &[Candidate], sample: &Sample) -> Result<Option<Choice>, String> {
    let present: Vec<(&Candidate, usize)> =
        candidates.iter().filter_map(|c| sample.position(c.name).map(|at| (c, at))).collect();
    let Some(&(first, _)) = present.first() else { return Ok(None) };
    let with_values: Vec<&(&Candidate, usize)> = present.iter().filter(|(_, at)| sample.has_values(*at)).collect();
    let pool: Vec<&(&Candidate, usize)> = match with_values.is_empty() {
        true => present.iter().filter(|(c, _)| c.rank == first.rank).collect(),
        false => {
            let rank = with_values[0].0.rank;
            with_values.into_iter().filter(|(c, _)| c.rank == rank).collect()
        }
    };
    if pool.len() > 1 {
        let names: Vec<String> = pool.iter().map(|(_, at)| format!("{:?}", sample.names[*at])).collect();
        return Err(format!(
            "the {} column is ambiguous: {} could each be it; name one as `{}` in the columns",
            field.words(),
            names.join(" and "),
            field.key()
        ));
    }
    let (chosen, at) = *pool[0];
    let mut why = chosen.source.to_owned();
    let skipped: Vec<String> = present
        .iter()
        .filter(|(c, _)| c.rank < chosen.rank)
        .map(|(_, at)| format!("{:?} has no values", sample.names[*at]))
        .collect();
    if !skipped.is_empty() {
        why = format!("{why} ({})", skipped.join(", "));
    }
    Ok(Some(Choice { field, column: sample.names[at].clone(), why }))
}

/// How a date column is read, and why.
fn date_reader(
    input: &Input,
    column: &str,
    sample: &Sample,
    format: Format,
    delimiter: u8,
) -> Result<(DateReader, String), ReconError> {
    let over = &input.columns;
    let says_utc = column.to_ascii_uppercase().contains("UTC");
    let (tz, zone_why) = match (&over.timezone, says_utc) {
        (_, true) => (TimeZone::UTC, "UTC, as its name says".to_owned()),
        (Some(name), false) => {
            let tz = TimeZone::get(name).map_err(|e| columns_error(input, format!("time zone {name:?}: {e}")))?;
            (tz, format!("times without an offset in {name}"))
        }
        (None, false) => (TimeZone::UTC, "times without an offset in UTC (no --timezone)".to_owned()),
    };
    let zone = Zone::new(tz);
    if let Some(f) = &over.date_format {
        return Ok((DateReader::Format { format: f.clone(), zone }, format!("dates as {f:?}; {zone_why}")));
    }
    let at = sample.position(column).expect("a chosen column is in the file");
    let mut evidence = DateEvidence::default();
    sample.values(at).for_each(|v| evidence.add(v));
    let mut read_on = false;
    if !evidence.decided() && evidence.open.is_some() {
        // The sample cannot tell M/D from D/M: read the column on until a value does.
        read_on = true;
        let wanted = [Wanted { name: column.to_owned(), required: true }];
        let mut table = Table::open(&input.path, format, delimiter, &wanted)?;
        let mut record = ByteRecord::new();
        loop {
            match table.next(&mut record, &wanted) {
                Ok(None) => break,
                Ok(Some(row)) => evidence.add(row.get(0)),
                Err(Ok(_)) => continue,
                Err(Err(e)) => return Err(e.into()),
            }
            if evidence.decided() {
                break;
            }
        }
    }
    let order = evidence.order().map_err(|reason| {
        columns_error(
            input,
            format!(
                "column {column:?}: {reason}; set its date_format in the columns (`[{}] date_format = \"%m/%d/%Y\"` for month first, \"%d/%m/%Y\" for day first)",
                input.name
            ),
        )
    })?;
    let decided_by = match (&evidence.day_first, &evidence.month_first) {
        (Some(v), _) | (None, Some(v)) => {
            format!(" (decided by {v:?}{})", if read_on { ", past the first rows" } else { "" })
        }
        _ => String::new(),
    };
    let time = match (evidence.values, evidence.with_time) {
        (0, _) => " (no values in the first rows)",
        (_, 0) => ", no time (read as the day's last second)",
        _ => "",
    };
    let zone_why = match evidence.with_offset == evidence.values - evidence.unreadable && evidence.values > 0 {
        true => "each with its offset".to_owned(),
        false => zone_why,
    };
    Ok((DateReader::Numeric { order, zone }, format!("dates {}{decided_by}{time}; {zone_why}", order.words())))
}

/// The header and first rows of a file.
fn sample(path: &Path, format: Format, delimiter: u8) -> Result<Sample, InputError> {
    let (names, rows) = input::sample(path, format, delimiter, SAMPLE_ROWS)?;
    Ok(Sample { names, rows })
}
