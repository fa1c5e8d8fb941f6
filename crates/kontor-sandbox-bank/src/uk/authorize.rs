//! `GET /oauth2/authorize`: checks the TPP's authorization request (client, redirect URI, PKCE,
//! the consent named in the request object) and sends the PSU to the bank's SCA pages.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::oauth::SUPPORTED_SCOPES;
use crate::state::Bank;
use crate::state::sca::{AuthTarget, Authorisation, OAuthRequest, ScaApproach};
use crate::state::uk::UkConsentStatus;
use crate::web::extract::{field, form_pairs};
use crate::web::pages::render::{escape, page};

/// The consent id from an OpenID request object (`claims.id_token.openbanking_intent_id`),
/// read without verifying its signature (the sandbox has no TPP keys).
fn intent_from_request_object(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    let intent = claims
        .pointer("/claims/id_token/openbanking_intent_id/value")
        .or_else(|| claims.pointer("/claims/userinfo/openbanking_intent_id/value"))?;
    intent.as_str().map(str::to_string)
}

fn error_page(bank: &Bank, message: &str) -> Response {
    let content = format!(
        r#"<p id="error" class="error" role="alert">{}</p>"#,
        escape(message)
    );
    (
        StatusCode::BAD_REQUEST,
        page(bank, "error", "Invalid authorization request", &content),
    )
        .into_response()
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error);
        q.append_pair("error_description", description);
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

/// `GET /oauth2/authorize`: checks the request, then sends the PSU to the bank's SCA pages.
pub async fn authorize(State(bank): State<Arc<Bank>>, RawQuery(query): RawQuery) -> Response {
    let q = form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let client_id = field(&q, "client_id").unwrap_or("");
    if client_id != bank.config.client_id {
        return error_page(&bank, "Unknown client_id.");
    }
    let redirect_uri = field(&q, "redirect_uri").unwrap_or("");
    if !url::Url::parse(redirect_uri).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http") {
        return error_page(&bank, "redirect_uri must be an absolute http(s) URL.");
    }
    let state_param = field(&q, "state");
    let fail = |error: &str, description: &str| {
        redirect_error(redirect_uri, state_param, error, description)
    };
    if field(&q, "response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let scope = field(&q, "scope").unwrap_or("");
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.iter().any(|s| !SUPPORTED_SCOPES.contains(s)) {
        return fail("invalid_scope", "scopes are openid, accounts and payments");
    }
    let challenge = field(&q, "code_challenge").unwrap_or("");
    if field(&q, "code_challenge_method") != Some("S256") || challenge.len() != 43 {
        return fail(
            "invalid_request",
            "PKCE is required: code_challenge (S256, 43 characters) and code_challenge_method=S256",
        );
    }
    let intent = field(&q, "request")
        .and_then(intent_from_request_object)
        .or_else(|| field(&q, "openbanking_intent_id").map(str::to_string));
    let Some(consent_id) = intent else {
        return fail(
            "invalid_request",
            "name the consent: a request object with claims.id_token.openbanking_intent_id, or openbanking_intent_id",
        );
    };
    let now = bank.now();
    let mut state = bank.lock();
    let target = if scopes.contains(&"accounts") {
        let ok = state.uk_account_consents.get(&consent_id).is_some_and(|c| {
            c.client_id == client_id && c.status == UkConsentStatus::AwaitingAuthorisation
        });
        ok.then(|| AuthTarget::UkAccountConsent(consent_id.clone()))
    } else if scopes.contains(&"payments") {
        let ok = state.uk_payment_consents.get(&consent_id).is_some_and(|c| {
            c.client_id == client_id && c.status == UkConsentStatus::AwaitingAuthorisation
        });
        ok.then(|| AuthTarget::UkPaymentConsent(consent_id.clone()))
    } else {
        None
    };
    let Some(target) = target else {
        return fail(
            "invalid_request",
            "no consent of this client awaiting authorisation matches the request and scope",
        );
    };
    let single = matches!(&target, AuthTarget::UkPaymentConsent(id) if state.uk_payment_consents.get(id).is_some_and(|c| c.debtor.is_none()));
    let choose = matches!(target, AuthTarget::UkAccountConsent(_)) || single;
    let auth_id = state.next_id("auth-");
    let mut auth = Authorisation::new(auth_id.clone(), target, ScaApproach::Redirect, now);
    auth.choose_accounts = choose;
    auth.choose_single_account = single;
    auth.oauth = Some(OAuthRequest {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        state: state_param.map(str::to_string),
        nonce: field(&q, "nonce").map(str::to_string),
        scope: scope.to_string(),
        code_challenge: challenge.to_string(),
        code_challenge_method: "S256".into(),
    });
    state.authorisations.insert(auth_id.clone(), auth);
    drop(state);
    Redirect::to(&bank.sca_page_url(&auth_id)).into_response()
}
