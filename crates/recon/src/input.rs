//! Opening an export: gzip recognised by its magic bytes, CSV, TSV or JSONL, and each row's
//! wanted fields by column name. Delimited files are split by `simd_csv`'s zero-copy reader
//! (splitting rows is most of a reconcile's reading): a row's fields are read in place, and
//! only a row with a quote in it is unescaped into a copy. A row that cannot be used is a
//! [`BadRow`]: counted, the first few kept with file, line and reason, and never the end of
//! the run.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use csv::ByteRecord;
use serde::{Deserialize, Serialize};

/// Bad rows kept for the report per run; all of them are counted.
pub const MAX_BAD_ROWS_KEPT: usize = 100;
/// Read buffer per input.
const BUFFER_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
}

impl Format {
    /// The format a file's name says (`.csv`, `.tsv`/`.txt`, `.jsonl`/`.ndjson`), after `.gz`.
    pub fn of(path: &Path) -> Format {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        match name.rsplit('.').next() {
            Some("tsv" | "txt" | "tab") => Format::Tsv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => Format::Csv,
        }
    }
}

/// A row of an export that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Bad rows: all counted, the first [`MAX_BAD_ROWS_KEPT`] kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BadRows {
    pub count: u64,
    pub kept: Vec<BadRow>,
}

impl BadRows {
    pub fn push(&mut self, row: BadRow) {
        self.count += 1;
        if self.kept.len() < MAX_BAD_ROWS_KEPT {
            self.kept.push(row);
        }
    }

    pub fn extend(&mut self, other: BadRows) {
        self.count += other.count - other.kept.len() as u64;
        other.kept.into_iter().for_each(|r| self.push(r));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {file}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file} has no column {column:?} (its columns: {found})")]
    MissingColumn { file: String, column: String, found: String },
    #[error("{file}: {reason}")]
    Unreadable { file: String, reason: String },
}

/// Opens a file, decompressing it when it starts with the gzip magic bytes.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::with_capacity(BUFFER_BYTES, File::open(path)?);
    let head = file.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(file);
        return Ok(Box::new(BufReader::with_capacity(BUFFER_BYTES, gz)));
    }
    Ok(Box::new(file))
}

/// A column wanted by a reader: its name, and whether a file without it is refused.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub required: bool,
}

enum Source {
    Delimited(Box<Delimited>),
    Jsonl { lines: Box<dyn BufRead + Send>, buf: String, line: u64 },
}

/// A CSV or TSV file being split into rows, with the line each row starts on.
struct Delimited {
    csv: simd_csv::ZeroCopyReader<Box<dyn BufRead + Send>>,
    quote: u8,
    /// Where the next row starts if no blank line comes before it.
    line: u64,
    /// Bytes a line break takes in this file: 2 where the header line ends with CRLF.
    eol: u64,
    /// The last row read, until its line is settled.
    last: Option<Last>,
    /// The line the last row read starts on, once settled.
    last_line: u64,
}

/// What settles a row's line: the reader skips blank lines without saying so, and a row's
/// borrow of the reader ends only after it has been used.
struct Last {
    /// The reader's position before the row, its blank lines and its line break.
    before: u64,
    len: u64,
    /// Line breaks inside its quoted fields.
    breaks: u64,
}

/// A tab-separated report has no quoting: its quote is a byte no text holds.
const NO_QUOTE: u8 = 0;

impl Delimited {
    fn new(mut reader: Box<dyn BufRead + Send>, format: Format, delimiter: u8) -> io::Result<Delimited> {
        let head = reader.fill_buf()?;
        let crlf = memchr::memchr(b'\n', head).is_some_and(|at| at > 0 && head[at - 1] == b'\r');
        let quote = if format == Format::Tsv { NO_QUOTE } else { b'"' };
        let csv = simd_csv::ZeroCopyReaderBuilder::new()
            .delimiter(delimiter)
            .quote(quote)
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(reader);
        Ok(Delimited { csv, quote, line: 2, eol: if crlf { 2 } else { 1 }, last: None, last_line: 0 })
    }

    /// The line the last row read starts on: the blank lines skipped before it are what the
    /// reader consumed besides the row and its line break.
    fn settle(&mut self) -> u64 {
        if let Some(last) = self.last.take() {
            let rest = (self.csv.position() - last.before).saturating_sub(last.len);
            let blank = rest.saturating_sub(self.eol) / self.eol;
            self.last_line = self.line + blank;
            self.line = self.last_line + 1 + last.breaks;
        }
        self.last_line
    }

