//! What a reconcile found, for a person (the terminal summary) and for machines (JSON, JSONL,
//! CSV; one record per exception). The HTML report is in [`crate::html`].

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use crate::Outcome;
use crate::cluster::Summary;
use crate::input::BadRow;
use crate::truth::Score;

/// Clusters shown in the terminal summary.
const TOP_CLUSTERS: usize = 10;
/// Bad rows shown in the terminal summary.
const BAD_ROWS_SHOWN: usize = 5;

pub fn text(outcome: &Outcome, summary: &Summary, score: Option<&Score>) -> String {
    let mut s = String::new();
    for layout in &outcome.layouts {
        s.push_str(layout);
    }
    for w in &outcome.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let secs = outcome.elapsed.as_secs_f64().max(1e-9);
    let rows = outcome.rows_total();
    let _ = writeln!(
        s,
        "read {rows} rows in {secs:.1}s ({:.0} rows/s): {}",
        rows as f64 / secs,
        outcome.rows.iter().map(|(n, r)| format!("{n} {r}")).collect::<Vec<_>>().join(", ")
    );
    let st = &outcome.stats;
    let _ = writeln!(
        s,
        "{} orders ({}), {} payments, {} ERP records; as of {}",
        st.orders,
        st.orders_by_channel.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", "),
        st.payments,
        st.erp_records,
        outcome.as_of
    );
    let _ = writeln!(
        s,
        "matched by reference: {} payments, {} ERP records; by fuzzy keys (amount, email, time): {} payments, {} ERP records; unmatched: {} payments, {} ERP records",
        st.payments_by_reference,
        st.erp_by_reference,
        st.payments_by_fuzzy,
        st.erp_by_fuzzy,
        st.payments_unmatched,
        st.erp_unmatched
    );
    if !outcome.links.is_empty() {
        let mean = outcome.links.iter().map(|l| l.confidence as f64).sum::<f64>() / outcome.links.len() as f64;
        let sure = outcome.links.iter().filter(|l| l.confidence >= 0.9).count();
        let _ = writeln!(
            s,
            "fuzzy matches: {} (mean stated confidence {mean:.2}; {sure} matched on email too, {} on amount and time alone)",
            outcome.links.len(),
            outcome.links.len() - sure
        );
    }
    if outcome.bad.count > 0 {
        let _ = writeln!(s, "bad rows: {} (skipped; the run went on)", outcome.bad.count);
        for b in outcome.bad.kept.iter().take(BAD_ROWS_SHOWN) {
            let _ = writeln!(s, "  {b}");
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<20} {:>9} {:>9}  {:<36} by channel", "pattern", "count", "orders", "money");
    for row in &summary.by_pattern {
        let channels: Vec<String> = row.by_channel.iter().map(|(c, b)| format!("{c} {}", b.exceptions)).collect();
        let _ = writeln!(
            s,
            "{:<20} {:>9} {:>9}  {:<36} {}",
            row.pattern.as_str(),
            row.blast.exceptions,
            row.blast.orders,
            row.blast.money_words(),
            channels.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "{:<20} {:>9} {:>9}  {}",
        "total",
        summary.total.exceptions,
        summary.total.orders,
        summary.total.money_words()
    );
    if !summary.clusters.is_empty() {
        let _ = writeln!(s, "\ntop clusters (fix once, replay the cluster):");
        for c in summary.clusters.iter().take(TOP_CLUSTERS) {
            let _ = writeln!(
                s,
                "  {:>8}  {:<18} {:<10} {:<9} -> {:<28} {}  e.g. {}",
                c.blast.exceptions,
                c.pattern.as_str(),
                c.channel.as_deref().unwrap_or("-"),
                c.field.unwrap_or("-"),
                c.action,
                c.blast.money_words(),
                c.examples.iter().take(3).cloned().collect::<Vec<_>>().join(" ")
            );
        }
    }
    if let Some(score) = score {
        let _ = writeln!(s, "\nagainst the ground truth:");
        s.push_str(&score.text());
    }
    s
}

/// The JSON report: the run, the summary and every exception.
#[derive(Serialize)]
struct Document<'a> {
    as_of: jiff::Timestamp,
    rows: &'a [(String, u64)],
    bad_rows: u64,
    bad_row_examples: &'a [BadRow],
    stats: &'a crate::JoinStats,
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<&'a Score>,
    fuzzy_links: &'a [crate::FuzzyLink],
    warnings: &'a [String],
    exceptions: &'a [crate::Exception],
}

pub fn json(outcome: &Outcome, summary: &Summary, score: Option<&Score>, out: &mut dyn Write) -> io::Result<()> {
    let doc = Document {
        as_of: outcome.as_of,
        rows: &outcome.rows,
        bad_rows: outcome.bad.count,
        bad_row_examples: &outcome.bad.kept,
        stats: &outcome.stats,
        summary,
        score,
        fuzzy_links: &outcome.links,
        warnings: &outcome.warnings,
        exceptions: &outcome.findings,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

pub fn jsonl(outcome: &Outcome, out: &mut dyn Write) -> io::Result<()> {
    for e in &outcome.findings {
        serde_json::to_writer(&mut *out, e)?;
        writeln!(out)?;
    }
    Ok(())
}

pub fn csv(outcome: &Outcome, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "pattern",
        "order_ref",
        "channel",
        "payment_id",
        "erp_ids",
        "field",
        "amount",
        "currency",
        "matched_by",
        "confidence",
        "occurred_at",
        "due_at",
        "action",
        "evidence",
    ])?;
    for e in &outcome.findings {
        w.write_record([
            e.pattern.as_str(),
            e.order_ref.as_deref().unwrap_or_default(),
            e.channel.as_deref().unwrap_or_default(),
            e.payment_id.as_deref().unwrap_or_default(),
            &e.erp_ids.join(" "),
            e.field.unwrap_or_default(),
            &e.amount.map(|m| m.amount.to_string()).unwrap_or_default(),
            &e.amount.map(|m| m.currency.to_string()).unwrap_or_default(),
            e.matched_by,
            &format!("{:.2}", e.confidence),
            &e.occurred_at.map(|t| t.to_string()).unwrap_or_default(),
            &e.due_at.to_string(),
            &e.action,
            &e.evidence,
        ])?;
    }
    w.flush()?;
    Ok(())
}
