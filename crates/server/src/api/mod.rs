//! The JSON API under `/api/v1`, one module per resource. Every answer is an API type of its
//! own (`types`), never a store row; every list is a keyset page; every error is problem+json
//! (RFC 9457); every answer for a caller who may not see personal data passes
//! `handoff_model::personal::mask`. The routes and their roles are `crate::api_routes`.

pub(crate) mod audit;
pub(crate) mod clusters;
pub(crate) mod commands;
pub(crate) mod contract;
pub(crate) mod doctor;
pub(crate) mod exceptions;
pub(crate) mod flows;
pub(crate) mod openapi;
pub(crate) mod orders;
pub(crate) mod problem;
pub(crate) mod quarantine;
pub(crate) mod status;
pub(crate) mod types;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::auth::Caller;
pub(crate) use problem::Problem;

/// Default rows of a page when the caller names no `limit`.
pub(crate) const DEFAULT_PAGE: usize = 50;

/// The page size asked for, 1 to `handoff_store::search::MAX_PAGE` (`DEFAULT_PAGE` when
/// absent); any other is a 400 rather than silently changed.
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, Problem> {
    let max = handoff_store::search::MAX_PAGE;
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Problem::bad_request(format!("limit {n} is not 1 to {max}"))),
    }
}

/// An answer, with personal data masked for a caller who may not see it.
pub(crate) fn shown<T: serde::Serialize>(caller: &Caller, answer: T) -> Response {
    match serde_json::to_value(answer) {
        Ok(mut v) => {
            if !caller.sees_personal_data() {
                handoff_model::personal::mask(&mut v);
            }
            Json(v).into_response()
        }
        Err(e) => {
            tracing::error!(message = "answer not serialisable", error = %e);
            Problem::internal("the answer could not be written").into_response()
        }
    }
}

/// A query string read into `T`; a filter it cannot read is a 400 problem naming why.
pub(crate) struct Filters<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Filters<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(t)) => Ok(Filters(t)),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}

/// A path's parameters read into `T`; one it cannot read is a 400 problem.
pub(crate) struct Params<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Params(t)),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}

/// A JSON body read into `T`; one it cannot read is a 400 (or 415) problem.
pub(crate) struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(t)) => Ok(Body(t)),
            // A body that is JSON of the wrong shape is a 400 like any other unreadable request;
            // only a missing content type (415) and a body too large (413) say more.
            Err(e) if e.status() == axum::http::StatusCode::UNPROCESSABLE_ENTITY => {
                Err(Problem::bad_request(e.body_text()))
            }
            Err(e) => Err(Problem::new(e.status(), e.body_text())),
        }
    }
}