    fn header(&mut self) -> Result<Vec<String>, simd_csv::Error> {
        Ok(header_names(self.csv.byte_headers()?.iter()))
    }
}

/// Rows of one export, with the wanted fields found by column name.
pub struct Table {
    pub file: String,
    source: Source,
    /// For each wanted column, its position in a row, if the file has it.
    positions: Vec<Option<usize>>,
    width: usize,
}

/// One row: the wanted fields by their index in the wanted list.
pub struct Row<'a> {
    fields: Fields<'a>,
    positions: &'a [Option<usize>],
    pub line: u64,
    /// A line of nothing but spaces: no row (the reader skips empty lines itself).
    pub blank: bool,
}

enum Fields<'a> {
    /// A row without a quote: each field is its bytes between delimiters.
    InPlace(simd_csv::ZeroCopyByteRecord<'a>),
    Copied(&'a ByteRecord),
}

impl Row<'_> {
    /// The field, trimmed; empty when the column is absent.
    pub fn get(&self, wanted: usize) -> &[u8] {
        let Some(i) = self.positions.get(wanted).copied().flatten() else { return b"" };
        let field = match &self.fields {
            Fields::InPlace(r) => r.get(i),
            Fields::Copied(r) => r.get(i),
        };
        field.unwrap_or_default().trim_ascii()
    }
}

impl Table {
    pub fn open(path: &Path, format: Format, delimiter: u8, wanted: &[Wanted]) -> Result<Table, InputError> {
        let file = path.display().to_string();
        let io = |source| InputError::Io { file: file.clone(), source };
        let reader = open(path).map_err(io)?;
        match format {
            Format::Csv | Format::Tsv => {
                let mut rows = Delimited::new(reader, format, delimiter).map_err(io)?;
                let names = rows.header().map_err(|e| InputError::Unreadable {
                    file: file.clone(),
                    reason: format!("no header row: {e}"),
                })?;
                let positions = locate(&file, &names, wanted)?;
                Ok(Table { file, source: Source::Delimited(Box::new(rows)), positions, width: names.len() })
            }
            Format::Jsonl => Ok(Table {
                file,
                source: Source::Jsonl { lines: reader, buf: String::new(), line: 0 },
                positions: (0..wanted.len()).map(Some).collect(),
                width: wanted.len(),
            }),
        }
    }

    /// The line the last row read starts on, exactly (once that row is no longer borrowed).
    pub fn line_of_last(&mut self) -> u64 {
        match &mut self.source {
            Source::Delimited(rows) => rows.settle(),
            Source::Jsonl { line, .. } => *line,
        }
    }

    /// Reads the next row into `record`; `Ok(None)` at the end. A row that cannot be parsed is
    /// returned as `Err` and reading can go on.
    pub fn next<'a>(
        &'a mut self,
        record: &'a mut ByteRecord,
        wanted: &[Wanted],
    ) -> Result<Option<Row<'a>>, Result<BadRow, InputError>> {
        let (fields, line, blank) = match &mut self.source {
            Source::Delimited(rows) => {
                rows.settle();
                let before = rows.csv.position();
                let row = match rows.csv.read_byte_record() {
                    Ok(None) => return Ok(None),
                    Ok(Some(row)) => row,
                    Err(e) => {
                        let reason = e.to_string();
                        return Err(match e.into_kind() {
                            simd_csv::ErrorKind::Io(source) => Err(InputError::Io { file: self.file.clone(), source }),
                            _ => Ok(BadRow { file: self.file.clone(), line: rows.line, reason }),
                        });
                    }
                };
                let bytes = row.as_slice();
                // Exact unless blank lines come right before the row: `line_of_last` says.
                let line = rows.line;
                // Only a quoted field holds a quote, or a line break.
                let quoted = memchr::memchr(rows.quote, bytes).is_some();
                let breaks = if quoted { memchr::memchr_iter(b'\n', bytes).count() as u64 } else { 0 };
                rows.last = Some(Last { before, len: bytes.len() as u64, breaks });
                let blank = row.len() == 1 && bytes.trim_ascii().is_empty();
                if row.len() != self.width && !blank {
                    return Err(Ok(BadRow {
                        file: self.file.clone(),
                        line,
                        reason: format!("{} fields where the header has {}", row.len(), self.width),
                    }));
                }
                if quoted {
                    record.clear();
                    row.unescaped_iter().for_each(|f| record.push_field(&f));
                    (Fields::Copied(record), line, blank)
                } else {
                    (Fields::InPlace(row), line, blank)
                }
            }
            Source::Jsonl { lines, buf, line } => loop {
                buf.clear();
                *line += 1;
                match lines.read_line(buf) {
                    Ok(0) => return Ok(None),
                    Ok(_) if buf.trim().is_empty() => continue,
                    Ok(_) => {}
                    Err(source) => return Err(Err(InputError::Io { file: self.file.clone(), source })),
                }
                let value: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(buf) {
                    Ok(v) => v,
                    Err(e) => {
                        return Err(Ok(BadRow {
                            file: self.file.clone(),
                            line: *line,
                            reason: format!("not a JSON object: {e}"),
                        }));
                    }
                };
                record.clear();
                for w in wanted {
                    record.push_field(json_text(value.get(&w.name)).as_bytes());
                }
                break (Fields::Copied(record), *line, false);
            },
        };
        Ok(Some(Row { fields, positions: &self.positions, line, blank }))
    }
}

