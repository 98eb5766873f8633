//! What every console page shares: the frame around it (who is logged in, the navigation, the
//! CSRF token its forms carry), rendering, masking for a viewer, and the error pages.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use handoff_store::Role;

use super::session::User;

/// The console's pages, in the navigation's order: (path, label).
pub const NAV: [(&str, &str); 8] = [
    ("/console", "Queue"),
    ("/console/clusters", "Clusters"),
    ("/console/dead-letters", "Dead letters"),
    ("/console/quarantine", "Quarantine"),
    ("/console/flows", "Flow health"),
    ("/console/drift", "Drift"),
    ("/console/audit", "Audit log"),
    ("/console/doctor", "Doctor"),
];

/// The frame of a page: the person, their role, the CSRF token and the page's place in the
/// navigation.
pub struct Chrome {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub here: &'static str,
    pub nav: &'static [(&'static str, &'static str)],
    /// The person may act (operator or admin): action forms are shown.
    pub may_act: bool,
    /// Personal data is masked on this page (a viewer's).
    pub masked: bool,
    /// A line to show at the top (what the last action did).
    pub notice: Option<String>,
}

impl Chrome {
    pub fn new(user: &User, here: &'static str) -> Chrome {
        Chrome {
            user: user.name.clone(),
            role: user.role,
            csrf: user.csrf.clone(),
            here,
            nav: &NAV,
            may_act: user.may(Role::Operator),
            masked: !user.sees_personal_data(),
            notice: None,
        }
    }

    pub fn with_notice(mut self, notice: Option<String>) -> Chrome {
        self.notice = notice.filter(|n| !n.is_empty()).map(|n| n.chars().take(500).collect());
        self
    }
}

/// Renders a page; a template that fails is a 500 logged, never a half page.
pub fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(message = "console page failed to render", error = %e);
            (StatusCode::INTERNAL_SERVER_ERROR, "the page failed to render").into_response()
        }
    }
}

/// JSON text as a person of this role may read it: masked of personal data for a viewer.
pub fn shown_json(user: &User, text: &str) -> String {
    let mut value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if user.sees_personal_data() => return text.to_owned(),
        Err(_) => return handoff_model::personal::mask_text(text),
    };
    if !user.sees_personal_data() {
        handoff_model::personal::mask(&mut value);
    }
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// A free-text line (an exception's detail, an error) as this person may read it: a viewer
/// sees any JSON inside it masked, and an email-like word blanked.
pub fn shown_text(user: &User, text: &str) -> String {
    if user.sees_personal_data() { text.to_owned() } else { masked_text(text) }
}

/// A free-text line as a viewer may read it (see [`shown_text`]), for the API too.
pub(crate) fn masked_text(text: &str) -> String {
    let mut value = serde_json::Value::String(text.to_owned());
    let mut wrapper = serde_json::json!({ "detail": value.take() });
    handoff_model::personal::mask(&mut wrapper);
    let masked = wrapper["detail"].as_str().unwrap_or_default().to_owned();
    masked
        .split(' ')
        .map(|w| if w.contains('@') { handoff_model::personal::MASK } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Template)]
#[template(path = "console/refused.html")]
struct Refused<'a> {
    why: &'a str,
}

/// The page a refused request gets (403): why, and a way back.
pub fn refused(why: &str) -> Html<String> {
    Html(Refused { why }.render().unwrap_or_else(|_| why.to_owned()))
}

/// A store failure on a page: logged, and a 503 that says so.
pub fn store_failed(error: impl std::fmt::Display) -> Response {
    tracing::error!(message = "console store query failed", error = %error);
    (StatusCode::SERVICE_UNAVAILABLE, refused("the store is unavailable; try again")).into_response()
}

pub fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, refused(&format!("there is no {what}"))).into_response()
}

/// After a form: back to `to`, with what happened in the `notice` query parameter.
pub fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let notice: String = form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("{to}{sep}notice={notice}")).into_response()
}

/// A path segment, percent-encoded (order references hold `#`).
pub fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
