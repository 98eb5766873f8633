//! An order's swimlane timeline: one lane per system (and one for the hub's rules and people),
//! each event, command, attempt, acknowledgment, retry and fired rule a mark at its time, as
//! inline SVG; the same entries as a table under it, for reading and for screen readers.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use handoff_store::Timeline;
use jiff::Timestamp;

use super::pages::shown_text;
use super::session::User;

/// Marks drawn at most; the table lists them all.
const MAX_MARKS: usize = 2_000;
/// The hub's own lane: rules that fired, people's actions.
const HUB: &str = "hub (rules, people)";

/// One thing that happened to the order.
pub struct Entry {
    pub at: Timestamp,
    pub lane: String,
    /// event, command, attempt, record, rule, audit, held
    pub kind: &'static str,
    pub what: String,
    /// The mark's colour: what kind of outcome it is.
    color: &'static str,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn outcome_color(outcome: &str) -> &'static str {
    match outcome {
        "acknowledged" | "applied" | "ok" => "#2e7d32",
        "dead_lettered" | "rejected" | "held" => "#b3261e",
        _ => "#e08a00",
    }
}

/// Everything in the timeline as entries in time order, personal data shown as `user` may see it.
pub fn entries(t: &Timeline, user: &User) -> Vec<Entry> {
    let targets: HashMap<i64, &str> = t.commands.iter().map(|c| (c.id, c.target.as_str())).collect();
    let mut out = Vec::new();
    for e in &t.events {
        let what = format!("{} received from {} ({})", e.kind, e.system, e.event_id);
        out.push(Entry { at: e.received_at, lane: e.system.clone(), kind: "event", what, color: "#30638e" });
    }
    for c in &t.commands {
        let what = format!("command {} {} queued ({} now {})", c.id, c.kind, c.idempotency_key, c.state);
        out.push(Entry { at: c.created_at, lane: c.target.clone(), kind: "command", what, color: "#5b6475" });
    }
    for a in &t.attempts {
        let lane = targets.get(&a.command_id).copied().unwrap_or("unknown").to_owned();
        let retry = if a.attempt > 1 { format!(" (retry {})", a.attempt - 1) } else { String::new() };
        let mut what = format!("command {} attempt {}{retry}: {}", a.command_id, a.attempt, a.outcome);
        if let Some(d) = &a.detail {
            what.push_str(&format!(", {}", shown_text(user, d)));
        }
        if let Some(m) = &a.mapping {
            what.push_str(&format!(" [mapping {m}]"));
        }
        out.push(Entry { at: a.finished_at, lane, kind: "attempt", what, color: outcome_color(&a.outcome) });
    }
    for l in &t.ledger {
        let what = format!("record {} in {}: {}", l.record_id.as_deref().unwrap_or("-"), l.system, l.state);
        out.push(Entry { at: l.updated_at, lane: l.system.clone(), kind: "record", what, color: "#2e7d32" });
    }
    for x in &t.exceptions {
        // Raised by a rule, or by the write path for a dead letter (it names its command).
        let by = x.command_id.map_or("a rule".to_owned(), |c| format!("command {c}"));
        let what = format!("exception raised: {} by {by} (exception {}, now {})", x.pattern, x.id, x.state);
        out.push(Entry { at: x.opened_at, lane: HUB.into(), kind: "rule", what, color: "#b3261e" });
    }
    for a in &t.audit {
        let what = format!("{} by {}: {}", a.action, a.actor, shown_text(user, &a.detail));
        out.push(Entry { at: a.at, lane: HUB.into(), kind: "audit", what, color: "#8f5ba8" });
    }
    for q in &t.quarantined {
        let what = format!("body held: {} ({})", q.field, shown_text(user, &q.reason));
        out.push(Entry { at: q.received_at, lane: q.system.clone(), kind: "held", what, color: "#b3261e" });
    }
    out.sort_by_key(|e| e.at);
    out
}

/// The lanes, systems first in the order they appear, the hub's lane last.
fn lanes(entries: &[Entry]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut lanes: Vec<String> =
        entries.iter().filter(|e| e.lane != HUB && seen.insert(e.lane.clone())).map(|e| e.lane.clone()).collect();
    if entries.iter().any(|e| e.lane == HUB) {
        lanes.push(HUB.into());
    }
    lanes
}

/// The swimlane chart of `entries` as SVG.
pub fn svg(entries: &[Entry]) -> String {
    let lanes = lanes(entries);
    let (w, left, right, lane_h, top) = (1100.0, 170.0, 20.0, 44.0, 26.0);
    let h = top + lane_h * lanes.len().max(1) as f64 + 10.0;
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return "<p>Nothing recorded for this order.</p>".into();
    };
    let span = last.at.duration_since(first.at).as_secs_f64().max(1.0);
    let x_of = |at: Timestamp| left + (w - left - right) * at.duration_since(first.at).as_secs_f64() / span;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="tl-title"><title id="tl-title">Swimlane timeline: {} entries across {} lanes, {} to {}</title>"##,
        entries.len(),
        lanes.len(),
        first.at.strftime("%Y-%m-%d %H:%M:%S"),
        last.at.strftime("%Y-%m-%d %H:%M:%S"),
    );
    let _ = write!(
        s,
        r##"<text x="{left}" y="14" font-size="11" fill="#555">{}</text><text x="{}" y="14" font-size="11" fill="#555" text-anchor="end">{}</text>"##,
        first.at.strftime("%m-%d %H:%M:%S"),
        w - right,
        last.at.strftime("%m-%d %H:%M:%S")
    );
    for (i, lane) in lanes.iter().enumerate() {
        let y = top + lane_h * i as f64;
        let fill = if i % 2 == 0 { "#f3f5f8" } else { "#ffffff" };
        let _ = write!(
            s,
            r##"<rect x="0" y="{y}" width="{w}" height="{lane_h}" fill="{fill}"/><text x="8" y="{:.1}" font-size="13" fill="#1d2330">{}</text><line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#c9ced8"/>"##,
            y + lane_h / 2.0 + 4.0,
            esc(lane),
            w - right,
            y + lane_h / 2.0,
            y + lane_h / 2.0
        );
    }
    let row: HashMap<&str, usize> = lanes.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    for e in entries.iter().take(MAX_MARKS) {
        let x = x_of(e.at);
        let y = top + lane_h * row[e.lane.as_str()] as f64 + lane_h / 2.0;
        let title = format!("<title>{} {}: {}</title>", e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, esc(&e.what));
        let c = e.color;
        let _ = match e.kind {
            "event" | "record" => write!(s, r##"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="{c}">{title}</circle>"##),
            "command" => write!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{c}">{title}</rect>"##,
                x - 5.0,
                y - 5.0
            ),
            "rule" | "held" => write!(
                s,
                r##"<path d="M{x:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="{c}">{title}</path>"##,
                y - 8.0,
                x + 7.0,
                y + 6.0,
                x - 7.0,
                y + 6.0
            ),
            _ => write!(
                s,
                r##"<path d="M{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} Z" fill="{c}">{title}</path>"##,
                y - 7.0,
                x + 7.0,
                y + 7.0,
                x - 7.0
            ),
        };
    }
    s.push_str("</svg>");
    s
}

/// The chart and the table of an order's timeline, as HTML.
pub fn swimlanes(t: &Timeline, user: &User) -> String {
    let entries = entries(t, user);
    let mut s = svg(&entries);
    s.push_str(
        r#"<p class="muted">● event or record · ■ command · ◆ attempt (green acknowledged, orange retried, red dead) · ▲ exception raised or body held</p>"#,
    );
    s.push_str(r#"<table id="timeline"><caption>Timeline, oldest first</caption><thead><tr><th scope="col">When</th><th scope="col">Lane</th><th scope="col">Kind</th><th scope="col">What</th></tr></thead><tbody>"#);
    for e in &entries {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            esc(&e.lane),
            e.kind,
            esc(&e.what)
        );
    }
    s.push_str("</tbody></table>");
    s
}
