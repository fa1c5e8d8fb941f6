//! The OpenID Connect ID token of the authorization-code grant: `sub` and
//! `openbanking_intent_id` name the consent; `nonce`, `c_hash`, `s_hash` and `at_hash` tie it to
//! the request (OIDC Core §3.3.2.11, FAPI 1.0 Advanced §5.2.2.1). Strict mode signs it PS256
//! with the sandbox's key (published at `{base}/jwks`) and uses wall-clock times; otherwise it
//! is HS256 with the client secret, as OIDC allows for confidential clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::state::Bank;
use crate::state::uk::AuthCode;
use crate::tpp::jose::half_hash;

/// What the token is about.
#[derive(Debug)]
pub struct IdTokenFacts<'a> {
    pub client_id: &'a str,
    pub grant: &'a AuthCode,
    pub code: &'a str,
    pub access_token: &'a str,
    pub lifetime_seconds: i64,
}

pub fn id_token(bank: &Bank, facts: &IdTokenFacts<'_>) -> String {
    let now = match &bank.tpp {
        Some(_) => crate::tpp::wall_now(),
        None => bank.now().unix_timestamp(),
    };
    let consent = &facts.grant.consent_id;
    let mut claims = json!({
        "iss": bank.base_url,
        "aud": facts.client_id,
        "sub": consent,
        "openbanking_intent_id": consent,
        "acr": "urn:openbanking:psd2:sca",
        "iat": now,
        "exp": now + facts.lifetime_seconds,
        "c_hash": half_hash(facts.code),
        "at_hash": half_hash(facts.access_token),
    });
    if let Some(nonce) = &facts.grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    if let Some(state) = &facts.grant.state {
        claims["s_hash"] = json!(half_hash(state));
    }
    let payload = claims.to_string();
    if let Some(gate) = &bank.tpp {
        let mut header = Map::new();
        header.insert("typ".into(), Value::String("JWT".into()));
        return gate.signing_key.compact(header, payload.as_bytes());
    }
    use hmac::{Hmac, KeyInit, Mac};
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "HS256", "typ": "JWT" }).to_string());
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = Hmac::<sha2::Sha256>::new_from_slice(bank.config.client_secret.as_bytes())
        .map(|mut mac| {
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("{input}.{signature}")
}
