//! The signed request object of a UK authorization request (OpenID Connect Core §6.1, FAPI 1.0
//! Advanced §5.2.2): PS256 or ES256 with a registered key of the client, `iss` the client,
//! `aud` the bank's issuer, `exp` and `nbf` with a lifetime of at most 60 minutes, `nbf` at most
//! 60 minutes old, never used twice (its `jti`, or the whole object when it has none), and every
//! authorization parameter inside it — the query may repeat them, but not differently.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::clients::UkClient;
use super::{CLOCK_SKEW, TppGate, jose, wall_now};

/// Parameters that must come from the request object.
const SIGNED_PARAMETERS: [&str; 8] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

const MAX_LIFETIME: i64 = 60 * 60;

/// A verified request object.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The authorization parameters (from the request object; the query's equal them).
    pub params: Vec<(String, String)>,
    pub claims: Map<String, Value>,
}

/// Verifies `jwt` for `client` at the bank with issuer `issuer`. `Err` is the
/// `error_description` of `invalid_request_object`.
pub fn verify(
    gate: &TppGate,
    bank_id: &str,
    issuer: &str,
    client: &UkClient,
    jwt: &str,
    query: &[(String, String)],
) -> Result<Verified, String> {
    let jws = jose::parse_compact(jwt).ok_or("the request object is not a signed JWT")?;
    let alg = jws.header.get("alg").and_then(Value::as_str).unwrap_or("");
    if !jose::TPP_ALGORITHMS.contains(&alg) {
        return Err(format!(
            "the request object must be signed with PS256 or ES256, not `{alg}`"
        ));
    }
    let key = client
        .key_for(&jws.header)
        .ok_or("the request object's kid names no registered key of this client")?;
    let input = format!("{}.{}", jws.header_b64, jws.payload_b64);
    if !jose::verify(alg, &key.cert.key, input.as_bytes(), &jws.signature) {
        return Err("the request object's signature does not verify".into());
    }
    let claims = jose::claims(&jws).ok_or("the request object's payload is not a JSON object")?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client.client_id.as_str()) {
        return Err("the request object's iss must be the client_id".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(issuer)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!(
            "the request object's aud must be the issuer {issuer}"
        ));
    }
    let now = wall_now();
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = number("exp").ok_or("the request object needs exp")?;
    let nbf = number("nbf").ok_or("the request object needs nbf")?;
    if exp <= now - CLOCK_SKEW {
        return Err("the request object has expired".into());
    }
    if nbf > now + CLOCK_SKEW {
        return Err("the request object is not valid yet (nbf)".into());
    }
    if nbf < now - MAX_LIFETIME - CLOCK_SKEW {
        return Err("the request object's nbf is more than 60 minutes in the past".into());
    }
    if exp - nbf > MAX_LIFETIME {
        return Err("the request object's lifetime (exp - nbf) exceeds 60 minutes".into());
    }
    let mut params = Vec::new();
    for name in SIGNED_PARAMETERS {
        let signed = match claims.get(name) {
            None => None,
            Some(Value::String(value)) => Some(value.as_str()),
            Some(_) => return Err(format!("the request object's {name} must be a string")),
        };
        let in_query = query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (signed, in_query) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "the query's {name} differs from the request object's"
                ));
            }
            (None, Some(_)) => {
                return Err(format!("{name} must be inside the request object"));
            }
            (Some(value), _) => params.push((name.to_string(), value.to_string())),
            (None, None) => {}
        }
    }
    let jti = match text("jti") {
        Some(jti) if !jti.is_empty() => URL_SAFE_NO_PAD.encode(jti),
        _ => URL_SAFE_NO_PAD.encode(Sha256::digest(jwt.as_bytes())),
    };
    if !gate.first_use(format!("request {bank_id} {} {jti}", client.client_id), exp) {
        return Err("this request object was used before (replay)".into());
    }
    Ok(Verified { params, claims })
}
