//! The doctor: the ten questions of the handoff checklist, each answered from the contract, the
//! mappings it runs with and the traffic the store measured, with the evidence and a verdict.
//! One computation for `handoff doctor`, `GET /api/v1/doctor` and the console's checklist page.

use std::collections::BTreeMap;

use handoff_contract::check::{self, Finding, Severity};
use handoff_contract::{Contract, Flow, Role, Stage, words};
use handoff_mapping::Mappings;
use handoff_model::{EventKind, ExceptionState, Pattern};
use handoff_store::{ExceptionRow, FlowStats, Store};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Gap,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Gap => "gap",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Answer {
    pub number: u8,
    pub question: &'static str,
    pub verdict: Verdict,
    pub summary: String,
    pub evidence: Vec<String>,
}

const QUESTIONS: [&str; 10] = [
    "Which system owns the order record at each stage, and is that ownership documented?",
    "Is there an explicit acknowledgment signal between the storefront and the channel layer?",
    "Is there an explicit acknowledgment signal between the channel layer and the ERP?",
    "What happens to an order if a call fails mid-flight: retry, dead-letter, or disappear?",
    "If the same order is submitted twice, does the ERP create a duplicate draft?",
    "When fulfillment status changes in the ERP, is that change visible in the channel?",
    "When an order is cancelled in the storefront, does the ERP receive the cancellation in time?",
    "Is the data mapping to the ERP documented and tested?",
    "When a marketplace changes its API or format, where does the change surface?",
    "Do exceptions cluster around specific handoff points, fields or channels?",
];

/// What the doctor judges from.
struct Facts<'a> {
    contract: &'a Contract,
    /// The mappings the hub runs with, or why they could not be read.
    mappings: std::result::Result<&'a Mappings, String>,
    stats: Vec<FlowStats>,
    exceptions: Vec<ExceptionRow>,
    measured: bool,
}

impl Facts<'_> {
    fn stats(&self, flow: &str) -> impl Iterator<Item = &FlowStats> {
        self.stats.iter().filter(move |s| s.flow == flow)
    }

    fn count(&self, pattern: Pattern) -> (usize, usize) {
        let all: Vec<_> = self.exceptions.iter().filter(|x| x.pattern == pattern.as_str()).collect();
        let open = all.iter().filter(|x| open(x)).count();
        (all.len(), open)
    }

    fn role(&self, system: &str) -> Option<Role> {
        self.contract.systems.get(system).map(|s| s.role)
    }

    fn no_traffic(&self) -> String {
        if self.measured { "no traffic in the window".into() } else { "no store: nothing measured".into() }
    }
}

fn open(x: &ExceptionRow) -> bool {
    matches!(ExceptionState::parse(&x.state), Some(ExceptionState::Open | ExceptionState::Acknowledged))
}

fn ms(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 { "-".into() } else { format!("{:.1}%", 100.0 * n as f64 / of as f64) }
}

/// The checklist answered: each question with its verdict and evidence, and the tally.
#[derive(Debug, Serialize)]
pub struct Checklist {
    /// Whether a store was read: without one, only the contract answers.
    pub measured: bool,
    pub since: Timestamp,
    pub commands: u64,
    pub exceptions: usize,
    pub questions: Vec<Answer>,
    pub verdicts: BTreeMap<&'static str, usize>,
}

/// What the store measured since a time: each flow's commands and the exceptions touched.
pub struct Measured {
    pub stats: Vec<FlowStats>,
    pub exceptions: Vec<ExceptionRow>,
}

/// Most exceptions the doctor reads (the newest): its answers count and cluster them in memory.
pub const MAX_EXCEPTIONS: usize = 100_000;

impl Measured {
    /// What `store` measured since `since`.
    pub async fn read<S: Store>(store: &S, since: Timestamp) -> handoff_store::Result<Measured> {
        let stats = store.flow_stats(since).await?;
        let exceptions = store.exceptions(None, MAX_EXCEPTIONS).await?;
        Ok(Measured::since(stats, exceptions, since))
    }

