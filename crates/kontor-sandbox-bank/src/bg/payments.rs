//! `POST /v1/payments/{sepa-credit-transfers|instant-sepa-credit-transfers}` and the payment
//! resource: initiation, status, information and cancellation.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::authorisations::payment_path_matches;
use super::error::{BgError, BgResult, Service};
use super::headers::{json_body, read};
use super::request_ids;
use super::sca::{approach_of, choose_approach, links_from, new_authorisation, set_header};
use super::wire::{
    AccountReference, Amount, PaymentCreated, PaymentInitiation, PaymentStatusResponse,
    PaymentWithStatus,
};
use crate::config::Standard;
use crate::core::{iban, money};
use crate::state::payment::{CreditorAccount, Payment, PaymentProduct};
use crate::state::sca::{AuthTarget, ScaApproach};
use crate::state::uk::IdempotentOp;
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, read_body};

const SERVICE: Service = Service::Pis;
/// SCT Inst scheme limit per payment (EUR 100,000.00).
const INSTANT_LIMIT: i64 = 10_000_000;

fn product_of(service: &str, product: &str) -> BgResult<PaymentProduct> {
    match service {
        "payments" => {}
        "bulk-payments" | "periodic-payments" => {
            return Err(BgError::new(
                SERVICE,
                StatusCode::BAD_REQUEST,
                "SERVICE_INVALID",
                format!("{service} are not offered by this bank"),
            ));
        }
        _ => {
            return Err(BgError::new(
                SERVICE,
                StatusCode::NOT_FOUND,
                "RESOURCE_UNKNOWN",
                "no such endpoint at this bank",
            ));
        }
    }
    match product {
        "sepa-credit-transfers" => Ok(PaymentProduct::SepaCreditTransfers),
        "instant-sepa-credit-transfers" => Ok(PaymentProduct::InstantSepaCreditTransfers),
        _ => Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "PRODUCT_UNKNOWN",
            format!("payment product {product} is not supported by this bank"),
        )),
    }
}

fn validate(
    request: &PaymentInitiation,
    state: &BankState,
    product: PaymentProduct,
) -> BgResult<(i64, (usize, usize))> {
    let debtor = request.debtor_account.iban.as_deref().ok_or_else(|| {
        BgError::format(SERVICE, "debtorAccount.iban is required").at_path("debtorAccount")
    })?;
    if !iban::is_valid(debtor) {
        return Err(
            BgError::format(SERVICE, "debtorAccount.iban is not a valid IBAN")
                .at_path("debtorAccount.iban"),
        );
    }
    let location = state.find_by_identifier(debtor).ok_or_else(|| {
        BgError::format(SERVICE, "debtorAccount is not an account at this bank")
            .at_path("debtorAccount.iban")
    })?;
    let creditor = request.creditor_account.iban.as_deref().ok_or_else(|| {
        BgError::format(SERVICE, "creditorAccount.iban is required").at_path("creditorAccount")
    })?;
    if !iban::is_valid(creditor) {
        return Err(
            BgError::format(SERVICE, "creditorAccount.iban is not a valid IBAN")
                .at_path("creditorAccount.iban"),
        );
    }
    if request.instructed_amount.currency != "EUR" {
        return Err(BgError::format(SERVICE, "SEPA payments are in EUR")
            .at_path("instructedAmount.currency"));
    }
    let amount = money::parse_minor(&request.instructed_amount.amount).map_err(|e| {
        BgError::format(SERVICE, format!("instructedAmount.amount: {e}"))
            .at_path("instructedAmount.amount")
    })?;
    if amount <= 0 {
        return Err(
            BgError::format(SERVICE, "instructedAmount.amount must be positive")
                .at_path("instructedAmount.amount"),
        );
    }
    if product == PaymentProduct::InstantSepaCreditTransfers && amount > INSTANT_LIMIT {
        return Err(
            BgError::format(SERVICE, "instant payments are limited to EUR 100000.00")
                .at_path("instructedAmount.amount"),
        );
    }
    let name = request.creditor_name.trim();
    if name.is_empty() || name.chars().count() > 70 {
        return Err(
            BgError::format(SERVICE, "creditorName must be 1..70 characters")
                .at_path("creditorName"),
        );
    }
    if request
        .remittance_information_unstructured
        .as_ref()
        .is_some_and(|r| r.chars().count() > 140)
    {
        return Err(BgError::format(
            SERVICE,
            "remittanceInformationUnstructured is at most 140 characters",
        )
        .at_path("remittanceInformationUnstructured"));
    }
    if request
        .end_to_end_identification
        .as_ref()
        .is_some_and(|e| e.chars().count() > 35)
    {
        return Err(
            BgError::format(SERVICE, "endToEndIdentification is at most 35 characters")
                .at_path("endToEndIdentification"),
        );
    }
    Ok((amount, location))
}

