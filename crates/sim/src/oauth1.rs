//! OAuth 1.0 (RFC 5849) as a server checks it, written from the RFC and nothing else: the
//! simulated NetSuite verifies its clients' requests with it, so a connector that misreads the
//! signing procedure is refused here as NetSuite would refuse it. (The connector's signer is a
//! separate implementation; only the RFC's vectors tie the two together.)

use std::collections::HashSet;
use std::sync::Mutex;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Section 3.6: every octet but the unreserved characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`)
/// is encoded, as `%` and two upper-case hex digits.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODED).to_string()
}

/// The signature methods a server accepts; NetSuite's token-based authentication takes
/// HMAC-SHA256 only, RFC 5849's own examples use HMAC-SHA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    HmacSha1,
    HmacSha256,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::HmacSha1 => "HMAC-SHA1",
            Method::HmacSha256 => "HMAC-SHA256",
        }
    }
}

/// One request as the server received it.
pub struct Signed<'a> {
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The `Host` header: host and, when not the default, port.
    pub host: &'a str,
    pub path: &'a str,
    /// The query string, undecoded, without `?`.
    pub query: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub authorization: &'a str,
}

/// The protocol parameters of an `Authorization: OAuth ...` header (section 3.5.1), decoded,
/// `realm` included; `None` when the header is not one or repeats a parameter.
pub fn header_parameters(header: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return None;
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=')?;
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        let name = percent_decode_str(name.trim()).decode_utf8().ok()?.into_owned();
        let value = percent_decode_str(value).decode_utf8().ok()?.into_owned();
        if out.iter().any(|(n, _)| *n == name) {
            return None;
        }
        out.push((name, value));
    }
    Some(out)
}

/// The signature base string (section 3.4.1): the method, the base string URI (3.4.1.2) and
/// the normalized parameters (3.4.1.3): query, protocol parameters but `realm` and
/// `oauth_signature`, and a form-encoded body's, each encoded, sorted by name then value.
pub fn base_string(r: &Signed<'_>, protocol: &[(String, String)]) -> String {
    let host = r.host.to_ascii_lowercase();
    let default_port = match r.scheme {
        "http" => ":80",
        "https" => ":443",
        _ => "",
    };
    let host = host.strip_suffix(default_port).filter(|_| !default_port.is_empty()).unwrap_or(&host);
    let path = if r.path.is_empty() { "/" } else { r.path };
    let uri = format!("{}://{host}{path}", r.scheme.to_ascii_lowercase());
    let mut params: Vec<(String, String)> =
        form_urlencoded::parse(r.query.as_bytes()).map(|(k, v)| (encode(&k), encode(&v))).collect();
    params.extend(
        protocol.iter().filter(|(k, _)| k != "realm" && k != "oauth_signature").map(|(k, v)| (encode(k), encode(v))),
    );
    let form = r.content_type.is_some_and(|c| c.trim().starts_with("application/x-www-form-urlencoded"));
    if form {
        params.extend(form_urlencoded::parse(r.body).map(|(k, v)| (encode(&k), encode(&v))));
    }
    params.sort();
    let normalized = params.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    format!("{}&{}&{}", r.method.to_ascii_uppercase(), encode(&uri), encode(&normalized))
}

/// HMAC of the base string keyed by both secrets (section 3.4.2), checked in constant time.
fn signature_matches(method: Method, base: &str, client_secret: &str, token_secret: &str, signature: &str) -> bool {
    let key = format!("{}&{}", encode(client_secret), encode(token_secret));
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(signature) else { return false };
    match method {
        Method::HmacSha1 => <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key.as_bytes())
            .map(|mut mac| {
                mac.update(base.as_bytes());
                mac.verify_slice(&given).is_ok()
            })
            .unwrap_or(false),
        Method::HmacSha256 => <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes())
            .map(|mut mac| {
                mac.update(base.as_bytes());
                mac.verify_slice(&given).is_ok()
            })
            .unwrap_or(false),
    }
}

/// What a server knows: the realm it expects, its one signature method, the secrets of its
/// client and token, and the nonces already used (section 3.3: a nonce is unique for its
/// timestamp, client and token).
pub struct Verifier {
    pub realm: Option<String>,
    pub method: Method,
    pub client: (String, String),
    pub token: (String, String),
    used: Mutex<HashSet<(String, String)>>,
}

/// Nonces remembered before the oldest are forgotten.
const NONCES: usize = 100_000;

impl Verifier {
    pub fn new(realm: Option<String>, method: Method, client: (String, String), token: (String, String)) -> Self {
        Verifier { realm, method, client, token, used: Mutex::default() }
    }

    /// Checks a request; returns why not.
    pub fn verify(&self, r: &Signed<'_>) -> Result<(), String> {
        let params = header_parameters(r.authorization).ok_or("the Authorization header is not OAuth")?;
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if let Some(realm) = &self.realm
            && get("realm") != Some(realm.as_str())
        {
            return Err(format!("realm {:?} is not the account's", get("realm").unwrap_or("")));
        }
        if get("oauth_signature_method") != Some(self.method.name()) {
            return Err(format!("oauth_signature_method must be {}", self.method.name()));
        }
        if get("oauth_version").is_some_and(|v| v != "1.0") {
            return Err("oauth_version, when present, must be 1.0".into());
        }
        if get("oauth_consumer_key") != Some(self.client.0.as_str())
            || get("oauth_token") != Some(self.token.0.as_str())
        {
            return Err("unknown consumer key or token".into());
        }
        let (Some(timestamp), Some(nonce), Some(signature)) =
            (get("oauth_timestamp"), get("oauth_nonce"), get("oauth_signature"))
        else {
            return Err("oauth_timestamp, oauth_nonce and oauth_signature are required".into());
        };
        if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err("oauth_timestamp is not a positive integer".into());
        }
        let base = base_string(r, &params);
        if !signature_matches(self.method, &base, &self.client.1, &self.token.1, signature) {
            return Err("oauth_signature does not match".into());
        }
        let mut used = self.used.lock().expect("nonce lock");
        if used.len() >= NONCES {
            used.clear();
        }
        if !used.insert((timestamp.to_owned(), nonce.to_owned())) {
            return Err("the nonce was used before with this timestamp".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 section 1.2, the resource request of its example.
    fn photos(authorization: &str) -> Signed<'_> {
        Signed {
            method: "GET",
            scheme: "http",
            host: "photos.example.net",
            path: "/photos",
            query: "file=vacation.jpg&size=original",
            content_type: None,
            body: b"",
            authorization,
        }
    }

    const PHOTOS: &str = "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
                          oauth_token=\"nnch734d00sl2jdk\", oauth_signature_method=\"HMAC-SHA1\", \
                          oauth_timestamp=\"137131202\", oauth_nonce=\"chapoH\", \
                          oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"";

    fn rfc_verifier() -> Verifier {
        Verifier::new(
            Some("Photos".into()),
            Method::HmacSha1,
            ("dpf43f3p2l4k3l03".into(), "kd94hf93k423kf44".into()),
            ("nnch734d00sl2jdk".into(), "pfkkdhi9sl3r4s00".into()),
        )
    }

    #[test]
    fn the_rfc_example_request_verifies_once() {
        let v = rfc_verifier();
        assert_eq!(v.verify(&photos(PHOTOS)), Ok(()));
        assert!(v.verify(&photos(PHOTOS)).unwrap_err().contains("nonce"), "a replay is refused");
    }

    #[test]
    fn a_changed_request_or_method_does_not_verify() {
        let v = rfc_verifier();
        let mut other = photos(PHOTOS);
        other.query = "file=vacation.jpg&size=small";
        assert!(v.verify(&other).unwrap_err().contains("signature"));
        let sha256 = Verifier { method: Method::HmacSha256, ..rfc_verifier() };
        assert!(sha256.verify(&photos(PHOTOS)).unwrap_err().contains("HMAC-SHA256"));
    }

    /// RFC 5849 section 3.4.1.1: its example request and the base string it gives, which
    /// exercises query, header and form-body parameters, a repeated name and encodings.
    #[test]
    fn the_rfc_base_string_example() {
        let header = "OAuth realm=\"Example\", oauth_consumer_key=\"9djdj82h48djs9d2\", \
                      oauth_token=\"kkk9d7dh3k39sjv7\", oauth_signature_method=\"HMAC-SHA1\", \
                      oauth_timestamp=\"137131201\", oauth_nonce=\"7d8f3e4a\", \
                      oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\"";
        let r = Signed {
            method: "POST",
            scheme: "http",
            host: "example.com",
            path: "/request",
            query: "b5=%3D%253D&a3=a&c%40=&a2=r%20b",
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"c2&a3=2+q",
            authorization: header,
        };
        assert_eq!(
            base_string(&r, &header_parameters(header).unwrap()),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D\
             %26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1\
             %26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn a_default_port_is_left_out_of_the_base_string_uri_and_another_kept() {
        let mut r = photos(PHOTOS);
        r.host = "Photos.Example.NET:80";
        assert!(base_string(&r, &[]).starts_with("GET&http%3A%2F%2Fphotos.example.net%2Fphotos&"));
        r.host = "photos.example.net:8080";
        assert!(base_string(&r, &[]).starts_with("GET&http%3A%2F%2Fphotos.example.net%3A8080%2Fphotos&"));
    }
}
