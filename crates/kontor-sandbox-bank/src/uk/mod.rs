//! The UK Open Banking Read/Write 3.1.11 API of one bank: OAuth2 endpoints, AISP and PISP
//! routes, `x-fapi-interaction-id` echo and the `x-jws-signature` on payment responses.

mod accounts;
mod auth;
mod authorize;
mod client_auth;
mod consents;
pub mod error;
mod id_token;
mod oauth;
mod payment_consents;
mod payments;
mod transactions;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::state::Bank;
pub use auth::bearer;
use error::UkError;

pub const AISP: &str = "/open-banking/v3.1/aisp";
pub const PISP: &str = "/open-banking/v3.1/pisp";

/// Routes of one UK bank, relative to its base URL.
pub fn router(bank: Arc<Bank>) -> Router {
    let api = Router::new()
        .route(
            &format!("{AISP}/account-access-consents"),
            post(consents::create),
        )
        .route(
            &format!("{AISP}/account-access-consents/{{consent_id}}"),
            get(consents::read).delete(consents::delete),
        )
        .route(&format!("{AISP}/accounts"), get(accounts::list))
        .route(
            &format!("{AISP}/accounts/{{account_id}}"),
            get(accounts::one),
        )
        .route(
            &format!("{AISP}/accounts/{{account_id}}/balances"),
            get(accounts::balances),
        )
        .route(
            &format!("{AISP}/accounts/{{account_id}}/transactions"),
            get(transactions::transactions),
        )
        .route(&format!("{AISP}/balances"), get(accounts::all_balances))
        .route(
            &format!("{PISP}/domestic-payment-consents"),
            post(payment_consents::create_consent),
        )
        .route(
            &format!("{PISP}/domestic-payment-consents/{{consent_id}}"),
            get(payment_consents::read_consent),
        )
        .route(
            &format!("{PISP}/domestic-payment-consents/{{consent_id}}/funds-confirmation"),
            get(payment_consents::funds_confirmation),
        )
        .route(
            &format!("{PISP}/domestic-payments"),
            post(payments::create_payment),
        )
        .route(
            &format!("{PISP}/domestic-payments/{{payment_id}}"),
            get(payments::read_payment),
        )
        .route(
            &format!("{PISP}/domestic-payments/{{payment_id}}/payment-details"),
            get(payments::read_payment_details),
        )
        .route("/oauth2/token", post(oauth::token))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .method_not_allowed_fallback(|| async { StatusCode::METHOD_NOT_ALLOWED })
        // Strict mode's checks run first, so their refusals are signed like any answer.
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            crate::tpp::uk_guard::guard,
        ))
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            sign_payment_responses,
        ))
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            crate::web::faults::inject,
        ))
        .layer(middleware::from_fn(interaction_id));
    Router::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route("/.well-known/openid-configuration", get(oauth::discovery))
        .route("/jwks", get(oauth::jwks))
        .with_state(bank.clone())
        .merge(api.with_state(bank))
}

/// Echoes `x-fapi-interaction-id`, or creates one: every response of the spec requires it.
async fn interaction_id(request: Request, next: Next) -> Response {
    let sent = request.headers().get("x-fapi-interaction-id").cloned();
    let mut response = next.run(request).await;
    let value = sent.or_else(|| HeaderValue::from_str(&crate::bg::new_request_id()).ok());
    if let Some(value) = value {
        response
            .headers_mut()
            .insert("x-fapi-interaction-id", value);
    }
    response
}

/// A detached JWS (`header..signature`) over a response body, as the PIS spec requires in
/// `x-jws-signature`. In strict mode it is PS256 with the sandbox's key (at `{base}/jwks`);
/// otherwise HS256 with a per-bank key that TPPs cannot (and need not) verify.
pub fn detached_jws(bank: &Bank, payload: &[u8]) -> String {
    let mut header = serde_json::json!({
        "typ": "JOSE",
        "cty": "application/json",
        "http://openbanking.org.uk/iat": bank.now().unix_timestamp(),
        "http://openbanking.org.uk/iss": bank.base_url,
        "http://openbanking.org.uk/tan": crate::tpp::pki::TRUST_ANCHOR,
        "crit": ["http://openbanking.org.uk/iat", "http://openbanking.org.uk/iss", "http://openbanking.org.uk/tan"],
    });
    if let Some(gate) = &bank.tpp {
        header["http://openbanking.org.uk/iat"] = serde_json::json!(crate::tpp::wall_now());
        let serde_json::Value::Object(header) = header else {
            return String::new();
        };
        let compact = gate.signing_key.compact(header, payload);
        let mut parts = compact.split('.');
        let (h, _, s) = (parts.next(), parts.next(), parts.next());
        return format!("{}..{}", h.unwrap_or(""), s.unwrap_or(""));
    }
    header["alg"] = serde_json::json!("HS256");
    header["kid"] = serde_json::json!(format!("{}-sandbox", bank.id()));
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = match Hmac::<Sha256>::new_from_slice(&bank.signing_key) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{header}..{signature}")
}

async fn sign_payment_responses(
    axum::extract::State(bank): axum::extract::State<Arc<Bank>>,
    request: Request,
    next: Next,
) -> Response {
    let is_pisp = request.uri().path().starts_with(PISP);
    let response = next.run(request).await;
    if !is_pisp {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::web::extract::BODY_LIMIT * 16).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if !bytes.is_empty()
        && let Ok(value) = HeaderValue::from_str(&detached_jws(&bank, &bytes))
    {
        parts.headers.insert("x-jws-signature", value);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The answer to a fault-injected 429 or 5xx: 429 and 503 carry no body, 500 an
/// `OBErrorResponse1` with `UK.OBIE.UnexpectedError`.
pub fn fault_response(
    _bank: &Bank,
    _request: &Request,
    _path: &str,
    status: StatusCode,
    retry_after: Option<u32>,
) -> Response {
    let mut error = if status == StatusCode::INTERNAL_SERVER_ERROR {
        UkError::new(
            status,
            "UK.OBIE.UnexpectedError",
            "The bank is having trouble; try again later.",
        )
    } else {
        UkError::new(status, "", "")
    };
    error.retry_after = retry_after;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return status.into_response();
    }
    error.into_response()
}
