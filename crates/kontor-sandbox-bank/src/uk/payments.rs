//! PISP: domestic-payment consents (client token) and domestic payments (the PSU's token),
//! with `x-idempotency-key` semantics: the same key within 24 hours returns the resource it
//! created, with 201, and a different body under that key changes nothing.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::PISP;
use super::auth::{
    check_fapi_headers, client_token, idempotency_key, json_body, jws_signature, psu_token,
};
use super::error::{UkError, UkResult};
use super::payment_consents::{
    check_risk, consent_not_found, debtor_json, invalid, reads_refund_account, replay,
};
use super::wire::{DomesticRequest, Links, Meta};
use crate::config::Standard;
use crate::core::dates::timestamp;
use crate::state::payment::{CreditorAccount, Payment, PaymentProduct};
use crate::state::uk::{IdempotencyRecord, IdempotentOp, UkConsentStatus};
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, read_body};

pub(super) const IDEMPOTENCY_WINDOW: Duration = Duration::hours(24);

fn payment_body(bank: &Bank, state: &BankState, p: &Payment, now: OffsetDateTime) -> Value {
    let status = p.status_at(now);
    let mut data = json!({
        "DomesticPaymentId": p.id,
        "ConsentId": p.uk_consent_id.clone().unwrap_or_default(),
        "CreationDateTime": timestamp(p.created_at),
        "Status": status.uk(),
        "StatusUpdateDateTime": timestamp(p.status_changed_at(now)),
        "Initiation": p.request.get("Initiation").cloned().unwrap_or(Value::Null),
    });
    if let Some(settles) = p.settles_at() {
        data["ExpectedExecutionDateTime"] = json!(timestamp(p.created_at));
        data["ExpectedSettlementDateTime"] = json!(timestamp(settles));
    }
    let refund_asked = p
        .uk_consent_id
        .as_ref()
        .and_then(|c| state.uk_payment_consents.get(c))
        .is_some_and(reads_refund_account);
    if refund_asked && let Some(debtor) = debtor_json(state, p.debtor) {
        data["Refund"] = json!({ "Account": debtor });
        data["Debtor"] = debtor;
    }
    json!({ "Data": data, "Links": Links::only(bank.url(&format!("{PISP}/domestic-payments/{}", p.id))), "Meta": Meta::one_page() })
}

