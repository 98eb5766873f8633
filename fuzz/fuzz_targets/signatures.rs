//! Every webhook signature verifier: `signature::verify_base64` (Shopify, WooCommerce),
//! `signature::verify_timestamped` (Stripe, signed `http-json`) and eBay's ECDSA
//! `ebay::verify`. None may panic on any header, body, key or clock; a signature made by
//! `sign_*` (or eBay's scheme) always verifies, and the same signature over another body never
//! does.
#![no_main]

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use handoff_connectors::ebay;
use handoff_connectors::signature::{SignatureError, sign_base64, sign_timestamped, verify_base64, verify_timestamped};
use jiff::{SignedDuration, Timestamp};
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use sha1::Digest as _;

#[derive(Arbitrary, Debug)]
struct Case<'a> {
    secret: String,
    others: Vec<String>,
    /// A header as a sender might forge it.
    header: &'a str,
    /// A public key as the key service might return it.
    pem: &'a str,
    t: i64,
    skew: i64,
    tolerance_s: u32,
    ebay_scalar: [u8; 32],
    sha256: bool,
    body: &'a [u8],
}

fn clamp(t: i64) -> i64 {
    t.clamp(Timestamp::MIN.as_second() + 1, Timestamp::MAX.as_second() - 1)
}

fuzz_target!(|case: Case| {
    let body = case.body;
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    let mut secrets = case.others.clone();
    secrets.push(case.secret.clone());
    let tolerance = SignedDuration::from_secs(i64::from(case.tolerance_s));

    // Forged headers: refused or accepted, never a panic.
    let _ = verify_base64(Some(case.header), "X-Sig", body, &secrets);
    let now = Timestamp::from_second(clamp(case.t)).unwrap();
    let _ = verify_timestamped(Some(case.header), "Sig", body, &secrets, now, tolerance);
    let _ = ebay::key_id(case.header);
    let _ = ebay::verify(Some(case.header), body, case.pem);

    // base64(HMAC): the signer's own signature verifies under any rotation that holds its secret.
    let signed = sign_base64(&case.secret, body);
    assert_eq!(verify_base64(Some(&signed), "X-Sig", body, &secrets), Ok(()));
    assert_eq!(verify_base64(Some(&signed), "X-Sig", &tampered, &secrets), Err(SignatureError::Mismatch));

    // t=...,v1=...: verifies at any clock within the tolerance of t, either side.
    let t = clamp(case.t);
    let skew = if tolerance.as_secs() == 0 { 0 } else { case.skew % (tolerance.as_secs() + 1) };
    let at = clamp(t.saturating_add(skew));
    let header = sign_timestamped(&case.secret, t, body);
    let now = Timestamp::from_second(at).unwrap();
    if (at - t).abs() <= tolerance.as_secs() {
        assert_eq!(verify_timestamped(Some(&header), "Sig", body, &secrets, now, tolerance), Ok(()));
    }
    assert_eq!(
        verify_timestamped(Some(&header), "Sig", &tampered, &secrets, now, tolerance),
        Err(SignatureError::Mismatch)
    );

    // eBay: ECDSA P-256 over SHA-1 (or SHA-256) of the body, key as PEM.
    let Ok(key) = SigningKey::from_slice(&case.ebay_scalar) else { return };
    let der = key.verifying_key().to_public_key_der().unwrap();
    let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----", STANDARD.encode(der.as_bytes()));
    let (digest, prehash) = if case.sha256 {
        ("SHA256", sha2::Sha256::digest(body).to_vec())
    } else {
        ("SHA1", sha1::Sha1::digest(body).to_vec())
    };
    let signature: Signature = key.sign_prehash(&prehash).unwrap();
    let json = serde_json::json!({
        "alg": "ecdsa", "kid": "k", "digest": digest,
        "signature": STANDARD.encode(signature.to_der().as_bytes()),
    });
    let header = STANDARD.encode(json.to_string());
    assert_eq!(ebay::verify(Some(&header), body, &pem), Ok(()));
    assert_eq!(ebay::verify(Some(&header), &tampered, &pem), Err(SignatureError::Mismatch));
});
