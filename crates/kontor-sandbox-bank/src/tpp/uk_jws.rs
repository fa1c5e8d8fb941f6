//! UK `x-jws-signature`: the detached JWS of a request body, as the Read/Write API 3.1.x
//! message-signing rules define it. From 3.1.4 on (this sandbox speaks 3.1.11) the `b64` header
//! must not be used, so the signing input is `BASE64URL(header) '.' BASE64URL(body)`; the
//! protected header must carry `alg: PS256`, `kid`, `http://openbanking.org.uk/iat` (a time
//! in the past), `…/iss` (`{org-id}/{software-statement-id}`), `…/tan` (the trust anchor) and
//! `crit` naming exactly those three; `typ` (`JOSE`) and `cty` (`json`, `application/json`) are
//! optional. Errors use the spec's `UK.OBIE.Signature.*` codes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::clients::UkClient;
use super::pki::TRUST_ANCHOR;
use super::{CLOCK_SKEW, jose, wall_now};
use crate::uk::error::UkError;

const IAT: &str = "http://openbanking.org.uk/iat";
const ISS: &str = "http://openbanking.org.uk/iss";
const TAN: &str = "http://openbanking.org.uk/tan";
const CRIT: [&str; 3] = [IAT, ISS, TAN];

fn error(code: &'static str, message: impl Into<String>) -> UkError {
    UkError::bad_request(code, message).at("x-jws-signature")
}

/// Verifies the `x-jws-signature` of a request from `client` over `body`.
pub fn verify(client: &UkClient, header: Option<&str>, body: &[u8]) -> Result<(), UkError> {
    let Some(value) = header else {
        return Err(error(
            "UK.OBIE.Signature.Missing",
            "x-jws-signature is required",
        ));
    };
    let malformed = |why: &str| {
        error(
            "UK.OBIE.Signature.Malformed",
            format!("x-jws-signature: {why}"),
        )
    };
    let jws = jose::parse_compact(value.trim())
        .ok_or_else(|| malformed("not a JWS (<base64url header>..<base64url signature>)"))?;
    if !jws.payload_b64.is_empty() {
        return Err(malformed(
            "the payload must be detached (empty between the dots)",
        ));
    }
    let h = &jws.header;
    let missing = |claim: &str| {
        error(
            "UK.OBIE.Signature.MissingClaim",
            format!("x-jws-signature: the protected header lacks `{claim}`"),
        )
    };
    let invalid = |claim: &str, why: String| {
        error(
            "UK.OBIE.Signature.InvalidClaim",
            format!("x-jws-signature: `{claim}` {why}"),
        )
    };
    match h.get("alg").and_then(Value::as_str) {
        None => return Err(missing("alg")),
        Some("PS256") => {}
        Some(other) => return Err(invalid("alg", format!("is {other}; it must be PS256"))),
    }
    if h.contains_key("b64") {
        return Err(invalid(
            "b64",
            "must not be present from version 3.1.4 on".into(),
        ));
    }
    let kid = h
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("kid"))?;
    let key = client.keys.iter().find(|k| k.kid == kid).ok_or_else(|| {
        invalid(
            "kid",
            format!("`{kid}` is not a registered key of this client"),
        )
    })?;
    let iat = h.get(IAT).ok_or_else(|| missing(IAT))?;
    let iat = iat
        .as_i64()
        .ok_or_else(|| invalid(IAT, "must be a number (seconds since 1970)".into()))?;
    if iat > wall_now() + CLOCK_SKEW {
        return Err(invalid(IAT, "is in the future".into()));
    }
    let iss = h
        .get(ISS)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(ISS))?;
    let expected_iss = client.jws_issuer();
    if iss != expected_iss {
        return Err(invalid(
            ISS,
            format!("is `{iss}`; this client signs as `{expected_iss}`"),
        ));
    }
    let tan = h
        .get(TAN)
        .and_then(Value::as_str)
        .ok_or_else(|| missing(TAN))?;
    if tan != TRUST_ANCHOR {
        return Err(invalid(
            TAN,
            format!("is `{tan}`; the trust anchor is `{TRUST_ANCHOR}`"),
        ));
    }
    let crit = h.get("crit").ok_or_else(|| missing("crit"))?;
    let mut listed: Vec<&str> = crit
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    listed.sort_unstable();
    let mut wanted = CRIT.to_vec();
    wanted.sort_unstable();
    if listed != wanted {
        return Err(invalid(
            "crit",
            format!("must list exactly {}", CRIT.join(", ")),
        ));
    }
    if h.get("typ").is_some_and(|t| t.as_str() != Some("JOSE")) {
        return Err(invalid("typ", "must be JOSE if present".into()));
    }
    if h.get("cty")
        .is_some_and(|t| !matches!(t.as_str(), Some("json" | "application/json")))
    {
        return Err(invalid(
            "cty",
            "must be json or application/json if present".into(),
        ));
    }
    if key.cert.not_after < wall_now() {
        return Err(error(
            "UK.OBIE.Signature.Invalid",
            "x-jws-signature: the signing certificate has expired",
        ));
    }
    let input = format!("{}.{}", jws.header_b64, URL_SAFE_NO_PAD.encode(body));
    if !jose::verify("PS256", &key.cert.key, input.as_bytes(), &jws.signature) {
        return Err(error(
            "UK.OBIE.Signature.Invalid",
            "x-jws-signature does not verify over this body with the registered key",
        ));
    }
    Ok(())
}