fn created(
    bank: &Bank,
    payment: &Payment,
    approach: ScaApproach,
    now: time::OffsetDateTime,
) -> Response {
    let path = format!("/v1/payments/{}/{}", payment.product.as_str(), payment.id);
    let mut list = vec![
        ("self", bank.url(&path)),
        ("status", bank.url(&format!("{path}/status"))),
    ];
    let mut psu_message = None;
    match payment.authorisations.first() {
        None => list.push((
            "startAuthorisation",
            bank.url(&format!("{path}/authorisations")),
        )),
        Some(auth_id) => {
            list.push((
                "scaStatus",
                bank.url(&format!("{path}/authorisations/{auth_id}")),
            ));
            match approach {
                ScaApproach::Redirect => list.push(("scaRedirect", bank.sca_page_url(auth_id))),
                ScaApproach::Decoupled => {
                    psu_message = Some(format!(
                        "Please approve this payment in your {} app.",
                        bank.config.name
                    ));
                }
            }
        }
    }
    let body = PaymentCreated {
        transaction_status: payment.status_at(now).iso(),
        payment_id: payment.id.clone(),
        links: links_from(list),
        psu_message,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    set_header(&mut response, "location", &bank.url(&path));
    set_header(&mut response, "aspsp-sca-approach", approach.header());
    response
}

pub async fn initiate(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    body: Body,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    let product = product_of(params.get(0), params.get(1))?;
    tpp.require_psu_ip(SERVICE)?;
    let body = read_body(body)
        .await
        .ok_or_else(|| BgError::format(SERVICE, "body too large"))?;
    let request: PaymentInitiation = json_body(&headers, &body, SERVICE)?;
    let asked = json!({
        "paymentService": params.get(0),
        "paymentProduct": params.get(1),
        "body": serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
    });
    let now = bank.now();
    let mut state = bank.lock();
    // A retried initiation (same X-Request-ID and request within 24 h) returns the payment it
    // created instead of creating a second one; the same id on another request is refused.
    if let Some(id) = request_ids::earlier(
        &state,
        IdempotentOp::BgPayment,
        &tpp.request_id,
        &asked,
        now,
        SERVICE,
    )? && let Some(existing) = state.payments.get(&id)
    {
        let approach = approach_of(&state, &existing.authorisations, &tpp, SERVICE);
        return Ok(created(&bank, existing, approach, now));
    }
    let (amount, debtor) = validate(&request, &state, product)?;
    if tpp.rejection_no_funds == Some(true)
        && state
            .books
            .get(debtor.0)
            .is_some_and(|b| b.balances(debtor.1, now).available < amount)
    {
        return Err(BgError::new(
            SERVICE,
            StatusCode::BAD_REQUEST,
            "PAYMENT_FAILED",
            "insufficient funds on the debtor account",
        ));
    }
    let approach = choose_approach(&tpp, &state, SERVICE)?;
    let id = state.next_id("pmt-");
    let creditor = CreditorAccount {
        scheme: "iban".into(),
        identification: request.creditor_account.iban.clone().unwrap_or_default(),
        name: request.creditor_name.trim().to_string(),
    };
    let raw = serde_json::to_value(&request).unwrap_or_default();
    let mut payment = Payment::new(
        id.clone(),
        Standard::BerlinGroup,
        product,
        creditor,
        amount,
        "EUR".into(),
        raw,
        now,
    );
    payment.debtor = Some(debtor);
    payment.debtor_iban.clone_from(&request.debtor_account.iban);
    payment
        .remittance
        .clone_from(&request.remittance_information_unstructured);
    payment
        .end_to_end_id
        .clone_from(&request.end_to_end_identification);
    payment.idempotency_key = Some(tpp.request_id.clone());
    payment.redirect_ok.clone_from(&tpp.redirect_uri);
    payment.redirect_nok.clone_from(&tpp.nok_redirect_uri);
    if tpp.explicit_authorisation != Some(true) {
        let auth_id = new_authorisation(
            &mut state,
            AuthTarget::BgPayment(id.clone()),
            approach,
            &tpp,
            (None, None),
            now,
        );
        payment.authorisations.push(auth_id);
    }
    let response = created(&bank, &payment, approach, now);
    state.payments.insert(id.clone(), payment);
    request_ids::remember(
        &mut state,
        IdempotentOp::BgPayment,
        &tpp.request_id,
        asked,
        id,
        now,
    );
    Ok(response)
}

pub async fn read_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, SERVICE)?;
    let now = bank.now();
    let state = bank.lock();
    let id = payment_path_matches(&state, &params)?;
    let Some(p) = state.payments.get(&id) else {
        return Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such payment",
        ));
    };
    let request: Option<PaymentInitiation> = serde_json::from_value(p.request.clone()).ok();
    let body = PaymentWithStatus {
        end_to_end_identification: p.end_to_end_id.clone(),
        debtor_account: AccountReference::iban(p.debtor_iban.as_deref().unwrap_or_default(), None),
        instructed_amount: Amount {
            currency: p.currency.clone(),
            amount: money::format_unsigned(p.amount),
        },
        creditor_account: AccountReference::iban(&p.creditor.identification, None),
        creditor_agent: request.as_ref().and_then(|r| r.creditor_agent.clone()),
        creditor_name: p.creditor.name.clone(),
        creditor_address: request.and_then(|r| r.creditor_address),
        remittance_information_unstructured: p.remittance.clone(),
        transaction_status: p.status_at(now).iso(),
    };
    Ok(Json(body).into_response())
}