    /// The exceptions touched since `since` among `exceptions`.
    pub fn since(stats: Vec<FlowStats>, exceptions: Vec<ExceptionRow>, since: Timestamp) -> Measured {
        Measured { stats, exceptions: exceptions.into_iter().filter(|x| x.updated_at >= since).collect() }
    }
}

/// The ten questions answered from `contract`, the `mappings` it runs with (or why they could
/// not be read), and what a store `measured` since `since` (`None`: no store).
pub fn checklist(
    contract: &Contract,
    mappings: std::result::Result<&Mappings, String>,
    measured: Option<Measured>,
    since: Timestamp,
) -> Checklist {
    let is_measured = measured.is_some();
    let Measured { stats, exceptions } = measured.unwrap_or(Measured { stats: Vec::new(), exceptions: Vec::new() });
    let facts = Facts { contract, mappings, stats, exceptions, measured: is_measured };
    let questions = vec![
        ownership(&facts),
        acknowledgment(&facts, 2),
        acknowledgment(&facts, 3),
        mid_flight(&facts),
        duplicates(&facts),
        compensation(&facts, 6),
        compensation(&facts, 7),
        mapping_tests(&facts),
        format_changes(&facts),
        clusters(&facts),
    ];
    let mut verdicts = BTreeMap::new();
    for q in &questions {
        *verdicts.entry(q.verdict.as_str()).or_insert(0) += 1;
    }
    Checklist {
        measured: is_measured,
        since,
        commands: facts.stats.iter().map(|s| s.commands).sum(),
        exceptions: facts.exceptions.len(),
        questions,
        verdicts,
    }
}

/// Each (target connector, resource) a flow's commands are mapped to, with those flows.
pub fn mapped_flows(contract: &Contract) -> BTreeMap<(&'static str, &'static str), Vec<String>> {
    let mut mapped: BTreeMap<_, Vec<String>> = BTreeMap::new();
    for (name, flow) in &contract.flows {
        let Some(target) = contract.systems.get(&flow.to) else { continue };
        let connector = target.connector.as_str();
        for kind in flow.events.iter().filter_map(|k| handoff_contract::command_for(*k)) {
            if let Some(resource) = handoff_mapping::resource_for(connector, kind.as_str()) {
                let flows = mapped.entry((connector, resource)).or_default();
                if !flows.contains(name) {
                    flows.push(name.clone());
                }
            }
        }
    }
    mapped
}

/// The mappings the contract's flows go through: each exists, passes its golden cases, and
/// still produces every field the target's refreshed schema snapshot newly requires.
pub fn mapping_findings(contract: &Contract, mappings: &Mappings) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Every golden case runs once, whatever the number of flows sharing a mapping.
    let results = mappings.test();
    for ((connector, resource), flows) in mapped_flows(contract) {
        let outputs = mappings.case_outputs(connector, resource);
        for name in flows {
            let at = format!("flows.{name}.to");
            let Some(mapping) = mappings.latest(connector, resource) else {
                findings.push(Finding::error(at, format!("no mapping {connector}/{resource} for its commands")));
                continue;
            };
            let results: Vec<_> = results.iter().filter(|r| r.mapping == mapping.id).collect();
            let failed: Vec<_> =
                results.iter().filter_map(|r| r.outcome.as_ref().err().map(|e| (&r.case, e))).collect();
            if results.is_empty() {
                findings.push(Finding::warning(at.clone(), format!("{} has no golden cases", mapping.id)));
            } else if let Some((case, why)) = failed.first() {
                findings.push(Finding::error(
                    at.clone(),
                    format!("{} fails {} of {} golden cases ({case}: {why})", mapping.id, failed.len(), results.len()),
                ));
            } else {
                findings
                    .push(Finding::ok(at.clone(), format!("{} passes its {} golden cases", mapping.id, results.len())));
            }
            let Some(diff) = mappings.schema_diff(connector, resource) else { continue };
            let lookups = handoff_mapping::preflight::lookups_for(connector, resource);
            for field in &diff.newly_required {
                let missing: Vec<&str> = outputs
                    .iter()
                    .filter(|(_, out)| {
                        out.as_ref().map_or(true, |v| !handoff_mapping::preflight::provides(v, field, lookups))
                    })
                    .map(|(case, _)| case.as_str())
                    .collect();
                let message = format!("the refreshed {resource} snapshot newly requires {field}");
                if missing.is_empty() && !outputs.is_empty() {
                    findings.push(Finding::ok(at.clone(), format!("{message}; {} produces it", mapping.id)));
                } else {
                    findings.push(Finding::error(
                        at.clone(),
                        format!("{message}; {} does not produce it (golden cases: {})", mapping.id, missing.join(", ")),
                    ));
                }
            }
        }
    }
    findings
}

