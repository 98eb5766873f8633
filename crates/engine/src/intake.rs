//! Intake drains the inbox: each recorded event is planned against its order's state and the
//! contract's flows, and the plan (order state, ledger entry, commands) is written atomically.
//! Events are planned in arrival order; the order's state makes the plan safe against
//! duplicates, stale versions and reordering (a create arriving after its cancel is not sent).

use std::collections::HashMap;
use std::sync::Arc;

use handoff_contract::{Contract, CreateOn, Role};
use handoff_model::{CommandKind, EventKind, Fulfillment, InboundEvent, PaymentStatus, Refund, idempotency_key};
use handoff_store::heartbeat::Beat;
use handoff_store::{NewCommand, OrderState, Plan, SearchFields, Store, StoredEvent};
use serde_json::value::RawValue;

use crate::recent::Recent;
use crate::{Clock, Safety};

/// Events planned per store round trip.
const BATCH: usize = 512;

/// Intake beats at least this often while it runs: it looks for work every second.
pub const PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Intake<S> {
    contract: Arc<Contract>,
    store: S,
    clock: Arc<dyn Clock>,
    safety: Safety,
    beat: Option<Beat>,
    /// The events the hub parsed at its door, so an event is not parsed again to be planned.
    recent: Option<Arc<Recent>>,
}

impl<S: Store> Intake<S> {
    pub fn new(contract: Arc<Contract>, store: S, clock: Arc<dyn Clock>) -> Self {
        Intake { contract, store, clock, safety: Safety::default(), beat: None, recent: None }
    }

    /// Plans the events `recent` still holds from them, not from their stored payload.
    pub fn with_recent(mut self, recent: Arc<Recent>) -> Self {
        self.recent = Some(recent);
        self
    }

    /// Beats `beat` once per step of [`Intake::run`], for readiness.
    pub fn beating(mut self, beat: Beat) -> Self {
        self.beat = Some(beat);
        self
    }

    /// Negative controls only: see [`Safety`].
    pub fn with_safety(mut self, safety: Safety) -> Self {
        self.safety = safety;
        self
    }

    /// Plans one batch of unprocessed events; returns how many were planned.
    pub async fn step(&self) -> handoff_store::Result<usize> {
        let events = self.store.unprocessed_events(BATCH).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let mut refs: Vec<String> = events.iter().map(|e| e.order_ref.clone()).collect();
        refs.sort();
        refs.dedup();
        let mut states = self.store.order_states(refs).await?;
        let plans: Vec<Plan> = events
            .iter()
            .map(|e| {
                let parsed = self.recent.as_ref().and_then(|recent| parsed_once(recent, e));
                plan_parsed(&self.contract, e, parsed.as_deref(), &mut states, self.safety)
            })
            .collect();
        let n = plans.len();
        self.store.apply_plans(plans, self.clock.now()).await?;
        Ok(n)
    }

