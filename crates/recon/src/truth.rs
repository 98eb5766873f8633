//! The ground truth a generated data set comes with, and a run scored against it: recall per
//! pattern, false positives by how the finding was matched, and the fuzzy matches' precision.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use handoff_model::Pattern;
use serde::{Deserialize, Serialize};

use crate::cluster::PATTERNS;
use crate::{Exception, FuzzyLink};

/// One line of `ground_truth.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Truth {
    /// A planted exception.
    Exception {
        pattern: Pattern,
        #[serde(default)]
        order_ref: Option<String>,
        #[serde(default)]
        payment_id: Option<String>,
        #[serde(default)]
        erp_ids: Vec<String>,
        /// `fuzzy` when finding it needs a fuzzy match.
        matched_by: String,
        /// The channel the order was placed in; none for a payment no order has.
        #[serde(default)]
        channel: Option<String>,
    },
    /// A payment or ERP record that names no order, and the order it belongs to.
    Link { link: String, id: String, order_ref: String },
}

/// How an exception is known in both the truth and the findings.
fn key(pattern: Pattern, order_ref: Option<&str>, payment_id: Option<&str>) -> (Pattern, String) {
    let id = match pattern {
        Pattern::OrphanedPayment => payment_id.or(order_ref),
        _ => order_ref.or(payment_id),
    };
    (pattern, id.unwrap_or_default().to_owned())
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PatternScore {
    pub planted: u64,
    pub found: u64,
    pub recall: f64,
    pub false_positives: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub by_pattern: BTreeMap<String, PatternScore>,
    /// By pattern and the channel the order was placed in (`missing_order/amazon`); a payment
    /// no order has is `orphaned_payment/none`.
    pub by_channel: BTreeMap<String, PatternScore>,
    pub planted: u64,
    pub found: u64,
    pub recall: f64,
    /// Findings matched by reference that no truth line names.
    pub false_positives_reference: u64,
    /// Findings matched by fuzzy keys that no truth line names.
    pub false_positives_fuzzy: u64,
    /// Of the findings that rest on a fuzzy match, the share that is right.
    pub fuzzy_finding_precision: Option<f64>,
    pub fuzzy_findings: u64,
    /// Of the fuzzy links made, the share that tied the record to its true order.
    pub fuzzy_link_precision: Option<f64>,
    /// Of the true links, the share made.
    pub fuzzy_link_recall: Option<f64>,
    pub fuzzy_links: u64,
    /// Up to ten planted exceptions not found, and ten findings not planted, for a look.
    pub missed: Vec<String>,
    pub unexpected: Vec<String>,
}

pub fn load(path: &Path) -> std::io::Result<Vec<Truth>> {
    let reader = crate::input::open(path)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let t = serde_json::from_str(&line).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}:{}: {e}", path.display(), i + 1))
        })?;
        out.push(t);
    }
    Ok(out)
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

pub fn score(truth: &[Truth], findings: &[Exception], links: &[FuzzyLink]) -> Score {
    let mut planted: HashSet<(Pattern, String)> = HashSet::new();
    let mut channel_of: HashMap<(Pattern, String), String> = HashMap::new();
    let mut true_links: HashMap<(&str, &str), &str> = HashMap::new();
    for t in truth {
        match t {
            Truth::Exception { pattern, order_ref, payment_id, channel, .. } => {
                let k = key(*pattern, order_ref.as_deref(), payment_id.as_deref());
                channel_of.insert(k.clone(), format!("{}/{}", pattern, channel.as_deref().unwrap_or("none")));
                planted.insert(k);
            }
            Truth::Link { link, id, order_ref } => {
                true_links.insert((link.as_str(), id.as_str()), order_ref.as_str());
            }
        }
    }
    let mut s = Score::default();
    let mut found: HashSet<(Pattern, String)> = HashSet::new();
    let mut fuzzy_right = 0;
    for e in findings {
        let k = key(e.pattern, e.order_ref.as_deref(), e.payment_id.as_deref());
        let right = planted.contains(&k);
        let fuzzy = e.matched_by == "fuzzy";
        if fuzzy {
            s.fuzzy_findings += 1;
            fuzzy_right += right as u64;
        }
        if right {
            found.insert(k);
        } else {
            match fuzzy {
                true => s.false_positives_fuzzy += 1,
                false => s.false_positives_reference += 1,
            }
            s.by_pattern.entry(e.pattern.as_str().to_owned()).or_default().false_positives += 1;
            if s.unexpected.len() < 10 {
                s.unexpected.push(format!("{} {} ({})", e.pattern, k.1, e.evidence));
            }
        }
    }
    for p in PATTERNS {
        let row = s.by_pattern.entry(p.as_str().to_owned()).or_default();
        row.planted = planted.iter().filter(|k| k.0 == p).count() as u64;
        row.found = found.iter().filter(|k| k.0 == p).count() as u64;
        row.recall = ratio(row.found, row.planted).unwrap_or(1.0);
    }
    for k in &planted {
        let row = s.by_channel.entry(channel_of[k].clone()).or_default();
        row.planted += 1;
        row.found += found.contains(k) as u64;
    }
    for row in s.by_channel.values_mut() {
        row.recall = ratio(row.found, row.planted).unwrap_or(1.0);
    }
    for k in planted.difference(&found).take(10) {
        s.missed.push(format!("{} {}", k.0, k.1));
    }
    s.planted = planted.len() as u64;
    s.found = found.len() as u64;
    s.recall = ratio(s.found, s.planted).unwrap_or(1.0);
    s.fuzzy_finding_precision = ratio(fuzzy_right, s.fuzzy_findings);
    let right_links =
        links.iter().filter(|l| true_links.get(&(l.kind, l.id.as_str())) == Some(&l.order_ref.as_str())).count() as u64;
    s.fuzzy_links = links.len() as u64;
    s.fuzzy_link_precision = ratio(right_links, links.len() as u64);
    s.fuzzy_link_recall = ratio(right_links, true_links.len() as u64);
    s
}

fn pct(x: Option<f64>) -> String {
    x.map_or("n/a".into(), |x| format!("{:.2}%", x * 100.0))
}

impl Score {
    pub fn text(&self) -> String {
        let mut s = String::new();
        for (p, r) in &self.by_pattern {
            s.push_str(&format!(
                "  {p:<20} planted {:>7}  found {:>7}  recall {:>7}  false positives {}\n",
                r.planted,
                r.found,
                pct(Some(r.recall)),
                r.false_positives
            ));
        }
        let channels: Vec<String> = self
            .by_channel
            .iter()
            .map(|(k, r)| format!("{k} {} ({} of {})", pct(Some(r.recall)), r.found, r.planted))
            .collect();
        s.push_str(&format!("  recall by channel: {}\n", channels.join(", ")));
        s.push_str(&format!(
            "  recall {} ({} of {}); false positives: {} on exact-reference matches, {} on fuzzy matches\n",
            pct(Some(self.recall)),
            self.found,
            self.planted,
            self.false_positives_reference,
            self.false_positives_fuzzy
        ));
        s.push_str(&format!(
            "  fuzzy-match precision: links {} ({} links, recall {}), findings {} ({} findings)\n",
            pct(self.fuzzy_link_precision),
            self.fuzzy_links,
            pct(self.fuzzy_link_recall),
            pct(self.fuzzy_finding_precision),
            self.fuzzy_findings
        ));
        for m in &self.missed {
            s.push_str(&format!("  missed: {m}\n"));
        }
        for u in &self.unexpected {
            s.push_str(&format!("  not planted: {u}\n"));
        }
        s
    }
}
