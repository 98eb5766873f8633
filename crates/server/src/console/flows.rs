//! The hub's health: delivery per flow (acknowledgment rate, latency, retries, dead letters)
//! over three windows with an SVG chart, the quarantine of held bodies, and payload drift.

use std::fmt::Write as _;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use handoff_store::{FlowStats, Store};
use jiff::SignedDuration;

use super::pages::{Chrome, render, shown_text, store_failed};
use super::session::User;
use crate::AppState;

/// The windows flow health is measured over: (label, length). The last is everything the
/// retention keeps (its history horizon bounds it).
const WINDOWS: [(&str, SignedDuration); 4] = [
    ("last hour", SignedDuration::from_hours(1)),
    ("last day", SignedDuration::from_hours(24)),
    ("last week", SignedDuration::from_hours(24 * 7)),
    ("all kept", SignedDuration::from_hours(24 * 366 * 10)),
];

struct Health {
    window: &'static str,
    flow: String,
    target: String,
    kind: String,
    commands: u64,
    acknowledged: u64,
    rate: String,
    retries: u64,
    dead_lettered: u64,
    unfinished: u64,
    p50: String,
    p99: String,
}

fn ms(v: Option<i64>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_default()
}

fn rate(s: &FlowStats) -> Option<f64> {
    (s.commands > 0).then(|| s.acknowledged as f64 / s.commands as f64 * 100.0)
}

#[derive(Template)]
#[template(path = "console/flows.html")]
struct Page {
    c: Chrome,
    chart: String,
    over_time: String,
    days: i64,
    choices: [i64; 5],
    rows: Vec<Health>,
    counts: Vec<(String, u64)>,
}

#[derive(serde::Deserialize)]
pub(crate) struct Q {
    /// Days the charts over time cover, ending now.
    days: Option<i64>,
}

/// The windows a person may chart, in days.
const DAY_CHOICES: [i64; 5] = [1, 7, 30, 90, 365];
/// Buckets of a chart over time.
const BUCKETS: usize = 48;

pub(crate) async fn page<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
    axum::extract::Query(q): axum::extract::Query<Q>,
) -> Response {
    let now = state.clock.now();
    let days = q.days.filter(|d| DAY_CHOICES.contains(d)).unwrap_or(30);
    let window = handoff_store::HealthWindow {
        from: now.checked_sub(SignedDuration::from_hours(24 * days)).unwrap_or(now),
        to: now,
        buckets: BUCKETS,
        flow: None,
    };
    let health = match state.store.flow_health(window).await {
        Ok(h) => h,
        Err(e) => return store_failed(e),
    };
    let mut windows = Vec::new();
    for (label, length) in WINDOWS {
        match state.store.flow_stats(now.checked_sub(length).unwrap_or(now)).await {
            Ok(stats) => windows.push((label, stats)),
            Err(e) => return store_failed(e),
        }
    }
    let counts = match state.store.command_counts().await {
        Ok(c) => c,
        Err(e) => return store_failed(e),
    };
    let rows = windows
        .iter()
        .flat_map(|(label, stats)| {
            stats.iter().map(|s| Health {
                window: label,
                flow: s.flow.clone(),
                target: s.target.clone(),
                kind: s.kind.clone(),
                commands: s.commands,
                acknowledged: s.acknowledged,
                rate: rate(s).map(|r| format!("{r:.1}%")).unwrap_or_default(),
                retries: s.retries,
                dead_lettered: s.dead_lettered,
                unfinished: s.unfinished,
                p50: ms(s.latency_p50_ms),
                p99: ms(s.latency_p99_ms),
            })
        })
        .collect();
    render(Page {
        c: Chrome::new(&user, "Flow health"),
        chart: chart(&windows),
        over_time: over_time(&health),
        days,
        choices: DAY_CHOICES,
        rows,
        counts,
    })
}

/// Each flow's acknowledgment rate (lines, left axis) and p99 latency (dots, in the title) per
/// bucket over the window, as SVG.
fn over_time(health: &[handoff_store::FlowHealth]) -> String {
    let colors = ["#30638e", "#d1495b", "#00798c", "#edae49", "#8f5ba8", "#3c9d5d"];
    let (Some(first), Some(last)) =
        (health.iter().find_map(|f| f.buckets.first()), health.iter().find_map(|f| f.buckets.last()))
    else {
        return "<p>No flows.</p>".into();
    };
    if health.iter().all(|f| f.buckets.iter().all(|b| b.commands == 0)) {
        return "<p>No commands in this window.</p>".into();
    }
    let (w, h, left, top, bottom) = (1100.0, 230.0, 50.0, 15.0, 25.0);
    let mut legend = String::from(r#"<ul class="legend">"#);
    let plot = h - top - bottom;
    let n = health.iter().map(|f| f.buckets.len()).max().unwrap_or(1).max(2);
    let x_of = |i: usize| left + (w - left - 20.0) * i as f64 / (n - 1) as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="ot-title"><title id="ot-title">Acknowledgment rate per flow over time</title>"#
    );
    for i in 0..=4 {
        let y = top + plot - plot * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e6ec"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}%</text>"##,
            w - 20.0,
            left - 6.0,
            y + 4.0,
            i * 25
        );
    }
    let _ = write!(
        s,
        r##"<text x="{left}" y="{}" font-size="11" fill="#555">{}</text><text x="{}" y="{}" font-size="11" fill="#555" text-anchor="end">{}</text>"##,
        h - bottom + 16.0,
        first.start.strftime("%Y-%m-%d %H:%M"),
        w - 20.0,
        h - bottom + 16.0,
        last.start.strftime("%Y-%m-%d %H:%M")
    );
    for (k, flow) in health.iter().enumerate() {
        let color = colors[k % colors.len()];
        let points: Vec<String> = flow
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.ack_rate.map(|r| format!("{:.1},{:.1}", x_of(i), top + plot - plot * r)))
            .collect();
        if points.len() > 1 {
            let _ = write!(
                s,
                r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
                points.join(" ")
            );
        }
        for (i, b) in flow.buckets.iter().enumerate() {
            let Some(r) = b.ack_rate else { continue };
            let p99 = b.latency_p99_ms.map(|v| format!(", p99 {v} ms")).unwrap_or_default();
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{} from {}: {} of {} acknowledged ({:.1}%), {} retries, {} dead-lettered{p99}</title></circle>"##,
                x_of(i),
                top + plot - plot * r,
                flow.flow.replace('<', "&lt;"),
                b.start.strftime("%Y-%m-%d %H:%M"),
                b.acknowledged,
                b.commands,
                r * 100.0,
                b.retries,
                b.dead_lettered
            );
        }
        let _ = write!(
            legend,
            r#"<li><span style="color:{color}">■</span> {} ({} dead letters waiting)</li>"#,
            flow.flow.replace('<', "&lt;"),
            flow.dead_letter_depth
        );
    }
    s.push_str("</svg>");
    s.push_str(&legend);
    s.push_str("</ul>");
    s
}

