//! `/account-access-consents`: create (client-credentials token), read and delete (revoke).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AISP;
use super::auth::{check_fapi_headers, client_token, json_body};
use super::error::{UkError, UkResult};
use super::wire::{Links, Meta, ReadConsentRequest, ReadConsentResponse, ReadConsentResponseData};
use crate::core::dates::timestamp;
use crate::state::Bank;
use crate::state::uk::{UkAccountConsent, UkConsentStatus};
use crate::web::extract::{Params, read_body};

/// The permission codes of `OBReadConsent1` (the sandbox serves accounts, balances and
/// transactions; the others are accepted and simply have no endpoint here).
const PERMISSIONS: [&str; 21] = [
    "ReadAccountsBasic",
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadBeneficiariesBasic",
    "ReadBeneficiariesDetail",
    "ReadDirectDebits",
    "ReadOffers",
    "ReadPAN",
    "ReadParty",
    "ReadPartyPSU",
    "ReadProducts",
    "ReadScheduledPaymentsBasic",
    "ReadScheduledPaymentsDetail",
    "ReadStandingOrdersBasic",
    "ReadStandingOrdersDetail",
    "ReadStatementsBasic",
    "ReadStatementsDetail",
    "ReadTransactionsBasic",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
    "ReadTransactionsDetail",
];

fn date_time(text: Option<&String>, path: &str) -> UkResult<Option<OffsetDateTime>> {
    text.map(|t| {
        OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            UkError::bad_request(
                "UK.OBIE.Field.InvalidDate",
                format!("{path} must be an ISO 8601 date-time with a timezone"),
            )
            .at(path)
        })
    })
    .transpose()
}

pub fn response(bank: &Bank, c: &UkAccountConsent) -> ReadConsentResponse {
    ReadConsentResponse {
        data: ReadConsentResponseData {
            consent_id: c.id.clone(),
            creation_date_time: timestamp(c.created_at),
            status: c.status.as_str(),
            status_update_date_time: timestamp(c.status_updated_at),
            permissions: c.permissions.clone(),
            expiration_date_time: c.expiration.map(timestamp),
            transaction_from_date_time: c.transaction_from.map(timestamp),
            transaction_to_date_time: c.transaction_to.map(timestamp),
        },
        risk: serde_json::Map::new(),
        links: Links::only(bank.url(&format!("{AISP}/account-access-consents/{}", c.id))),
        meta: Meta::one_page(),
    }
}

pub async fn create(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Body,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let client_id = client_token(&bank.lock(), &headers, "accounts", now)?;
    let body = read_body(body)
        .await
        .ok_or_else(|| UkError::bad_request("UK.OBIE.Field.Invalid", "body too large"))?;
    let request: ReadConsentRequest = json_body(&headers, &body)?;
    let permissions = request.data.permissions;
    if permissions.is_empty() {
        return Err(
            UkError::bad_request("UK.OBIE.Field.Missing", "Permissions must not be empty")
                .at("Data.Permissions"),
        );
    }
    if let Some(unknown) = permissions
        .iter()
        .find(|p| !PERMISSIONS.contains(&p.as_str()))
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.Invalid",
            format!("unknown permission {unknown}"),
        )
        .at("Data.Permissions"));
    }
    let has = |p: &str| permissions.iter().any(|x| x == p);
    let detail_or_basic = has("ReadTransactionsBasic") || has("ReadTransactionsDetail");
    let credit_or_debit = has("ReadTransactionsCredits") || has("ReadTransactionsDebits");
    if detail_or_basic != credit_or_debit {
        // The spec's permission rules: Basic/Detail go with Credits and/or Debits.
        return Err(UkError::bad_request("UK.OBIE.Field.Invalid", "ReadTransactionsBasic/Detail must come with ReadTransactionsCredits and/or ReadTransactionsDebits").at("Data.Permissions"));
    }
    if !request.risk.is_empty() {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.Unexpected",
            "Risk must be an empty object for account access",
        )
        .at("Risk"));
    }
    let expiration = date_time(
        request.data.expiration_date_time.as_ref(),
        "Data.ExpirationDateTime",
    )?;
    if expiration.is_some_and(|e| e <= now) {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.InvalidDate",
            "ExpirationDateTime is in the past",
        )
        .at("Data.ExpirationDateTime"));
    }
    let from = date_time(
        request.data.transaction_from_date_time.as_ref(),
        "Data.TransactionFromDateTime",
    )?;
    let to = date_time(
        request.data.transaction_to_date_time.as_ref(),
        "Data.TransactionToDateTime",
    )?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.InvalidDate",
            "TransactionFromDateTime is after TransactionToDateTime",
        )
        .at("Data.TransactionFromDateTime"));
    }
    let mut unique = Vec::new();
    for p in permissions {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    let mut state = bank.lock();
    let id = state.next_id("aac-");
    let consent = UkAccountConsent {
        id: id.clone(),
        client_id,
        permissions: unique,
        expiration,
        transaction_from: from,
        transaction_to: to,
        status: UkConsentStatus::AwaitingAuthorisation,
        created_at: now,
        status_updated_at: now,
        psu: None,
        accounts: Vec::new(),
    };
    let body = response(&bank, &consent);
    state.uk_account_consents.insert(id, consent);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn owned_consent<'a>(
    state: &'a crate::state::BankState,
    id: &str,
    client_id: &str,
) -> UkResult<&'a UkAccountConsent> {
    state
        .uk_account_consents
        .get(id)
        .filter(|c| c.client_id == client_id)
        .ok_or_else(|| {
            UkError::bad_request(
                "UK.OBIE.Resource.NotFound",
                "no account-access consent with this id",
            )
            .at("ConsentId")
        })
}

pub async fn read(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let state = bank.lock();
    let client_id = client_token(&state, &headers, "accounts", now)?;
    let consent = owned_consent(&state, params.get(0), &client_id)?;
    Ok(Json(response(&bank, consent)).into_response())
}

pub async fn delete(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let client_id = client_token(&state, &headers, "accounts", now)?;
    owned_consent(&state, params.get(0), &client_id)?;
    if let Some(consent) = state.uk_account_consents.get_mut(params.get(0))
        && consent.status != UkConsentStatus::Revoked
    {
        consent.status = UkConsentStatus::Revoked;
        consent.status_updated_at = now;
    }
    // Tokens issued under a revoked consent stop working at once.
    let id = params.get(0).to_string();
    state.refresh_tokens.retain(|_, r| r.consent_id != id);
    Ok(StatusCode::NO_CONTENT.into_response())
}
