//! The `id_token` a FAPI bank returns with the user's tokens, checked before the hub trusts
//! them (OpenID Connect Core §3.1.3.7, FAPI 1.0 Advanced §5.2.2): signed PS256 or ES256 by a
//! key of the bank's JWKS, issued by the bank (`iss`) for the hub (`aud`), not expired, carrying
//! the `nonce` of the request, and — where present — `c_hash`/`s_hash` of the code and state
//! and the consent as `openbanking_intent_id`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How far the bank's clock may be from ours.
const LEEWAY_SECONDS: i64 = 60;

/// A JSON Web Key Set (RFC 7517 §5), the keys the bank signs with.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Jwks {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    #[serde(rename = "use")]
    pub usage: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
}

impl Jwks {
    /// Whether a key with this id is in the set (an unknown one makes the caller fetch anew).
    pub fn knows(&self, kid: Option<&str>) -> bool {
        kid.is_none_or(|kid| self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
    }
}

/// What the id_token must say.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub code: &'a str,
    pub state: Option<&'a str>,
    pub intent_id: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    nonce: Option<String>,
    c_hash: Option<String>,
    s_hash: Option<String>,
    openbanking_intent_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The `kid` in an id_token's header, if it can be read (to look the key up before checking).
pub(crate) fn key_id(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    header.kid
}

/// Checks `token`; the error says which check failed, never the token's content.
pub(crate) fn validate(token: &str, keys: &Jwks, expected: &Expected<'_>) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = parts.as_slice() else {
        return Err("not a compact JWS".into());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "not base64url".to_owned())
    };
    let header: Header =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| "malformed header")?;
    let signature = decode(signature_b64)?;
    let signing_input = format!("{header_b64}.{claims_b64}");
    verify(&header, keys, signing_input.as_bytes(), &signature)?;

    let claims: Claims =
        serde_json::from_slice(&decode(claims_b64)?).map_err(|_| "malformed claims")?;
    if claims.iss.as_deref() != Some(expected.issuer) {
        return Err("iss is not the bank's issuer".into());
    }
    let audience_ok = match &claims.aud {
        Some(Audience::One(aud)) => aud == expected.client_id,
        Some(Audience::Many(auds)) => {
            auds.iter().any(|a| a == expected.client_id)
                && (auds.len() == 1 || claims.azp.as_deref() == Some(expected.client_id))
        }
        None => false,
    };
    if !audience_ok {
        return Err("aud is not the hub's client id".into());
    }
    match claims.exp {
        Some(exp) if exp + LEEWAY_SECONDS > expected.now => {}
        Some(_) => return Err("expired".into()),
        None => return Err("exp is missing".into()),
    }
    if claims
        .iat
        .is_some_and(|iat| iat > expected.now + LEEWAY_SECONDS)
    {
        return Err("iat is in the future".into());
    }
    if let Some(nonce) = expected.nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return Err("nonce is not the one the hub sent".into());
    }
    if let Some(c_hash) = &claims.c_hash
        && *c_hash != half_hash(expected.code)
    {
        return Err("c_hash is not the code's".into());
    }
    if let Some(s_hash) = &claims.s_hash
        && expected
            .state
            .is_none_or(|state| *s_hash != half_hash(state))
    {
        return Err("s_hash is not the state's".into());
    }
    if let (Some(intent), Some(expected)) = (&claims.openbanking_intent_id, expected.intent_id)
        && intent != expected
    {
        return Err("openbanking_intent_id is another consent".into());
    }
    Ok(())
}

/// OpenID Connect Core §3.3.2.11: the left half of the SHA-256, base64url (for PS256/ES256).
pub(crate) fn half_hash(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    URL_SAFE_NO_PAD.encode(&hash[..hash.len() / 2])
}

fn verify(header: &Header, keys: &Jwks, message: &[u8], signature: &[u8]) -> Result<(), String> {
    let kty = match header.alg.as_str() {
        "PS256" => "RSA",
        "ES256" => "EC",
        // `none`, HS256 and RS256 are not allowed under FAPI.
        other => return Err(format!("alg {other:?} is not PS256 or ES256")),
    };
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| k.kty == kty && k.usage.as_deref() != Some("enc"))
        .filter(|k| header.kid.is_none() || k.kid == header.kid)
        .collect();
    let key = match candidates.as_slice() {
        [key] => *key,
        [] => return Err("no key of the bank's JWKS matches its kid".into()),
        _ => return Err("several keys of the bank's JWKS match and it names none".into()),
    };
    let field = |v: &Option<String>| {
        v.as_deref()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| "the bank's key is malformed".to_owned())
    };
    let verified = if kty == "RSA" {
        RsaPublicKeyComponents {
            n: field(&key.n)?,
            e: field(&key.e)?,
        }
        .verify(&RSA_PSS_2048_8192_SHA256, message, signature)
    } else {
        if key.crv.as_deref() != Some("P-256") {
            return Err("the bank's EC key is not P-256".into());
        }
        let mut point = vec![4u8];
        point.extend(field(&key.x)?);
        point.extend(field(&key.y)?);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(message, signature)
    };
    verified.map_err(|_| "the signature does not verify".to_owned())
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
