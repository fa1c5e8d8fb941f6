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
/// read without verifying its signature: outside strict mode the sandbox has no TPP keys.
fn intent_from_request_object(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?)
            .ok()?;
    intent_from_claims(claims.get("claims")?)
}

/// `openbanking_intent_id` from a request object's `claims` parameter.
fn intent_from_claims(claims: &Value) -> Option<String> {
    let intent = claims
        .pointer("/id_token/openbanking_intent_id/value")
        .or_else(|| claims.pointer("/userinfo/openbanking_intent_id/value"))?;
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

/// What strict mode lets through: the verified parameters and the consent they name.
struct StrictRequest {
    params: Vec<(String, String)>,
    intent: Option<String>,
}

/// Why strict mode stops an authorization request before anything else is looked at.
enum Refusal {
    /// No client or redirect URI to go back to: an error page.
    Page(&'static str),
    /// Back to the TPP with an OAuth error.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

impl Refusal {
    fn answer(self, bank: &Bank) -> Response {
        match self {
            Self::Page(message) => error_page(bank, message),
            Self::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => redirect_error(&redirect_uri, state.as_deref(), error, &description),
        }
    }
}

/// Strict mode: the client must be registered, the redirect URI allowed, and the parameters
/// come from a verified request object.
fn strict_parameters(
    bank: &Bank,
    gate: &crate::tpp::TppGate,
    q: &[(String, String)],
) -> Result<StrictRequest, Refusal> {
    let client_id = field(q, "client_id").unwrap_or("");
    let client = gate
        .client(bank.id(), client_id)
        .ok_or(Refusal::Page("Unknown client_id."))?;
    let redirect_uri = field(q, "redirect_uri").unwrap_or("");
    if !url::Url::parse(redirect_uri).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http")
        || !client.allows_redirect(redirect_uri)
    {
        return Err(Refusal::Page(
            "redirect_uri is missing or not registered for this client.",
        ));
    }
    let back = |error: &'static str, description: String| Refusal::Redirect {
        redirect_uri: redirect_uri.to_string(),
        state: field(q, "state").map(str::to_string),
        error,
        description,
    };
    let Some(request) = field(q, "request") else {
        return Err(back(
            "invalid_request",
            "a signed request object (request) is required".into(),
        ));
    };
    match crate::tpp::request_object::verify(gate, bank.id(), &bank.base_url, &client, request, q) {
        Ok(verified) => {
            let intent = verified.claims.get("claims").and_then(intent_from_claims);
            let mut params = verified.params;
            params.push(("request".into(), request.to_string()));
            Ok(StrictRequest { params, intent })
        }
        Err(description) => {
            tracing::info!(bank = bank.id(), client = client_id, %description, "request object refused");
            Err(back("invalid_request_object", description))
        }
    }
}

/// `GET /oauth2/authorize`: checks the request, then sends the PSU to the bank's SCA pages.
pub async fn authorize(State(bank): State<Arc<Bank>>, RawQuery(query): RawQuery) -> Response {
    let mut q = form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let mut verified_intent = None;
    if let Some(gate) = &bank.tpp {
        match strict_parameters(&bank, gate, &q) {
            Ok(strict) => {
                q = strict.params;
                verified_intent = Some(strict.intent);
            }
            Err(refusal) => return refusal.answer(&bank),
        }
    } else if field(&q, "client_id") != Some(bank.config.client_id.as_str()) {
        return error_page(&bank, "Unknown client_id.");
    }
    let client_id = field(&q, "client_id").unwrap_or("");
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
    if verified_intent.is_some() && scopes.contains(&"openid") && field(&q, "nonce").is_none() {
        return fail(
            "invalid_request",
            "nonce is required with the openid scope (FAPI 1.0 Advanced 5.2.2.2)",
        );
    }
    // Strict mode reads the consent from the verified request object only.
    let intent = match verified_intent {
        Some(intent) => intent,
        None => field(&q, "request")
            .and_then(intent_from_request_object)
            .or_else(|| field(&q, "openbanking_intent_id").map(str::to_string)),
    };
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