fn answer(number: u8, verdict: Verdict, summary: impl Into<String>, evidence: Vec<String>) -> Answer {
    Answer { number, question: QUESTIONS[number as usize - 1], verdict, summary: summary.into(), evidence }
}

fn ownership(f: &Facts) -> Answer {
    let findings: Vec<_> = check::check(f.contract)
        .into_iter()
        .filter(|x| x.key.starts_with("ownership") || x.key.ends_with(".events"))
        .collect();
    let mut evidence: Vec<String> = Stage::ALL
        .iter()
        .map(|stage| match f.contract.ownership.get(stage) {
            Some(owner) => format!("{stage}: {owner}"),
            None => format!("{stage}: no owner in [ownership]"),
        })
        .collect();
    evidence
        .extend(findings.iter().filter(|x| x.severity != Severity::Ok).map(|x| format!("{}: {}", x.key, x.message)));
    let worst = findings.iter().map(|x| x.severity).max().unwrap_or(Severity::Ok);
    let (verdict, summary) = match worst {
        _ if f.contract.ownership.is_empty() => {
            (Verdict::Gap, "the contract has no [ownership]: nobody owns any stage")
        }
        Severity::Error => (Verdict::Gap, "ownership is written down, but it is broken (see below)"),
        Severity::Warning => (Verdict::Warn, "ownership is written down, with gaps"),
        Severity::Ok => (Verdict::Ok, "every stage has one owner in the contract, and flows carry the owner's word"),
    };
    answer(1, verdict, summary, evidence)
}

/// Question 2 (flows that touch a storefront, marketplace or channel, and how the hub hears
/// them) or 3 (flows to an ERP or warehouse).
fn acknowledgment(f: &Facts, number: u8) -> Answer {
    let mut evidence = Vec::new();
    let mut verdict = Verdict::Ok;
    if number == 2 {
        for (name, s) in f.contract.systems.iter().filter(|(_, s)| s.role.is_channel()) {
            let hears = words::intake(s);
            if hears.starts_with("nothing") && f.contract.flows.values().any(|fl| &fl.from == name) {
                verdict = Verdict::Gap;
            }
            evidence.push(format!(
                "{name} -> hub: {hears}; a webhook gets its 2xx only after the event is durably committed"
            ));
        }
    }
    let wanted = |flow: &Flow| match number {
        2 => f.role(&flow.to).is_some_and(Role::is_channel),
        _ => matches!(f.role(&flow.to), Some(Role::Erp | Role::Wms)),
    };
    let flows: Vec<_> = f.contract.flows.iter().filter(|(_, fl)| wanted(fl)).collect();
    if flows.is_empty() && number == 3 {
        return answer(3, Verdict::Gap, "no flow delivers to an ERP or warehouse", evidence);
    }
    for (name, flow) in &flows {
        let shadow = if flow.shadow { " [shadow: observed, nothing sent]" } else { "" };
        evidence.push(format!(
            "{name} ({} -> {}): proof {} ({}), deadline {}{shadow}",
            flow.from,
            flow.to,
            flow.proof.as_str(),
            words::proof(flow),
            words::duration(flow.deadline)
        ));
        if flow.shadow {
            verdict = verdict.max(Verdict::Warn);
        }
        let stats: Vec<_> = f.stats(name).collect();
        if stats.is_empty() {
            evidence.push(format!("  measured: {}", f.no_traffic()));
            verdict = verdict.max(Verdict::Warn);
        }
        for s in stats {
            let finished = s.commands - s.unfinished - s.superseded;
            evidence.push(format!(
                "  measured {}: {} commands, acknowledged {} ({}), latency p50 {} p99 {}",
                s.kind,
                s.commands,
                s.acknowledged,
                pct(s.acknowledged, finished),
                ms(s.latency_p50_ms),
                ms(s.latency_p99_ms)
            ));
            let deadline = flow.deadline.as_millis() as i64;
            if s.acknowledged < finished || s.latency_p99_ms.is_some_and(|p| p > deadline) {
                verdict = verdict.max(Verdict::Warn);
            }
        }
    }
    let summary = match (number, verdict) {
        (2, Verdict::Gap) => "a channel whose events travel is never heard: nothing acknowledges its orders",
        (2, Verdict::Ok) => "webhooks are acknowledged after a durable commit; signals back to channels are proven",
        (2, _) => "acknowledged by contract; the measured traffic shows misses, none yet, or shadow flows",
        (_, Verdict::Ok) => "every command to the ERP is proven acknowledged, within its deadline",
        _ => "acknowledged by contract; the measured traffic shows misses, none yet, or shadow flows",
    };
    answer(number, verdict, summary, evidence)
}

