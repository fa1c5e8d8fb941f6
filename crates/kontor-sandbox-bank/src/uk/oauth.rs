//! OAuth2 for UK Open Banking: the token endpoint (client credentials, authorization code with
//! PKCE, refresh token), the PSU's authorization redirect, and OpenID discovery.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Duration;

use crate::state::uk::{AccessToken, RefreshToken, TokenGrant, UkConsentStatus};
use crate::state::{Bank, BankState};
use crate::web::extract::{field, form_pairs, read_body};

/// Lifetime of access tokens, in simulated time.
const ACCESS_TOKEN_LIFETIME: Duration = Duration::hours(1);
pub(super) const SUPPORTED_SCOPES: [&str; 3] = ["openid", "accounts", "payments"];

/// RFC 6749 §5.2 error body.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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

/// Client authentication: HTTP Basic (client_secret_basic) or form fields (client_secret_post).
fn authenticate_client(
    bank: &Bank,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Option<String> {
    let from_basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(i, s)| (url_decode(i), url_decode(s)))
        });
    let (id, secret) = from_basic.or_else(|| {
        Some((
            field(form, "client_id")?.to_string(),
            field(form, "client_secret")?.to_string(),
        ))
    })?;
    (id == bank.config.client_id && secret == bank.config.client_secret).then_some(id)
}

fn url_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn issue_access_token(
    state: &mut BankState,
    client_id: &str,
    grant: TokenGrant,
    now: time::OffsetDateTime,
) -> String {
    let token = state.next_id("at-");
    state.access_tokens.insert(
        token.clone(),
        AccessToken {
            client_id: client_id.to_string(),
            grant,
            expires_at: now + ACCESS_TOKEN_LIFETIME,
        },
    );
    token
}

/// A signed ID token (HS256 with the client secret, as OpenID Connect allows for confidential
/// clients), naming the consent in `openbanking_intent_id`.
fn id_token(bank: &Bank, client_id: &str, consent_id: &str, now: time::OffsetDateTime) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "HS256", "typ": "JWT" }).to_string());
    let claims = json!({
        "iss": bank.base_url, "aud": client_id, "sub": consent_id, "openbanking_intent_id": consent_id,
        "iat": now.unix_timestamp(), "exp": (now + ACCESS_TOKEN_LIFETIME).unix_timestamp(),
    });
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = Hmac::<sha2::Sha256>::new_from_slice(bank.config.client_secret.as_bytes())
        .map(|mut mac| {
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    format!("{input}.{signature}")
}

pub async fn token(State(bank): State<Arc<Bank>>, headers: HeaderMap, body: Body) -> Response {
    let form = read_body(body)
        .await
        .map(|b| form_pairs(&b))
        .unwrap_or_default();
    let Some(client_id) = authenticate_client(&bank, &headers, &form) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
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
            let token = issue_access_token(
                &mut state,
                &client_id,
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
            let token = issue_access_token(
                &mut state,
                &client_id,
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
                body["id_token"] =
                    Value::String(id_token(&bank, &client_id, &grant.consent_id, now));
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
            let token = issue_access_token(
                &mut state,
                &client_id,
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
    Json(json!({
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
    }))
    .into_response()
}
