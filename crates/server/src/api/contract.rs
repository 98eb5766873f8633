//! The contract, read: systems and flows as the hub runs them. Never a secret, a credential
//! a URL (one may carry a key) or a path.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use handoff_store::Store;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContractView {
    pub systems: BTreeMap<String, SystemView>,
    pub flows: BTreeMap<String, FlowView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SystemView {
    pub role: String,
    pub connector: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FlowView {
    pub from: String,
    pub to: String,
    pub events: Vec<String>,
    /// Seconds within which the target must acknowledge.
    pub deadline_seconds: i64,
    /// Observe only: nothing is sent.
    pub shadow: bool,
}

#[utoipa::path(operation_id = "read_contract", get, path = "/api/v1/contract", tag = "contract",
    responses((status = 200, body = ContractView)))]
pub(crate) async fn read<S: Store + Clone>(State(state): State<Arc<AppState<S>>>) -> Json<ContractView> {
    let c = &state.contract;
    Json(ContractView {
        systems: c
            .systems
            .iter()
            .map(|(name, s)| {
                let view = SystemView { role: s.role.as_str().to_owned(), connector: s.connector.as_str().to_owned() };
                (name.clone(), view)
            })
            .collect(),
        flows: c
            .flows
            .iter()
            .map(|(name, f)| {
                let view = FlowView {
                    from: f.from.clone(),
                    to: f.to.clone(),
                    events: f.events.iter().map(|e| e.as_str().to_owned()).collect(),
                    deadline_seconds: f.deadline.as_secs(),
                    shadow: f.shadow,
                };
                (name.clone(), view)
            })
            .collect(),
    })
}
