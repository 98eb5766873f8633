//! Who is using the console: a person logged in with their password (argon2id), holding a
//! session cookie whose random id the store keeps only as its SHA-256. A session ends at logout,
//! after [`IDLE`] without a request, or [`ABSOLUTE`] after login, whichever comes first. Every
//! state-changing request carries the session's CSRF token (the form's `csrf` field, or the
//! `X-CSRF-Token` header htmx sends) or is refused 403.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use handoff_store::{Role, SessionRow, Store};
use jiff::{SignedDuration, Timestamp};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "handoff_session";
/// The login form's own CSRF cookie (double submit: there is no session yet to hold a token).
pub const LOGIN_COOKIE: &str = "handoff_login";
/// A session ends after this long without a request.
pub const IDLE: SignedDuration = SignedDuration::from_mins(30);
/// A session ends this long after login, however busy.
pub const ABSOLUTE: SignedDuration = SignedDuration::from_hours(12);
/// A one-time login link is good for this long.
pub const LINK_TTL: SignedDuration = SignedDuration::from_hours(1);
/// A session's last request is written at most this often (each write goes through the store's
/// one writer).
const TOUCH_EVERY: SignedDuration = SignedDuration::from_secs(60);
/// Largest form a state-changing console request may send (its CSRF field is read from it).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// How the console's cookies are set.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    /// Cookies carry `Secure`: browsers then send them only over TLS (a proxy in front).
    pub secure: bool,
}

/// The person a console request is let in as.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub csrf: String,
}

impl User {
    /// How the audit log names an action of this person.
    pub fn actor(&self) -> String {
        format!("user:{}", self.name)
    }

    pub fn sees_personal_data(&self) -> bool {
        self.role >= Role::Operator
    }

    pub fn may(&self, role: Role) -> bool {
        self.role >= role
    }
}

/// 256 random bits, URL-safe: session ids, CSRF tokens, login links.
pub fn random_key() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a session id or link, hex: what the store keeps.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Two secrets compared through their digests: how long the comparison takes says nothing of
/// the expected value.
pub fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// A password's argon2id hash as a PHC string (random salt, the crate's default cost).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` is the one `phc` was made from. With no user (`phc` is `None`) a dummy
/// hash is checked all the same, so an unknown name takes as long as a wrong password.
pub fn password_matches(password: &str, phc: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password(&random_key()).unwrap_or_default());
    let Ok(parsed) = PasswordHash::new(phc.unwrap_or(dummy)) else { return false };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && phc.is_some()
}

/// Why a session lets no one in, if it does not.
pub fn refusal(s: &SessionRow, now: Timestamp) -> Option<&'static str> {
    if s.link {
        Some("an unredeemed login link")
    } else if s.ended_at.is_some() {
        Some("logged out")
    } else if now.duration_since(s.last_seen_at) > IDLE {
        Some("idle too long")
    } else if now.duration_since(s.created_at) > ABSOLUTE {
        Some("too old")
    } else {
        None
    }
}

/// The value of cookie `name` in the request's headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A console cookie: HttpOnly, SameSite=Strict, Path=/, Secure as the policy says; `None`
/// removes it.
pub fn set_cookie(policy: CookiePolicy, name: &'static str, value: Option<String>) -> String {
    let removing = value.is_none();
    let mut c = Cookie::build((name, value.unwrap_or_default()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(policy.secure);
    if removing {
        c = c.max_age(cookie::time::Duration::ZERO);
    }
    c.build().to_string()
}

/// A request without a live session: a page is sent to the login form, anything else is 401
/// (htmx is told where to go).
fn unauthenticated(method: &Method, path_and_query: &str) -> Response {
    if *method == Method::GET || *method == Method::HEAD {
        let next: String = form_urlencoded::byte_serialize(path_and_query.as_bytes()).collect();
        return Redirect::to(&format!("/console/login?next={next}")).into_response();
    }
    let mut r = (StatusCode::UNAUTHORIZED, "log in to the console first").into_response();
    r.headers_mut().insert("HX-Redirect", header::HeaderValue::from_static("/console/login"));
    r
}

fn store_failed(error: handoff_store::StoreError) -> Response {
    tracing::error!(message = "console session lookup failed", error = %error);
    (StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable").into_response()
}

/// The CSRF tokens a state-changing request carries: its `X-CSRF-Token` header and its form's
/// `csrf` field (the body is read, at most [`MAX_FORM_BYTES`], and handed on unchanged).
async fn csrf_of(request: Request) -> Result<(Vec<String>, Request), Response> {
    let mut tokens: Vec<String> =
        request.headers().get_all("x-csrf-token").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response())?;
    tokens.extend(form_urlencoded::parse(&bytes).filter(|(k, _)| k == "csrf").map(|(_, v)| v.into_owned()));
    Ok((tokens, Request::from_parts(parts, Body::from(bytes))))
}

/// The middleware: lets the request in as its [`User`] when its session is live and holds
/// `role`, and, for a state-changing request, when it carries the session's CSRF token.
pub(crate) async fn require<S: Store + Clone>(
    State((state, role)): State<(Arc<AppState<S>>, Role)>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let target = request.uri().path_and_query().map_or("/console", |p| p.as_str()).to_owned();
    let Some(key) = cookie_value(request.headers(), COOKIE) else {
        return unauthenticated(&method, &target);
    };
    let session = match state.store.session_by_hash(hash(&key)).await {
        Ok(session) => session,
        Err(e) => return store_failed(e),
    };
    let now = state.clock.now();
    let Some(session) = session.filter(|s| refusal(s, now).is_none()) else {
        return unauthenticated(&method, &target);
    };
    if session.role < role {
        let page = super::pages::refused(&format!("this needs the {role} role; you hold {}", session.role));
        return (StatusCode::FORBIDDEN, page).into_response();
    }
    let mut request = request;
    if !(method == Method::GET || method == Method::HEAD) {
        let (tokens, rebuilt) = match csrf_of(request).await {
            Ok(read) => read,
            Err(r) => return r,
        };
        if !tokens.iter().any(|t| same_secret(t, &session.csrf)) {
            let page = super::pages::refused("this form has expired or did not come from the console; reload the page");
            return (StatusCode::FORBIDDEN, page).into_response();
        }
        request = rebuilt;
    }
    if now.duration_since(session.last_seen_at) > TOUCH_EVERY
        && let Err(e) = state.store.touch_session(session.id, now).await
    {
        return store_failed(e);
    }
    request.extensions_mut().insert(User { name: session.user, role: session.role, csrf: session.csrf });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_only_its_own_hash() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("correct horse"));
        assert!(password_matches("correct horse", Some(&phc)));
        assert!(!password_matches("wrong horse", Some(&phc)));
        assert!(!password_matches("correct horse", None), "no user, no match, whatever the password");
        assert_ne!(phc, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_when_asked() {
        let on = set_cookie(CookiePolicy { secure: true }, COOKIE, Some("abc".into()));
        for part in ["handoff_session=abc", "HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(on.contains(part), "{on} lacks {part}");
        }
        let off = set_cookie(CookiePolicy { secure: false }, COOKIE, None);
        assert!(!off.contains("Secure") && off.contains("Max-Age=0"), "{off}");
    }
}
