//! What serde cannot check: references between systems and flows, and sane limits.

use std::collections::BTreeSet;

use handoff_model::EventKind;
use jiff::SignedDuration;

use crate::{Contract, RetryPolicy, command_for};

type Refusal = (String, String);

/// Retries are bounded; a budget beyond this is a typo, not a policy.
const MAX_ATTEMPTS: u32 = 100;

/// The largest page any vendor API hands out (Shopify: 250).
const MAX_PAGE_SIZE: u32 = 250;

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn positive(key: String, d: SignedDuration) -> Result<(), Refusal> {
    if d.is_positive() { Ok(()) } else { Err((key, format!("must be longer than zero, got {d:#}"))) }
}

/// `idempotency_keys` is the contract's to say only where the connector does as told
/// (`http-json`); elsewhere a value other than what the connector does would be silently
/// ignored, and a merchant would trust a deduplication that never happens.
fn idempotency_keys(name: &str, system: &crate::System) -> Result<(), Refusal> {
    let (Some(said), Some(does)) = (system.idempotency_keys, system.connector.idempotency_keys()) else {
        return Ok(());
    };
    if said == does {
        return Ok(());
    }
    let connector = system.connector.as_str();
    let why = if does {
        format!(
            "the {connector} connector upserts by external id, so a resend always updates the same record; \
             it cannot be turned off: remove this line"
        )
    } else {
        format!(
            "the {connector} connector ignores it: its API takes no key to deduplicate a resend, so Handoff reads \
             the record back by external reference before every send; remove this line (or set it to false)"
        )
    };
    Err((format!("systems.{name}.idempotency_keys"), why))
}

