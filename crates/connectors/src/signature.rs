//! Webhook authenticity: HMAC-SHA256 over the raw body bytes, compared in constant time, before
//! anything is parsed. Several secrets may be valid at once, so a secret can be rotated without
//! refusing deliveries signed with the old one.
//!
//! Signature values are only ever compared by `Mac::verify_slice` (constant time):
//! `tests/constant_time.rs` refuses `==` or `!=` on anything named like a signature.

use handoff_contract::{ExposeSecret, SecretString};
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("the signature is {age_s} s old; at most {tolerance_s} s is accepted")]
    Stale { age_s: i64, tolerance_s: i64 },
}

/// A secret a signature is checked under: the contract's (kept out of `Debug`), or plain
/// text where a test or a simulated vendor holds it.
pub trait SigningKey {
    fn key(&self) -> &[u8];
}

impl SigningKey for SecretString {
    fn key(&self) -> &[u8] {
        self.expose_secret().as_bytes()
    }
}

impl SigningKey for String {
    fn key(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl SigningKey for &str {
    fn key(&self) -> &[u8] {
        self.as_bytes()
    }
}

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// `base64(HMAC-SHA256(body))` under any of `secrets` (Shopify, WooCommerce).
pub fn verify_base64(
    header: Option<&str>,
    name: &'static str,
    body: &[u8],
    secrets: &[impl SigningKey],
) -> Result<(), SignatureError> {
    use base64::Engine as _;
    let header = header.ok_or(SignatureError::Missing(name))?;
    let signature =
        base64::engine::general_purpose::STANDARD.decode(header.trim()).map_err(|_| SignatureError::Malformed(name))?;
    let matches = secrets.iter().any(|secret| {
        let mut m = mac(secret.key());
        m.update(body);
        m.verify_slice(&signature).is_ok()
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// `base64(HMAC-SHA256(body))`, for simulated vendors and tests.
pub fn sign_base64(secret: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    let mut m = mac(secret.as_bytes());
    m.update(body);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// `t=<unix seconds>,v1=<hex>`: HMAC-SHA256 over `"<t>." + body`. Stripe's scheme, which signed
/// `http-json` sources use too.
pub fn sign_timestamped(secret: &str, t: i64, body: &[u8]) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Verifies a `t=...,v1=...[,v1=...]` header: any `v1` under any secret must match, and `t` must
/// be within `tolerance` of `now`, before or after it (a replay of an old delivery is refused,
/// and so is one stamped in the future, which would otherwise stay valid longer).
pub fn verify_timestamped(
    header: Option<&str>,
    name: &'static str,
    body: &[u8],
    secrets: &[impl SigningKey],
    now: Timestamp,
    tolerance: SignedDuration,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing(name))?;
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed(name))?),
            Some(("v1", v)) => signatures.push(hex::decode(v).map_err(|_| SignatureError::Malformed(name))?),
            Some(_) => {} // other schemes (v0) are ignored, as the vendors' own verifiers do
            None => return Err(SignatureError::Malformed(name)),
        }
    }
    let t = t.ok_or(SignatureError::Malformed(name))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed(name));
    }
    let matches = secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            let mut m = mac(secret.key());
            m.update(format!("{t}.").as_bytes());
            m.update(body);
            m.verify_slice(signature).is_ok()
        })
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    let age_s = now.as_second().saturating_sub(t);
    if age_s.saturating_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale { age_s, tolerance_s: tolerance.as_secs() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    const FIVE_MIN: SignedDuration = SignedDuration::from_secs(300);

    #[test]
    fn a_signed_body_verifies_under_either_secret() {
        let header = sign_timestamped("new", 1_700_000_000, b"{}");
        let secrets = vec![SecretString::from("old"), SecretString::from("new")];
        assert_eq!(verify_timestamped(Some(&header), "Sig", b"{}", &secrets, now(), FIVE_MIN), Ok(()));
    }

    #[test]
    fn tampering_wrong_secrets_and_old_replays_are_refused() {
        let header = sign_timestamped("s", 1_700_000_000, b"{\"a\":1}");
        let secrets = vec!["s".to_owned()];
        let verify =
            |h: Option<&str>, body: &[u8], at: Timestamp| verify_timestamped(h, "Sig", body, &secrets, at, FIVE_MIN);
        assert_eq!(verify(Some(&header), b"{\"a\":2}", now()), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), b"{ \"a\": 1 }", now()), Err(SignatureError::Mismatch), "re-serialised JSON");
        let wrong = verify_timestamped(Some(&header), "Sig", b"{\"a\":1}", &["x".to_owned()], now(), FIVE_MIN);
        assert_eq!(wrong, Err(SignatureError::Mismatch));
        let later = Timestamp::from_second(1_700_000_301).unwrap();
        assert!(matches!(verify(Some(&header), b"{\"a\":1}", later), Err(SignatureError::Stale { .. })));
        assert_eq!(verify(None, b"{}", now()), Err(SignatureError::Missing("Sig")));
        assert_eq!(verify(Some("t=1700000000,v1=abc"), b"{}", now()), Err(SignatureError::Malformed("Sig")));
        let future = sign_timestamped("s", 1_700_000_000 + 301, b"{}");
        let refused = verify_timestamped(Some(&future), "Sig", b"{}", &secrets, now(), FIVE_MIN);
        assert_eq!(refused, Err(SignatureError::Stale { age_s: -301, tolerance_s: 300 }), "from the future");
        let ancient = sign_timestamped("s", i64::MIN, b"{}");
        assert!(matches!(verify(Some(&ancient), b"{}", now()), Err(SignatureError::Stale { .. })), "no overflow");
        let short = header[..header.len() - 2].to_owned();
        assert_eq!(verify(Some(&short), b"{\"a\":1}", now()), Err(SignatureError::Mismatch), "wrong length");
    }

    /// Stripe's default tolerance is 300 s; the check is the same on both sides of `now`.
    #[test]
    fn the_tolerance_holds_both_ways_to_the_second() {
        let secrets = ["whsec_test"];
        for offset in [-301, -300, -299, 0, 299, 300, 301] {
            let header = sign_timestamped("whsec_test", 1_700_000_000 + offset, b"{}");
            let verdict = verify_timestamped(Some(&header), "Stripe-Signature", b"{}", &secrets, now(), FIVE_MIN);
            if offset.abs() <= 300 {
                assert_eq!(verdict, Ok(()), "{offset} s");
            } else {
                assert_eq!(verdict, Err(SignatureError::Stale { age_s: -offset, tolerance_s: 300 }), "{offset} s");
            }
        }
    }
}
