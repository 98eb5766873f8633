//! eBay notifications: the endpoint's challenge response and the `X-EBAY-SIGNATURE` check.
//! The header is base64 of `{"alg":"ecdsa","kid":...,"signature":<base64 DER>,"digest":"SHA1"}`;
//! the signature is ECDSA P-256 over the raw body under the public key eBay publishes for
//! `kid` (configured, or fetched from the Notification API's `getPublicKey`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;
use sha2::Digest as _;

use crate::signature::SignatureError;

const HEADER: &str = "X-EBAY-SIGNATURE";

/// What eBay's `GET ?challenge_code=...` expects back: hex SHA-256 of the challenge code, the
/// verification token and the endpoint URL, in that order.
pub fn challenge_response(challenge_code: &str, verification_token: &str, endpoint: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(challenge_code.as_bytes());
    h.update(verification_token.as_bytes());
    h.update(endpoint.as_bytes());
    hex::encode(h.finalize())
}

#[derive(Deserialize)]
struct SignatureHeader {
    kid: String,
    signature: String,
    #[serde(default)]
    digest: Option<String>,
}

/// The key id a signature header names, to look its public key up.
pub fn key_id(header: &str) -> Result<String, SignatureError> {
    Ok(parse(header)?.kid)
}

fn parse(header: &str) -> Result<SignatureHeader, SignatureError> {
    let json = STANDARD.decode(header.trim()).map_err(|_| SignatureError::Malformed(HEADER))?;
    serde_json::from_slice(&json).map_err(|_| SignatureError::Malformed(HEADER))
}

/// A PEM public key as eBay returns it, with or without line breaks.
fn public_key(pem: &str) -> Result<VerifyingKey, SignatureError> {
    let body: String = pem
        .replace("-----BEGIN PUBLIC KEY-----", "")
        .replace("-----END PUBLIC KEY-----", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD.decode(body).map_err(|_| SignatureError::Malformed("public key"))?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| SignatureError::Malformed("public key"))
}

/// Verifies `X-EBAY-SIGNATURE` over the raw body with the key eBay published for its `kid`.
pub fn verify(header: Option<&str>, body: &[u8], public_key_pem: &str) -> Result<(), SignatureError> {
    let parsed = parse(header.ok_or(SignatureError::Missing(HEADER))?)?;
    let der = STANDARD.decode(&parsed.signature).map_err(|_| SignatureError::Malformed(HEADER))?;
    let signature = Signature::from_der(&der).map_err(|_| SignatureError::Malformed(HEADER))?;
    let key = public_key(public_key_pem)?;
    let verified = match parsed.digest.as_deref().unwrap_or("SHA1") {
        "SHA256" => key.verify_prehash(&sha2::Sha256::digest(body), &signature),
        _ => key.verify_prehash(&sha1::Sha1::digest(body), &signature),
    };
    verified.map_err(|_| SignatureError::Mismatch)
}
