//! `/admin`: the operator's and the tests' controls. Clock, faults, consent expiry and
//! revocation, decoupled approvals, and read-only views of banks, accounts and payments.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use time::Duration;

use crate::app::App;
use crate::core::dates::timestamp;
use crate::report;
use crate::state::Bank;
use crate::state::consent::ConsentStatus;
use crate::state::faults::FaultConfig;
use crate::state::flows;
use crate::state::uk::UkConsentStatus;
use crate::web::extract::{Params, read_body};

/// Admin errors, in the envelope of Kontor's own API.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

pub(super) fn no_bank() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "bank_not_found",
        "no bank with this id",
    )
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/banks", get(banks))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .route("/payments", get(all_payments))
        .route("/traceparents", get(super::traces::list))
        .route(
            "/banks/{bank}/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route("/banks/{bank}/payments", get(bank_payments))
        .route(
            "/banks/{bank}/clients",
            get(super::admin_clients::list).post(super::admin_clients::register),
        )
        .route(
            "/banks/{bank}/clients/{client}",
            axum::routing::delete(super::admin_clients::remove),
        )
        .route("/banks/{bank}/accounts", get(bank_accounts))
        .route(
            "/banks/{bank}/consents/{consent}/expire",
            post(expire_consent),
        )
        .route(
            "/banks/{bank}/consents/{consent}/revoke",
            post(revoke_consent),
        )
        .route(
            "/banks/{bank}/authorisations/{authorisation}/approve",
            post(approve),
        )
        .route(
            "/banks/{bank}/authorisations/{authorisation}/reject",
            post(reject),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint") })
        .with_state(app)
}

async fn overview(State(app): State<Arc<App>>) -> Response {
    let banks: Vec<report::BankInfo> = app.banks.iter().map(|b| report::bank_info(b)).collect();
    Json(json!({ "now": timestamp(app.clock.now()), "seed": app.seed, "admin_url": format!("{}/admin", app.root_url), "banks": banks })).into_response()
}

async fn banks(State(app): State<Arc<App>>) -> Response {
    let banks: Vec<report::BankInfo> = app.banks.iter().map(|b| report::bank_info(b)).collect();
    Json(banks).into_response()
}

async fn clock(State(app): State<Arc<App>>) -> Response {
    Json(json!({ "now": timestamp(app.clock.now()), "start": timestamp(app.clock.start()), "frozen": app.clock.is_frozen() })).into_response()
}

/// `{"seconds": n, "minutes": n, "hours": n, "days": n}`, any subset, summed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    #[serde(default)]
    seconds: i64,
    #[serde(default)]
    minutes: i64,
    #[serde(default)]
    hours: i64,
    #[serde(default)]
    days: i64,
}

async fn advance(State(app): State<Arc<App>>, body: Body) -> Response {
    let Some(bytes) = read_body(body).await else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "body too large");
    };
    let request: Advance = match crate::web::json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                &format!("expected {{\"seconds\"|\"minutes\"|\"hours\"|\"days\": n}}: {e}"),
            );
        }
    };
    let total = Duration::seconds(request.seconds)
        .checked_add(Duration::minutes(request.minutes))
        .and_then(|d| d.checked_add(Duration::hours(request.hours)))
        .and_then(|d| d.checked_add(Duration::days(request.days)));
    let Some(total) = total else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_duration",
            "duration overflows",
        );
    };
    match app.clock.advance(total) {
        Ok(now) => Json(json!({ "now": timestamp(now) })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_duration", &e.to_string()),
    }
}

async fn all_payments(State(app): State<Arc<App>>) -> Response {
    let all: Vec<report::PaymentRecord> = app
        .banks
        .iter()
        .flat_map(|b| report::payment_records(b))
        .collect();
    Json(all).into_response()
}

fn bank<'a>(app: &'a App, params: &Params) -> Option<&'a Arc<Bank>> {
    app.bank(params.get(0))
}

async fn get_faults(State(app): State<Arc<App>>, params: Params) -> Response {
    let Some(bank) = bank(&app, &params) else {
        return no_bank();
    };
    let faults = bank.faults();
    Json(json!({ "config": faults.config(), "injected": faults.injected })).into_response()
}

async fn put_faults(State(app): State<Arc<App>>, params: Params, body: Body) -> Response {
    let Some(bank) = bank(&app, &params) else {
        return no_bank();
    };
    let Some(bytes) = read_body(body).await else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "body too large");
    };
    let config: FaultConfig = match crate::web::json::from_slice(&bytes) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_faults", &e.to_string()),
    };
    if let Err(message) = config.validate() {
        return error(StatusCode::BAD_REQUEST, "invalid_faults", &message);
    }
    bank.faults().set(config.clone());
    tracing::info!(bank = bank.id(), ?config, "faults set");
    Json(json!({ "config": config })).into_response()
}

