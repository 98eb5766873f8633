//! `handoff contract check`: the document-level checks a contract can load without passing.
//! Loading refuses what cannot run; these findings say what a reader of the contract should
//! know or fix: missing owners, events from the wrong system, systems nobody hears from.
//! Callers append their own findings (mapping checks) to the same list.

use std::fmt;

use crate::{Contract, Owner, Stage, words};

/// How a finding bears on the contract: `Error` makes `contract check` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One verdict on one contract key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The contract key it is about, e.g. `flows.orders-to-erp.retry` or `ownership.paid`.
    pub key: String,
    pub message: String,
}

impl Finding {
    pub fn ok(key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding { severity: Severity::Ok, key: key.into(), message: message.into() }
    }

    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding { severity: Severity::Warning, key: key.into(), message: message.into() }
    }

    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding { severity: Severity::Error, key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8}{}: {}", self.severity.as_str(), self.key, self.message)
    }
}

/// Counts by severity, for the closing line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub warnings: usize,
    pub errors: usize,
}

impl Tally {
    pub fn of(findings: &[Finding]) -> Tally {
        let mut tally = Tally::default();
        for f in findings {
            match f.severity {
                Severity::Ok => tally.ok += 1,
                Severity::Warning => tally.warnings += 1,
                Severity::Error => tally.errors += 1,
            }
        }
        tally
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ok, {} warnings, {} errors", self.ok, self.warnings, self.errors)
    }
}

/// Every document-level check of the contract, in the order a reader meets the keys: flows,
/// then ownership, then systems.
pub fn check(contract: &Contract) -> Vec<Finding> {
    let mut findings = Vec::new();
    flows(contract, &mut findings);
    ownership(contract, &mut findings);
    systems(contract, &mut findings);
    findings
}

/// Each flow's acknowledgment rules, with the effective values (serde fills some in), and
/// whether each event it carries comes from the system that owns its stage.
fn flows(contract: &Contract, findings: &mut Vec<Finding>) {
    for (name, flow) in &contract.flows {
        let key = |k: &str| format!("flows.{name}.{k}");
        findings.push(Finding::ok(key("proof"), format!("{}: {}", flow.proof.as_str(), words::proof(flow))));
        findings.push(Finding::ok(key("deadline"), format!("acknowledged within {}", words::duration(flow.deadline))));
        let retry = &flow.retry;
        let fit = retry.attempts_within_deadline();
        if fit < retry.attempts {
            findings.push(Finding::warning(
                key("retry"),
                format!(
                    "{}; raise retry.deadline or lower retry.attempts so the budget says what happens",
                    words::retry(retry)
                ),
            ));
        } else {
            findings.push(Finding::ok(key("retry"), words::retry(retry)));
        }
        findings.push(Finding::ok(
            key("dead_letter"),
            format!("{}: {}", flow.dead_letter.as_str(), words::dead_letter(flow.dead_letter)),
        ));
        for kind in &flow.events {
            let stage = Stage::of(*kind);
            match contract.ownership.get(&stage) {
                // The missing owner is reported once, under `ownership`.
                None => {}
                Some(owner) if owner.includes(&flow.from) => findings
                    .push(Finding::ok(key("events"), format!("{kind} comes from {}, which owns {stage}", flow.from))),
                Some(owner) => findings.push(Finding::error(
                    key("events"),
                    format!(
                        "{kind} comes from {}, but {stage} is owned by {owner}: only the owner's word travels",
                        flow.from
                    ),
                )),
            }
        }
    }
}

/// Every stage has exactly one owner: one system, or each order's channel among several.
fn ownership(contract: &Contract, findings: &mut Vec<Finding>) {
    for stage in Stage::ALL {
        let key = format!("ownership.{stage}");
        match contract.ownership.get(&stage) {
            None => findings.push(Finding::error(
                key,
                format!("no owner: name the system whose record counts once an order is {stage}"),
            )),
            Some(Owner::System(name)) => findings.push(Finding::ok(key, format!("owned by {name}"))),
            Some(Owner::EachChannel(names)) => {
                let not_channels: Vec<&str> = names
                    .iter()
                    .filter(|n| contract.systems.get(*n).is_some_and(|s| !s.role.is_channel()))
                    .map(String::as_str)
                    .collect();
                if not_channels.is_empty() {
                    findings.push(Finding::ok(key, format!("owned by each order's channel: {}", names.join(", "))));
                } else {
                    findings.push(Finding::error(
                        key,
                        format!(
                            "a list means each order's channel owns it, but {} creates no orders; name one owner",
                            not_channels.join(", ")
                        ),
                    ));
                }
            }
        }
    }
}

