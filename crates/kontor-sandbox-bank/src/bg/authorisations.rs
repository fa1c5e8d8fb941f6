//! Authorisation sub-resources of consents and payments (`…/authorisations`): start an SCA
//! (redirect or decoupled), list them, read their `scaStatus`. The embedded approach is not
//! offered, so `PUT` with PSU data is refused.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::{BgError, BgResult, Service};
use super::headers::read;
use super::sca::{choose_approach, links_from, new_authorisation, set_header};
use super::wire::{AuthorisationList, ScaStatusResponse, StartScaProcess};
use crate::state::Bank;
use crate::state::consent::ConsentStatus;
use crate::state::sca::{AuthTarget, ScaApproach};
use crate::web::extract::{Params, read_body};

/// Refuses embedded-approach data in a start or update body.
fn check_body(headers: &HeaderMap, body: &[u8], service: Service) -> BgResult<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let value: serde_json::Value =
        super::headers::json_body(headers, &axum::body::Bytes::copy_from_slice(body), service)?;
    // The spec's body is `oneOf [{}, …]`: `null`, like an empty body, carries no PSU data.
    if value.is_null() {
        return Ok(());
    }
    let Some(object) = value.as_object() else {
        return Err(BgError::format(service, "body must be a JSON object"));
    };
    if [
        "psuData",
        "authenticationMethodId",
        "scaAuthenticationData",
        "confirmationCode",
    ]
    .iter()
    .any(|k| object.contains_key(*k))
    {
        return Err(BgError::new(
            service,
            StatusCode::BAD_REQUEST,
            "SERVICE_INVALID",
            "this bank offers redirect and decoupled SCA only, not the embedded approach",
        ));
    }
    Ok(())
}

fn consent_not_found() -> BgError {
    BgError::new(
        Service::Ais,
        StatusCode::FORBIDDEN,
        "CONSENT_UNKNOWN",
        "no such consent",
    )
}

fn payment_not_found() -> BgError {
    BgError::new(
        Service::Pis,
        StatusCode::NOT_FOUND,
        "RESOURCE_UNKNOWN",
        "no such payment",
    )
}

fn started(
    bank: &Bank,
    status_url: String,
    auth_id: String,
    approach: ScaApproach,
    sca_status: &'static str,
) -> Response {
    let mut list = vec![("scaStatus", status_url)];
    let mut psu_message = None;
    match approach {
        ScaApproach::Redirect => list.push(("scaRedirect", bank.sca_page_url(&auth_id))),
        ScaApproach::Decoupled => {
            psu_message = Some(format!(
                "Please approve this request in your {} app.",
                bank.config.name
            ));
        }
    }
    let body = StartScaProcess {
        sca_status,
        authorisation_id: auth_id,
        links: links_from(list),
        psu_message,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    set_header(&mut response, "aspsp-sca-approach", approach.header());
    response
}

pub async fn start_for_consent(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    body: Body,
) -> BgResult<Response> {
    let service = Service::Ais;
    let tpp = read(&headers, service)?;
    let body = read_body(body)
        .await
        .ok_or_else(|| BgError::format(service, "body too large"))?;
    check_body(&headers, &body, service)?;
    let consent_id = params.get(0).to_string();
    let now = bank.now();
    let mut state = bank.lock();
    let consent = state
        .consents
        .get(&consent_id)
        .ok_or_else(consent_not_found)?;
    if consent.status != ConsentStatus::Received {
        return Err(BgError::new(
            service,
            StatusCode::CONFLICT,
            "STATUS_INVALID",
            format!("the consent is {}", consent.status.as_str()),
        ));
    }
    let fallback = (consent.redirect_ok.clone(), consent.redirect_nok.clone());
    let bank_offered = consent.requested.is_bank_offered();
    let mut tpp = tpp;
    if tpp.redirect_uri.is_none() {
        tpp.redirect_uri.clone_from(&fallback.0);
    }
    let approach = choose_approach(&tpp, &state, service)?;
    let auth_id = new_authorisation(
        &mut state,
        AuthTarget::BgConsent(consent_id.clone()),
        approach,
        &tpp,
        fallback,
        now,
    );
    let status = match state.authorisations.get_mut(&auth_id) {
        Some(auth) => {
            auth.choose_accounts = bank_offered;
            auth.status.as_str()
        }
        None => "received",
    };
    if let Some(consent) = state.consents.get_mut(&consent_id) {
        consent.authorisations.push(auth_id.clone());
    }
    drop(state);
    let status_url = bank.url(&format!(
        "/v1/consents/{consent_id}/authorisations/{auth_id}"
    ));
    Ok(started(&bank, status_url, auth_id, approach, status))
}

pub async fn list_for_consent(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, Service::Ais)?;
    let state = bank.lock();
    let consent = state
        .consents
        .get(params.get(0))
        .ok_or_else(consent_not_found)?;
    Ok(Json(AuthorisationList {
        authorisation_ids: consent.authorisations.clone(),
    })
    .into_response())
}

