//! The Berlin Group NextGenPSD2 1.3.8 API of one bank: routing table, `X-Request-ID` echo and
//! the spec-format answers for unknown paths, services not offered and methods not allowed.

mod accounts;
mod authorisations;
mod consents;
pub mod error;
mod headers;
mod payments;
mod request_ids;
mod sca;
mod transactions;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::core::rng::{Rng, combine};
use crate::state::Bank;
use error::{BgError, Service};

/// Routes of one Berlin Group bank, relative to its base URL.
pub fn router(bank: Arc<Bank>) -> Router {
    let consent = "/v1/consents/{consent_id}";
    let payment = "/v1/{service}/{product}/{payment_id}";
    let api = Router::new()
        .route("/v1/consents", post(consents::create))
        .route(
            consent,
            get(consents::read_consent).delete(consents::delete),
        )
        .route(&format!("{consent}/status"), get(consents::status))
        .route(
            &format!("{consent}/authorisations"),
            post(authorisations::start_for_consent).get(authorisations::list_for_consent),
        )
        .route(
            &format!("{consent}/authorisations/{{authorisation_id}}"),
            get(authorisations::consent_sca_status).put(authorisations::update_psu_data),
        )
        .route("/v1/accounts", get(accounts::list))
        .route("/v1/accounts/{account_id}", get(accounts::details_handler))
        .route(
            "/v1/accounts/{account_id}/balances",
            get(accounts::balances_route),
        )
        .route(
            "/v1/accounts/{account_id}/transactions",
            get(transactions::list),
        )
        .route("/v1/{service}/{product}", post(payments::initiate))
        .route(payment, get(payments::read_route).delete(payments::cancel))
        .route(&format!("{payment}/status"), get(payments::status))
        .route(
            &format!("{payment}/authorisations"),
            post(authorisations::start_for_payment).get(authorisations::list_for_payment),
        )
        .route(
            &format!("{payment}/authorisations/{{authorisation_id}}"),
            get(authorisations::payment_sca_status).put(authorisations::update_psu_data),
        )
        .route("/v1/card-accounts", any(not_offered))
        .route("/v1/card-accounts/{*rest}", any(not_offered))
        .route("/v1/signing-baskets", any(not_offered))
        .route("/v1/signing-baskets/{*rest}", any(not_offered))
        .route("/v1/funds-confirmations", any(not_offered))
        .route("/v1/funds-confirmations/{*rest}", any(not_offered))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            crate::web::faults::inject,
        ))
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            crate::tpp::bg_guard::guard,
        ))
        .layer(middleware::from_fn(echo_request_id))
        .with_state(bank);
    // Around the whole router rather than as a route layer: axum adds `Allow` after the route
    // layers have run.
    Router::new().fallback_service(
        tower::ServiceBuilder::new()
            .layer(middleware::from_fn(allow_only_on_405))
            .service(api),
    )
}

pub(crate) fn service_of(path: &str) -> Service {
    if path.starts_with("/v1/consents")
        || path.starts_with("/v1/accounts")
        || path.starts_with("/v1/card-accounts")
    {
        Service::Ais
    } else {
        Service::Pis
    }
}

async fn not_found(request: Request) -> BgError {
    let service = service_of(request.uri().path());
    BgError::new(
        service,
        StatusCode::NOT_FOUND,
        "RESOURCE_UNKNOWN",
        "no such endpoint at this bank",
    )
}

/// Services of the spec this bank does not offer (card accounts, signing baskets, confirmation
/// of funds). The spec leaves it to each bank which of its endpoints to implement; for one it
/// does not, the endpoint does not exist here: `404 RESOURCE_UNKNOWN` (the one code of
/// `MessageCode404_AIS`/`_PIIS`/`_SBS`) for every method, never a 405 that would advertise
/// methods.
async fn not_offered(request: Request) -> BgError {
    let path = request.uri().path();
    let what = if path.starts_with("/v1/card-accounts") {
        "card accounts"
    } else if path.starts_with("/v1/signing-baskets") {
        "signing baskets"
    } else {
        "confirmation of funds"
    };
    BgError::new(
        service_of(path),
        StatusCode::NOT_FOUND,
        "RESOURCE_UNKNOWN",
        format!("this bank does not offer {what}"),
    )
}

/// A method the route does not have. axum puts the route's methods into `Allow`; the payment
/// routes are templates (`/v1/{payment-service}/{payment-product}/…`), so a path whose service
/// or product does not exist here is a 404, as its POST or GET would be, not a 405.
async fn method_not_allowed(request: Request) -> BgError {
    let path = request.uri().path();
    let service = service_of(path);
    let mut segments = path.trim_start_matches('/').split('/').skip(1);
    match (segments.next(), segments.next()) {
        (Some("consents" | "accounts" | "bulk-payments" | "periodic-payments"), _)
        | (
            Some("payments"),
            Some("sepa-credit-transfers" | "instant-sepa-credit-transfers") | None,
        ) => BgError::new(
            service,
            StatusCode::METHOD_NOT_ALLOWED,
            "SERVICE_INVALID",
            "method not allowed on this endpoint",
        ),
        (Some("payments"), Some(product)) => BgError::new(
            service,
            StatusCode::NOT_FOUND,
            "PRODUCT_UNKNOWN",
            format!("payment product {product} is not supported by this bank"),
        ),
        _ => BgError::new(
            service,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such endpoint at this bank",
        ),
    }
}

/// axum adds the route's methods as `Allow` to whatever its method-not-allowed fallback
/// answers; when that answer is a 404 (a template path that does not exist here), those methods
/// are not the resource's and must not be advertised.
async fn allow_only_on_405(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().remove("allow");
    }
    response
}

/// Every response carries `X-Request-ID`: the TPP's when it sent a valid one, else a new one.
async fn echo_request_id(request: Request, next: Next) -> Response {
    let sent = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| headers::is_uuid(v))
        .map(str::to_string);
    let mut response = next.run(request).await;
    if !response.headers().contains_key("x-request-id") {
        let id = sent.unwrap_or_else(new_request_id);
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
    }
    response
}

/// A random-looking version 4 UUID (only used where the TPP sent none).
pub fn new_request_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut rng = Rng::new(combine(0x5eed, n));
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// The answer to a fault-injected 429 or 5xx, in this standard's format.
pub fn fault_response(path: &str, status: StatusCode, retry_after: Option<u32>) -> Response {
    let service = service_of(path);
    let mut error = if status == StatusCode::TOO_MANY_REQUESTS {
        BgError::new(
            service,
            status,
            "ACCESS_EXCEEDED",
            "too many requests, try again later",
        )
    } else {
        BgError::new(
            service,
            status,
            "INTERNAL_SERVER_ERROR",
            "the bank is having trouble",
        )
    };
    error.retry_after = retry_after;
    error.into_response()
}