/// The delimiter of a CSV file, from its header line: the most frequent of `,`, `;`, tab
/// and `|` (a European spreadsheet writes `;`).
pub fn delimiter(path: &Path) -> Result<u8, InputError> {
    let io = |source| InputError::Io { file: path.display().to_string(), source };
    let mut line = Vec::new();
    open(path).map_err(io)?.read_until(b'\n', &mut line).map_err(io)?;
    let count = |d: u8| line.iter().filter(|&&c| c == d).count();
    let best = [b',', b';', b'\t', b'|'].into_iter().max_by_key(|&d| (count(d), d == b','));
    Ok(best.filter(|&d| count(d) > 0).unwrap_or(b','))
}

/// A file's column names and its first `rows` rows (for JSONL, the keys of those rows).
pub fn sample(
    path: &Path,
    format: Format,
    delimiter: u8,
    rows: usize,
) -> Result<(Vec<String>, Vec<ByteRecord>), InputError> {
    let file = path.display().to_string();
    let io = |source| InputError::Io { file: file.clone(), source };
    let reader = open(path).map_err(io)?;
    match format {
        Format::Csv | Format::Tsv => {
            let mut table = Delimited::new(reader, format, delimiter).map_err(io)?;
            let names = table
                .header()
                .map_err(|e| InputError::Unreadable { file: file.clone(), reason: format!("no header row: {e}") })?;
            let mut out = Vec::new();
            while out.len() < rows
                && let Ok(Some(row)) = table.csv.read_byte_record()
            {
                let mut record = ByteRecord::new();
                row.unescaped_iter().for_each(|f| record.push_field(&f));
                out.push(record);
            }
            Ok((names, out))
        }
        Format::Jsonl => {
            let mut objects = Vec::new();
            for line in reader.lines().take(rows) {
                let line = line.map_err(io)?;
                if let Ok(v) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&line) {
                    objects.push(v);
                }
            }
            let mut names: Vec<String> = Vec::new();
            for o in &objects {
                for k in o.keys() {
                    if !names.contains(k) {
                        names.push(k.clone());
                    }
                }
            }
            let records = objects
                .iter()
                .map(|o| {
                    let mut r = ByteRecord::new();
                    for n in &names {
                        r.push_field(json_text(o.get(n)).as_bytes());
                    }
                    r
                })
                .collect();
            Ok((names, records))
        }
    }
}

fn json_text(v: Option<&serde_json::Value>) -> std::borrow::Cow<'_, str> {
    match v {
        None | Some(serde_json::Value::Null) => "".into(),
        Some(serde_json::Value::String(s)) => s.as_str().into(),
        Some(other) => other.to_string().into(),
    }
}

fn header_names<'a>(headers: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    headers.map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_owned()).collect()
}

/// Where each wanted column is; an exact name first, then ignoring case.
fn locate(file: &str, names: &[String], wanted: &[Wanted]) -> Result<Vec<Option<usize>>, InputError> {
    wanted
        .iter()
        .map(|w| {
            let at = names
                .iter()
                .position(|n| *n == w.name)
                .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(&w.name)));
            match at {
                None if w.required => Err(InputError::MissingColumn {
                    file: file.to_owned(),
                    column: w.name.clone(),
                    found: names.join(", "),
                }),
                at => Ok(at),
            }
        })
        .collect()
}