pub async fn create_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Body,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let (client, token_consent) = psu_token(&bank.lock(), &headers, "payments", now)?;
    let key = idempotency_key(&headers)?;
    jws_signature(&headers)?;
    let bytes = read_body(body)
        .await
        .ok_or_else(|| invalid("Data", "body too large"))?;
    let mut state = bank.lock();
    if let Some(id) = replay(&state, &client, IdempotentOp::Payment, &key, now)
        && let Some(existing) = state.payments.get(&id)
    {
        return Ok((
            StatusCode::CREATED,
            Json(payment_body(&bank, &state, existing, now)),
        )
            .into_response());
    }
    let request: DomesticRequest = json_body(&headers, &bytes)?;
    let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if request.data.consent_id != token_consent {
        return Err(UkError::bad_request(
            "UK.OBIE.Resource.ConsentMismatch",
            "Data.ConsentId is not the consent of this access token",
        )
        .at("Data.ConsentId"));
    }
    let consent = state
        .uk_payment_consents
        .get(&token_consent)
        .cloned()
        .ok_or_else(consent_not_found)?;
    if consent.status != UkConsentStatus::Authorised {
        return Err(UkError::forbidden(
            "UK.OBIE.Resource.InvalidConsentStatus",
            format!("the consent is {}", consent.status.as_str()),
        ));
    }
    // The spec: Initiation and Risk must repeat the consent's exactly.
    if raw.pointer("/Data/Initiation") != Some(&consent.initiation)
        || raw.get("Risk") != Some(&consent.risk)
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Resource.ConsentMismatch",
            "Initiation and Risk must match the consent",
        )
        .at("Data.Initiation"));
    }
    check_risk(&request.risk)?;
    let init = &request.data.initiation;
    let creditor = CreditorAccount {
        scheme: init.creditor_account.scheme_name.clone(),
        identification: init.creditor_account.identification.clone(),
        name: init.creditor_account.name.clone().unwrap_or_default(),
    };
    let id = state.next_id("dp-");
    let mut payment = Payment::new(
        id.clone(),
        Standard::UkOpenBanking,
        PaymentProduct::UkDomestic,
        creditor,
        consent.amount,
        consent.currency.clone(),
        json!({ "Initiation": consent.initiation }),
        now,
    );
    payment.debtor = consent.debtor;
    payment.psu = consent.psu;
    payment.instant = consent.instant;
    payment.idempotency_key = Some(key.clone());
    payment.uk_consent_id = Some(consent.id.clone());
    payment.end_to_end_id = Some(init.end_to_end_identification.clone());
    payment.remittance = init
        .remittance_information
        .as_ref()
        .and_then(|r| r.reference.clone().or_else(|| r.unstructured.clone()));
    state.payments.insert(id.clone(), payment);
    // Rejection for lack of funds is recorded on the payment (Status Rejected); it is still created.
    let _ = state.execute_payment(&id, now);
    if let Some(c) = state.uk_payment_consents.get_mut(&consent.id) {
        c.status = UkConsentStatus::Consumed;
        c.status_updated_at = now;
        c.payment_id = Some(id.clone());
    }
    state.idempotency.insert(
        (client, IdempotentOp::Payment, key),
        IdempotencyRecord {
            resource_id: id.clone(),
            created_at: now,
            request: None,
        },
    );
    let body = state
        .payments
        .get(&id)
        .map(|p| payment_body(&bank, &state, p, now))
        .unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The TPP's domestic payment with this id, checked against its client token.
fn owned_payment<'a>(
    state: &'a BankState,
    headers: &HeaderMap,
    id: &str,
    now: OffsetDateTime,
) -> UkResult<&'a Payment> {
    let client = client_token(state, headers, "payments", now)?;
    state
        .payments
        .get(id)
        .filter(|p| p.standard == Standard::UkOpenBanking)
        .filter(|p| {
            p.uk_consent_id
                .as_ref()
                .and_then(|c| state.uk_payment_consents.get(c))
                .is_some_and(|c| c.client_id == client)
        })
        .ok_or_else(|| {
            UkError::bad_request(
                "UK.OBIE.Resource.NotFound",
                "no domestic payment with this id",
            )
            .at("DomesticPaymentId")
        })
}

pub async fn read_payment(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let state = bank.lock();
    let payment = owned_payment(&state, &headers, params.get(0), now)?;
    Ok(Json(payment_body(&bank, &state, payment, now)).into_response())
}

/// `GET …/domestic-payments/{id}/payment-details`: the payment's status on the rail, with the
/// reason for a rejection (`StatusDetail`).
pub async fn read_payment_details(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let state = bank.lock();
    let p = owned_payment(&state, &headers, params.get(0), now)?;
    let status = p.status_at(now).uk();
    let mut entry = json!({
        "PaymentTransactionId": p.id,
        "Status": status,
        "StatusUpdateDateTime": timestamp(p.status_changed_at(now)),
    });
    if p.lacked_funds {
        entry["StatusDetail"] = json!({
            "Status": status,
            "StatusReason": "ProprietaryRejection",
            "StatusReasonDescription": "Insufficient funds on the debtor account",
        });
    }
    let path = format!("{PISP}/domestic-payments/{}/payment-details", p.id);
    let body = json!({
        "Data": { "PaymentStatus": [entry] },
        "Links": Links::only(bank.url(&path)),
        "Meta": Meta::one_page(),
    });
    Ok(Json(body).into_response())
}