async fn clear_faults(State(app): State<Arc<App>>, params: Params) -> Response {
    let Some(bank) = bank(&app, &params) else {
        return no_bank();
    };
    bank.faults().set(FaultConfig::default());
    StatusCode::NO_CONTENT.into_response()
}

async fn bank_payments(State(app): State<Arc<App>>, params: Params) -> Response {
    let Some(bank) = bank(&app, &params) else {
        return no_bank();
    };
    Json(report::payment_records(bank)).into_response()
}

async fn bank_accounts(State(app): State<Arc<App>>, params: Params) -> Response {
    let Some(bank) = bank(&app, &params) else {
        return no_bank();
    };
    Json(report::accounts(bank)).into_response()
}

/// Outcome of an admin action on a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAction {
    Expire,
    Revoke,
}

/// Expires or revokes a consent of either standard; false if the bank has no such consent.
pub fn change_consent(bank: &Bank, consent_id: &str, action: ConsentAction) -> bool {
    let now = bank.now();
    let mut state = bank.lock();
    if let Some(consent) = state.consents.get_mut(consent_id) {
        consent.status = match action {
            ConsentAction::Expire => ConsentStatus::Expired,
            ConsentAction::Revoke => ConsentStatus::RevokedByPsu,
        };
        consent.last_action = now.date();
        return true;
    }
    if let Some(consent) = state.uk_account_consents.get_mut(consent_id) {
        match action {
            // UK consents have no `Expired` status: expiry is the ExpirationDateTime passing.
            ConsentAction::Expire => consent.expiration = Some(now),
            ConsentAction::Revoke => {
                consent.status = UkConsentStatus::Revoked;
                consent.status_updated_at = now;
            }
        }
        return true;
    }
    false
}

async fn expire_consent(State(app): State<Arc<App>>, params: Params) -> Response {
    consent_action(&app, &params, ConsentAction::Expire)
}

async fn revoke_consent(State(app): State<Arc<App>>, params: Params) -> Response {
    consent_action(&app, &params, ConsentAction::Revoke)
}

fn consent_action(app: &App, params: &Params, action: ConsentAction) -> Response {
    let Some(bank) = bank(app, params) else {
        return no_bank();
    };
    if change_consent(bank, params.get(1), action) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "consent_not_found",
            "no consent with this id at this bank",
        )
    }
}

/// Optional body of an admin approval: the PSU, for redirect authorisations nobody logged into.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    psu: Option<String>,
}

/// Approves or rejects an authorisation as its PSU would; returns the outcome or why not.
pub fn decide(
    bank: &Bank,
    authorisation_id: &str,
    approve: bool,
    psu: Option<&str>,
) -> Result<flows::Outcome, String> {
    let now = bank.now();
    let mut state = bank.lock();
    let Some(auth) = state.authorisations.get(authorisation_id) else {
        return Err("no authorisation with this id".into());
    };
    if auth.status.is_final() {
        return Err(format!(
            "the authorisation is already {}",
            auth.status.as_str()
        ));
    }
    if !approve {
        return Ok(flows::fail(
            &mut state,
            authorisation_id,
            now,
            "Rejected by the customer.",
        ));
    }
    if auth.psu.is_none() {
        let user = psu
            .and_then(crate::data::users::find)
            .filter(|u| state.book_of(u.username).is_some());
        let Some(user) = user else {
            return Err("name the approving customer: {\"psu\": \"alice\"}".into());
        };
        if let Some(a) = state.authorisations.get_mut(authorisation_id) {
            a.psu = Some(user.username);
        }
    }
    Ok(flows::finalise(&mut state, authorisation_id, now, None))
}

async fn approve(State(app): State<Arc<App>>, params: Params, body: Body) -> Response {
    decision(&app, &params, body, true).await
}

async fn reject(State(app): State<Arc<App>>, params: Params, body: Body) -> Response {
    decision(&app, &params, body, false).await
}

async fn decision(app: &App, params: &Params, body: Body, approve: bool) -> Response {
    let Some(bank) = bank(app, params) else {
        return no_bank();
    };
    let bytes = read_body(body).await.unwrap_or_default();
    let approval: Approval = if bytes.iter().all(u8::is_ascii_whitespace) {
        Approval::default()
    } else {
        match crate::web::json::from_slice(&bytes) {
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_body", &e.to_string()),
        }
    };
    match decide(bank, params.get(1), approve, approval.psu.as_deref()) {
        Ok(outcome) => Json(json!({ "success": outcome.success, "redirect": outcome.redirect, "message": outcome.message })).into_response(),
        Err(message) => error(StatusCode::CONFLICT, "not_possible", &message),
    }
}