/// Targets can be reached, sources can be heard, and every system has a part to play.
fn systems(contract: &Contract, findings: &mut Vec<Finding>) {
    for (name, system) in &contract.systems {
        let key = |k: &str| format!("systems.{name}.{k}");
        let targeted: Vec<&str> =
            contract.flows.iter().filter(|(_, f)| &f.to == name).map(|(n, _)| n.as_str()).collect();
        let sourced: Vec<&str> =
            contract.flows.iter().filter(|(_, f)| &f.from == name).map(|(n, _)| n.as_str()).collect();
        if !targeted.is_empty() {
            match &system.base_url {
                Some(url) => {
                    findings.push(Finding::ok(key("base_url"), format!("{url} receives {}", targeted.join(", "))))
                }
                None => findings.push(Finding::error(
                    key("base_url"),
                    format!("is required: {} send commands here", targeted.join(", ")),
                )),
            }
        }
        if !sourced.is_empty() {
            if !system.connector.sends_webhooks() && system.poll.is_none() {
                findings.push(Finding::error(
                    key("poll"),
                    format!(
                        "{} sends no webhooks: without a poll, {} never carry anything",
                        system.connector.as_str(),
                        sourced.join(", ")
                    ),
                ));
            } else {
                findings.push(Finding::ok(key("poll"), format!("changes heard by: {}", words::intake(system))));
            }
        }
        let owns = contract.ownership.values().any(|o| o.includes(name));
        if targeted.is_empty() && sourced.is_empty() && !owns {
            findings.push(Finding::warning(
                format!("systems.{name}"),
                "is in no flow and owns no stage: remove it or give it a part",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn example(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn parse(text: &str) -> Contract {
        Contract::parse(text, Path::new("handoff.toml")).unwrap()
    }

    fn at<'a>(findings: &'a [Finding], key: &str) -> Vec<&'a Finding> {
        findings.iter().filter(|f| f.key == key).collect()
    }

    #[test]
    fn both_examples_pass_without_errors() {
        for name in ["handoff.toml", "vendors.toml"] {
            let findings = check(&parse(&example(name)));
            let tally = Tally::of(&findings);
            assert_eq!(tally.errors, 0, "{name}: {findings:#?}");
            assert_eq!(tally.warnings, 0, "{name}: {findings:#?}");
        }
    }

    #[test]
    fn every_flow_reports_its_effective_acknowledgment_rules() {
        let findings = check(&parse(&example("handoff.toml")));
        let dead_letter = at(&findings, "flows.fulfillments-to-shop.dead_letter");
        assert!(dead_letter[0].message.starts_with("permanent-at-once"), "the default is named: {dead_letter:?}");
        let retry = at(&findings, "flows.orders-to-erp.retry");
        assert!(retry[0].message.starts_with("12 attempts, 500ms doubling to 5m (full jitter"), "{retry:?}");
        assert!(retry[0].message.contains("13m 31s after the first"), "{retry:?}");
        assert!(retry[0].message.ends_with("no retry is scheduled after 24h"), "{retry:?}");
        assert_eq!(at(&findings, "flows.orders-to-erp.deadline")[0].message, "acknowledged within 15m");
    }

    #[test]
    fn a_contract_without_ownership_loads_and_check_names_every_stage() {
        let text = example("handoff.toml");
        let start = text.find("[ownership]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let findings = check(&parse(&format!("{}{}", &text[..start], &text[end..])));
        for stage in Stage::ALL {
            let f = at(&findings, &format!("ownership.{stage}"));
            assert_eq!(f[0].severity, Severity::Error, "{f:?}");
        }
        assert_eq!(Tally::of(&findings).errors, 7);
    }

    #[test]
    fn an_event_from_a_system_that_does_not_own_its_stage_is_an_error() {
        let text = example("handoff.toml").replace("fulfilled = \"erp\"", "fulfilled = \"shop\"");
        let findings = check(&parse(&text));
        let events = at(&findings, "flows.fulfillments-to-shop.events");
        assert_eq!(events[0].severity, Severity::Error);
        assert!(events[0].message.contains("fulfilled is owned by shop"), "{events:?}");
    }

    #[test]
    fn a_list_of_owners_must_be_channels() {
        let text = example("vendors.toml").replace("fulfilled = \"netsuite\"", "fulfilled = [\"netsuite\", \"odoo\"]");
        let findings = check(&parse(&text));
        let f = at(&findings, "ownership.fulfilled");
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("netsuite, odoo creates no orders"), "{f:?}");
        let ok = at(&findings, "ownership.created");
        assert_eq!(ok[0].message, "owned by each order's channel: shop, amazon");
    }

    #[test]
    fn a_source_that_sends_no_webhooks_needs_a_poller() {
        let text = example("vendors.toml").replace("poll = { every = \"1m\", lookback = \"5m\" }", "");
        let f = check(&parse(&text));
        let poll = at(&f, "systems.netsuite.poll");
        assert_eq!(poll[0].severity, Severity::Error);
        assert!(poll[0].message.contains("netsuite-to-amazon, netsuite-to-shop never carry anything"), "{poll:?}");
    }

    #[test]
    fn an_unused_system_is_a_warning() {
        let text = example("handoff.toml")
            .replace("[systems.erp]", "[systems.wms]\nrole = \"wms\"\nconnector = \"http-json\"\n\n[systems.erp]");
        let f = check(&parse(&text));
        assert_eq!(at(&f, "systems.wms")[0].severity, Severity::Warning);
        assert_eq!(Tally::of(&f).warnings, 1);
    }

    #[test]
    fn a_budget_the_deadline_cuts_short_is_a_warning() {
        let text = example("handoff.toml").replace("jitter = \"full\", deadline = \"24h\"", "deadline = \"1m\"");
        let f = check(&parse(&text));
        let retry = at(&f, "flows.orders-to-erp.retry");
        assert_eq!(retry[0].severity, Severity::Warning);
        assert!(retry[0].message.contains("only 7 attempts fit"), "{retry:?}");
    }

    #[test]
    fn callers_append_their_own_findings() {
        let mut findings = check(&parse(&example("handoff.toml")));
        findings.push(Finding::error("flows.orders-to-erp.mapping", "golden test failed"));
        assert_eq!(Tally::of(&findings).errors, 1);
        assert!(findings.last().unwrap().to_string().starts_with("error   flows.orders-to-erp.mapping: "));
    }
}
