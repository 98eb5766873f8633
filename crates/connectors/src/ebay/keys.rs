//! eBay's notification public keys, fetched by `kid` from the Notification API's
//! `getPublicKey` and kept in memory (bounded, for an hour, as eBay recommends) so that a
//! burst of notifications costs one lookup.

use crate::outbound::Outbound;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use handoff_contract::System;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::auth::Tokens;
use crate::ConfigError;

/// Keys kept at most; eBay rotates a handful.
const CAPACITY: usize = 64;
/// How long a fetched key is trusted before it is fetched again.
const TTL: SignedDuration = SignedDuration::from_secs(3600);

/// Why no key could be had for a `kid`.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// eBay knows no such key: the notification is not eBay's (401).
    #[error("eBay has no public key {0:?}")]
    Unknown(String),
    /// eBay could not be asked now (503: the sender retries).
    #[error("eBay public key unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

pub struct PublicKeys {
    client: reqwest::Client,
    keys: quick_cache::sync::Cache<(String, String), (String, Timestamp)>,
    /// Application tokens per system (by name), minted on first use.
    tokens: Mutex<HashMap<String, Arc<Tokens>>>,
}

impl Default for PublicKeys {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Deserialize)]
struct PublicKey {
    key: String,
}

impl PublicKeys {
    pub fn new() -> Self {
        // A client with a timeout fails to build only when the TLS backend cannot start, and
        // then no client can: the default one would stop the hub at start-up, which is right.
        // Keys are fetched from eBay's public API: no system's private network is allowed.
        let client = Outbound::default().client().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        PublicKeys { client, keys: quick_cache::sync::Cache::new(CAPACITY), tokens: Mutex::default() }
    }

    fn tokens(&self, name: &str, system: &System, base_url: &str) -> Result<Arc<Tokens>, ConfigError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = tokens.get(name) {
            return Ok(t.clone());
        }
        let t = Arc::new(Tokens::app(name, system, base_url, self.client.clone())?);
        tokens.insert(name.to_owned(), t.clone());
        Ok(t)
    }

    /// The PEM public key eBay publishes for `kid`, from memory while it is fresh.
    pub async fn key(&self, name: &str, system: &System, kid: &str) -> Result<String, KeyError> {
        let base_url = system.base_url.as_deref().unwrap_or("https://api.ebay.com").trim_end_matches('/');
        let cache_key = (base_url.to_owned(), kid.to_owned());
        if let Some((pem, until)) = self.keys.get(&cache_key)
            && Timestamp::now() < until
        {
            return Ok(pem);
        }
        let token = self.tokens(name, system, base_url)?.bearer().await.map_err(|e| KeyError::Unavailable(e.reason))?;
        let id: String = form_urlencoded::byte_serialize(kid.as_bytes()).collect();
        let url = format!("{base_url}/commerce/notification/v1/public_key/{id}");
        let response =
            self.client.get(url).bearer_auth(token).send().await.map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::BAD_REQUEST {
            return Err(KeyError::Unknown(kid.to_owned()));
        }
        if !status.is_success() {
            return Err(KeyError::Unavailable(format!("getPublicKey answered {status}")));
        }
        let key: PublicKey = response.json().await.map_err(|e| KeyError::Unavailable(e.to_string()))?;
        self.keys.insert(cache_key, (key.key.clone(), Timestamp::now() + TTL));
        Ok(key.key)
    }
}
