//! eBay OAuth: a configured `access_token`, or one minted from `client_id`/`client_secret`
//! (the refresh-token grant for a seller's user token, the client-credentials grant for an
//! application token) and kept until shortly before it expires.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use handoff_contract::System;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::ConfigError;

/// What the Sell Fulfillment API needs.
pub(crate) const FULFILLMENT_SCOPE: &str = "https://api.ebay.com/oauth/api_scope/sell.fulfillment";
/// What an application token (the Notification API's `getPublicKey`) needs.
pub(crate) const APP_SCOPE: &str = "https://api.ebay.com/oauth/api_scope";

/// A token is renewed this long before eBay says it expires.
const MARGIN: SignedDuration = SignedDuration::from_secs(60);

#[derive(Debug, Clone)]
enum Grant {
    Fixed(String),
    Minted { client_id: String, client_secret: String, refresh_token: Option<String>, scope: &'static str },
}

/// Why no token could be had: the reason, and how long eBay asked to wait.
#[derive(Debug, Clone)]
pub(crate) struct TokenError {
    pub reason: String,
    pub retry_after: Option<SignedDuration>,
}

pub(crate) struct Tokens {
    base_url: String,
    client: reqwest::Client,
    grant: Grant,
    cached: Mutex<Option<(String, Timestamp)>>,
}

impl Tokens {
    /// A seller's user token: `access_token`, or a refresh with `refresh_token`.
    pub fn user(name: &str, system: &System, base_url: &str, client: reqwest::Client) -> Result<Self, ConfigError> {
        let grant = match system.credentials.get("access_token").filter(|t| !t.is_empty()) {
            Some(token) => Grant::Fixed(token.clone()),
            None => Grant::Minted {
                client_id: system.credential(name, "client_id")?.to_owned(),
                client_secret: system.credential(name, "client_secret")?.to_owned(),
                refresh_token: Some(system.credential(name, "refresh_token")?.to_owned()),
                scope: FULFILLMENT_SCOPE,
            },
        };
        Ok(Tokens::new(base_url, client, grant))
    }

    /// An application token: client credentials when configured, else `access_token`.
    pub fn app(name: &str, system: &System, base_url: &str, client: reqwest::Client) -> Result<Self, ConfigError> {
        let c = &system.credentials;
        let grant = match (c.get("client_id"), c.get("client_secret")) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Grant::Minted {
                client_id: id.clone(),
                client_secret: secret.clone(),
                refresh_token: None,
                scope: APP_SCOPE,
            },
            _ => Grant::Fixed(system.credential(name, "access_token")?.to_owned()),
        };
        Ok(Tokens::new(base_url, client, grant))
    }

    fn new(base_url: &str, client: reqwest::Client, grant: Grant) -> Self {
        Tokens { base_url: base_url.trim_end_matches('/').to_owned(), client, grant, cached: Mutex::new(None) }
    }

    /// Forgets a minted token eBay refused (401), so the next call mints another.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    pub async fn bearer(&self) -> Result<String, TokenError> {
        let (client_id, client_secret, refresh_token, scope) = match &self.grant {
            Grant::Fixed(token) => return Ok(token.clone()),
            Grant::Minted { client_id, client_secret, refresh_token, scope } => {
                (client_id, client_secret, refresh_token, scope)
            }
        };
        // Held across the request so that concurrent callers mint one token, not one each.
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Timestamp::now() < *until
        {
            return Ok(token.clone());
        }
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            match refresh_token {
                Some(refresh) => form.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh),
                None => form.append_pair("grant_type", "client_credentials"),
            };
            form.append_pair("scope", scope).finish()
        };
        let basic = STANDARD.encode(format!("{client_id}:{client_secret}"));
        let failed = |reason: String| TokenError { reason, retry_after: None };
        let response = self
            .client
            .post(format!("{}/identity/v1/oauth2/token", self.base_url))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| failed(format!("token request: {e}")))?;
        let status = response.status();
        let retry_after = crate::http_json::retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| failed(format!("token answer: {e}")))?;
        if !status.is_success() {
            let reason = format!("token request answered {status}: {}", String::from_utf8_lossy(&body));
            return Err(TokenError { reason, retry_after });
        }
        let minted: Minted = serde_json::from_slice(&body).map_err(|e| failed(format!("token answer: {e}")))?;
        let until = Timestamp::now() + SignedDuration::from_secs(minted.expires_in) - MARGIN;
        *cached = Some((minted.access_token.clone(), until));
        Ok(minted.access_token)
    }
}

#[derive(Deserialize)]
struct Minted {
    access_token: String,
    expires_in: i64,
}
