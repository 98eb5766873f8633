//! An in-memory store with the same semantics as the SQLite one, for the deterministic
//! simulation (thousands of orders per seed, many seeds per second). A process crash keeps its
//! state, as a disk would. For the simulation's negative control it can also lie: acknowledge
//! writes before they are durable, so that a simulated power loss drops them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use handoff_model::{CommandKind, CommandState};
use jiff::Timestamp;
use tokio::sync::watch;

use crate::{
    AttemptRecord, AttemptRow, AuditRow, Command, CommandSample, ExceptionRow, FactRow, FlowStats, LedgerRow,
    NewCommand, NewEvent, NewFinding, NewQuarantined, OrderState, Outcome, Plan, QuarantineState, Quarantined, Raised,
    Recorded, Released, Replay, Result, SearchFields, Store, StoredEvent, Timeline, acknowledged_state, flow_stats_of,
};

#[derive(Clone, Default)]
struct Mem {
    inbox: Vec<StoredEvent>,
    inbox_keys: HashMap<(String, String), i64>,
    cursor: i64,
    orders: HashMap<String, OrderState>,
    ledger: HashMap<String, Vec<LedgerRow>>,
    outbox: Vec<Command>,
    sequences: HashMap<(String, String), Vec<i64>>,
    due: BTreeSet<(Timestamp, i64)>,
    keys: HashSet<String>,
    attempts: Vec<AttemptRow>,
    attempts_seen: HashSet<(i64, u32)>,
    exceptions: Vec<ExceptionRow>,
    /// (order, id, line): ids are never reused once a purge removes lines.
    audit: Vec<(String, i64, AuditRow)>,
    audit_ids: i64,
    /// What the order search reads of each order (see `crate::search::OrderFilter`).
    order_search: HashMap<String, OrderSearch>,
    poll_cursors: HashMap<String, String>,
    facts: Vec<FactRow>,
    /// Rules exceptions a person resolved, for the rules to check again.
    rechecks: BTreeSet<i64>,
    /// The inbox row each command was planned from.
    event_rows: HashMap<i64, i64>,
    quarantine: Vec<Quarantined>,
    quarantine_keys: HashMap<(String, String), i64>,
    rules_checkpoint: Option<crate::RulesCheckpoint>,
    tokens: Vec<(String, crate::TokenRow)>,
    users: Vec<crate::UserRow>,
    /// Console sessions with the hash of their id and their user's id.
    sessions: Vec<(String, i64, crate::SessionRow)>,
}

/// What the order search reads of an order, as the SQLite store's `orders` columns.
#[derive(Clone)]
struct OrderSearch {
    channel: Option<String>,
    email_key: Option<String>,
    first_seen: Timestamp,
    updated_at: Timestamp,
}

/// Evidence with a hash of what it referred to, under `purged`.
fn with_hash(evidence: Option<&str>, refers_to: &str, digest: &str) -> String {
    let mut value: serde_json::Value = evidence.and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
    if !value.is_object() {
        value = serde_json::json!({});
    }
    let purged = value.as_object_mut().expect("an object").entry("purged").or_insert_with(|| serde_json::json!({}));
    if let Some(map) = purged.as_object_mut() {
        map.insert(refers_to.to_owned(), serde_json::Value::String(digest.to_owned()));
    }
    value.to_string()
}

impl Mem {
    fn record_event(&mut self, e: NewEvent) -> Recorded {
        let key = (e.system.clone(), e.event_id.clone());
        if let Some(&row) = self.inbox_keys.get(&key) {
            return Recorded::Duplicate(row);
        }
        let row = self.inbox.len() as i64 + 1;
        self.inbox_keys.insert(key, row);
        self.inbox.push(StoredEvent {
            row,
            system: e.system,
            event_id: e.event_id,
            kind: e.kind,
            order_ref: e.order_ref,
            received_at: e.received_at,
            payload: e.payload,
            raw: e.raw,
            source_version: None,
            inbound_mapping: None,
        });
        Recorded::New(row)
    }
}

impl Mem {
    fn hold(&mut self, h: NewQuarantined, now: Timestamp) -> Recorded {
        let key = (h.system.clone(), h.fingerprint.clone());
        if let Some(&id) = self.quarantine_keys.get(&key) {
            return Recorded::Duplicate(id);
        }
        let id = self.quarantine.len() as i64 + 1;
        let exception = self.exceptions.len() as i64 + 1;
        let order_ref = h.order_ref.clone().unwrap_or_default();
        let detail = h.detail(id);
        self.exceptions.push(ExceptionRow {
            id: exception,
            pattern: handoff_model::Pattern::TransformMismatch.as_str().into(),
            order_ref: order_ref.clone(),
            flow: h.flow.clone(),
            field: Some(h.field.clone()),
            detail: detail.clone(),
            state: "open".into(),
            opened_at: now,
            updated_at: now,
            channel: Some(h.system.clone()),
            evidence: Some(h.evidence(id)),
            ..ExceptionRow::default()
        });
        self.audit(now, "engine", "quarantined", &order_ref, format!("exception {exception}: {detail}"));
        self.quarantine_keys.insert(key, id);
        self.quarantine.push(Quarantined {
            id,
            system: h.system,
            source: h.source,
            order_ref: h.order_ref,
            headers: h.headers,
            body: h.body,
            field: h.field,
            reason: h.reason,
            source_version: h.source_version,
            flow: h.flow,
            received_at: h.received_at,
            state: QuarantineState::Held,
            exception_id: Some(exception),
            event_row: None,
            replayed_at: None,
        });
        Recorded::New(id)
    }

    fn release(&mut self, id: i64, event: NewEvent, actor: &str, now: Timestamp) -> Released {
        let Some(q) = self.quarantine.get((id - 1) as usize) else { return Released::NotFound };
        if q.state == QuarantineState::Replayed {
            return Released::AlreadyReplayed { event_row: q.event_row };
        }
        let order_ref = event.order_ref.clone();
        let recorded = self.record_event(event);
        let (Recorded::New(row) | Recorded::Duplicate(row)) = recorded;
        let q = &mut self.quarantine[(id - 1) as usize];
        q.state = QuarantineState::Replayed;
        q.event_row = Some(row);
        q.replayed_at = Some(now);
        q.order_ref.get_or_insert_with(|| order_ref.clone());
        if let Some(x) = q.exception_id.and_then(|x| self.exceptions.get_mut((x - 1) as usize)) {
            if x.order_ref.is_empty() {
                x.order_ref = order_ref.clone();
            }
            if crate::quarantine::resolves(&x.state) {
                x.state = "resolved".into();
            }
            x.updated_at = now;
        }
        let how = match recorded {
            Recorded::New(_) => "",
            Recorded::Duplicate(_) => ", which was already in the inbox",
        };
        self.audit(
            now,
            actor,
            "quarantine replayed",
            &order_ref,
            format!("quarantine {id} replayed as event {row}{how}"),
        );
        Released::Replayed(recorded)
    }
}