fn mid_flight(f: &Facts) -> Answer {
    let mut evidence = Vec::new();
    let mut verdict = Verdict::Ok;
    for (name, flow) in &f.contract.flows {
        evidence.push(format!(
            "{name}: {}; dead letter {} ({})",
            words::retry(&flow.retry),
            flow.dead_letter.as_str(),
            words::dead_letter(flow.dead_letter)
        ));
        if flow.retry.attempts < 2 {
            verdict = verdict.max(Verdict::Warn);
        }
        let (commands, retried, dead) =
            f.stats(name).fold((0, 0, 0), |(c, r, d), s| (c + s.commands, r + s.retried_commands, d + s.dead_lettered));
        if commands > 0 {
            evidence.push(format!(
                "  measured: {commands} commands, retried {} ({}), dead-lettered {} ({})",
                retried,
                pct(retried, commands),
                dead,
                pct(dead, commands)
            ));
        }
    }
    let (dead, open_dead) = f.count(Pattern::DeadDelivery);
    let (held, open_held) = f.count(Pattern::TransformMismatch);
    evidence.push(format!(
        "dead letters in the window: {dead} dead deliveries ({open_dead} open), {held} transform mismatches \
         ({open_held} open); each is an exception until replayed or closed"
    ));
    if open_dead + open_held > 0 {
        verdict = verdict.max(Verdict::Warn);
    }
    let summary = match verdict {
        Verdict::Ok => "every flow retries with backoff, then dead-letters with an exception: nothing disappears",
        _ => "nothing disappears: failures retry, then dead-letter with an exception; some wait for a person",
    };
    answer(4, verdict, summary, evidence)
}

fn duplicates(f: &Facts) -> Answer {
    let mut evidence = Vec::new();
    let erps: Vec<_> = f.contract.systems.iter().filter(|(_, s)| s.role == Role::Erp).collect();
    for (name, s) in &erps {
        evidence.push(format!("{name}: {}", words::idempotency(s)));
    }
    evidence.push(
        "the inbox is unique on (system, event id) and the outbox on the idempotency key: a redelivered event \
         is answered as a duplicate and enqueues nothing (the store keeps no count of redeliveries)"
            .into(),
    );
    let (all, open) = f.count(Pattern::DuplicateDraft);
    evidence.push(format!("duplicate drafts found by the rules in the window: {all} ({open} open)"));
    let (verdict, summary) = match (erps.is_empty(), all, open) {
        (true, ..) => (Verdict::Warn, "no ERP in the contract to protect".to_owned()),
        (_, 0, _) => (Verdict::Ok, "every retry is recognized: no duplicate draft measured".to_owned()),
        (_, _, 0) => (Verdict::Warn, format!("{all} duplicate draft(s) found and closed")),
        _ => (Verdict::Gap, format!("{open} duplicate draft(s) open in the ERP")),
    };
    answer(5, verdict, summary, evidence)
}

