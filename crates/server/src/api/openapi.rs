//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers and types (utoipa),
//! served at `/api/v1/openapi.json` and checked in as `docs/openapi.json` (a test fails when
//! the two differ: `UPDATE_OPENAPI=1 cargo test -p handoff-server openapi` rewrites it).

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::problem::PROBLEM_JSON;
use super::{audit, clusters, commands, contract, doctor, exceptions, flows, orders, quarantine, status, types};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Handoff API",
        description = "The hub's orders, exceptions, clusters, commands, dead letters, quarantine, flows, \
                       drift, contract, audit log and the doctor's checklist. Every route needs a bearer token (`handoff token create`); \
                       a viewer's answers have personal data masked. Lists are keyset pages: pass a page's \
                       `next` as `cursor`. Errors are problem+json (RFC 9457).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        orders::search,
        orders::timeline,
        exceptions::search,
        exceptions::evidence,
        exceptions::act,
        clusters::list,
        commands::list,
        commands::dead_letters,
        commands::replay,
        commands::dry_run,
        quarantine::list,
        flows::health,
        status::outbox,
        status::drift,
        contract::read,
        audit::list,
        doctor::answers,
        document,
    ),
    components(schemas(super::Problem, types::ExceptionAction)),
    modifiers(&Bearer),
    security(("bearer" = [])),
    tags(
        (name = "orders"), (name = "exceptions"), (name = "commands"), (name = "quarantine"),
        (name = "flows"), (name = "contract"), (name = "audit"), (name = "doctor"), (name = "meta")
    )
)]
pub(crate) struct Document;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        // What any route may answer besides its own: the token checks' 401 and 403, a bad
        // filter or path's 400, a store that cannot answer now (500, 503).
        let problem = |description: &str| {
            let content = Content::new(Some(Ref::from_schema_name("Problem")));
            ResponseBuilder::new().description(description).content(PROBLEM_JSON, content).build()
        };
        let common = [
            ("400", "The request cannot be read (a filter, a path parameter, a body)"),
            ("401", "No valid API token"),
            ("403", "The token's role is short of the route's"),
            ("500", "The store could not answer"),
            ("503", "The store is busy: retry"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let with_body: &[(&str, &str)] = match operation.request_body {
                    Some(_) => &[("413", "The body is too large"), ("415", "The body is not `application/json`")],
                    None => &[],
                };
                for (status, description) in common.iter().chain(with_body) {
                    let responses = &mut operation.responses.responses;
                    responses.entry((*status).to_owned()).or_insert_with(|| problem(description).into());
                }
            }
        }
    }
}

/// The document, as served and as checked in.
pub fn document_json() -> String {
    Document::openapi().to_pretty_json().expect("the OpenAPI document serialises")
}

/// This document.
#[utoipa::path(operation_id = "openapi_document", get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, body = Object)))]
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(Document::openapi())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn checked_in() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// The checked-in document is the code's: regenerate it with
    /// `UPDATE_OPENAPI=1 cargo test -p handoff-server openapi`.
    #[test]
    fn openapi_document_matches_the_checked_in_one() {
        let generated = document_json() + "\n";
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(checked_in(), &generated).unwrap();
        }
        let kept = std::fs::read_to_string(checked_in()).unwrap_or_default();
        assert!(
            kept == generated,
            "docs/openapi.json differs from the code's document: run `UPDATE_OPENAPI=1 cargo test -p handoff-server \
             openapi` and commit it"
        );
    }

    /// Every route of the table is in the document, and the document names no other.
    #[test]
    fn openapi_document_describes_every_route_of_the_table() {
        let doc = Document::openapi();
        let mut described: Vec<String> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ];
                methods.into_iter().filter(|(_, has)| *has).map(move |(m, _)| format!("{m} {path}"))
            })
            .collect();
        described.sort();
        let mut routed: Vec<String> = crate::api_routes::<handoff_store::memory::MemoryStore>()
            .into_iter()
            .filter(|(_, path, _, _)| path.starts_with("/api/v1/"))
            .map(|(method, path, _, _)| format!("{method} {path}"))
            .collect();
        routed.sort();
        assert_eq!(described, routed);
    }
}
