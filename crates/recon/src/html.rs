//! The single-file HTML report: inline SVG charts computed here (patterns over time, clusters,
//! blast radius), tables, no JavaScript and nothing fetched.

use std::fmt::Write as _;

use askama::Template;

use crate::Outcome;
use crate::cluster::{Blast, PATTERNS, Summary, grouped};
use crate::truth::Score;

/// Exceptions listed in the report's table; the machine formats hold them all.
const LISTED: usize = 300;
const CLUSTERS_CHARTED: usize = 15;
const COLORS: [&str; 6] = ["#d1495b", "#edae49", "#00798c", "#30638e", "#8f5ba8", "#3c9d5d"];

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    outcome: &'a Outcome,
    summary: &'a Summary,
    score: Option<String>,
    headline: String,
    timeline: String,
    clusters: String,
    blast: String,
    listed: &'a [crate::Exception],
    legend: Vec<(&'static str, &'static str)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(outcome: &Outcome, summary: &Summary, score: Option<&Score>) -> Result<String, askama::Error> {
    let headline = format!(
        "{} exceptions on {} orders, {} at stake, in {} rows read",
        summary.total.exceptions,
        summary.total.orders,
        summary.total.money_words(),
        outcome.rows_total()
    );
    Page {
        outcome,
        summary,
        score: score.map(|s| s.text()),
        headline,
        timeline: timeline(summary),
        clusters: clusters(summary),
        blast: blast(summary),
        listed: &outcome.findings[..outcome.findings.len().min(LISTED)],
        legend: PATTERNS.iter().zip(COLORS).map(|(p, c)| (p.as_str(), c)).collect(),
    }
    .render()
}

/// Stacked bars: exceptions per month by pattern.
fn timeline(summary: &Summary) -> String {
    let (w, h, left, bottom, top) = (1100.0, 320.0, 50.0, 40.0, 15.0);
    let months: Vec<(&String, &[u64; 6])> = summary.monthly.iter().collect();
    let max = months.iter().map(|(_, c)| c.iter().sum::<u64>()).max().unwrap_or(0).max(1) as f64;
    let plot_h = h - bottom - top;
    let slot = (w - left - 10.0) / months.len().max(1) as f64;
    let bar = (slot * 0.75).max(1.0);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Exceptions per month by pattern">"#
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        let y = top + plot_h - plot_h * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e6ec"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{:.0}</text>"##,
            w - 10.0,
            left - 6.0,
            y + 4.0,
            v
        );
    }
    for (i, (month, counts)) in months.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (p, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let bh = plot_h * n as f64 / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {n}</title></rect>"#,
                COLORS[p],
                esc(month),
                PATTERNS[p].as_str()
            );
        }
        if months.len() <= 24 || i % (months.len() / 12).max(1) == 0 {
            let _ = write!(
                s,
                r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#333">{}</text>"##,
                x + bar / 2.0,
                h - bottom + 16.0,
                esc(month)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars: the largest clusters by exceptions.
fn clusters(summary: &Summary) -> String {
    let shown = &summary.clusters[..summary.clusters.len().min(CLUSTERS_CHARTED)];
    let (w, row, left) = (1100.0, 26.0, 430.0);
    let h = row * shown.len().max(1) as f64 + 10.0;
    let max = shown.iter().map(|c| c.blast.exceptions).max().unwrap_or(0).max(1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Largest clusters">"#
    );
    for (i, c) in shown.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let p = PATTERNS.iter().position(|q| *q == c.pattern).unwrap_or(0);
        let mut label = vec![c.pattern.as_str(), c.channel.as_deref().unwrap_or("no channel")];
        label.extend(c.field);
        let label = format!("{} → {}", label.join(" · "), c.action);
        let bw = (w - left - 320.0) * c.blast.exceptions as f64 / max;
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="12" text-anchor="end" fill="#222">{}</text><rect x="{left}" y="{:.1}" width="{bw:.1}" height="{:.1}" fill="{}" rx="2"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#333">{} · {}</text>"##,
            left - 8.0,
            y + row * 0.62,
            esc(&label),
            y + 3.0,
            row - 8.0,
            COLORS[p],
            left + bw + 6.0,
            y + row * 0.62,
            c.blast.exceptions,
            esc(&c.blast.money_words())
        );
    }
    s.push_str("</svg>");
    s
}

/// The blast radius per pattern: orders affected and money at stake, per channel.
fn blast(summary: &Summary) -> String {
    let (w, row, left) = (1100.0, 44.0, 170.0);
    let rows: Vec<_> = summary.by_pattern.iter().collect();
    let h = row * rows.len() as f64 + 30.0;
    let max = rows.iter().map(|r| r.blast.orders).max().unwrap_or(0).max(1) as f64;
    let channels: Vec<&String> = {
        let mut c: Vec<&String> = rows.iter().flat_map(|r| r.by_channel.keys()).collect();
        c.sort();
        c.dedup();
        c
    };
    let shade = |c: &String| {
        let i = channels.iter().position(|x| *x == c).unwrap_or(0);
        ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51"][i % 5]
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Blast radius by pattern and channel">"#
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let _ = write!(
            s,
            r##"<text x="{}" y="{:.1}" font-size="13" text-anchor="end" fill="#222">{}</text>"##,
            left - 8.0,
            y + 20.0,
            r.pattern.as_str()
        );
        let mut x = left;
        for (channel, b) in &r.by_channel {
            let bw = (w - left - 330.0) * b.orders as f64 / max;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bw:.1}" height="24" fill="{}"><title>{}: {} orders, {}</title></rect>"#,
                y + 4.0,
                shade(channel),
                esc(channel),
                b.orders,
                esc(&b.money_words())
            );
            x += bw;
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" fill="#333">{} orders · {}</text>"##,
            x + 6.0,
            y + 20.0,
            r.blast.orders,
            esc(&money_short(&r.blast))
        );
    }
    let mut x = left;
    for c in &channels {
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#333">{}</text>"##,
            h - 20.0,
            shade(c),
            x + 16.0,
            h - 10.0,
            esc(c)
        );
        x += 30.0 + 8.0 * c.len() as f64;
    }
    s.push_str("</svg>");
    s
}

fn money_short(b: &Blast) -> String {
    if b.money.is_empty() {
        return "no money".into();
    }
    b.money.iter().map(|(c, a)| format!("{} {c}", grouped(*a))).collect::<Vec<_>>().join(" + ")
}
