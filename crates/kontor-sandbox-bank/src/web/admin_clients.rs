//! `/admin/banks/{bank}/clients`: UK client registrations in strict mode — what a bank's
//! dynamic client registration would record (client id, token endpoint authentication, signing
//! certificates, the TLS subject for `tls_client_auth`, directory ids, redirect URIs).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::admin::{error, no_bank};
use crate::app::App;
use crate::config::Standard;
use crate::state::Bank;
use crate::tpp::{TppGate, UkClient, UkClientRegistration};
use crate::web::extract::{Params, read_body};

/// Why there is no registry to work on.
enum NoRegistry {
    UnknownBank,
    NotUk,
    NotStrict,
}

impl NoRegistry {
    fn answer(self) -> Response {
        match self {
            Self::UnknownBank => no_bank(),
            Self::NotUk => error(
                StatusCode::BAD_REQUEST,
                "not_a_uk_bank",
                "client registrations exist at UK Open Banking banks only",
            ),
            Self::NotStrict => error(
                StatusCode::CONFLICT,
                "strict_mode_off",
                "client registrations need strict mode (--require-tpp-certificates)",
            ),
        }
    }
}

/// The bank and its strict-mode gate.
fn gate<'a>(
    app: &'a App,
    params: &Params,
) -> Result<(&'a Arc<Bank>, &'a Arc<TppGate>), NoRegistry> {
    let bank = app.bank(params.get(0)).ok_or(NoRegistry::UnknownBank)?;
    if bank.config.standard != Standard::UkOpenBanking {
        return Err(NoRegistry::NotUk);
    }
    let gate = bank.tpp.as_ref().ok_or(NoRegistry::NotStrict)?;
    Ok((bank, gate))
}

pub async fn list(State(app): State<Arc<App>>, params: Params) -> Response {
    let (bank, gate) = match gate(&app, &params) {
        Ok(found) => found,
        Err(why) => return why.answer(),
    };
    let registrations: Vec<UkClientRegistration> = gate
        .clients(bank.id())
        .into_iter()
        .map(|c| c.registration)
        .collect();
    Json(registrations).into_response()
}

pub async fn register(State(app): State<Arc<App>>, params: Params, body: Body) -> Response {
    let (bank, gate) = match gate(&app, &params) {
        Ok(found) => found,
        Err(why) => return why.answer(),
    };
    let Some(bytes) = read_body(body).await else {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "body too large");
    };
    let registration: UkClientRegistration = match crate::web::json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_registration",
                &e.to_string(),
            );
        }
    };
    match UkClient::from_registration(gate, registration) {
        Ok(client) => {
            let shown = client.registration.clone();
            tracing::info!(bank = bank.id(), client = %client.client_id, method = client.method.as_str(), "client registered");
            gate.register(bank.id(), client);
            (StatusCode::CREATED, Json(shown)).into_response()
        }
        Err(message) => error(StatusCode::BAD_REQUEST, "invalid_registration", &message),
    }
}

pub async fn remove(State(app): State<Arc<App>>, params: Params) -> Response {
    let (bank, gate) = match gate(&app, &params) {
        Ok(found) => found,
        Err(why) => return why.answer(),
    };
    if gate.unregister(bank.id(), params.get(1)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "client_not_found",
            "no client with this id at this bank",
        )
    }
}