struct Durability {
    /// When set, writes are acknowledged at once but only become durable at `flush`.
    lying: bool,
    durable: Mem,
}

#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<(Mem, Durability)>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::with_durability(false)
    }

    /// A store that acknowledges writes before they are durable (negative controls only).
    pub fn acknowledging_before_durable() -> Self {
        MemoryStore::with_durability(true)
    }

    fn with_durability(lying: bool) -> Self {
        let durability = Durability { lying, durable: Mem::default() };
        MemoryStore {
            state: Arc::new(Mutex::new((Mem::default(), durability))),
            changed: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Makes every acknowledged write durable (a lying store's periodic sync).
    pub fn flush(&self) {
        let mut guard = self.state.lock().expect("store lock");
        let (mem, durability) = &mut *guard;
        if durability.lying {
            durability.durable = mem.clone();
        }
    }

    /// Power loss: whatever was not durable is gone. An honest store loses nothing.
    pub fn power_loss(&self) {
        let mut guard = self.state.lock().expect("store lock");
        let (mem, durability) = &mut *guard;
        if durability.lying {
            *mem = durability.durable.clone();
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut Mem) -> R) -> R {
        let r = f(&mut self.state.lock().expect("store lock").0);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        r
    }

    /// Claims as `Mem::claim`; a claim that found nothing changed nothing and wakes nobody, as
    /// a commit that changed no rows.
    fn claim(&self, now: Timestamp, limit: usize, keep: &dyn Fn(&str) -> bool) -> Vec<Command> {
        let claimed = self.state.lock().expect("store lock").0.claim(now, limit, keep);
        if !claimed.is_empty() {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        claimed
    }

    fn read<R>(&self, f: impl FnOnce(&Mem) -> R) -> R {
        f(&self.state.lock().expect("store lock").0)
    }
}

impl Mem {
    /// The purge of the memory store: personal data as the SQLite store purges it; of the
    /// history only audit lines and earlier attempts go (rows are addressed by position here,
    /// and a simulated run is too short to reach a history horizon).
    fn purge(&mut self, before: &crate::PurgeBefore) -> crate::Purged {
        use crate::personal::{hash, hash_personal, scrub};
        let mut p = crate::Purged::default();
        let mut hashes: Vec<(String, String, String)> = Vec::new();
        for e in self.inbox.iter_mut().filter(|e| e.received_at < before.personal_data) {
            let scrubbed = scrub(&e.payload);
            if e.raw.is_none() && scrubbed.is_none() {
                continue;
            }
            let digest = hash(e.raw.as_deref().unwrap_or(&e.payload).as_bytes());
            hashes.push((e.order_ref.clone(), format!("inbox/{}", e.row), digest));
            e.raw = None;
            if let Some(clean) = scrubbed {
                e.payload = clean;
            }
            p.inbox_scrubbed += 1;
        }
        for q in self.quarantine.iter_mut().filter(|q| q.received_at < before.personal_data && !q.body.is_empty()) {
            let digest = hash(&q.body);
            if let Some(x) = q.exception_id.and_then(|x| self.exceptions.iter_mut().find(|e| e.id == x)) {
                x.evidence = Some(with_hash(x.evidence.as_deref(), &format!("quarantine/{}", q.id), &digest));
                p.evidence_hashed += 1;
            }
            (q.body, q.headers) = (Vec::new(), Default::default());
            p.quarantine_scrubbed += 1;
        }
        for (order_ref, refers_to, digest) in hashes {
            for x in self.exceptions.iter_mut().filter(|x| x.order_ref == order_ref) {
                let hashed = x.evidence.as_deref().map(|e| hash_personal(e).unwrap_or_else(|| e.to_owned()));
                x.evidence = Some(with_hash(hashed.as_deref(), &refers_to, &digest));
                p.evidence_hashed += 1;
            }
        }
        let finished = |c: &Command| {
            matches!(c.state, CommandState::Acknowledged | CommandState::Superseded | CommandState::Abandoned)
        };
        for c in self.outbox.iter_mut().filter(|c| c.created_at < before.personal_data && finished(c)) {
            if let Some(clean) = scrub(&c.payload) {
                c.payload = clean;
                p.outbox_scrubbed += 1;
            }
        }
        let audit = self.audit.len();
        self.audit.retain(|(_, _, a)| a.at >= before.history);
        p.audit_removed = (audit - self.audit.len()) as u64;
        let old: HashMap<i64, u32> = self
            .outbox
            .iter()
            .filter(|c| c.created_at < before.history && finished(c))
            .map(|c| (c.id, c.attempts))
            .collect();
        let attempts = self.attempts.len();
        let last: HashMap<i64, u32> =
            self.attempts.iter().filter(|a| old.contains_key(&a.command_id)).fold(HashMap::new(), |mut m, a| {
                let e = m.entry(a.command_id).or_insert(a.attempt);
                *e = (*e).max(a.attempt);
                m
            });
        self.attempts.retain(|a| last.get(&a.command_id).is_none_or(|&n| a.attempt == n));
        p.attempts_removed = (attempts - self.attempts.len()) as u64;
        p
    }

    fn audit(&mut self, at: Timestamp, actor: &str, action: &str, order_ref: &str, detail: String) {
        let row = AuditRow { at, actor: actor.into(), action: action.into(), detail };
        self.audit_ids += 1;
        self.audit.push((order_ref.to_owned(), self.audit_ids, row));
    }

    fn order_search(&mut self, plan: &Plan, now: Timestamp) {
        let SearchFields { channel, email_key: email } = plan.search.clone();
        let o = self.order_search.entry(plan.order_ref.clone()).or_insert(OrderSearch {
            channel: None,
            email_key: None,
            first_seen: now,
            updated_at: now,
        });
        o.updated_at = now;
        o.channel = channel.or(o.channel.take()).or_else(|| Some(plan.state.source.clone()));
        o.email_key = email.or(o.email_key.take());
    }

    fn set_ledger(&mut self, order_ref: &str, system: &str, state: &str, record_id: Option<&str>, at: Timestamp) {
        let rows = self.ledger.entry(order_ref.to_owned()).or_default();
        match rows.iter_mut().find(|r| r.system == system) {
            Some(row) => {
                row.state = state.into();
                if let Some(id) = record_id {
                    row.record_id = Some(id.into());
                }
                row.updated_at = at;
            }
            None => rows.push(LedgerRow {
                system: system.into(),
                state: state.into(),
                record_id: record_id.map(str::to_owned),
                updated_at: at,
            }),
        }
    }

    /// One command as `flow_stats` and `flow_health` count it.
    fn sample(&self, c: &Command, per_command: &HashMap<i64, Vec<&AttemptRow>>) -> CommandSample {
        let attempts = per_command.get(&c.id).map(Vec::as_slice).unwrap_or_default();
        let received = self.event_rows.get(&c.id).and_then(|row| self.inbox.get((*row - 1) as usize));
        let acked = attempts.iter().filter(|a| a.outcome == "acknowledged").map(|a| a.finished_at).min();
        CommandSample {
            flow: c.flow.clone(),
            target: c.target.clone(),
            kind: c.kind.as_str().to_owned(),
            state: c.state,
            attempts: attempts.len() as u64,
            retries: attempts.iter().filter(|a| matches!(a.outcome.as_str(), "retry" | "ambiguous")).count() as u64,
            dead_lettered: attempts.iter().any(|a| a.outcome == "dead_lettered"),
            latency_ms: acked.zip(received).map(|(a, e)| a.duration_since(e.received_at).as_millis().max(0) as i64),
        }
    }

    fn command(&mut self, id: i64) -> &mut Command {
        &mut self.outbox[(id - 1) as usize]
    }

    /// Journals a fact for the rules; its id is its place in the journal.
    fn fact(&mut self, row: FactRow) {
        self.facts.push(FactRow { id: self.facts.len() as i64 + 1, ..row });
    }

    fn command_fact(&mut self, id: i64, outcome: &str, record_id: Option<&str>, at: Timestamp) {
        let c = self.command(id).clone();
        self.fact(FactRow {
            id: 0,
            kind: format!("{outcome}:{}", c.kind),
            record_id: record_id.map(str::to_owned),
            command_id: Some(id),
            event_row: None,
            order_ref: c.order_ref,
            system: c.target,
            payload: Some(c.payload),
            at,
        });
    }

    fn enqueue(&mut self, event_row: i64, c: &NewCommand, now: Timestamp) -> Option<i64> {
        let mut moot = false;
        if c.supersede_unsent {
            let ids = self.sequences.get(&(c.order_ref.clone(), c.target.clone())).cloned().unwrap_or_default();
            for id in ids {
                let cmd = self.command(id);
                let moot_kind = matches!(cmd.kind, CommandKind::CreateOrder | CommandKind::UpdateOrder);
                if cmd.state == CommandState::Pending && cmd.attempts == 0 && moot_kind {
                    cmd.state = CommandState::Superseded;
                    cmd.updated_at = now;
                    let (kind, due) = (cmd.kind, (cmd.next_attempt_at, id));
                    self.due.remove(&due);
                    moot |= kind == CommandKind::CreateOrder;
                    let detail = format!(
                        "command {id} ({kind}) to {} superseded by {} before it was ever sent",
                        c.target, c.kind
                    );
                    self.audit(now, "engine", "superseded", &c.order_ref, detail);
                }
            }
        }
        if !self.keys.insert(c.idempotency_key.clone()) {
            return None;
        }
        let id = self.outbox.len() as i64 + 1;
        let state = if moot { CommandState::Superseded } else { CommandState::Pending };
        self.outbox.push(Command { state, ..Command::new_pending(id, c.clone(), now) });
        self.sequences.entry((c.order_ref.clone(), c.target.clone())).or_default().push(id);
        self.event_rows.insert(id, event_row);
        if moot {
            let detail = format!("{} to {} not sent: the create it would follow was never sent", c.kind, c.target);
            self.audit(now, "engine", "superseded", &c.order_ref, detail);
        } else {
            self.due.insert((now, id));
        }
        Some(id)
    }

    fn abandon(&mut self, id: i64, actor: &str, reason: Option<&str>, now: Timestamp) -> bool {
        let Some(c) = self.outbox.get_mut((id - 1).max(0) as usize).filter(|c| c.id == id) else { return false };
        if c.state != CommandState::DeadLettered {
            return false;
        }
        c.state = CommandState::Abandoned;
        c.updated_at = now;
        let (kind, target, order_ref) = (c.kind, c.target.clone(), c.order_ref.clone());
        for x in self.exceptions.iter_mut().filter(|x| x.command_id == Some(id)) {
            if x.state == "open" || x.state == "acknowledged" {
                x.state = "resolved".into();
                x.updated_at = now;
            }
        }
        self.command_fact(id, "abandoned", None, now);
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        let detail = format!("dead letter {id} ({kind} to {target}) abandoned, never to be sent{why}");
        self.audit(now, actor, "abandoned", &order_ref, detail);
        true
    }

    /// Due pending commands that head their sequence, to the targets `to` accepts, marked in
    /// flight.
    fn claim(&mut self, now: Timestamp, limit: usize, to: &dyn Fn(&str) -> bool) -> Vec<Command> {
        let due: Vec<i64> = self
            .due
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|&(_, id)| id)
            .filter(|&id| {
                let c = &self.outbox[(id - 1) as usize];
                c.state == CommandState::Pending && to(&c.target) && self.heads_its_sequence(c)
            })
            .take(limit)
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            let c = self.command(id);
            let key = (c.next_attempt_at, id);
            c.state = CommandState::InFlight;
            c.attempts += 1;
            c.budget_attempts += 1;
            c.updated_at = now;
            let copy = c.clone();
            self.due.remove(&key);
            claimed.push(copy);
        }
        // Chosen by due time, handed out by id: as the SQLite store does.
        claimed.sort_by_key(|c| c.id);
        claimed
    }

    /// No earlier command of the same order to the same target is still unfinished.
    fn heads_its_sequence(&self, c: &Command) -> bool {
        let ids = &self.sequences[&(c.order_ref.clone(), c.target.clone())];
        ids.iter().take_while(|&&id| id < c.id).all(|&id| {
            !matches!(
                self.outbox[(id - 1) as usize].state,
                CommandState::Pending | CommandState::InFlight | CommandState::DeadLettered
            )
        })
    }
}

impl Store for MemoryStore {
    async fn record_event(&self, e: NewEvent) -> Result<Recorded> {
        Ok(self.write(|m| m.record_event(e)))
    }

    async fn poll_cursor(&self, system: String) -> Result<Option<String>> {
        Ok(self.read(|m| m.poll_cursors.get(&system).cloned()))
    }

    async fn record_polled(
        &self,
        system: String,
        events: Vec<NewEvent>,
        held: Vec<NewQuarantined>,
        cursor: String,
        now: Timestamp,
    ) -> Result<Vec<Recorded>> {
        Ok(self.write(|m| {
            let recorded = events.into_iter().map(|e| m.record_event(e)).collect();
            for h in held {
                m.hold(h, now);
            }
            m.poll_cursors.insert(system, cursor);
            recorded
        }))
    }

    async fn quarantine(&self, held: NewQuarantined, now: Timestamp) -> Result<Recorded> {
        Ok(self.write(|m| m.hold(held, now)))
    }

    async fn quarantined(&self, state: Option<QuarantineState>, limit: usize) -> Result<Vec<Quarantined>> {
        Ok(self.read(|m| {
            m.quarantine.iter().rev().filter(|q| state.is_none_or(|s| q.state == s)).take(limit).cloned().collect()
        }))
    }

    async fn search_quarantine(&self, f: crate::QuarantineFilter) -> Result<crate::Page<Quarantined>> {
        let after = f.after()?;
        let limit = crate::search::page_size(f.limit);
        Ok(self.read(|m| {
            let rows = m
                .quarantine
                .iter()
                .rev()
                .filter(|q| after.is_none_or(|a| q.id < a) && f.state.is_none_or(|s| q.state == s))
                .take(limit + 1)
                .cloned()
                .collect();
            crate::Page::of(rows, limit, crate::search::quarantine_key)
        }))
    }

    async fn quarantined_one(&self, id: i64) -> Result<Option<Quarantined>> {
        Ok(self.read(|m| m.quarantine.iter().find(|q| q.id == id).cloned()))
    }

    async fn quarantine_depth(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.read(|m| {
            let mut depth: std::collections::BTreeMap<String, u64> = Default::default();
            for q in m.quarantine.iter().filter(|q| q.state == QuarantineState::Held) {
                *depth.entry(q.system.clone()).or_default() += 1;
            }
            depth.into_iter().collect()
        }))
    }

    async fn release_quarantined(&self, id: i64, event: NewEvent, actor: String, now: Timestamp) -> Result<Released> {
        Ok(self.write(|m| m.release(id, event, &actor, now)))
    }

    async fn set_dead_letter_payload(&self, id: i64, payload: String, actor: String, now: Timestamp) -> Result<bool> {
        Ok(self.write(|m| {
            let Some(c) = m.outbox.iter_mut().find(|c| c.id == id && c.state == CommandState::DeadLettered) else {
                return false;
            };
            c.payload = payload;
            c.updated_at = now;
            let order_ref = c.order_ref.clone();
            m.audit(
                now,
                &actor,
                "payload-set",
                &order_ref,
                format!("dead letter {id}: payload rewritten before replay"),
            );
            true
        }))
    }

    async fn move_exception(
        &self,
        id: i64,
        to: handoff_model::ExceptionState,
        actor: String,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<crate::Moved> {
        Ok(self.write(|m| {
            let Some(x) = m.exceptions.iter_mut().find(|x| x.id == id) else { return crate::Moved::NotFound };
            let from = handoff_model::ExceptionState::parse(&x.state);
            if !from.is_some_and(|from| from.person_may_move(to)) {
                return crate::Moved::Refused { from: x.state.clone() };
            }
            x.state = to.as_str().into();
            x.updated_at = now;
            let row = x.clone();
            if to == handoff_model::ExceptionState::Resolved && row.subject.is_some() {
                m.rechecks.insert(id);
            }
            let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
            m.audit(now, &actor, to.as_str(), &row.order_ref, format!("exception {id} ({}){why}", row.pattern));
            if let Some(command) = row.command_id
                && matches!(to, handoff_model::ExceptionState::Resolved | handoff_model::ExceptionState::Ignored)
            {
                let because = format!("its exception {id} was {} by {actor}{why}", to.as_str());
                m.abandon(command, &actor, Some(&because), now);
            }
            crate::Moved::Done(row)
        }))
    }

    async fn unprocessed_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let unraw = |e: &StoredEvent| StoredEvent { raw: None, ..e.clone() };
        Ok(self.read(|m| m.inbox.iter().skip(m.cursor as usize).take(limit).map(unraw).collect()))
    }

    async fn count_unplanned(&self, at_most: usize) -> Result<u64> {
        Ok(self.read(|m| m.inbox.len().saturating_sub(m.cursor as usize).min(at_most) as u64))
    }

    async fn order_states(&self, order_refs: Vec<String>) -> Result<HashMap<String, OrderState>> {
        Ok(self.read(|m| order_refs.into_iter().filter_map(|r| Some((r.clone(), m.orders.get(&r)?.clone()))).collect()))
    }

    async fn apply_plans(&self, plans: Vec<Plan>, now: Timestamp) -> Result<()> {
        self.write(|m| {
            if let Some(last) = plans.iter().map(|p| p.event_row).max() {
                m.cursor = m.cursor.max(last);
            }
            for plan in plans {
                m.orders.insert(plan.order_ref.clone(), plan.state.clone());
                m.order_search(&plan, now);
                if let Some((system, state)) = &plan.ledger {
                    m.set_ledger(&plan.order_ref, system, state, None, now);
                }
                for command in &plan.commands {
                    m.enqueue(plan.event_row, command, now);
                }
                let e = m.inbox[(plan.event_row - 1) as usize].clone();
                let kind = e.kind.as_str().into();
                let (order_ref, system, payload) = (e.order_ref, e.system, e.payload);
                m.fact(FactRow {
                    id: 0,
                    order_ref,
                    system,
                    kind,
                    record_id: None,
                    command_id: None,
                    event_row: Some(plan.event_row),
                    payload: Some(payload),
                    at: now,
                });
                for detail in plan.audit {
                    m.audit(now, "engine", "event", &plan.order_ref, detail);
                }
            }
        });
        Ok(())
    }

    async fn claim_due(&self, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        Ok(self.claim(now, limit, &|_| true))
    }

    async fn claim_due_to(&self, target: String, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        Ok(self.claim(now, limit, &|t| t == target))
    }

    async fn claim_due_except(&self, targets: Vec<String>, now: Timestamp, limit: usize) -> Result<Vec<Command>> {
        Ok(self.claim(now, limit, &|t| !targets.iter().any(|x| x == t)))
    }

    async fn record_attempt(&self, a: AttemptRecord) -> Result<()> {
        self.write(|m| {
            let now = a.finished_at;
            let id = a.command.id;
            let note = |s: &str| match &a.note {
                Some(n) => format!("{n}; {s}"),
                None => s.to_owned(),
            };
            let detail = match &a.outcome {
                Outcome::Acknowledged { record_id } => note(&format!("record {record_id}")),
                Outcome::Retry { error, at, .. } => note(&format!("{error}; next attempt at {at}")),
                Outcome::Throttled { error, at, .. } => {
                    note(&format!("{error}; asked to wait: next attempt at {at}, no attempt spent"))
                }
                Outcome::DeadLettered { error, .. } => note(error),
            };
            let attempt = a.command.attempts;
            if m.attempts_seen.insert((id, attempt)) {
                m.attempts.push(AttemptRow {
                    command_id: id,
                    attempt,
                    started_at: a.started_at,
                    finished_at: now,
                    outcome: a.outcome.name().into(),
                    detail: Some(detail),
                    mapping: a.mapping.clone(),
                });
            }
            let (order_ref, target, kind, flow) = {
                let c = m.command(id);
                (c.order_ref.clone(), c.target.clone(), c.kind, c.flow.clone())
            };
            match &a.outcome {
                Outcome::Acknowledged { record_id } => {
                    let c = m.command(id);
                    c.state = CommandState::Acknowledged;
                    c.record_id = Some(record_id.clone());
                    c.ambiguous = false;
                    c.last_error = None;
                    c.updated_at = now;
                    let address = c.address();
                    match address {
                        // A duplicate closed: the order's own record in that system stays as it
                        // was, and is the one kept.
                        Some(address) => {
                            let rows = m.ledger.entry(order_ref.clone()).or_default();
                            if let Some(row) = rows.iter_mut().find(|r| r.system == target) {
                                row.record_id = address.keep.or(row.record_id.take());
                                row.updated_at = now;
                            }
                        }
                        None => m.set_ledger(&order_ref, &target, acknowledged_state(kind), Some(record_id), now),
                    }
                    m.command_fact(id, "acknowledged", Some(record_id), now);
                    let mut resolved = false;
                    for x in m.exceptions.iter_mut().filter(|x| x.command_id == Some(id)) {
                        if x.state == "open" || x.state == "acknowledged" {
                            x.state = "auto_resolved".into();
                            x.updated_at = now;
                            resolved = true;
                        }
                    }
                    if resolved {
                        m.audit(
                            now,
                            "engine",
                            "exception auto-resolved",
                            &order_ref,
                            format!("command {id} delivered"),
                        );
                    }
                }
                Outcome::Retry { at, ambiguous, error } => {
                    let c = m.command(id);
                    c.state = CommandState::Pending;
                    c.next_attempt_at = *at;
                    c.ambiguous = *ambiguous;
                    c.last_error = Some(error.clone());
                    c.updated_at = now;
                    m.due.insert((*at, id));
                }
                Outcome::Throttled { at, ambiguous, error } => {
                    let c = m.command(id);
                    c.state = CommandState::Pending;
                    c.next_attempt_at = *at;
                    c.ambiguous = *ambiguous;
                    c.last_error = Some(error.clone());
                    c.budget_attempts = c.budget_attempts.saturating_sub(1);
                    c.updated_at = now;
                    m.due.insert((*at, id));
                }
                Outcome::DeadLettered { ambiguous, error, field, pattern } => {
                    let c = m.command(id);
                    c.state = CommandState::DeadLettered;
                    c.ambiguous = *ambiguous;
                    c.last_error = Some(error.clone());
                    c.updated_at = now;
                    let detail = format!(
                        "{kind} to {target} dead-lettered after {} attempts: {error}",
                        a.command.budget_attempts
                    );
                    m.command_fact(id, "dead_lettered", None, now);
                    m.exceptions.push(ExceptionRow {
                        id: m.exceptions.len() as i64 + 1,
                        pattern: pattern.as_str().into(),
                        order_ref: order_ref.clone(),
                        flow: Some(flow),
                        command_id: Some(id),
                        field: field.clone(),
                        detail,
                        state: "open".into(),
                        opened_at: now,
                        updated_at: now,
                        mapping: a.mapping.clone(),
                        ..ExceptionRow::default()
                    });
                    m.audit(now, "engine", "dead-lettered", &order_ref, format!("command {id}: {error}"));
                }
            }
        });
        Ok(())
    }

    async fn next_due_at(&self) -> Result<Option<Timestamp>> {
        Ok(self.read(|m| {
            let heads = m.due.iter().filter(|&&(_, id)| {
                let c = &m.outbox[(id - 1) as usize];
                c.state == CommandState::Pending && m.heads_its_sequence(c)
            });
            heads.map(|(at, _)| *at).next()
        }))
    }

    async fn recover_in_flight(&self, now: Timestamp, read_back_at: HashMap<String, Timestamp>) -> Result<u64> {
        Ok(self.write(|m| {
            let mut n = 0;
            for c in m.outbox.iter_mut().filter(|c| c.state == CommandState::InFlight) {
                c.state = CommandState::Pending;
                c.ambiguous = true;
                c.next_attempt_at = read_back_at.get(&c.target).copied().unwrap_or(now);
                c.last_error = Some("hub stopped while the command was in flight".into());
                c.updated_at = now;
                m.due.insert((c.next_attempt_at, c.id));
                n += 1;
            }
            n
        }))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<Command>> {
        Ok(self
            .read(|m| m.outbox.iter().filter(|c| c.state == CommandState::DeadLettered).take(limit).cloned().collect()))
    }

    async fn replay(&self, which: Replay, actor: String, now: Timestamp) -> Result<u64> {
        Ok(self.write(|m| {
            let ids: Vec<i64> = m
                .outbox
                .iter()
                .filter(|c| {
                    c.state == CommandState::DeadLettered && (which == Replay::All || which == Replay::One(c.id))
                })
                .map(|c| c.id)
                .collect();
            for &id in &ids {
                let c = m.command(id);
                c.state = CommandState::Pending;
                c.next_attempt_at = now;
                c.budget_attempts = 0;
                c.budget_start = now;
                c.updated_at = now;
                let order_ref = c.order_ref.clone();
                m.due.insert((now, id));
                for x in m.exceptions.iter_mut().filter(|x| x.command_id == Some(id) && x.state == "open") {
                    x.state = "acknowledged".into();
                    x.updated_at = now;
                }
                m.audit(now, &actor, "replayed", &order_ref, format!("dead letter {id} replayed"));
            }
            ids.len() as u64
        }))
    }

    async fn abandon(&self, id: i64, actor: String, reason: Option<String>, now: Timestamp) -> Result<bool> {
        Ok(self.write(|m| m.abandon(id, &actor, reason.as_deref(), now)))
    }

    async fn create_token(&self, token: crate::NewToken, actor: String, now: Timestamp) -> Result<i64> {
        Ok(self.write(|m| {
            let id = m.tokens.len() as i64 + 1;
            let row = crate::TokenRow {
                id,
                name: token.name.clone(),
                role: token.role,
                created_at: now,
                expires_at: token.expires_at,
                revoked_at: None,
            };
            m.tokens.push((token.hash, row));
            m.audit(now, &actor, "token.create", "", format!("token {id} {:?} as {}", token.name, token.role));
            id
        }))
    }

    async fn tokens(&self) -> Result<Vec<crate::TokenRow>> {
        Ok(self.read(|m| m.tokens.iter().map(|(_, t)| t.clone()).collect()))
    }

    async fn token_by_hash(&self, hash: String) -> Result<Option<crate::TokenRow>> {
        Ok(self.read(|m| m.tokens.iter().find(|(h, _)| *h == hash).map(|(_, t)| t.clone())))
    }

    async fn revoke_token(&self, id: i64, actor: String, now: Timestamp) -> Result<bool> {
        Ok(self.write(|m| {
            let Some((_, t)) = m.tokens.iter_mut().find(|(_, t)| t.id == id && t.revoked_at.is_none()) else {
                return false;
            };
            t.revoked_at = Some(now);
            m.audit(now, &actor, "token.revoke", "", format!("token {id}"));
            true
        }))
    }

    async fn create_user(&self, user: crate::NewUser, actor: String, now: Timestamp) -> Result<Option<i64>> {
        Ok(self.write(|m| {
            if m.users.iter().any(|u| u.name == user.name) {
                return None;
            }
            let id = m.users.len() as i64 + 1;
            let detail = format!("user {id} {:?} as {}", user.name, user.role);
            m.users.push(crate::UserRow {
                id,
                name: user.name,
                role: user.role,
                password_hash: user.password_hash,
                created_at: now,
            });
            m.audit(now, &actor, "user.create", "", detail);
            Some(id)
        }))
    }

    async fn user_by_name(&self, name: String) -> Result<Option<crate::UserRow>> {
        Ok(self.read(|m| m.users.iter().find(|u| u.name == name).cloned()))
    }

    async fn open_session(&self, session: crate::NewSession, now: Timestamp) -> Result<i64> {
        self.write(|m| {
            let user = m
                .users
                .iter()
                .find(|u| u.id == session.user_id)
                .cloned()
                .ok_or_else(|| crate::StoreError::NotCommitted(format!("no user {}", session.user_id)))?;
            let id = m.sessions.len() as i64 + 1;
            let row = crate::SessionRow {
                id,
                user: user.name.clone(),
                role: user.role,
                csrf: session.csrf,
                link: session.link,
                created_at: now,
                last_seen_at: now,
                ended_at: None,
            };
            m.sessions.push((session.hash, user.id, row));
            let action = if session.link { "session.link" } else { "session.login" };
            m.audit(now, &format!("user:{}", user.name), action, "", format!("session {id}"));
            Ok(id)
        })
    }

    async fn session_by_hash(&self, hash: String) -> Result<Option<crate::SessionRow>> {
        Ok(self.read(|m| m.sessions.iter().find(|(h, _, _)| *h == hash).map(|(_, _, s)| s.clone())))
    }

    async fn touch_session(&self, id: i64, now: Timestamp) -> Result<()> {
        self.write(|m| {
            if let Some((_, _, s)) = m.sessions.iter_mut().find(|(_, _, s)| s.id == id) {
                s.last_seen_at = s.last_seen_at.max(now);
            }
        });
        Ok(())
    }

    async fn redeem_link(
        &self,
        link_hash: String,
        new_hash: String,
        not_before: Timestamp,
        now: Timestamp,
    ) -> Result<Option<crate::SessionRow>> {
        Ok(self.write(|m| {
            let (hash, _, s) = m
                .sessions
                .iter_mut()
                .find(|(h, _, s)| *h == link_hash && s.link && s.ended_at.is_none() && s.created_at >= not_before)?;
            *hash = new_hash;
            s.link = false;
            s.created_at = now;
            s.last_seen_at = now;
            let redeemed = s.clone();
            m.audit(
                now,
                &format!("user:{}", redeemed.user),
                "session.login",
                "",
                format!("session {} by link", redeemed.id),
            );
            Some(redeemed)
        }))
    }

    async fn end_session(&self, hash: String, now: Timestamp) -> Result<bool> {
        Ok(self.write(|m| {
            let Some((_, _, s)) = m.sessions.iter_mut().find(|(h, _, s)| *h == hash && s.ended_at.is_none()) else {
                return false;
            };
            s.ended_at = Some(now);
            let (user, id) = (s.user.clone(), s.id);
            m.audit(now, &format!("user:{user}"), "session.logout", "", format!("session {id}"));
            true
        }))
    }

    async fn open_exceptions_by_pattern(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.read(|m| {
            let mut open: std::collections::BTreeMap<String, u64> = Default::default();
            for x in m.exceptions.iter().filter(|x| x.state == handoff_model::ExceptionState::Open.as_str()) {
                *open.entry(x.pattern.clone()).or_default() += 1;
            }
            open.into_iter().collect()
        }))
    }

    async fn exceptions(
        &self,
        state: Option<handoff_model::ExceptionState>,
        limit: usize,
    ) -> Result<Vec<ExceptionRow>> {
        Ok(self.read(|m| {
            m.exceptions
                .iter()
                .rev()
                .filter(|x| state.is_none_or(|s| x.state == s.as_str()))
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn exception(&self, id: i64) -> Result<Option<ExceptionRow>> {
        Ok(self.read(|m| m.exceptions.iter().find(|x| x.id == id).cloned()))
    }

    async fn facts_after(&self, after: i64, limit: usize) -> Result<Vec<FactRow>> {
        // As the SQL stores: an event's entry without its payload.
        let entry = |f: &FactRow| FactRow { payload: f.payload.clone().filter(|_| f.event_row.is_none()), ..f.clone() };
        Ok(self.read(|m| m.facts.iter().skip(after.max(0) as usize).take(limit).map(entry).collect()))
    }

    async fn event_payloads(&self, rows: Vec<i64>) -> Result<Vec<(i64, String)>> {
        Ok(self.read(|m| {
            let event = |row: i64| m.inbox.get(usize::try_from(row - 1).ok()?).map(|e| (row, e.payload.clone()));
            rows.iter().filter_map(|&row| event(row)).collect()
        }))
    }

    async fn facts_of(&self, order_refs: Vec<String>, up_to: i64) -> Result<Vec<FactRow>> {
        let refs: HashSet<&str> = order_refs.iter().map(String::as_str).collect();
        Ok(self.read(|m| {
            m.facts
                .iter()
                .take_while(|f| f.id <= up_to)
                .filter(|f| refs.contains(f.order_ref.as_str()))
                .cloned()
                .collect()
        }))
    }

    async fn raised_findings(&self, order_refs: Vec<String>) -> Result<Vec<crate::RaisedFinding>> {
        let refs: HashSet<&str> = order_refs.iter().map(String::as_str).collect();
        Ok(self.read(|m| {
            m.exceptions
                .iter()
                .filter(|x| refs.contains(x.order_ref.as_str()))
                .filter(|x| matches!(x.state.as_str(), "open" | "acknowledged" | "ignored"))
                .filter_map(|x| {
                    let subject = x.subject.clone()?;
                    Some(crate::RaisedFinding { order_ref: x.order_ref.clone(), pattern: x.pattern.clone(), subject })
                })
                .collect()
        }))
    }

    async fn rules_checkpoint(&self) -> Result<Option<crate::RulesCheckpoint>> {
        Ok(self.read(|m| m.rules_checkpoint.clone()))
    }

    async fn move_rules_checkpoint(&self, change: crate::CheckpointMove) -> Result<()> {
        self.write(|m| {
            let checkpoint = m.rules_checkpoint.get_or_insert_default();
            checkpoint.orders.extend(change.joined);
            let left: std::collections::HashSet<&String> = change.left.iter().collect();
            checkpoint.orders.retain(|r| !left.contains(r));
            checkpoint.orders.sort_unstable();
            checkpoint.orders.dedup();
            checkpoint.position = change.position;
        });
        Ok(())
    }

    async fn raise_finding(&self, f: NewFinding, now: Timestamp) -> Result<Raised> {
        Ok(self.write(|m| {
            let actor = format!("rule:{}", f.pattern);
            let existing = m.exceptions.iter_mut().find(|x| {
                x.pattern == f.pattern.as_str() && x.order_ref == f.order_ref && x.subject.as_ref() == Some(&f.subject)
            });
            match existing {
                Some(x) if matches!(x.state.as_str(), "open" | "acknowledged" | "ignored") => Raised::AlreadyOpen(x.id),
                Some(x) => {
                    x.state = "open".into();
                    x.detail = f.detail.clone();
                    x.evidence = Some(f.evidence);
                    x.action = Some(f.action);
                    x.updated_at = now;
                    let id = x.id;
                    m.rechecks.remove(&id);
                    let detail = format!("exception {id}: the cause persists: {}", f.detail);
                    m.audit(now, &actor, "exception reopened", &f.order_ref, detail);
                    Raised::Reopened(id)
                }
                None => {
                    let id = m.exceptions.len() as i64 + 1;
                    m.audit(now, &actor, "exception raised", &f.order_ref, format!("exception {id}: {}", f.detail));
                    m.exceptions.push(ExceptionRow {
                        id,
                        pattern: f.pattern.as_str().into(),
                        order_ref: f.order_ref,
                        flow: f.flow,
                        command_id: None,
                        field: f.field,
                        detail: f.detail,
                        state: "open".into(),
                        opened_at: now,
                        updated_at: now,
                        subject: Some(f.subject),
                        channel: f.channel,
                        mapping: None,
                        amount: f.amount,
                        currency: f.currency,
                        action: Some(f.action),
                        evidence: Some(f.evidence),
                    });
                    Raised::Opened(id)
                }
            }
        }))
    }

    async fn clear_finding(
        &self,
        pattern: handoff_model::Pattern,
        order_ref: String,
        subject: String,
        now: Timestamp,
    ) -> Result<bool> {
        Ok(self.write(|m| {
            let found = m.exceptions.iter_mut().find(|x| {
                x.pattern == pattern.as_str()
                    && x.order_ref == order_ref
                    && x.subject.as_deref() == Some(subject.as_str())
                    && matches!(x.state.as_str(), "open" | "acknowledged")
            });
            let Some(x) = found else { return false };
            x.state = "auto_resolved".into();
            x.updated_at = now;
            let id = x.id;
            let actor = format!("rule:{pattern}");
            m.audit(now, &actor, "exception auto-resolved", &order_ref, format!("exception {id}: the cause is gone"));
            true
        }))
    }

    async fn take_rechecks(&self, limit: usize) -> Result<Vec<ExceptionRow>> {
        Ok(self.write(|m| {
            let ids: Vec<i64> = m.rechecks.iter().take(limit).copied().collect();
            ids.iter()
                .map(|id| {
                    m.rechecks.remove(id);
                    m.exceptions[(id - 1) as usize].clone()
                })
                .collect()
        }))
    }

    async fn enqueue_action(
        &self,
        exception_id: i64,
        event_row: i64,
        command: NewCommand,
        actor: String,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        Ok(self.write(|m| {
            let id = m.enqueue(event_row, &command, now)?;
            let detail =
                format!("exception {exception_id}: {} to {} queued as command {id}", command.kind, command.target);
            m.audit(now, &actor, "action", &command.order_ref, detail);
            Some(id)
        }))
    }

    async fn order_timeline(&self, order_ref: String) -> Result<Timeline> {
        Ok(self.read(|m| {
            let commands: Vec<Command> = m.outbox.iter().filter(|c| c.order_ref == order_ref).cloned().collect();
            let ids: HashSet<i64> = commands.iter().map(|c| c.id).collect();
            let mut ledger = m.ledger.get(&order_ref).cloned().unwrap_or_default();
            ledger.sort_by_key(|l| l.updated_at);
            Timeline {
                events: m
                    .inbox
                    .iter()
                    .filter(|e| e.order_ref == order_ref)
                    .cloned()
                    .map(StoredEvent::stamped)
                    .collect(),
                attempts: m.attempts.iter().filter(|a| ids.contains(&a.command_id)).cloned().collect(),
                ledger,
                exceptions: m.exceptions.iter().filter(|x| x.order_ref == order_ref).cloned().collect(),
                audit: m.audit.iter().filter(|(r, _, _)| *r == order_ref).map(|(_, _, a)| a.clone()).collect(),
                quarantined: m
                    .quarantine
                    .iter()
                    .filter(|q| q.order_ref.as_ref() == Some(&order_ref))
                    .cloned()
                    .collect(),
                commands,
                order_ref,
            }
        }))
    }

    async fn record_audit(
        &self,
        order_ref: String,
        actor: String,
        action: String,
        detail: String,
        now: Timestamp,
    ) -> Result<()> {
        self.write(|m| m.audit(now, &actor, &action, &order_ref, detail));
        Ok(())
    }

    async fn flow_stats(&self, since: Timestamp) -> Result<Vec<FlowStats>> {
        Ok(self.read(|m| {
            let mut per_command: HashMap<i64, Vec<&AttemptRow>> = HashMap::new();
            for a in &m.attempts {
                per_command.entry(a.command_id).or_default().push(a);
            }
            let samples = m.outbox.iter().filter(|c| c.created_at >= since).map(|c| m.sample(c, &per_command));
            flow_stats_of(samples)
        }))
    }

    async fn search_orders(&self, f: crate::OrderFilter) -> Result<crate::Page<crate::OrderRow>> {
        let after = f.after()?;
        let limit = crate::search::page_size(f.limit);
        let by_reference = f.reference.is_some();
        let email = f.email.as_deref().map(crate::search::email_key);
        Ok(self.read(|m| {
            let mut rows: Vec<crate::OrderRow> = m
                .order_search
                .iter()
                .filter_map(|(order_ref, o)| {
                    let state = m.orders.get(order_ref)?;
                    let row = crate::OrderRow {
                        order_ref: order_ref.clone(),
                        source: state.source.clone(),
                        channel: o.channel.clone(),
                        state: crate::search::order_state(state.created, state.cancelled).to_owned(),
                        first_seen: o.first_seen,
                        updated_at: o.updated_at,
                    };
                    let keep = f.reference.as_ref().is_none_or(|p| order_ref.starts_with(p.as_str()))
                        && email.as_ref().is_none_or(|e| Some(e) == o.email_key.as_ref())
                        && f.channel.as_ref().is_none_or(|c| Some(c) == o.channel.as_ref())
                        && f.state.as_ref().is_none_or(|s| *s == row.state)
                        && f.from.is_none_or(|t| o.first_seen >= t)
                        && f.to.is_none_or(|t| o.first_seen < t);
                    keep.then_some(row)
                })
                .collect();
            if by_reference {
                rows.sort_by(|a, b| a.order_ref.cmp(&b.order_ref));
            } else {
                rows.sort_by(|a, b| (b.first_seen, &b.order_ref).cmp(&(a.first_seen, &a.order_ref)));
            }
            let rows = rows.into_iter().filter(|r| match &after {
                None => true,
                Some(a) if by_reference => r.order_ref > a.tie,
                Some(a) => (r.first_seen.as_microsecond(), &r.order_ref) < (a.micros, &a.tie),
            });
            crate::Page::of(rows.take(limit + 1).collect(), limit, |r| r.key(by_reference))
        }))
    }

    async fn search_exceptions(&self, f: crate::ExceptionFilter) -> Result<crate::Page<ExceptionRow>> {
        let after = f.after()?.map(|c| Ok::<_, crate::StoreError>((c.micros, c.id()?))).transpose()?;
        let limit = crate::search::page_size(f.limit);
        Ok(self.read(|m| {
            let mut rows: Vec<&ExceptionRow> = m
                .exceptions
                .iter()
                .filter(|x| f.matches(x))
                .filter(|x| after.is_none_or(|a| (x.opened_at.as_microsecond(), x.id) < a))
                .collect();
            rows.sort_by_key(|x| std::cmp::Reverse((x.opened_at, x.id)));
            let rows = rows.into_iter().take(limit + 1).cloned().collect();
            crate::Page::of(rows, limit, crate::search::exception_key)
        }))
    }

    async fn search_clusters(&self, f: crate::ClusterFilter) -> Result<crate::Page<crate::ClusterRow>> {
        let states = f.states();
        let rows = self.read(|m| {
            type Key = (String, Option<String>, Option<String>, Option<String>, Option<String>, String);
            let mut groups: std::collections::BTreeMap<Key, Vec<&ExceptionRow>> = Default::default();
            for x in &m.exceptions {
                let keep = states.contains(&x.state.as_str())
                    && f.pattern.as_ref().is_none_or(|p| *p == x.pattern)
                    && f.flow.as_ref().is_none_or(|v| Some(v) == x.flow.as_ref())
                    && f.channel.as_ref().is_none_or(|v| Some(v) == x.channel.as_ref());
                if keep {
                    let fingerprint = handoff_model::cluster::fingerprint(&x.detail);
                    let key =
                        (x.pattern.clone(), x.flow.clone(), x.field.clone(), x.channel.clone(), x.mapping.clone());
                    groups.entry((key.0, key.1, key.2, key.3, key.4, fingerprint)).or_default().push(x);
                }
            }
            groups
                .into_iter()
                .map(|((pattern, flow, field, channel, mapping, fingerprint), members)| {
                    let mut money: std::collections::BTreeMap<String, rust_decimal::Decimal> = Default::default();
                    let mut states: std::collections::BTreeMap<String, u64> = Default::default();
                    for x in &members {
                        if let (Some(amount), Some(currency)) = (&x.amount, &x.currency) {
                            *money.entry(currency.clone()).or_default() += crate::search::amount(amount)?;
                        }
                        *states.entry(x.state.clone()).or_default() += 1;
                    }
                    let orders: HashSet<&str> = members.iter().map(|x| x.order_ref.as_str()).collect();
                    let newest = members.iter().max_by_key(|x| (x.opened_at, x.id)).expect("a cluster has members");
                    Ok(crate::ClusterRow {
                        id: handoff_model::cluster::cluster_id([
                            Some(pattern.as_str()),
                            flow.as_deref(),
                            field.as_deref(),
                            channel.as_deref(),
                            mapping.as_deref(),
                            Some(fingerprint.as_str()),
                        ]),
                        exceptions: members.len() as u64,
                        orders: orders.len() as u64,
                        money: crate::search::money_text(money),
                        first_seen: members.iter().map(|x| x.opened_at).min().expect("members"),
                        last_seen: members.iter().map(|x| x.updated_at.max(x.opened_at)).max().expect("members"),
                        states,
                        example: newest.detail.clone(),
                        pattern,
                        flow,
                        field,
                        channel,
                        mapping,
                        fingerprint,
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        crate::search::clusters_page(rows, &f)
    }

    async fn search_commands(&self, f: crate::CommandFilter) -> Result<crate::Page<Command>> {
        let after = f.after()?;
        let limit = crate::search::page_size(f.limit);
        Ok(self.read(|m| {
            let rows = m
                .outbox
                .iter()
                .rev()
                .filter(|c| after.is_none_or(|a| c.id < a) && f.matches(c))
                .take(limit + 1)
                .cloned()
                .collect();
            crate::Page::of(rows, limit, crate::search::command_key)
        }))
    }

    async fn search_audit(&self, f: crate::AuditFilter) -> Result<crate::Page<crate::AuditEntry>> {
        let after = f.after()?.map(|c| Ok::<_, crate::StoreError>((c.micros, c.id()?))).transpose()?;
        let limit = crate::search::page_size(f.limit);
        Ok(self.read(|m| {
            let mut rows: Vec<crate::AuditEntry> = m
                .audit
                .iter()
                .map(|(order_ref, id, a)| crate::AuditEntry {
                    id: *id,
                    at: a.at,
                    actor: a.actor.clone(),
                    action: a.action.clone(),
                    order_ref: (!order_ref.is_empty()).then(|| order_ref.clone()),
                    detail: a.detail.clone(),
                })
                .filter(|e| f.matches(e) && after.is_none_or(|a| (e.at.as_microsecond(), e.id) < a))
                .collect();
            rows.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
            rows.truncate(limit + 1);
            crate::Page::of(rows, limit, crate::search::audit_key)
        }))
    }

    async fn flow_health(&self, w: crate::HealthWindow) -> Result<Vec<crate::FlowHealth>> {
        w.check()?;
        let (samples, depth) = self.read(|m| {
            let mut per_command: HashMap<i64, Vec<&AttemptRow>> = HashMap::new();
            for a in &m.attempts {
                per_command.entry(a.command_id).or_default().push(a);
            }
            let in_window = |c: &&Command| {
                c.created_at >= w.from && c.created_at < w.to && w.flow.as_ref().is_none_or(|f| *f == c.flow)
            };
            let samples: Vec<crate::search::HealthSample> = m
                .outbox
                .iter()
                .filter(in_window)
                .map(|c| crate::search::HealthSample { created_at: c.created_at, sample: m.sample(c, &per_command) })
                .collect();
            let mut depth: std::collections::BTreeMap<String, u64> = Default::default();
            for c in m.outbox.iter().filter(|c| c.state == CommandState::DeadLettered) {
                *depth.entry(c.flow.clone()).or_default() += 1;
            }
            (samples, depth)
        });
        if samples.len() > crate::search::MAX_HEALTH_SAMPLES {
            return Err(crate::StoreError::Invalid(format!(
                "more than {} commands in the window: narrow it",
                crate::search::MAX_HEALTH_SAMPLES
            )));
        }
        Ok(crate::search::flow_health_of(&w, samples, depth))
    }

    async fn command_counts(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.read(|m| {
            let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
            for c in &m.outbox {
                *counts.entry(c.state.as_str()).or_default() += 1;
            }
            counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        }))
    }

    async fn purge(&self, before: crate::PurgeBefore, _limit: usize, dry_run: bool) -> Result<crate::Purged> {
        if dry_run {
            return Ok(self.read(|m| m.clone().purge(&before)));
        }
        Ok(self.write(|m| m.purge(&before)))
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