    /// Drains the inbox until `shutdown` resolves.
    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut changed = self.store.subscribe_to(handoff_store::Topic::Events);
        while !*shutdown.borrow() {
            if let Some(beat) = &self.beat {
                beat.beat();
            }
            match self.step().await {
                // A full batch: more may be waiting.
                Ok(BATCH) => {}
                // The inbox is drained: an event recorded since the last wake has bumped the
                // counter already, so the wait ends at once for it (no read to find nothing).
                Ok(_) => {
                    tokio::select! {
                        _ = changed.changed() => {}
                        _ = shutdown.changed() => {}
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
                Err(error) => {
                    tracing::error!(message = "intake step failed", error = %error);
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }
}

/// The event of inbox row `stored` as the webhooks parsed it, or else parsed from the store and
/// kept for the rules, who learn from it a batch later. `None` when it cannot be read: its plan
/// then says why.
fn parsed_once(recent: &Recent, stored: &StoredEvent) -> Option<Arc<InboundEvent>> {
    recent.get(stored.row).or_else(|| {
        let event = Arc::new(stored_event(stored).ok()?);
        recent.keep_read(stored.row, event.clone(), stored.payload.len());
        Some(event)
    })
}

/// Plans one event; `states` carries order states across the batch.
pub fn plan(
    contract: &Contract,
    stored: &StoredEvent,
    states: &mut HashMap<String, OrderState>,
    safety: Safety,
) -> Plan {
    plan_parsed(contract, stored, None, states, safety)
}

/// As [`plan`], from the event already parsed and validated (at the hub's door, or from the
/// store by [`parsed_once`]) when it is given (`parsed`); from its stored payload otherwise.
fn plan_parsed(
    contract: &Contract,
    stored: &StoredEvent,
    parsed: Option<&InboundEvent>,
    states: &mut HashMap<String, OrderState>,
    safety: Safety,
) -> Plan {
    let state = states
        .entry(stored.order_ref.clone())
        .or_insert_with(|| OrderState { source: stored.system.clone(), ..OrderState::default() });
    let mut plan = Plan {
        event_row: stored.row,
        order_ref: stored.order_ref.clone(),
        state: state.clone(),
        ledger: None,
        commands: Vec::new(),
        audit: Vec::new(),
        search: SearchFields::default(),
    };
    let read;
    let event = match parsed {
        Some(event) => event,
        None => match stored_event(stored) {
            Ok(event) => {
                read = event;
                &read
            }
            Err(why) => {
                plan.audit.push(why);
                return plan;
            }
        },
    };
    if let Some(order) = &event.order {
        plan.search = SearchFields::stated(order.channel.as_deref(), order.customer.email.as_deref());
    }
    let content = crate::Content::of(event);
    // Versions count whole seconds at some sources: a version equal to the last one is stale
    // only when it says the same (or when what it said then is not known).
    let stale = match (event.version, state.last_version) {
        (Some(v), Some(last)) if v == last => {
            state.last_fingerprint.as_deref().is_none_or(|f| f == content.fingerprint)
        }
        (Some(v), Some(last)) => v < last,
        _ => false,
    };
    // A snapshot read as a create (a poll sees created_at == updated_at while both changes fall
    // in one second) of an order already created is a revision when its content is new.
    let revision = stored.system == state.source && event.version.is_some() && !stale;
    let skip = |why: &str| format!("{} {} from {} not sent: {why}", event.kind, stored.event_id, stored.system);

    // With `create_on = "paid"`, an order is created in the ERP only once its channel shows
    // it paid; an order event of an unpaid order waits (the next one that shows it paid creates it).
    let creates_on_paid =
        contract.flows_for(&stored.system, EventKind::OrderCreated).any(|(_, f)| f.create_on == CreateOn::Paid);
    let shows_paid = event.kind == EventKind::OrderPaid
        || event.order.as_ref().and_then(|o| o.payment_status).is_none_or(PaymentStatus::is_paid);
    let command = match event.kind {
        EventKind::OrderCreated | EventKind::OrderUpdated | EventKind::OrderPaid
            if !state.created && !state.cancelled && creates_on_paid && !shows_paid =>
        {
            plan.audit
                .push(skip("awaiting payment: the contract creates the order once it is paid (create_on = \"paid\")"));
            None
        }
        // Shopify's orders/paid carries the whole order: the create that waited for payment.
        EventKind::OrderPaid if !state.created && !state.cancelled && creates_on_paid && event.order.is_some() => {
            state.source = stored.system.clone();
            state.created = true;
            plan.ledger = Some((stored.system.clone(), "paid".into()));
            Some(CommandKind::CreateOrder)
        }
        EventKind::OrderCreated | EventKind::OrderUpdated if state.cancelled => {
            plan.audit.push(skip("the order is already cancelled"));
            None
        }
        EventKind::OrderCreated if state.created && safety.dedup && !revision => {
            plan.audit.push(skip("the order was already created"));
            None
        }
        EventKind::OrderUpdated if stale => {
            plan.audit.push(skip("stale version"));
            None
        }
        // An update of an order whose create has not arrived stands in for the create.
        EventKind::OrderCreated | EventKind::OrderUpdated => {
            let kind = if state.created { CommandKind::UpdateOrder } else { CommandKind::CreateOrder };
            if !state.created {
                // The order's channel is the system that created it, whoever spoke first (a
                // payment can arrive before its order).
                state.source = stored.system.clone();
            }
            state.created = true;
            plan.ledger = Some((stored.system.clone(), "open".into()));
            Some(kind)
        }
        EventKind::OrderCancelled if state.cancelled => {
            plan.audit.push(skip("the order is already cancelled"));
            None
        }
        EventKind::OrderCancelled => {
            state.cancelled = true;
            plan.ledger = Some((stored.system.clone(), "cancelled".into()));
            if state.created {
                Some(CommandKind::CancelOrder)
            } else {
                plan.audit.push(skip("no create was ever planned, so there is nothing to cancel"));
                None
            }
        }
        EventKind::OrderPaid => {
            plan.ledger = Some((stored.system.clone(), "paid".into()));
            None
        }
        EventKind::FulfillmentCreated => {
            plan.ledger = Some((stored.system.clone(), "fulfilled".into()));
            Some(CommandKind::CreateFulfillment)
        }
        EventKind::RefundCreated => {
            plan.ledger = Some((stored.system.clone(), "refunded".into()));
            Some(CommandKind::CreateRefund)
        }
    };
    // Versions are the source's own clock (Shopify's updated_at, ...): another system's
    // version (an ERP fulfillment's) says nothing about the order's revisions.
    if let Some(v) = event.version
        && stored.system == state.source
        && state.last_version.is_none_or(|last| v >= last)
    {
        state.last_version = Some(v);
        state.last_fingerprint = Some(content.fingerprint.clone());
    }
    if let Some(kind) = command {
        // A paid event that creates the order goes where the order's creation goes.
        let routed = if event.kind == EventKind::OrderPaid { EventKind::OrderCreated } else { event.kind };
        for (flow, f) in contract.flows_for(&stored.system, routed) {
            if f.shadow {
                plan.audit.push(format!(
                    "{} {} from {}: flow {flow} is in shadow, observed and not sent",
                    event.kind, stored.event_id, stored.system
                ));
                continue;
            }
            if !travels_to(contract, &f.to, state) {
                plan.audit.push(format!(
                    "{} {} from {} not sent to {}: the order came from {}",
                    event.kind, stored.event_id, stored.system, f.to, state.source
                ));
                continue;
            }
            // The flow decides where an event goes; the order's state decides what it becomes.
            let mut command = command_for_event(flow, &f.to, kind, event, &content, stored);
            if !safety.dedup {
                command.idempotency_key = format!("{}:row-{}", command.idempotency_key, stored.row);
            }
            plan.commands.push(command);
        }
        if plan.commands.is_empty() && plan.audit.is_empty() {
            plan.audit.push(format!("{} from {}: no flow carries it", event.kind, stored.system));
        }
    }
    plan.state = state.clone();
    plan
}

/// The stored event parsed and validated, or why it is not planned. Connectors validate every
/// event before it is stored; a row edited by hand, or stored by an older build with looser
/// checks, is audited and left unplanned rather than trusted.
fn stored_event(stored: &StoredEvent) -> Result<InboundEvent, String> {
    let not_planned = |why: &str, e: &dyn std::fmt::Display| {
        format!("event {} from {} {why}, not planned: {e}", stored.event_id, stored.system)
    };
    let event = serde_json::from_str::<InboundEvent>(&stored.payload).map_err(|e| not_planned("unreadable", &e))?;
    event.validate().map_err(|e| not_planned("invalid", &e))?;
    Ok(event)
}

/// A signal goes back only to the order's own channel: a storefront, marketplace or channel
/// receives an order's commands only when the order came from it (an ERP's fulfillment of an
/// Amazon order is no business of the Shopify store). ERPs and warehouses receive any order.
fn travels_to(contract: &Contract, target: &str, state: &OrderState) -> bool {
    let channel = contract
        .systems
        .get(target)
        .is_some_and(|s| matches!(s.role, Role::Storefront | Role::Marketplace | Role::Channel));
    !channel || target == state.source
}

/// Builds the command and its canonical payload (the `http-json` mapping, version 1), with the
/// idempotency key that depends only on (target, order, kind, subject): intake and the
/// resolution actions share it, so an action never queues what intake already queued. `content`
/// is what the event says, written once (`Content::of(event)`).
pub fn command_for_event(
    flow: &str,
    target: &str,
    kind: CommandKind,
    event: &InboundEvent,
    content: &crate::Content,
    stored: &StoredEvent,
) -> NewCommand {
    let order_ref = &event.order_ref;
    let (subject, external_ref) = match kind {
        CommandKind::CreateOrder => (order_ref.clone(), order_ref.clone()),
        CommandKind::UpdateOrder => {
            // Two revisions of one version (a second-resolution clock) are two updates.
            let subject = event
                .version
                .map_or_else(|| format!("event-{}", stored.event_id), |v| format!("v{v}.{}", content.fingerprint));
            (subject, order_ref.clone())
        }
        CommandKind::CancelOrder => ("cancel".into(), order_ref.clone()),
        CommandKind::CreateFulfillment => {
            let f = event.fulfillment.as_ref().expect("a validated fulfillment event carries its fulfillment");
            (f.fulfillment_id.to_string(), format!("{order_ref}/fulfillment/{}", f.fulfillment_id))
        }
        CommandKind::CreateRefund => {
            let r = event.refund.as_ref().expect("a validated refund event carries its refund");
            (r.refund_id.to_string(), format!("{order_ref}/refund/{}", r.refund_id))
        }
    };
    let external = &external_ref;
    let payload = match kind {
        CommandKind::CreateOrder | CommandKind::UpdateOrder => {
            let source_version = event.source_version.as_deref();
            Payload::Order { external_ref: external, version: event.version, order: &content.order, source_version }
        }
        CommandKind::CancelOrder => Payload::Cancel { external_ref: external, version: event.version },
        CommandKind::CreateFulfillment => {
            Payload::Fulfillment { external_ref: external, order_ref, fulfillment: &event.fulfillment }
        }
        CommandKind::CreateRefund => Payload::Refund { external_ref: external, order_ref, refund: &event.refund },
    };
    // Written as text straight from the event: a tree of values first cost a third of planning.
    let payload = serde_json::to_string(&payload).expect("a command's payload has only text keys");

    NewCommand {
        flow: flow.to_owned(),
        target: target.to_owned(),
        order_ref: order_ref.clone(),
        kind,
        idempotency_key: idempotency_key(target, order_ref, kind, &subject),
        external_ref,
        version: event.version,
        payload,
        supersede_unsent: kind == CommandKind::CancelOrder,
    }
}

/// What a command carries to its target, by kind.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Order {
        external_ref: &'a str,
        version: Option<u64>,
        /// The event's order (or `null`), written once (`Content`).
        order: &'a RawValue,
        /// The vendor's API version the order came in, so a payload held at the transform layer
        /// can name it.
        #[serde(skip_serializing_if = "Option::is_none")]
        source_version: Option<&'a str>,
    },
    Cancel {
        external_ref: &'a str,
        version: Option<u64>,
    },
    Fulfillment {
        external_ref: &'a str,
        order_ref: &'a str,
        fulfillment: &'a Option<Fulfillment>,
    },
    Refund {
        external_ref: &'a str,
        order_ref: &'a str,
        refund: &'a Option<Refund>,
    },
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn contract() -> Contract {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
        Contract::parse(&text, Path::new("handoff.toml")).unwrap()
    }

    fn stored(row: i64, kind: &str, version: u64) -> StoredEvent {
        let mut event = serde_json::json!({
            "event_id": format!("e{row}"), "kind": kind, "order_ref": "#1",
            "occurred_at": "2026-11-26T10:00:00Z", "version": version,
        });
        if kind != "order.cancelled" {
            event["order"] = serde_json::json!({
                "order_ref": "#1", "customer": {}, "currency": "EUR", "placed_at": "2026-11-26T10:00:00Z",
                "lines": [{"sku": "A", "quantity": 1, "unit_price": "5.00"}],
                "totals": {"subtotal": "5.00", "total": "5.00"},
            });
        }
        StoredEvent {
            row,
            system: "shop".into(),
            event_id: format!("e{row}"),
            kind: kind.parse().unwrap(),
            order_ref: "#1".into(),
            received_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            payload: event.to_string(),
            raw: None,
            source_version: None,
            inbound_mapping: None,
        }
    }

    fn kinds(plan: &Plan) -> Vec<CommandKind> {
        plan.commands.iter().map(|c| c.kind).collect()
    }

    #[test]
    fn create_update_cancel_in_order() {
        let (c, mut states) = (contract(), HashMap::new());
        assert_eq!(
            kinds(&plan(&c, &stored(1, "order.created", 1), &mut states, Safety::default())),
            vec![CommandKind::CreateOrder]
        );
        assert_eq!(
            kinds(&plan(&c, &stored(2, "order.updated", 2), &mut states, Safety::default())),
            vec![CommandKind::UpdateOrder]
        );
        let cancel = plan(&c, &stored(3, "order.cancelled", 3), &mut states, Safety::default());
        assert_eq!(kinds(&cancel), vec![CommandKind::CancelOrder]);
        assert!(cancel.commands[0].supersede_unsent);
    }

    #[test]
    fn a_stored_event_that_is_not_valid_is_audited_never_planned_nor_a_panic() {
        let (c, mut states) = (contract(), HashMap::new());
        // A fulfillment without its body, and an order whose price would overflow when multiplied.
        let mut fulfillment = stored(1, "order.created", 1);
        fulfillment.kind = EventKind::FulfillmentCreated;
        fulfillment.payload = fulfillment.payload.replace("order.created", "fulfillment.created");
        let mut huge = stored(2, "order.created", 1);
        huge.payload =
            huge.payload.replace("\"unit_price\":\"5.00\"", "\"unit_price\":\"79228162514264337593543950335\"");
        for event in [fulfillment, huge] {
            let plan = plan(&c, &event, &mut states, Safety::default());
            assert!(plan.commands.is_empty());
            assert!(plan.audit[0].contains("invalid, not planned"), "{:?}", plan.audit);
        }
    }

    #[test]
    fn the_plan_carries_the_orders_search_fields_as_the_event_states_them() {
        let (c, mut states) = (contract(), HashMap::new());
        let mut created = stored(1, "order.created", 1);
        created.payload =
            created.payload.replace(r#""customer":{}"#, r#""channel":"pos","customer":{"email":" Ada@Example.com"}"#);
        let plan_of = |event, states: &mut HashMap<_, _>| plan(&c, event, states, Safety::default()).search;
        let search = plan_of(&created, &mut states);
        assert_eq!(search.channel.as_deref(), Some("pos"));
        assert_eq!(search.email_key, Some(handoff_store::search::email_key("ada@example.com")));
        // A cancel carries no order: it states neither, and the store keeps what the order had.
        assert_eq!(plan_of(&stored(2, "order.cancelled", 2), &mut states), SearchFields::default());
    }

    #[test]
    fn an_update_before_its_create_stands_in_for_it() {
        let (c, mut states) = (contract(), HashMap::new());
        assert_eq!(
            kinds(&plan(&c, &stored(1, "order.updated", 2), &mut states, Safety::default())),
            vec![CommandKind::CreateOrder]
        );
        let late_create = plan(&c, &stored(2, "order.created", 1), &mut states, Safety::default());
        assert!(late_create.commands.is_empty());
        assert!(late_create.audit[0].contains("already created"));
    }

    /// `create_on = "paid"`: an order still pending payment waits, the update that shows it
    /// paid creates it; an order whose channel does not say is not held back.
    #[test]
    fn an_order_waits_for_its_payment_when_the_flow_creates_on_paid() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml"))
            .unwrap()
            .replace(
                r#"events = ["order.created", "order.updated", "order.cancelled"]"#,
                "events = [\"order.created\", \"order.updated\", \"order.cancelled\"]\ncreate_on = \"paid\"",
            );
        let c = Contract::parse(&text, Path::new("handoff.toml")).unwrap();
        let with_status = |row, kind, version, status: &str| {
            let mut e = stored(row, kind, version);
            let mut payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            payload["order"]["payment_status"] = serde_json::json!(status);
            e.payload = payload.to_string();
            e
        };
        let mut states = HashMap::new();
        let pending = plan(&c, &with_status(1, "order.created", 1, "pending"), &mut states, Safety::default());
        assert!(pending.commands.is_empty());
        assert!(pending.audit[0].contains("awaiting payment"), "{:?}", pending.audit);
        assert!(!pending.state.created);
        let authorized = plan(&c, &with_status(2, "order.updated", 2, "authorized"), &mut states, Safety::default());
        assert!(authorized.commands.is_empty());
        let paid = plan(&c, &with_status(3, "order.updated", 3, "paid"), &mut states, Safety::default());
        assert_eq!(kinds(&paid), vec![CommandKind::CreateOrder]);
        // Shopify's orders/paid carries the order: it creates one that waited.
        let mut states = HashMap::new();
        plan(&c, &with_status(1, "order.created", 1, "pending"), &mut states, Safety::default());
        let orders_paid = plan(&c, &with_status(2, "order.paid", 2, "paid"), &mut states, Safety::default());
        assert_eq!(kinds(&orders_paid), vec![CommandKind::CreateOrder]);
        // No payment status at all (a channel that does not say): created at once.
        let unknown = plan(&c, &stored(1, "order.created", 1), &mut HashMap::new(), Safety::default());
        assert_eq!(kinds(&unknown), vec![CommandKind::CreateOrder]);
    }

    #[test]
    fn a_stale_update_is_not_sent() {
        let (c, mut states) = (contract(), HashMap::new());
        plan(&c, &stored(1, "order.created", 1), &mut states, Safety::default());
        plan(&c, &stored(2, "order.updated", 3), &mut states, Safety::default());
        let stale = plan(&c, &stored(3, "order.updated", 2), &mut states, Safety::default());
        assert!(stale.commands.is_empty());
        assert!(stale.audit[0].contains("stale"));
    }

    /// The same event with another quantity: the same version, another content.
    fn revised(mut e: StoredEvent, quantity: u32) -> StoredEvent {
        let mut payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        payload["order"]["lines"][0]["quantity"] = serde_json::json!(quantity);
        payload["order"]["totals"] =
            serde_json::json!({"subtotal": format!("{}.00", 5 * quantity), "total": format!("{}.00", 5 * quantity)});
        e.payload = payload.to_string();
        e
    }

    #[test]
    fn two_changes_within_one_second_are_two_updates_and_a_repeat_is_stale() {
        let (c, mut states) = (contract(), HashMap::new());
        plan(&c, &stored(1, "order.created", 1000), &mut states, Safety::default());
        let first = plan(&c, &revised(stored(2, "order.updated", 2000), 2), &mut states, Safety::default());
        let second = plan(&c, &revised(stored(3, "order.updated", 2000), 3), &mut states, Safety::default());
        assert_eq!((kinds(&first), kinds(&second)), (vec![CommandKind::UpdateOrder], vec![CommandKind::UpdateOrder]));
        assert_ne!(first.commands[0].idempotency_key, second.commands[0].idempotency_key);
        let repeat = plan(&c, &revised(stored(4, "order.updated", 2000), 3), &mut states, Safety::default());
        assert!(repeat.commands.is_empty());
        assert!(repeat.audit[0].contains("stale"), "{:?}", repeat.audit);
        // What the order said at version 2000 before this change is stale too.
        let older = plan(&c, &revised(stored(5, "order.updated", 2000), 2), &mut states, Safety::default());
        assert_eq!(
            kinds(&older),
            vec![CommandKind::UpdateOrder],
            "same second, other content: told apart, not dropped"
        );
    }

    #[test]
    fn a_snapshot_read_as_a_create_with_new_content_is_an_update() {
        let (c, mut states) = (contract(), HashMap::new());
        plan(&c, &stored(1, "order.created", 1000), &mut states, Safety::default());
        let again = plan(&c, &stored(2, "order.created", 1000), &mut states, Safety::default());
        assert!(again.commands.is_empty());
        assert!(again.audit[0].contains("already created"));
        let edited = plan(&c, &revised(stored(3, "order.created", 1000), 4), &mut states, Safety::default());
        assert_eq!(kinds(&edited), vec![CommandKind::UpdateOrder]);
    }

    #[test]
    fn a_create_after_its_cancel_is_not_sent() {
        let (c, mut states) = (contract(), HashMap::new());
        let cancel = plan(&c, &stored(1, "order.cancelled", 2), &mut states, Safety::default());
        assert!(cancel.commands.is_empty());
        let create = plan(&c, &stored(2, "order.created", 1), &mut states, Safety::default());
        assert!(create.commands.is_empty());
        assert!(create.state.cancelled);
    }

    #[test]
    fn a_fulfillment_goes_back_only_to_the_order_s_own_channel() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml"))
            .unwrap()
            .replace("[flows.fulfillments-to-shop]", "[systems.market]\nrole = \"marketplace\"\nconnector = \"http-json\"\nbase_url = \"http://127.0.0.1:9003\"\n\n[flows.fulfillments-to-market]\nfrom = \"erp\"\nto = \"market\"\nevents = [\"fulfillment.created\"]\nproof = \"read-back\"\ndeadline = \"30m\"\nretry = { attempts = 3, backoff_base = \"1s\", backoff_cap = \"1m\", deadline = \"1h\" }\n\n[flows.fulfillments-to-shop]");
        let c = Contract::parse(&text, Path::new("handoff.toml")).unwrap();
        let mut states = HashMap::new();
        plan(&c, &stored(1, "order.created", 1), &mut states, Safety::default());
        let mut fulfilled = stored(2, "fulfillment.created", 99);
        fulfilled.system = "erp".into();
        let mut event: serde_json::Value = serde_json::from_str(&fulfilled.payload).unwrap();
        event["fulfillment"] = serde_json::json!({"fulfillment_id": "F1", "lines": [{"sku": "A", "quantity": 1}]});
        event.as_object_mut().unwrap().remove("order");
        fulfilled.payload = event.to_string();
        let p = plan(&c, &fulfilled, &mut states, Safety::default());
        assert_eq!(p.commands.iter().map(|c| c.target.as_str()).collect::<Vec<_>>(), vec!["shop"]);
        assert!(p.audit[0].contains("not sent to market: the order came from shop"), "{:?}", p.audit);
        // The ERP's version did not move the order's: the shop's next update still counts.
        assert_eq!(p.state.last_version, Some(1));
    }

    #[test]
    fn idempotency_keys_do_not_depend_on_the_event_delivery() {
        let (c, mut a, mut b) = (contract(), HashMap::new(), HashMap::new());
        let first = plan(&c, &stored(1, "order.created", 1), &mut a, Safety::default());
        let redelivered = plan(&c, &stored(9, "order.created", 1), &mut b, Safety::default());
        assert_eq!(first.commands[0].idempotency_key, redelivered.commands[0].idempotency_key);
    }
}
