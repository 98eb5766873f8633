//! How the values of one column are read, decided from the column's own values: the order of a
//! date's day and month, its time zone, an amount's decimal and thousands separators, yes/no
//! flags. A column whose values leave the choice open stops the run and says what to set.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use rust_decimal::Decimal;
use std::str::FromStr;

/// Seconds since the Unix epoch; [`NONE`] when unknown. Exports carry no sub-second times.
pub type Ts = i64;
pub const NONE: Ts = i64::MIN;

/// Which number of a date written with numbers only is the day and which the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOrder {
    /// `2026-01-15`
    YearFirst,
    /// `1/15/2026`
    MonthFirst,
    /// `15/1/2026`, `15.01.2026`
    DayFirst,
    /// Not known (no values to tell): a value is read only where its numbers decide it.
    Undecided,
}

impl DayOrder {
    pub fn words(self) -> &'static str {
        match self {
            DayOrder::YearFirst => "YYYY-MM-DD",
            DayOrder::MonthFirst => "M/D/YYYY",
            DayOrder::DayFirst => "D/M/YYYY",
            DayOrder::Undecided => "any order a value's own numbers decide",
        }
    }
}

/// A date split into its parts, before the day order and the time zone are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    /// The two numbers besides the year, in the order written.
    a: i8,
    b: i8,
    year: i16,
    year_first: bool,
    /// Hour (24h), minute, second; `None` for a date without a time.
    time: Option<(i8, i8, i8)>,
    /// Seconds east of UTC, when the value carries an offset.
    offset: Option<i32>,
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn number(b: &[u8]) -> i32 {
    b.iter().fold(0, |n, &c| n * 10 + (c - b'0') as i32)
}