impl Contract {
    pub(crate) fn validate(&self) -> Result<(), Refusal> {
        if self.systems.is_empty() {
            return Err(("systems".into(), "a contract needs at least one system".into()));
        }
        if self.hub.max_event_bytes == 0 || self.hub.max_event_bytes > 16 << 20 {
            return Err(("hub.max_event_bytes".into(), "must be between 1 and 16777216".into()));
        }
        if self.hub.max_in_flight == 0 || self.hub.max_in_flight > 10_000 {
            return Err(("hub.max_in_flight".into(), "must be between 1 and 10000".into()));
        }
        if let Some(admin) = &self.hub.admin_listen
            && *admin == self.hub.listen
        {
            let why = "must differ from hub.listen (leave it out to serve everything on one address)";
            return Err(("hub.admin_listen".into(), why.into()));
        }
        self.hub.limits.validate()?;
        self.hub.json.validate()?;
        self.validate_auto_resolve()?;
        self.retention.validate()?;
        for (name, system) in &self.systems {
            if !is_name(name) {
                return Err((format!("systems.{name}"), "a system name is 1 to 64 of a-z, 0-9, - and _".into()));
            }
            positive(format!("systems.{name}.timeout"), system.timeout)?;
            positive(format!("systems.{name}.settle"), system.settle)?;
            if system.max_in_flight.is_some_and(|n| n == 0 || n > 10_000) {
                return Err((format!("systems.{name}.max_in_flight"), "must be between 1 and 10000".into()));
            }
            if system.rate.is_some_and(|r| r == 0 || r > 100_000) {
                return Err((format!("systems.{name}.rate"), "must be between 1 and 100000 requests a second".into()));
            }
            positive(format!("systems.{name}.signature_tolerance"), system.signature_tolerance)?;
            idempotency_keys(name, system)?;
            if system.connector.requires_secret() && system.webhook_secrets.is_empty() {
                return Err((
                    format!("systems.{name}.webhook_secrets"),
                    "this connector verifies every webhook: give its secret (e.g. \"env:SHOPIFY_SECRET\")".into(),
                ));
            }
            if let Some(poll) = &system.poll {
                if system.base_url.is_none() {
                    return Err((format!("systems.{name}.base_url"), "is required to poll this system".into()));
                }
                positive(format!("systems.{name}.poll.every"), poll.every)?;
                positive(format!("systems.{name}.poll.initial"), poll.initial)?;
                if poll.lookback.is_negative() {
                    return Err((format!("systems.{name}.poll.lookback"), "may not be negative".into()));
                }
                if !(1..=MAX_PAGE_SIZE).contains(&poll.page_size) {
                    return Err((
                        format!("systems.{name}.poll.page_size"),
                        format!("must be between 1 and {MAX_PAGE_SIZE}"),
                    ));
                }
            }
            if let Some(url) = &system.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err((
                    format!("systems.{name}.base_url"),
                    format!("must be an http:// or https:// URL, got {url:?}"),
                ));
            }
        }
        let mut routes = BTreeSet::new();
        for (name, flow) in &self.flows {
            let key = |k: &str| format!("flows.{name}.{k}");
            if !is_name(name) {
                return Err((format!("flows.{name}"), "a flow name is 1 to 64 of a-z, 0-9, - and _".into()));
            }
            if !self.systems.contains_key(&flow.from) {
                return Err((key("from"), format!("no system named {:?} (known: {})", flow.from, self.system_names())));
            }
            let Some(target) = self.systems.get(&flow.to) else {
                return Err((key("to"), format!("no system named {:?} (known: {})", flow.to, self.system_names())));
            };
            if flow.from == flow.to {
                return Err((key("to"), "a flow goes from one system to another".into()));
            }
            if target.base_url.is_none() {
                return Err((
                    format!("systems.{}.base_url", flow.to),
                    format!("is required: flow {name:?} sends commands to this system"),
                ));
            }
            if flow.events.is_empty() {
                return Err((key("events"), "a flow carries at least one event kind".into()));
            }
            for kind in &flow.events {
                let Some(command) = command_for(*kind) else {
                    return Err((
                        key("events"),
                        format!("{kind} only updates the ledger; no command carries it to another system"),
                    ));
                };
                if !target.connector.accepts(command) {
                    return Err((
                        key("events"),
                        format!("{} ({}) does not take {command}", flow.to, target.connector.as_str()),
                    ));
                }
                if !routes.insert((flow.from.clone(), *kind, flow.to.clone())) {
                    return Err((
                        key("events"),
                        format!("another flow already carries {kind} from {} to {}", flow.from, flow.to),
                    ));
                }
            }
            positive(key("deadline"), flow.deadline)?;
            validate_retry(&key("retry"), &flow.retry)?;
            if flow.create_on == crate::CreateOn::Paid && !flow.events.contains(&EventKind::OrderCreated) {
                return Err((key("create_on"), "\"paid\" needs a flow that carries order.created".into()));
            }
            // An order is created once for all its flows: they must agree on when.
            let creating = self.flows_for(&flow.from, EventKind::OrderCreated);
            if flow.events.contains(&EventKind::OrderCreated)
                && creating.into_iter().any(|(_, f)| f.create_on != flow.create_on)
            {
                return Err((
                    key("create_on"),
                    format!("every flow that creates {}'s orders must agree on create_on", flow.from),
                ));
            }
        }
        self.validate_ownership()
    }

    /// Owners must be systems of this contract; whether every stage has one is `contract
    /// check`'s job, so a contract without `[ownership]` still loads.
    /// Each policy must be an action that remedies its pattern; money never moves by itself.
    fn validate_auto_resolve(&self) -> Result<(), Refusal> {
        use crate::AutoAction::*;
        let a = &self.auto_resolve;
        let allowed = [
            ("missing_order", a.missing_order, CreateErpOrder),
            ("status_void", a.status_void, SendFulfillment),
            ("rollback_gap", a.rollback_gap, SendCancellation),
            ("duplicate_draft", a.duplicate_draft, CancelDuplicates),
        ];
        for (pattern, set, fits) in allowed {
            if set.is_some_and(|action| action != fits) {
                let key = format!("auto_resolve.{pattern}");
                return Err((key, format!("the only automatic remedy for {pattern} is \"{}\"", fits.as_str())));
            }
        }
        if a.orphaned_payment.is_some() {
            return Err((
                "auto_resolve.orphaned_payment".into(),
                "a refund is never automatic: a person approves each one".into(),
            ));
        }
        Ok(())
    }

    fn validate_ownership(&self) -> Result<(), Refusal> {
        for (stage, owner) in &self.ownership {
            let key = format!("ownership.{stage}");
            if owner.systems().is_empty() {
                return Err((key, "name the owning system, or the channels that each own their orders".into()));
            }
            let mut seen = BTreeSet::new();
            for name in owner.systems() {
                if !self.systems.contains_key(name) {
                    return Err((key, format!("no system named {name:?} (known: {})", self.system_names())));
                }
                if !seen.insert(name) {
                    return Err((key, format!("{name} is named twice")));
                }
            }
        }
        Ok(())
    }

    /// Replaces each `env:NAME` webhook secret and credential with the variable's value.
    pub(crate) fn resolve_secrets(&mut self, dir: &std::path::Path) -> Result<(), Refusal> {
        for (name, system) in &mut self.systems {
            for (key, value) in system.credentials.iter_mut() {
                *value =
                    crate::secret::resolve(value, dir).map_err(|e| (format!("systems.{name}.credentials.{key}"), e))?;
            }
            for secret in &mut system.webhook_secrets {
                *secret = crate::secret::resolve_secret(secret, dir)
                    .map_err(|e| (format!("systems.{name}.webhook_secrets"), e))?;
                if secrecy::ExposeSecret::expose_secret(secret).is_empty() {
                    return Err((format!("systems.{name}.webhook_secrets"), "a secret may not be empty".into()));
                }
            }
        }
        Ok(())
    }

    fn system_names(&self) -> String {
        self.systems.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn validate_retry(key: &str, retry: &RetryPolicy) -> Result<(), Refusal> {
    if retry.attempts == 0 || retry.attempts > MAX_ATTEMPTS {
        return Err((
            format!("{key}.attempts"),
            format!("must be between 1 and {MAX_ATTEMPTS}, got {}", retry.attempts),
        ));
    }
    positive(format!("{key}.backoff_base"), retry.backoff_base)?;
    positive(format!("{key}.backoff_cap"), retry.backoff_cap)?;
    positive(format!("{key}.deadline"), retry.deadline)?;
    if retry.backoff_cap < retry.backoff_base {
        return Err((
            format!("{key}.backoff_cap"),
            format!("{:#} is shorter than backoff_base {:#}", retry.backoff_cap, retry.backoff_base),
        ));
    }
    Ok(())
}
