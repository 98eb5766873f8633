//! Who is calling the API: a bearer token, looked up by its SHA-256, must be live and hold the
//! route's role. Missing, unknown, revoked and expired tokens are 401 (with `WWW-Authenticate`,
//! without saying which, so nothing is learnt by guessing); a live token short of the role is 403.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use handoff_store::{Role, Store};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::Problem;

/// What a token starts with, so that a leaked one is recognisable (secret scanners, logs).
const PREFIX: &str = "hnd_";

/// The caller a request was let in as: the token's holder and role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Whether the caller may see customers' personal data.
    pub fn sees_personal_data(&self) -> bool {
        self.role >= Role::Operator
    }

    /// How the audit log names an action of this caller.
    pub fn actor(&self) -> String {
        format!("token:{}", self.name)
    }
}

/// A new token (shown once) and the hash the store keeps.
pub fn issue() -> (String, String) {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    (token, hash)
}

/// The SHA-256 of a token, hex: tokens are 256 random bits, so a plain hash cannot be
/// reversed by guessing, and the lookup is one index probe.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unauthorized() -> Response {
    let mut r = Problem::new(StatusCode::UNAUTHORIZED, "a valid API token is required").into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The middleware: lets the request in as its `Caller` when its token holds `role`.
pub(crate) async fn require<S: Store + Clone>(
    State((state, role)): State<(Arc<AppState<S>>, Role)>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| t.starts_with(PREFIX)) else {
        return unauthorized();
    };
    let found = match state.store.token_by_hash(hash(token)).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(message = "token lookup failed", error = %error);
            return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the store could not answer").into_response();
        }
    };
    let Some(found) = found.filter(|t| t.check(state.clock.now()).is_ok()) else {
        return unauthorized();
    };
    if found.role < role {
        let error = format!("this needs the {role} role; the token holds {}", found.role);
        return Problem::new(StatusCode::FORBIDDEN, error).into_response();
    }
    request.extensions_mut().insert(Caller { name: found.name, role: found.role });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use axum::body::Body;
    use handoff_engine::ManualClock;
    use handoff_store::NewToken;
    use handoff_store::memory::MemoryStore;
    use jiff::{SignedDuration, Timestamp};
    use tower::ServiceExt as _;

    use super::*;

    fn t0() -> Timestamp {
        "2026-12-01T10:00:00Z".parse().unwrap()
    }

    /// The token states a request can carry.
    #[derive(Debug, Clone, Copy)]
    enum Held {
        Valid,
        Expired,
        Revoked,
        Missing,
        Wrong,
    }

    /// Every route of the table × every role × every token state: a live token of the route's
    /// role or above gets in, one below is 403, and every other state is 401 with
    /// `WWW-Authenticate`, whatever the role.
    #[tokio::test]
    async fn the_access_matrix_of_every_route_role_and_token_state() {
        let text = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";
        let contract = Arc::new(handoff_contract::Contract::parse(text, Path::new("test")).unwrap());
        let store = MemoryStore::new();
        let clock = Arc::new(ManualClock::new(t0()));
        let drift = Arc::new(handoff_mapping::drift::Watch::shipped().unwrap());
        let heartbeats = Default::default();
        let targets = Default::default();
        let mappings = Arc::new(handoff_mapping::Mappings::shipped().unwrap());
        let state = Arc::new(AppState {
            contract,
            store: store.clone(),
            clock: clock.clone(),
            drift,
            mappings,
            heartbeats,
            targets,
            recent: Default::default(),
        });
        let app = crate::router(state);

        let mut tokens = Vec::new();
        for role in Role::ALL {
            for held in [Held::Valid, Held::Expired, Held::Revoked] {
                let (token, hash) = issue();
                let expires_at =
                    matches!(held, Held::Expired).then(|| t0().checked_add(SignedDuration::from_secs(1)).unwrap());
                let name = format!("{role}-{held:?}");
                let new = NewToken { name, role, hash, expires_at };
                let id = store.create_token(new, "test".into(), t0()).await.unwrap();
                if matches!(held, Held::Revoked) {
                    store.revoke_token(id, "test".into(), t0()).await.unwrap();
                }
                tokens.push((role, held, Some(token)));
            }
            tokens.push((role, Held::Missing, None));
            let (wrong, _) = issue();
            tokens.push((role, Held::Wrong, Some(wrong)));
        }
        clock.advance(SignedDuration::from_secs(60));

        let routes = crate::api_routes::<MemoryStore>();
        assert!(routes.len() >= 10);
        let mut checked = 0;
        for (method, path, needs, _) in routes {
            let uri = path.replace("{order_ref}", "%231").replace("{id}", "1");
            for (role, held, token) in &tokens {
                let mut request = Request::builder().method(method.clone()).uri(&uri);
                if let Some(token) = token {
                    request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
                }
                let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
                let status = response.status();
                match held {
                    Held::Valid if *role >= needs => assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{method} {path} as {role}: {status}"
                    ),
                    Held::Valid => assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role}"),
                    _ => {
                        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {held:?} {role}");
                        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
                        assert_eq!(response.headers()[header::CONTENT_TYPE], crate::api::problem::PROBLEM_JSON);
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, crate::api_routes::<MemoryStore>().len() * 15);
        let health = Request::get("/health").body(Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(health).await.unwrap().status(), StatusCode::OK, "health needs no token");
    }

    #[test]
    fn tokens_are_random_prefixed_and_kept_only_as_their_hash() {
        let (a, hash_a) = issue();
        let (b, _) = issue();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 43, "{a}");
        assert_eq!(hash_a, hash(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a[PREFIX.len()..]));
    }
}