/// Question 6 (fulfillments back to the channel) or 7 (cancellations to the ERP).
fn compensation(f: &Facts, number: u8) -> Answer {
    let (event, kind, pattern) = match number {
        6 => (EventKind::FulfillmentCreated, "create_fulfillment", Pattern::StatusVoid),
        _ => (EventKind::OrderCancelled, "cancel_order", Pattern::RollbackGap),
    };
    let flows: Vec<_> = f
        .contract
        .flows
        .iter()
        .filter(|(_, fl)| fl.events.contains(&event))
        .filter(|(_, fl)| match number {
            6 => f.role(&fl.to).is_some_and(Role::is_channel),
            _ => matches!(f.role(&fl.to), Some(Role::Erp | Role::Wms)),
        })
        .collect();
    let mut evidence = Vec::new();
    let mut verdict = Verdict::Ok;
    for (name, flow) in &flows {
        evidence.push(format!("{name} ({} -> {}): deadline {}", flow.from, flow.to, words::duration(flow.deadline)));
        match f.stats(name).find(|s| s.kind == kind) {
            Some(s) => {
                evidence.push(format!(
                    "  measured: {} {kind} commands, acknowledged {}, event-to-ack p50 {} p99 {}",
                    s.commands,
                    s.acknowledged,
                    ms(s.latency_p50_ms),
                    ms(s.latency_p99_ms)
                ));
                if s.latency_p99_ms.is_some_and(|p| p > flow.deadline.as_millis() as i64) {
                    verdict = verdict.max(Verdict::Warn);
                }
            }
            None => {
                evidence.push(format!("  measured: {}", f.no_traffic()));
                verdict = verdict.max(Verdict::Warn);
            }
        }
    }
    let (all, open) = f.count(pattern);
    evidence.push(format!("{pattern} exceptions in the window: {all} ({open} open)"));
    if open > 0 {
        verdict = verdict.max(Verdict::Warn);
    }
    let what = if number == 6 { "ERP fulfillments to the channel" } else { "channel cancellations to the ERP" };
    if flows.is_empty() {
        return answer(
            number,
            Verdict::Gap,
            format!("no flow carries {what}: the compensating signal is missing"),
            evidence,
        );
    }
    let summary = match verdict {
        Verdict::Ok => format!("{what} travel, acknowledged within their deadline"),
        _ => format!("{what} travel by contract; the measurements show open {pattern}s, no traffic yet, or slow acks"),
    };
    answer(number, verdict, summary, evidence)
}

fn mapping_tests(f: &Facts) -> Answer {
    let findings = match &f.mappings {
        Ok(mappings) => mapping_findings(f.contract, mappings),
        Err(why) => vec![Finding::error("hub.mappings", why.clone())],
    };
    let mut evidence: Vec<String> =
        findings.iter().map(|x| format!("{} {}: {}", x.severity, x.key, x.message)).collect();
    let plain: Vec<String> = f
        .contract
        .flows
        .iter()
        .filter(|(_, fl)| f.contract.systems.get(&fl.to).is_some_and(|s| s.connector.as_str() == "http-json"))
        .map(|(name, _)| name.clone())
        .collect();
    if !plain.is_empty() {
        evidence.push(format!(
            "{}: http-json targets receive Handoff's canonical JSON (documented in docs/connectors), no mapping",
            plain.join(", ")
        ));
    }
    let worst = findings.iter().map(|x| x.severity).max();
    let (verdict, summary) = match worst {
        Some(Severity::Error) => (Verdict::Gap, "a mapping is missing or fails its golden cases"),
        Some(Severity::Warning) => (Verdict::Warn, "a mapping has no golden cases"),
        Some(Severity::Ok) => (Verdict::Ok, "every mapping is versioned, documented and passes its golden cases"),
        None => (Verdict::Ok, "no flow goes through a mapping: targets take the documented canonical JSON"),
    };
    answer(8, verdict, summary, evidence)
}