pub use read_payment as read_route;

pub async fn status(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, SERVICE)?;
    let now = bank.now();
    let state = bank.lock();
    let id = payment_path_matches(&state, &params)?;
    let Some(p) = state.payments.get(&id) else {
        return Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such payment",
        ));
    };
    let status = p.status_at(now);
    // The spec's `fundsAvailable`: true once the funds were there, false for a payment
    // rejected for the lack of them, absent while not checked.
    let funds_available = if p.executed() {
        Some(true)
    } else {
        p.lacked_funds.then_some(false)
    };
    Ok(Json(PaymentStatusResponse {
        transaction_status: status.iso(),
        funds_available,
    })
    .into_response())
}

pub async fn cancel(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, SERVICE)?;
    let now = bank.now();
    let mut state = bank.lock();
    let id = payment_path_matches(&state, &params)?;
    let Some(p) = state.payments.get_mut(&id) else {
        return Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such payment",
        ));
    };
    if !p.is_received() {
        // Authorised already: a SEPA credit transfer waiting for its settlement cycle may still
        // be stopped (the spec leaves the timeline to the bank), an instant one or a settled
        // one not.
        if state.cancel_accepted_payment(&id, now) {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let mut error = BgError::new(
            SERVICE,
            StatusCode::METHOD_NOT_ALLOWED,
            "CANCELLATION_INVALID",
            "the payment can no longer be cancelled",
        );
        // RFC 9110 (15.5.6): a 405 lists the methods the resource supports now; DELETE is no
        // longer one of them.
        error.allow = Some("GET,HEAD");
        return Err(error);
    }
    p.cancel(now);
    let auths = p.authorisations.clone();
    for auth_id in auths {
        if let Some(auth) = state.authorisations.get_mut(&auth_id)
            && !auth.status.is_final()
        {
            auth.status = crate::state::sca::ScaStatus::Failed;
            auth.step = crate::state::sca::Step::Done;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