/// Grouped bars: each flow's acknowledgment rate in each window.
fn chart(windows: &[(&str, Vec<FlowStats>)]) -> String {
    let mut flows: Vec<String> = windows.iter().flat_map(|(_, s)| s.iter().map(|s| s.flow.clone())).collect();
    flows.sort();
    flows.dedup();
    if flows.is_empty() {
        return "<p>No commands kept.</p>".into();
    }
    let colors = ["#30638e", "#00798c", "#8f5ba8", "#5b6475"];
    let (w, left, top, bottom) = (1100.0, 50.0, 20.0, 50.0);
    let h = 300.0;
    let plot = h - top - bottom;
    let slot = (w - left - 10.0) / flows.len() as f64;
    let bar = slot * 0.8 / windows.len() as f64;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="fh-title"><title id="fh-title">Acknowledgment rate per flow, last hour, day, week and all kept</title>"#
    );
    for i in 0..=4 {
        let y = top + plot - plot * i as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e6ec"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}%</text>"##,
            w - 10.0,
            left - 6.0,
            y + 4.0,
            i * 25
        );
    }
    for (f, flow) in flows.iter().enumerate() {
        let x0 = left + slot * f as f64 + slot * 0.1;
        for (i, (label, stats)) in windows.iter().enumerate() {
            let (commands, acknowledged) =
                stats.iter().filter(|s| &s.flow == flow).fold((0, 0), |(c, a), s| (c + s.commands, a + s.acknowledged));
            if commands == 0 {
                continue;
            }
            let r = acknowledged as f64 / commands as f64;
            let bh = plot * r;
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{} {label}: {acknowledged} of {commands} acknowledged ({:.1}%)</title></rect>"##,
                x0 + bar * i as f64,
                top + plot - bh,
                bar * 0.95,
                colors[i % colors.len()],
                flow.replace('<', "&lt;"),
                r * 100.0
            );
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#1d2330">{}</text>"##,
            x0 + slot * 0.4,
            h - bottom + 18.0,
            flow.replace('<', "&lt;")
        );
    }
    for (i, (label, _)) in windows.iter().enumerate() {
        let x = left + 130.0 * i as f64;
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}" font-size="12">{label}</text>"##,
            h - 18.0,
            colors[i % colors.len()],
            x + 16.0,
            h - 8.0
        );
    }
    s.push_str("</svg>");
    s
}

struct Held {
    id: i64,
    system: String,
    order_ref: String,
    field: String,
    reason: String,
    state: String,
    received_at: String,
}

#[derive(Template)]
#[template(path = "console/quarantine.html")]
struct Quarantine {
    c: Chrome,
    depth: Vec<(String, u64)>,
    rows: Vec<Held>,
}

/// Held bodies listed, newest first.
const HELD_LISTED: usize = 200;

pub(crate) async fn quarantine<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
) -> Response {
    let read = async {
        let depth = state.store.quarantine_depth().await?;
        let rows = state.store.quarantined(None, HELD_LISTED).await?;
        Ok::<_, handoff_store::StoreError>((depth, rows))
    };
    let (depth, rows) = match read.await {
        Ok(read) => read,
        Err(e) => return store_failed(e),
    };
    let rows = rows
        .iter()
        .map(|q| Held {
            id: q.id,
            system: q.system.clone(),
            order_ref: q.order_ref.clone().unwrap_or_default(),
            field: q.field.clone(),
            reason: shown_text(&user, &q.reason),
            state: q.state.to_string(),
            received_at: q.received_at.strftime("%Y-%m-%d %H:%M").to_string(),
        })
        .collect();
    render(Quarantine { c: Chrome::new(&user, "Quarantine"), depth, rows })
}

#[derive(Template)]
#[template(path = "console/drift.html")]
struct Drift {
    c: Chrome,
    /// (source, seen, drifted, unbaselined)
    sources: Vec<(String, u64, u64, u64)>,
    raised: String,
}

pub(crate) async fn drift<S: Store + Clone>(
    State(state): State<Arc<AppState<S>>>,
    Extension(user): Extension<User>,
) -> Response {
    let (sources, raised) = state.drift.report();
    let sources = sources
        .into_iter()
        .map(|(k, s)| {
            let key = serde_json::to_value(&k).map(|v| v.to_string()).unwrap_or_default();
            (key, s.seen, s.drifted, s.unbaselined)
        })
        .collect();
    let raised = serde_json::to_string_pretty(&raised).unwrap_or_default();
    render(Drift { c: Chrome::new(&user, "Drift"), sources, raised })
}
