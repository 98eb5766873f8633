//! Login with Amazon: a refresh token exchanged for an access token, which every SP-API call
//! sends as `x-amz-access-token`. The token is cached until shortly before it expires, so a
//! busy poller asks LWA about once an hour.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long before its stated expiry a cached token is renewed: a request signed with a token
/// that expires in flight would be refused.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

pub(crate) struct Lwa {
    pub(crate) auth_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) refresh_token: String,
    cached: Mutex<Option<(String, Instant)>>,
}

/// Why no access token could be had.
#[derive(Debug)]
pub(crate) enum TokenError {
    Transport(reqwest::Error),
    /// LWA answered with an error status (`invalid_grant`, `invalid_client`, 5xx).
    Refused {
        status: u16,
        reason: String,
    },
}

#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize, Default)]
struct Refusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl Lwa {
    pub(crate) fn new(auth_url: String, client_id: String, client_secret: String, refresh_token: String) -> Self {
        Lwa { auth_url, client_id, client_secret, refresh_token, cached: Mutex::new(None) }
    }

    /// A valid access token: the cached one, or a new one from LWA. Holding the lock while
    /// asking means concurrent callers wait for one exchange instead of making several.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &self.refresh_token)
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .finish();
        let response = http
            .post(&self.auth_url)
            .header("content-type", "application/x-www-form-urlencoded;charset=UTF-8")
            .body(form)
            .send()
            .await
            .map_err(TokenError::Transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(TokenError::Transport)?;
        if !(200..300).contains(&status) {
            let refusal: Refusal = serde_json::from_slice(&body).unwrap_or_default();
            let reason =
                format!("LWA token exchange refused ({status}): {} {}", refusal.error, refusal.error_description);
            return Err(TokenError::Refused { status, reason: reason.trim().to_owned() });
        }
        let granted: Granted = serde_json::from_slice(&body)
            .map_err(|e| TokenError::Refused { status, reason: format!("LWA answer unreadable: {e}") })?;
        let lifetime = Duration::from_secs(granted.expires_in).saturating_sub(RENEW_BEFORE);
        *cached = Some((granted.access_token.clone(), Instant::now() + lifetime));
        Ok(granted.access_token)
    }
}