/// `Y-M-D`, `A/B/Y`, `A.B.Y` (any of `-/.`), then optionally `[T ]H:MM[:SS[.frac]]`, `am`/`pm`,
/// and an offset (`Z`, `UTC`, `GMT`, `±HH[:]MM`). By hand: it is most of a reconcile's parsing.
fn split(b: &[u8]) -> Option<Parts> {
    let n1 = digits(b);
    let sep = *b.get(n1)?;
    if !matches!(sep, b'-' | b'/' | b'.') || n1 == 0 || n1 > 4 {
        return None;
    }
    let rest = &b[n1 + 1..];
    let n2 = digits(rest);
    if n2 == 0 || n2 > 2 || rest.get(n2) != Some(&sep) {
        return None;
    }
    let tail = &rest[n2 + 1..];
    let n3 = digits(tail);
    // Lengths first: a run of digits too long for a date part must not reach `number` (fuzzing
    // found `2026-01-7751777777` overflowing it).
    if !matches!((n1, n3), (4, 1..=2) | (1..=2, 4)) {
        return None;
    }
    let (first, second, third) = (number(&b[..n1]), number(&rest[..n2]), number(&tail[..n3]));
    let (a, b_, year, year_first) = match (n1, n3) {
        (4, 1..=2) => (second, third, first, true),
        (1..=2, 4) => (first, second, third, false),
        _ => return None,
    };
    let mut rest = &tail[n3..];
    let mut time = None;
    if let Some((&c, after)) = rest.split_first()
        && matches!(c, b'T' | b' ')
    {
        let after = after.trim_ascii_start();
        let h = digits(after);
        if (1..=2).contains(&h) && after.get(h) == Some(&b':') && digits(&after[h + 1..]) == 2 {
            let hour = number(&after[..h]);
            let minute = number(&after[h + 1..h + 3]);
            let mut r = &after[h + 3..];
            let mut second = 0;
            if r.first() == Some(&b':') && digits(&r[1..]) == 2 {
                second = number(&r[1..3]);
                r = &r[3..];
                if r.first() == Some(&b'.') {
                    r = &r[1 + digits(&r[1..])..];
                }
            }
            let trimmed = r.trim_ascii_start();
            let hour = match trimmed.get(..2).map(|s| s.to_ascii_lowercase()) {
                Some(m) if m == b"am" || m == b"pm" => {
                    r = &trimmed[2..];
                    if !(1..=12).contains(&hour) {
                        return None;
                    }
                    (hour % 12) + if m == b"pm" { 12 } else { 0 }
                }
                _ => hour,
            };
            time = Some((hour as i8, minute as i8, second as i8));
            rest = r;
        } else {
            rest = after;
        }
    }
    let rest = rest.trim_ascii();
    let offset = match rest {
        [] => None,
        [b'Z'] | b"UTC" | b"GMT" => Some(0),
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (h, m) = match tail {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => ([*h1, *h2], [*m1, *m2]),
                [h1, h2] => ([*h1, *h2], [b'0', b'0']),
                _ => return None,
            };
            if !h.iter().chain(&m).all(u8::is_ascii_digit) {
                return None;
            }
            let secs = number(&h) * 3600 + number(&m) * 60;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    Some(Parts { a: a as i8, b: b_ as i8, year: year as i16, year_first, time, offset })
}

/// Seconds since the epoch of a civil time read as UTC, by arithmetic (days from civil, after
/// H. Hinnant): a time zone lookup per field would be most of the parsing time.
pub fn utc_seconds(dt: DateTime) -> Ts {
    let (y, m, d) = (dt.year() as i64, dt.month() as i64, dt.day() as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + dt.hour() as i64 * 3600 + dt.minute() as i64 * 60 + dt.second() as i64
}

/// Local times to UTC in one time zone, with the offset of each local hour remembered: exports
/// come roughly in time order, and a zone's lookup per field would dominate.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
    cache: Box<[(i64, i32)]>,
}

const ZONE_CACHE: usize = 512;

impl Zone {
    pub fn new(tz: TimeZone) -> Zone {
        Zone { tz, cache: vec![(i64::MIN, 0); ZONE_CACHE].into_boxed_slice() }
    }

    pub fn is_utc(&self) -> bool {
        self.tz == TimeZone::UTC
    }

    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// UTC seconds of a local time: the earlier of two in a repeated hour, and a time in a
    /// skipped hour moved forward (jiff's "compatible" rule).
    pub fn to_utc(&mut self, dt: DateTime) -> Option<Ts> {
        let local = utc_seconds(dt);
        if self.is_utc() {
            return Some(local);
        }
        let hour = local.div_euclid(3600);
        let slot = &mut self.cache[hour.rem_euclid(ZONE_CACHE as i64) as usize];
        if slot.0 == hour {
            return Some(local - slot.1 as i64);
        }
        let utc = dt.to_zoned(self.tz.clone()).ok()?.timestamp().as_second();
        // Cached only when the whole hour has one offset (no transition inside it).
        let start = dt.date().at(dt.hour(), 0, 0, 0);
        let offset = |t: DateTime| match self.tz.to_ambiguous_timestamp(t).offset() {
            AmbiguousOffset::Unambiguous { offset } => Some(offset.seconds()),
            _ => None,
        };
        let end = dt.date().at(dt.hour(), 59, 59, 0);
        if let (Some(a), Some(b)) = (offset(start), offset(end))
            && a == b
        {
            *slot = (hour, a);
        }
        Some(utc)
    }
}

/// How one date column is read.
#[derive(Debug, Clone)]
pub enum DateReader {
    Numeric {
        order: DayOrder,
        zone: Zone,
    },
    /// A strftime-style format the merchant gave (`%d.%m.%Y %H:%M`).
    Format {
        format: String,
        zone: Zone,
    },
}

impl DateReader {
    pub fn parse(&mut self, field: &[u8]) -> Result<Ts, String> {
        let bad = || format!("unreadable date {:?}", String::from_utf8_lossy(field));
        match self {
            DateReader::Numeric { order, zone } => {
                let p = split(field).ok_or_else(bad)?;
                let (month, day) = match (p.year_first, *order) {
                    (true, _) | (false, DayOrder::MonthFirst | DayOrder::YearFirst) => (p.a, p.b),
                    (false, DayOrder::DayFirst) => (p.b, p.a),
                    (false, DayOrder::Undecided) if p.a > 12 => (p.b, p.a),
                    (false, DayOrder::Undecided) if p.b > 12 || p.a == p.b => (p.a, p.b),
                    (false, DayOrder::Undecided) => {
                        return Err(format!(
                            "ambiguous date {:?} (M/D or D/M: set date_format)",
                            String::from_utf8_lossy(field)
                        ));
                    }
                };
                // A date without a time is read as the day's last second: the latest it can
                // have happened, so that no deadline passes early.
                let (h, mi, s) = p.time.unwrap_or((23, 59, 59));
                let dt = DateTime::new(p.year, month, day, h, mi, s, 0).map_err(|_| bad())?;
                match p.offset {
                    Some(offset) => Ok(utc_seconds(dt) - offset as i64),
                    None => zone.to_utc(dt).ok_or_else(bad),
                }
            }
            DateReader::Format { format, zone } => {
                let text = std::str::from_utf8(field).map_err(|_| bad())?;
                let tm = jiff::fmt::strtime::parse(format.as_str(), text).map_err(|_| bad())?;
                if tm.offset().is_some() {
                    return tm.to_timestamp().map(|t| t.as_second()).map_err(|_| bad());
                }
                let dt = tm
                    .to_datetime()
                    .or_else(|_| tm.to_date().map(|d| d.to_datetime(jiff::civil::time(23, 59, 59, 0))))
                    .map_err(|_| bad())?;
                zone.to_utc(dt).ok_or_else(bad)
            }
        }
    }
}

/// What a column's values say about its dates.
#[derive(Debug, Clone, Default)]
pub struct DateEvidence {
    pub values: u64,
    /// Values that are not dates Handoff reads without a `date_format`.
    pub unreadable: u64,
    pub first_unreadable: Option<String>,
    pub year_first: u64,
    /// Year-last values whose first number is over 12 (so it is the day), and an example.
    pub day_first: Option<String>,
    /// Year-last values whose second number is over 12 (so the first is the month).
    pub month_first: Option<String>,
    /// A year-last value whose order matters (two different numbers, both 12 or less).
    pub open: Option<String>,
    pub with_time: u64,
    pub with_offset: u64,
}

impl DateEvidence {
    pub fn add(&mut self, field: &[u8]) {
        if field.is_empty() {
            return;
        }
        self.values += 1;
        let Some(p) = split(field) else {
            self.unreadable += 1;
            if self.first_unreadable.is_none() {
                self.first_unreadable = Some(String::from_utf8_lossy(field).into_owned());
            }
            return;
        };
        self.with_time += p.time.is_some() as u64;
        self.with_offset += p.offset.is_some() as u64;
        let text = || Some(String::from_utf8_lossy(field).into_owned());
        if p.year_first {
            self.year_first += 1;
        } else if p.a > 12 {
            self.day_first = self.day_first.take().or_else(text);
        } else if p.b > 12 {
            self.month_first = self.month_first.take().or_else(text);
        } else if p.a != p.b {
            self.open = self.open.take().or_else(text);
        }
    }

    /// True once the values decide the order (or show it does not matter).
    pub fn decided(&self) -> bool {
        self.day_first.is_some() || self.month_first.is_some()
    }

    /// The day order, or why the values cannot tell it.
    pub fn order(&self) -> Result<DayOrder, String> {
        let readable = self.values - self.unreadable;
        match (&self.first_unreadable, readable) {
            (Some(v), 0) => return Err(format!("its dates (like {v:?}) are not in a format Handoff reads by itself")),
            (None, 0) => return Ok(DayOrder::Undecided),
            _ => {}
        }
        match (&self.day_first, &self.month_first, &self.open) {
            (Some(d), Some(m), _) => Err(format!("its dates disagree: {d:?} has the day first, {m:?} the month")),
            (Some(_), None, _) => Ok(DayOrder::DayFirst),
            (None, Some(_), _) => Ok(DayOrder::MonthFirst),
            (None, None, Some(v)) => Err(format!(
                "its dates are ambiguous: {v:?} could be M/D/YYYY or D/M/YYYY, and no value in the file has a day over 12"
            )),
            (None, None, None) => Ok(if self.year_first > 0 { DayOrder::YearFirst } else { DayOrder::MonthFirst }),
        }
    }
}

/// How amounts are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    pub decimal: u8,
    pub thousands: Option<u8>,
}