fn format_changes(f: &Facts) -> Answer {
    let mut evidence = Vec::new();
    let vendors: Vec<&String> = f
        .contract
        .systems
        .iter()
        .filter(|(_, s)| s.role.is_channel() && s.connector.as_str() != "http-json")
        .map(|(n, _)| n)
        .collect();
    if vendors.is_empty() {
        evidence
            .push("no vendor channel: sources post canonical JSON, validated on arrival (400 names the field)".into());
    } else {
        let names: Vec<&str> = vendors.iter().map(|s| s.as_str()).collect();
        evidence.push(format!("drift watch on the webhooks of {}: payload shapes against baselines", names.join(", ")));
        let quarantined = f.exceptions.iter().filter(|x| handoff_engine::quarantine::held_by(x).is_some()).count();
        evidence.push(format!(
            "a vendor body or polled record no reader maps is held in quarantine, never refused or skipped: \
             {quarantined} held in the window (`handoff quarantine list`)"
        ));
    }
    let mut preflight_missing = false;
    match &f.mappings {
        Ok(mappings) => {
            for (name, flow) in &f.contract.flows {
                let Some(target) = f.contract.systems.get(&flow.to) else { continue };
                for kind in flow.events.iter().filter_map(|k| handoff_contract::command_for(*k)) {
                    let connector = target.connector.as_str();
                    let Some(resource) = handoff_mapping::resource_for(connector, kind.as_str()) else { continue };
                    let line = match mappings.schema(connector, resource) {
                        Some(_) => format!("{name}: pre-flight of {connector}/{resource} against its schema snapshot"),
                        None => {
                            preflight_missing = true;
                            format!("{name}: {connector}/{resource} has no schema snapshot: no pre-flight")
                        }
                    };
                    if !evidence.contains(&line) {
                        evidence.push(line);
                    }
                }
            }
        }
        Err(why) => evidence.push(format!("mappings unreadable: {why}")),
    }
    let (held, _) = f.count(Pattern::TransformMismatch);
    let rejected =
        f.exceptions.iter().filter(|x| x.pattern == Pattern::DeadDelivery.as_str() && x.field.is_some()).count();
    evidence.push(format!(
        "in the window: {held} held at the transform layer (transform_mismatch), {rejected} refused by a target \
         naming a field (dead_delivery)"
    ));
    let (verdict, summary) = if rejected > 0 && (preflight_missing || held == 0) {
        (Verdict::Gap, "format changes surface as order rejections at the target")
    } else if rejected > 0 {
        (Verdict::Warn, "most format changes are held at the transform layer; some still reach the target")
    } else if preflight_missing {
        (Verdict::Warn, "no rejection measured, but a mapped target has no schema snapshot to check against")
    } else {
        (Verdict::Ok, "format changes surface at the transform layer, before anything is sent")
    };
    answer(9, verdict, summary, evidence)
}

fn clusters(f: &Facts) -> Answer {
    let clusters = handoff_engine::clusters::clusters(&f.exceptions);
    let total = f.exceptions.len();
    let mut evidence = Vec::new();
    for c in clusters.iter().take(5) {
        let money: Vec<String> = c.money.iter().map(|(cur, a)| format!("{a} {cur}")).collect();
        evidence.push(format!(
            "{} {:.0}%: {} exception(s) on {} order(s), {} flow {} field {} channel {}{}: {}",
            c.id,
            100.0 * c.exceptions as f64 / total.max(1) as f64,
            c.exceptions,
            c.orders,
            c.key.pattern,
            c.key.flow.as_deref().unwrap_or("-"),
            c.key.field.as_deref().unwrap_or("-"),
            c.key.channel.as_deref().unwrap_or("-"),
            if money.is_empty() { String::new() } else { format!(" ({})", money.join(" + ")) },
            c.key.fingerprint
        ));
    }
    let open_total = f.exceptions.iter().filter(|x| open(x)).count();
    let (verdict, summary) = match clusters.first() {
        None => {
            (Verdict::Ok, format!("no exceptions in the window ({})", if f.measured { "measured" } else { "no store" }))
        }
        Some(_) if open_total == 0 => (Verdict::Ok, format!("{total} exception(s), all closed")),
        Some(top) if total >= 2 && top.exceptions * 2 >= total && !top.actionable.is_empty() => (
            Verdict::Gap,
            format!(
                "{} of {total} exceptions share one cause ({}): a handoff point to fix once, then \
                 `handoff exceptions act --cluster {}`",
                top.exceptions, top.key.pattern, top.id
            ),
        ),
        Some(_) => (Verdict::Warn, format!("{open_total} open exception(s) across {} cluster(s)", clusters.len())),
    };
    answer(10, verdict, summary, evidence)
}
