//! OAuth2 for UK Open Banking: the token endpoint (client credentials, authorization code with
//! PKCE, refresh token), the PSU's authorization redirect, and OpenID discovery.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Duration;

use super::client_auth::{Caller, authenticate};
use super::id_token::{IdTokenFacts, id_token};
use crate::state::uk::{AccessToken, RefreshToken, TokenGrant, UkConsentStatus};
use crate::state::{Bank, BankState};
use crate::tpp::PeerCertificates;
use crate::web::extract::{field, form_pairs, read_body};

/// Lifetime of access tokens, in simulated time.
const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(1);
pub(super) const SUPPORTED_SCOPES: [&str; 3] = ["openid", "accounts", "payments"];

/// RFC 6749 §5.2 error body.
pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Basic realm=\"sandbox\""),
        );
    }
    response.headers_mut().insert(
        "cache-control",
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

fn issue_access_token(
    state: &mut BankState,
    caller: &Caller,
    grant: TokenGrant,
    now: time::OffsetDateTime,
) -> String {
    let token = state.next_id("at-");
    state.access_tokens.insert(
        token.clone(),
        AccessToken {
            client_id: caller.client_id.clone(),
            grant,
            expires_at: now + ACCESS_TOKEN_LIFETIME,
            cnf_x5t_s256: caller.cnf(),
        },
    );
    token
}

pub async fn token(
    State(bank): State<Arc<Bank>>,
    peer: Option<Extension<PeerCertificates>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = read_body(body)
        .await
        .map(|b| form_pairs(&b))
        .unwrap_or_default();
    let caller = match authenticate(&bank, &headers, &form, peer.as_ref().map(|p| &p.0)) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let client_id = caller.client_id.clone();
    let now = bank.now();
    let mut state = bank.lock();
    match field(&form, "grant_type") {
        Some("client_credentials") => {
            let requested = field(&form, "scope").unwrap_or("accounts payments");
            let scopes: Vec<String> = requested.split_whitespace().map(str::to_string).collect();
            if scopes.is_empty()
                || scopes
                    .iter()
                    .any(|s| !SUPPORTED_SCOPES.contains(&s.as_str()))
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "scopes are openid, accounts and payments",
                );
            }
            if let Err(refusal) = caller.check_roles(scopes.iter().map(String::as_str)) {
                return refusal.into_response();
            }
            let token = issue_access_token(
                &mut state,
                &caller,
                TokenGrant::Client {
                    scopes: scopes.clone(),
                },
                now,
            );
            Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME.whole_seconds(), "scope": scopes.join(" ") })).into_response()
        }
        Some("authorization_code") => {
            let code = field(&form, "code").unwrap_or("");
            let Some(grant) = state.codes.remove(code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or already used authorization code",
                );
            };
            if grant.client_id != client_id || grant.expires_at <= now {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the code expired or belongs to another client",
                );
            }
            if field(&form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri differs from the authorization request",
                );
            }
            let verifier = field(&form, "code_verifier").unwrap_or("");
            let computed = match grant.code_challenge_method.as_str() {
                "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                _ => verifier.to_string(),
            };
            if verifier.len() < 43 || verifier.len() > 128 || computed != grant.code_challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed (code_verifier)",
                );
            }
            if let Err(refusal) = caller.check_roles(grant.scopes.iter().map(String::as_str)) {
                return refusal.into_response();
            }
            let token = issue_access_token(
                &mut state,
                &caller,
                TokenGrant::Psu {
                    consent_id: grant.consent_id.clone(),
                    scopes: grant.scopes.clone(),
                },
                now,
            );
            let refresh = state.next_id("rt-");
            state.refresh_tokens.insert(
                refresh.clone(),
                RefreshToken {
                    client_id: client_id.clone(),
                    consent_id: grant.consent_id.clone(),
                    scopes: grant.scopes.clone(),
                },
            );
            let mut body = json!({
                "access_token": token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME.whole_seconds(),
                "refresh_token": refresh, "scope": grant.scopes.join(" "),
            });
            if grant.scopes.iter().any(|s| s == "openid") {
                let facts = IdTokenFacts {
                    client_id: &client_id,
                    grant: &grant,
                    code,
                    access_token: &token,
                    lifetime_seconds: ACCESS_TOKEN_LIFETIME.whole_seconds(),
                };
                body["id_token"] = Value::String(id_token(&bank, &facts));
            }
            Json(body).into_response()
        }
        Some("refresh_token") => {
            let presented = field(&form, "refresh_token").unwrap_or("");
            let Some(refresh) = state
                .refresh_tokens
                .get(presented)
                .filter(|r| r.client_id == client_id)
                .cloned()
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown refresh token",
                );
            };
            let live = state
                .uk_account_consents
                .get(&refresh.consent_id)
                .is_some_and(|c| c.status == UkConsentStatus::Authorised && !c.is_expired(now))
                || state
                    .uk_payment_consents
                    .get(&refresh.consent_id)
                    .is_some_and(|c| c.status == UkConsentStatus::Authorised);
            if !live {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the consent behind this refresh token is no longer authorised",
                );
            }
            if let Err(refusal) = caller.check_roles(refresh.scopes.iter().map(String::as_str)) {
                return refusal.into_response();
            }
            let token = issue_access_token(
                &mut state,
                &caller,
                TokenGrant::Psu {
                    consent_id: refresh.consent_id.clone(),
                    scopes: refresh.scopes.clone(),
                },
                now,
            );
            Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_LIFETIME.whole_seconds(), "refresh_token": presented, "scope": refresh.scopes.join(" ") })).into_response()
        }
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use client_credentials, authorization_code or refresh_token",
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is missing",
        ),
    }
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(State(bank): State<Arc<Bank>>) -> Response {
    let mut document = json!({
        "issuer": bank.base_url,
        "authorization_endpoint": bank.url("/oauth2/authorize"),
        "token_endpoint": bank.url("/oauth2/token"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "request_parameter_supported": true,
        "claims_parameter_supported": true,
        "claims_supported": ["sub", "openbanking_intent_id", "acr"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
    });
    if bank.tpp.is_some() {
        document["jwks_uri"] = json!(bank.url("/jwks"));
        document["token_endpoint_auth_methods_supported"] =
            json!(["private_key_jwt", "tls_client_auth"]);
        document["token_endpoint_auth_signing_alg_values_supported"] =
            json!(crate::tpp::jose::TPP_ALGORITHMS);
        document["request_object_signing_alg_values_supported"] =
            json!(crate::tpp::jose::TPP_ALGORITHMS);
        document["id_token_signing_alg_values_supported"] = json!(["PS256"]);
        document["tls_client_certificate_bound_access_tokens"] = json!(true);
        document["require_signed_request_object"] = json!(true);
    }
    Json(document).into_response()
}

/// `GET /jwks`: the sandbox's public signing key in strict mode (ID tokens, response
/// signatures); empty otherwise.
pub async fn jwks(State(bank): State<Arc<Bank>>) -> Response {
    let keys: Vec<Value> = bank.tpp.iter().map(|gate| gate.signing_key.jwk()).collect();
    Json(json!({ "keys": keys })).into_response()
}