impl Default for Amounts {
    fn default() -> Self {
        Amounts { decimal: b'.', thousands: None }
    }
}

impl Amounts {
    pub fn parse(&self, field: &[u8]) -> Result<Decimal, String> {
        let plain = self.decimal == b'.' && self.thousands.is_none();
        if plain && let Some(d) = simple_decimal(field) {
            return Ok(d);
        }
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

    pub fn words(&self) -> String {
        let name = |c: u8| match c {
            b'.' => "point".to_owned(),
            b',' => "comma".to_owned(),
            b' ' => "space".to_owned(),
            b'\'' => "apostrophe".to_owned(),
            c => format!("{:?}", c as char),
        };
        match self.thousands {
            None => format!("decimal {}", name(self.decimal)),
            Some(t) => format!("decimal {}, thousands {}", name(self.decimal), name(t)),
        }
    }

    /// The separators a column's values use: the last of `.` and `,` in a value is its decimal
    /// separator when both appear; a lone `,` is decimal when one or two digits follow it.
    pub fn infer<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Amounts {
        let (mut comma_decimal, mut point_decimal, mut comma_thousands, mut point_thousands) = (0, 0, 0, 0);
        for v in values {
            let last_comma = v.iter().rposition(|&c| c == b',');
            let last_point = v.iter().rposition(|&c| c == b'.');
            let commas = v.iter().filter(|&&c| c == b',').count();
            let points = v.iter().filter(|&&c| c == b'.').count();
            match (last_comma, last_point) {
                (Some(c), Some(p)) if c > p => {
                    (comma_decimal, point_thousands) = (comma_decimal + 1, point_thousands + 1)
                }
                (Some(_), Some(_)) => (point_decimal, comma_thousands) = (point_decimal + 1, comma_thousands + 1),
                (Some(c), None) if commas == 1 && (1..=2).contains(&(v.len() - c - 1)) => comma_decimal += 1,
                (Some(_), None) => comma_thousands += 1,
                (None, Some(p)) if points == 1 && v.len() - p - 1 != 3 => point_decimal += 1,
                (None, Some(_)) if points > 1 => point_thousands += 1,
                _ => {}
            }
        }
        if comma_decimal > point_decimal {
            Amounts { decimal: b',', thousands: (point_thousands > 0).then_some(b'.') }
        } else {
            Amounts { decimal: b'.', thousands: (comma_thousands > 0).then_some(b',') }
        }
    }
}

/// `-?\d{1,15}(\.\d{1,6})?`, most amounts in an export, without going through text: the
/// general parse is a large share of reading an export of prices.
fn simple_decimal(field: &[u8]) -> Option<Decimal> {
    let (negative, digits) = match field.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, field),
    };
    let int = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    let (frac, rest) = match &digits[int..] {
        [] => (&[][..], &[][..]),
        [b'.', tail @ ..] => {
            let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            (&tail[..n], &tail[n..])
        }
        _ => return None,
    };
    if int == 0 || int > 15 || frac.len() > 6 || !rest.is_empty() || (frac.is_empty() && digits.len() > int) {
        return None;
    }
    let mantissa = digits[..int].iter().chain(frac).fold(0i64, |n, &c| n * 10 + (c - b'0') as i64);
    Some(Decimal::new(if negative { -mantissa } else { mantissa }, frac.len() as u32))
}

