//! Opening an export: gzip recognised by its magic bytes, CSV, TSV or JSONL, and each row's
//! wanted fields by column name. A row that cannot be used is a [`BadRow`]: counted, the first
//! few kept with file, line and reason, and never the end of the run.

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
    Delimited(csv::Reader<Box<dyn BufRead + Send>>),
    Jsonl { lines: Box<dyn BufRead + Send>, buf: String, line: u64 },
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
    record: &'a ByteRecord,
    positions: &'a [Option<usize>],
    pub line: u64,
}

impl Row<'_> {
    /// The field, trimmed; empty when the column is absent.
    pub fn get(&self, wanted: usize) -> &[u8] {
        match self.positions.get(wanted).copied().flatten() {
            Some(i) => self.record.get(i).unwrap_or_default().trim_ascii(),
            None => b"",
        }
    }

    pub fn has(&self, wanted: usize) -> bool {
        self.positions.get(wanted).copied().flatten().is_some()
    }
}

impl Table {
    pub fn open(path: &Path, format: Format, delimiter: u8, wanted: &[Wanted]) -> Result<Table, InputError> {
        let file = path.display().to_string();
        let io = |source| InputError::Io { file: file.clone(), source };
        let reader = open(path).map_err(io)?;
        match format {
            Format::Csv | Format::Tsv => {
                let mut csv = csv::ReaderBuilder::new()
                    .delimiter(delimiter)
                    .flexible(true)
                    .has_headers(true)
                    .quoting(format == Format::Csv)
                    .buffer_capacity(BUFFER_BYTES)
                    .from_reader(reader);
                let headers = csv.byte_headers().map_err(|e| InputError::Unreadable {
                    file: file.clone(),
                    reason: format!("no header row: {e}"),
                })?;
                let names = header_names(headers);
                let positions = locate(&file, &names, wanted)?;
                Ok(Table { file, source: Source::Delimited(csv), positions, width: names.len() })
            }
            Format::Jsonl => Ok(Table {
                file,
                source: Source::Jsonl { lines: reader, buf: String::new(), line: 0 },
                positions: (0..wanted.len()).map(Some).collect(),
                width: wanted.len(),
            }),
        }
    }

    /// Reads the next row into `record`; `Ok(None)` at the end. A row that cannot be parsed is
    /// returned as `Err` and reading can go on.
    pub fn next<'a>(
        &'a mut self,
        record: &'a mut ByteRecord,
        wanted: &[Wanted],
    ) -> Result<Option<Row<'a>>, Result<BadRow, InputError>> {
        let line = match &mut self.source {
            Source::Delimited(csv) => loop {
                match csv.read_byte_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        // A blank line between rows is not a row.
                        if record.len() == 1 && record[0].trim_ascii().is_empty() {
                            continue;
                        }
                        if record.len() != self.width {
                            return Err(Ok(BadRow {
                                file: self.file.clone(),
                                line,
                                reason: format!("{} fields where the header has {}", record.len(), self.width),
                            }));
                        }
                        break line;
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line());
                        if let csv::ErrorKind::Io(_) = e.kind() {
                            let csv::ErrorKind::Io(source) = e.into_kind() else { unreachable!() };
                            return Err(Err(InputError::Io { file: self.file.clone(), source }));
                        }
                        return Err(Ok(BadRow { file: self.file.clone(), line, reason: e.to_string() }));
                    }
                }
            },
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
                break *line;
            },
        };
        Ok(Some(Row { record, positions: &self.positions, line }))
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
            let mut table = Table::open(path, format, delimiter, &[])?;
            let Source::Delimited(csv) = &mut table.source else { unreachable!("a delimited table") };
            let names =
                header_names(csv.byte_headers().map_err(|e| InputError::Unreadable {
                    file: file.clone(),
                    reason: format!("no header row: {e}"),
                })?);
            let mut out = Vec::new();
            let mut record = ByteRecord::new();
            while out.len() < rows && csv.read_byte_record(&mut record).unwrap_or(false) {
                out.push(record.clone());
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

fn header_names(headers: &ByteRecord) -> Vec<String> {
    headers.iter().map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_owned()).collect()
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
