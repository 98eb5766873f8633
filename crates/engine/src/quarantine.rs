//! Replaying held bodies. A body that arrived authenticated (or was polled) but that no reader
//! could map is held in the store's quarantine with a Transform Mismatch exception; once the
//! reader is fixed it is read again, with the headers kept beside it and without checking its
//! signature again (it was checked before it was stored), and becomes an ordinary inbox event,
//! deduplicated by its event id. The reader is a seam: the binary passes the connectors' own.

use std::sync::Arc;

use handoff_contract::Contract;
use handoff_model::Pattern;
use handoff_store::{ExceptionRow, NewEvent, Quarantined, Recorded, Released, Store, StoreError};
use jiff::Timestamp;

use crate::BoxFuture;
use crate::poll::{Page, PollError, Poller};

/// Why a reader cannot map a body: the field path it stopped at, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Unmapped {
    pub field: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no quarantined body {0}")]
    NotFound(i64),
    /// The reader still refuses it: nothing changed, it stays held.
    #[error("quarantine {id} still cannot be mapped, nothing changed: {unmapped}")]
    StillUnmapped { id: i64, unmapped: Unmapped },
}

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Recorded in the inbox as this row (`Duplicate`: the event was there already).
    Recorded(Recorded),
    /// Replayed before, as this inbox row: nothing changed.
    Before { event_row: Option<i64> },
}

/// Reads held body `id` again with `read` and, if it maps now, records it in the inbox, marks
/// it replayed and resolves its exception (audited as `actor`). Idempotent: a body replayed
/// before is not read again.
pub async fn replay<S: Store>(
    store: &S,
    id: i64,
    read: impl Fn(&Quarantined) -> Result<NewEvent, Unmapped>,
    actor: &str,
    now: Timestamp,
) -> Result<Replayed, ReplayError> {
    let held = store.quarantined_one(id).await?.ok_or(ReplayError::NotFound(id))?;
    if held.event_row.is_some() {
        return Ok(Replayed::Before { event_row: held.event_row });
    }
    let event = read(&held).map_err(|unmapped| ReplayError::StillUnmapped { id, unmapped })?;
    match store.release_quarantined(id, event, actor.to_owned(), now).await? {
        Released::Replayed(recorded) => Ok(Replayed::Recorded(recorded)),
        Released::AlreadyReplayed { event_row } => Ok(Replayed::Before { event_row }),
        Released::NotFound => Err(ReplayError::NotFound(id)),
    }
}

/// The held body an exception was raised for, if it was one: a Transform Mismatch of no command
/// whose evidence names it. Its action is the body's replay.
pub fn held_by(x: &ExceptionRow) -> Option<i64> {
    if x.pattern != Pattern::TransformMismatch.as_str() || x.command_id.is_some() {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(x.evidence.as_deref()?).ok()?["quarantine"].as_i64()
}

/// The inbound flow of `system` that a held body of it is raised on: the first flow (by name)
/// that starts at it, or `None` when none does.
pub fn inbound_flow(contract: &Contract, system: &str) -> Option<String> {
    contract.flows.iter().find(|(_, f)| f.from == system).map(|(name, _)| name.clone())
}

/// A poller whose held records name the inbound flow of its system: connectors know their
/// vendor, the contract knows the flows.
pub fn naming_flow(poller: Arc<dyn Poller>, flow: Option<String>) -> Arc<dyn Poller> {
    Arc::new(FlowNamed { poller, flow })
}

struct FlowNamed {
    poller: Arc<dyn Poller>,
    flow: Option<String>,
}

impl Poller for FlowNamed {
    fn poll<'a>(&'a self, cursor: Option<&'a str>, now: Timestamp) -> BoxFuture<'a, Result<Page, PollError>> {
        Box::pin(async move {
            let mut page = self.poller.poll(cursor, now).await?;
            for held in &mut page.held {
                held.flow = held.flow.take().or_else(|| self.flow.clone());
            }
            Ok(page)
        })
    }
}