/// A yes/no value: `Some(true)` for yes, true, y, t, 1, x; `Some(false)` for no, false, n, f, 0.
pub fn flag(field: &[u8]) -> Option<bool> {
    const YES: [&[u8]; 6] = [b"yes", b"true", b"y", b"t", b"1", b"x"];
    const NO: [&[u8]; 5] = [b"no", b"false", b"n", b"f", b"0"];
    if YES.iter().any(|y| y.eq_ignore_ascii_case(field)) {
        Some(true)
    } else if NO.iter().any(|n| n.eq_ignore_ascii_case(field)) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn t(s: &str) -> Ts {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn numeric(order: DayOrder, zone: &str) -> DateReader {
        DateReader::Numeric { order, zone: Zone::new(TimeZone::get(zone).unwrap()) }
    }

    /// Found by `fuzz/` (export_readers): a day of ten digits overflowed the number reader
    /// while the layout was inferred. It is an unreadable date, in inference and in parsing.
    #[test]
    fn a_date_part_of_many_digits_is_unreadable() {
        let value = b"2026-01-7751777777 09:24:00";
        assert!(split(value).is_none());
        let mut evidence = DateEvidence::default();
        evidence.add(value);
        assert_eq!((evidence.values, evidence.unreadable), (1, 1));
        assert_eq!(evidence.first_unreadable.as_deref(), Some("2026-01-7751777777 09:24:00"));
        for order in [DayOrder::YearFirst, DayOrder::MonthFirst, DayOrder::DayFirst] {
            assert!(numeric(order, "UTC").parse(value).is_err());
            assert!(numeric(order, "UTC").parse(b"77517777777/1/2026").is_err());
        }
    }

    #[test]
    fn dates_of_every_export() {
        let mut utc = numeric(DayOrder::YearFirst, "UTC");
        // Shopify, Amazon, Stripe: ISO 8601 with or without an offset.
        assert_eq!(utc.parse(b"2026-01-15 10:23:45 -0500").unwrap(), t("2026-01-15T15:23:45Z"));
        assert_eq!(utc.parse(b"2026-01-15T10:23:45+00:00").unwrap(), t("2026-01-15T10:23:45Z"));
        assert_eq!(utc.parse(b"2026-01-15 10:23").unwrap(), t("2026-01-15T10:23:00Z"));
        assert_eq!(utc.parse(b"2026-01-15T10:23:45.123Z").unwrap(), t("2026-01-15T10:23:45Z"));
        assert!(utc.parse(b"2026-02-30 10:00").is_err());
        assert!(utc.parse(b"yesterday").is_err());
        // NetSuite: M/D/YYYY with a 12-hour time, in the store's zone; a bare date is its last second.
        let mut ny = numeric(DayOrder::MonthFirst, "America/New_York");
        assert_eq!(ny.parse(b"1/15/2026 10:23 am").unwrap(), t("2026-01-15T15:23:00Z"));
        assert_eq!(ny.parse(b"01/15/2026 12:05 PM").unwrap(), t("2026-01-15T17:05:00Z"));
        assert_eq!(ny.parse(b"7/4/2026 12:00 am").unwrap(), t("2026-07-04T04:00:00Z"));
        assert_eq!(ny.parse(b"3/4/2026").unwrap(), t("2026-03-05T04:59:59Z"));
        // A day-first export.
        let mut berlin = numeric(DayOrder::DayFirst, "Europe/Berlin");
        assert_eq!(berlin.parse(b"15.01.2026 09:30").unwrap(), t("2026-01-15T08:30:00Z"));
        assert_eq!(berlin.parse(b"4/3/2026 10:00").unwrap(), t("2026-03-04T09:00:00Z"));
        for t in ["1970-01-01T00:00:00Z", "2000-02-29T23:59:59Z", "2026-12-31T12:00:00Z", "1969-07-20T20:17:00Z"] {
            let dt: DateTime = t.trim_end_matches('Z').parse().unwrap();
            assert_eq!(utc_seconds(dt), self::t(t), "{t}");
        }
    }

    #[test]
    fn a_zone_is_right_across_its_transitions() {
        // Europe/Berlin goes to summer time at 02:00 on 2026-03-29; each local hour's offset is
        // remembered, and the remembered one must stay right on both sides.
        let mut z = Zone::new(TimeZone::get("Europe/Berlin").unwrap());
        for (local, utc) in [
            ("2026-03-29T01:30:00", "2026-03-29T00:30:00Z"),
            ("2026-03-29T01:45:00", "2026-03-29T00:45:00Z"),
            ("2026-03-29T03:30:00", "2026-03-29T01:30:00Z"),
            ("2026-03-29T03:40:00", "2026-03-29T01:40:00Z"),
            ("2026-10-25T02:30:00", "2026-10-25T00:30:00Z"),
            ("2026-10-25T02:50:00", "2026-10-25T00:50:00Z"),
        ] {
            assert_eq!(z.to_utc(local.parse().unwrap()), Some(t(utc)), "{local}");
        }
    }

    #[test]
    fn the_values_decide_the_day_order() {
        let evidence = |values: &[&str]| {
            let mut e = DateEvidence::default();
            values.iter().for_each(|v| e.add(v.as_bytes()));
            e
        };
        assert_eq!(evidence(&["1/5/2026", "1/13/2026"]).order(), Ok(DayOrder::MonthFirst));
        assert_eq!(evidence(&["1/5/2026", "13/1/2026"]).order(), Ok(DayOrder::DayFirst));
        assert_eq!(evidence(&["2026-01-05 10:00"]).order(), Ok(DayOrder::YearFirst));
        // The same number twice reads alike either way.
        assert_eq!(evidence(&["1/1/2026", "2/2/2026"]).order(), Ok(DayOrder::MonthFirst));
        let open = evidence(&["1/5/2026", "2/3/2026"]).order().unwrap_err();
        assert!(open.contains("ambiguous") && open.contains("1/5/2026"), "{open}");
        let both = evidence(&["13/1/2026", "1/13/2026"]).order().unwrap_err();
        assert!(both.contains("disagree"), "{both}");
        assert!(evidence(&["yesterday"]).order().unwrap_err().contains("\"yesterday\""));
        // No values: each value's own numbers decide, and one that cannot is a bad row.
        assert_eq!(evidence(&[]).order(), Ok(DayOrder::Undecided));
        let mut undecided = numeric(DayOrder::Undecided, "UTC");
        assert_eq!(undecided.parse(b"13/1/2026 10:00").unwrap(), t("2026-01-13T10:00:00Z"));
        assert_eq!(undecided.parse(b"1/13/2026 10:00").unwrap(), t("2026-01-13T10:00:00Z"));
        assert!(undecided.parse(b"1/2/2026 10:00").unwrap_err().contains("ambiguous"));
    }

    #[test]
    fn amounts_say_their_separators() {
        let infer = |v: &[&str]| Amounts::infer(v.iter().map(|s| s.as_bytes()));
        assert_eq!(infer(&["28.58", "1000.00"]), Amounts { decimal: b'.', thousands: None });
        assert_eq!(infer(&["28,58", "1.234,56"]), Amounts { decimal: b',', thousands: Some(b'.') });
        assert_eq!(infer(&["1,234.56", "12.00"]), Amounts { decimal: b'.', thousands: Some(b',') });
        assert_eq!(infer(&["28,5"]), Amounts { decimal: b',', thousands: None });
        let comma = Amounts { decimal: b',', thousands: Some(b'.') };
        assert_eq!(comma.parse(b"1.234,56").unwrap(), Decimal::from_str("1234.56").unwrap());
        assert_eq!(comma.parse(b"-2,00").unwrap(), Decimal::from_str("-2.00").unwrap());
        assert!(Amounts::default().parse(b"28,58 EUR").is_err());
        // The short way and the general one agree.
        for v in ["0", "28.58", "-2.00", "1234567.5", "0.000001", "-0.10", "12.", ".5", "1e3", "--1", "999999999999999"]
        {
            let general = std::str::from_utf8(v.as_bytes()).ok().and_then(|s| Decimal::from_str(s).ok());
            match simple_decimal(v.as_bytes()) {
                Some(d) => assert_eq!(Some(d), general, "{v}"),
                None => assert!(
                    !v.chars().all(|c| c.is_ascii_digit() || c == '.') || v.starts_with('.') || v.ends_with('.'),
                    "{v}"
                ),
            }
            assert_eq!(Amounts::default().parse(v.as_bytes()).ok(), general, "{v}");
        }
    }

    #[test]
    fn flags() {
        for y in ["Yes", "TRUE", "y", "1", "X", "t"] {
            assert_eq!(flag(y.as_bytes()), Some(true), "{y}");
        }
        for n in ["No", "false", "N", "0", "F"] {
            assert_eq!(flag(n.as_bytes()), Some(false), "{n}");
        }
        assert_eq!(flag(b"Billed"), None);
    }
}