pub async fn consent_sca_status(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, Service::Ais)?;
    let state = bank.lock();
    let consent = state
        .consents
        .get(params.get(0))
        .ok_or_else(consent_not_found)?;
    let auth_id = params.get(1);
    let auth = state
        .authorisations
        .get(auth_id)
        .filter(|_| consent.authorisations.iter().any(|a| a == auth_id))
        .ok_or_else(|| {
            BgError::new(
                Service::Ais,
                StatusCode::NOT_FOUND,
                "RESOURCE_UNKNOWN",
                "no such authorisation",
            )
        })?;
    Ok(Json(ScaStatusResponse {
        sca_status: auth.status.as_str(),
        psu_message: None,
    })
    .into_response())
}

/// Checks `/v1/{service}/{product}/{paymentId}` names an existing payment of that product.
pub fn payment_path_matches(state: &crate::state::BankState, params: &Params) -> BgResult<String> {
    let (service, product, id) = (params.get(0), params.get(1), params.get(2));
    let payment = state.payments.get(id).ok_or_else(payment_not_found)?;
    if service != "payments" || payment.product.as_str() != product {
        return Err(payment_not_found());
    }
    Ok(id.to_string())
}

pub async fn start_for_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    body: Body,
) -> BgResult<Response> {
    let service = Service::Pis;
    let tpp = read(&headers, service)?;
    let body = read_body(body)
        .await
        .ok_or_else(|| BgError::format(service, "body too large"))?;
    check_body(&headers, &body, service)?;
    let now = bank.now();
    let mut state = bank.lock();
    let payment_id = payment_path_matches(&state, &params)?;
    let Some(payment) = state.payments.get(&payment_id) else {
        return Err(payment_not_found());
    };
    let already_done = payment.authorisations.iter().any(|a| {
        state
            .authorisations
            .get(a)
            .is_some_and(|x| x.status == crate::state::sca::ScaStatus::Finalised)
    });
    if !payment.is_received() || already_done {
        return Err(BgError::new(
            service,
            StatusCode::CONFLICT,
            "STATUS_INVALID",
            "the payment is not waiting for authorisation",
        ));
    }
    let fallback = (payment.redirect_ok.clone(), payment.redirect_nok.clone());
    let mut tpp = tpp;
    if tpp.redirect_uri.is_none() {
        tpp.redirect_uri.clone_from(&fallback.0);
    }
    let approach = choose_approach(&tpp, &state, service)?;
    let auth_id = new_authorisation(
        &mut state,
        AuthTarget::BgPayment(payment_id.clone()),
        approach,
        &tpp,
        fallback,
        now,
    );
    let status = state
        .authorisations
        .get(&auth_id)
        .map_or("received", |a| a.status.as_str());
    if let Some(payment) = state.payments.get_mut(&payment_id) {
        payment.authorisations.push(auth_id.clone());
    }
    drop(state);
    let status_url = bank.url(&format!(
        "/v1/{}/{}/{payment_id}/authorisations/{auth_id}",
        params.get(0),
        params.get(1)
    ));
    Ok(started(&bank, status_url, auth_id, approach, status))
}

pub async fn list_for_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, Service::Pis)?;
    let state = bank.lock();
    let id = payment_path_matches(&state, &params)?;
    let ids = state
        .payments
        .get(&id)
        .map(|p| p.authorisations.clone())
        .unwrap_or_default();
    Ok(Json(AuthorisationList {
        authorisation_ids: ids,
    })
    .into_response())
}

pub async fn payment_sca_status(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, Service::Pis)?;
    let state = bank.lock();
    let id = payment_path_matches(&state, &params)?;
    let auth_id = params.get(3);
    let belongs = state
        .payments
        .get(&id)
        .is_some_and(|p| p.authorisations.iter().any(|a| a == auth_id));
    let auth = state
        .authorisations
        .get(auth_id)
        .filter(|_| belongs)
        .ok_or_else(|| {
            BgError::new(
                Service::Pis,
                StatusCode::NOT_FOUND,
                "RESOURCE_UNKNOWN",
                "no such authorisation",
            )
        })?;
    Ok(Json(ScaStatusResponse {
        sca_status: auth.status.as_str(),
        psu_message: None,
    })
    .into_response())
}

/// `PUT …/authorisations/{id}` carries embedded-approach data, which this bank does not offer.
pub async fn update_psu_data(headers: HeaderMap, params: Params) -> BgError {
    let service = if params.0.len() > 2 {
        Service::Pis
    } else {
        Service::Ais
    };
    if let Err(error) = read(&headers, service) {
        return error;
    }
    BgError::new(
        service,
        StatusCode::BAD_REQUEST,
        "SERVICE_INVALID",
        "this bank offers redirect and decoupled SCA only; there is no PSU data to update",
    )
}
