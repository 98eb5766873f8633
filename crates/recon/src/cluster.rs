//! Exceptions grouped so that a person fixes a cause once: by pattern, channel, field and
//! action, each cluster with its blast radius (orders and money by currency) and when it was
//! first and last seen; plus the counts by pattern, channel and month the reports draw.

use std::collections::{BTreeMap, HashSet};

use handoff_model::Pattern;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::classify::{Exception, action_kind};

/// The patterns reconcile finds, in the order reports show them.
pub const PATTERNS: [Pattern; 6] = [
    Pattern::MissingOrder,
    Pattern::StatusVoid,
    Pattern::DuplicateDraft,
    Pattern::TransformMismatch,
    Pattern::OrphanedPayment,
    Pattern::RollbackGap,
];
/// Example references kept per cluster.
const EXAMPLES: usize = 5;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Blast {
    pub exceptions: u64,
    pub orders: u64,
    /// Money at stake by currency code.
    pub money: BTreeMap<String, Decimal>,
}

impl Blast {
    fn add(&mut self, e: &Exception) {
        self.exceptions += 1;
        if let Some(m) = e.amount {
            *self.money.entry(m.currency.to_string()).or_default() += m.amount;
        }
    }

    /// Money in words: `12,345.60 EUR + 99.00 USD`.
    pub fn money_words(&self) -> String {
        if self.money.is_empty() {
            return "-".into();
        }
        self.money.iter().map(|(c, a)| format!("{} {c}", grouped(*a))).collect::<Vec<_>>().join(" + ")
    }
}

/// An amount rounded to cents with thousands separators.
pub fn grouped(a: Decimal) -> String {
    let s = format!("{:.2}", a.round_dp(2));
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}.{frac}")
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub pattern: Pattern,
    pub channel: Option<String>,
    pub field: Option<&'static str>,
    pub action: &'static str,
    #[serde(flatten)]
    pub blast: Blast,
    /// Members matched by fuzzy keys.
    pub fuzzy: u64,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatternRow {
    pub pattern: Pattern,
    #[serde(flatten)]
    pub blast: Blast,
    /// By channel (`no channel` for a payment no channel shows).
    pub by_channel: BTreeMap<String, Blast>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub total: Blast,
    pub by_pattern: Vec<PatternRow>,
    pub clusters: Vec<Cluster>,
    /// Exceptions per month (`YYYY-MM`, by when the order was placed), per pattern in
    /// [`PATTERNS`] order.
    pub monthly: BTreeMap<String, [u64; 6]>,
}

fn pattern_index(p: Pattern) -> usize {
    PATTERNS.iter().position(|q| *q == p).unwrap_or(0)
}

pub fn summarise(findings: &[Exception]) -> Summary {
    let mut total = Blast::default();
    let mut by_pattern: Vec<PatternRow> = PATTERNS
        .iter()
        .map(|&pattern| PatternRow { pattern, blast: Blast::default(), by_channel: BTreeMap::new() })
        .collect();
    let mut orders: Vec<HashSet<&str>> = vec![HashSet::new(); PATTERNS.len()];
    let mut all_orders: HashSet<&str> = HashSet::new();
    type Key = (usize, Option<String>, Option<&'static str>, &'static str);
    let mut clusters: BTreeMap<Key, (Cluster, HashSet<&str>)> = BTreeMap::new();
    let mut monthly: BTreeMap<String, [u64; 6]> = BTreeMap::new();
    for e in findings {
        let p = pattern_index(e.pattern);
        let key_ref = e.order_ref.as_deref().or(e.payment_id.as_deref()).unwrap_or_default();
        total.add(e);
        all_orders.insert(key_ref);
        let row = &mut by_pattern[p];
        row.blast.add(e);
        orders[p].insert(key_ref);
        let by_channel = row.by_channel.entry(e.channel.clone().unwrap_or_else(|| "no channel".into())).or_default();
        by_channel.add(e);
        by_channel.orders += 1;
        let action = action_kind(&e.action_detail);
        let (c, members) = clusters.entry((p, e.channel.clone(), e.field, action)).or_insert_with(|| {
            let c = Cluster {
                pattern: e.pattern,
                channel: e.channel.clone(),
                field: e.field,
                action,
                blast: Blast::default(),
                fuzzy: 0,
                first_seen: None,
                last_seen: None,
                examples: Vec::new(),
            };
            (c, HashSet::new())
        });
        c.blast.add(e);
        members.insert(key_ref);
        c.fuzzy += (e.matched_by == "fuzzy") as u64;
        if let Some(at) = e.occurred_at {
            c.first_seen = Some(c.first_seen.map_or(at, |f| f.min(at)));
            c.last_seen = Some(c.last_seen.map_or(at, |l| l.max(at)));
            let month = at.to_zoned(TimeZone::UTC).strftime("%Y-%m").to_string();
            monthly.entry(month).or_default()[p] += 1;
        }
        if c.examples.len() < EXAMPLES {
            c.examples.push(key_ref.to_owned());
        }
    }
    total.orders = all_orders.len() as u64;
    for (row, set) in by_pattern.iter_mut().zip(&orders) {
        row.blast.orders = set.len() as u64;
    }
    let mut clusters: Vec<Cluster> = clusters
        .into_values()
        .map(|(mut c, members)| {
            c.blast.orders = members.len() as u64;
            c
        })
        .collect();
    clusters
        .sort_by(|a, b| b.blast.exceptions.cmp(&a.blast.exceptions).then(a.pattern.as_str().cmp(b.pattern.as_str())));
    Summary { total, by_pattern, clusters, monthly }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(grouped("1234567.891".parse().unwrap()), "1,234,567.89");
        assert_eq!(grouped("-12.5".parse().unwrap()), "-12.50");
        assert_eq!(grouped("999".parse().unwrap()), "999.00");
    }
}
