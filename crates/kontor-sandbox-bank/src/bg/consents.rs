//! `POST/GET/DELETE /v1/consents…`: AIS consents, with the checks a real bank applies
//! (frequencyPerDay 1..=4, validUntil capped to 180 days, IBANs known here).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use time::Duration;

use crate::core::dates::{format_date, parse_date};

use super::error::{BgError, BgResult, Service};
use super::headers::{TppHeaders, json_body, read};
use super::request_ids;
use super::sca::{approach_of, choose_approach, links_from, new_authorisation, set_header};
use super::wire::{
    AccountAccess, AccountReference, ConsentCreated, ConsentInformation, ConsentRequest,
    ConsentStatusResponse, links,
};
use crate::core::iban;
use crate::state::consent::{BgAccess, BgConsent, ConsentStatus, ListAccess};
use crate::state::sca::{AuthTarget, ScaApproach};
use crate::state::uk::IdempotentOp;
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, read_body};

const SERVICE: Service = Service::Ais;
/// Longest consent the sandbox grants: EU Reg. 2022/2360 renews AIS access without SCA for
/// 180 days, so `validUntil` beyond that (and `9999-12-31`) is shortened to it.
const MAX_VALIDITY_DAYS: i64 = 180;
const ACCESS_VALUES: [&str; 2] = ["allAccounts", "allAccountsWithOwnerName"];

fn ibans(
    list: Option<&Vec<AccountReference>>,
    field: &str,
    state: &BankState,
    currency: &str,
) -> BgResult<Vec<String>> {
    let mut out = Vec::new();
    for (i, reference) in list.into_iter().flatten().enumerate() {
        let path = format!("access.{field}[{i}]");
        let Some(iban) = reference.iban.as_deref() else {
            return Err(
                BgError::format(SERVICE, "this bank addresses accounts by iban only").at_path(path),
            );
        };
        if !iban::is_valid(iban) {
            return Err(
                BgError::format(SERVICE, format!("{iban} is not a valid IBAN")).at_path(path),
            );
        }
        if state.find_by_identifier(iban).is_none() {
            return Err(
                BgError::format(SERVICE, format!("{iban} is not an account at this bank"))
                    .at_path(path),
            );
        }
        if reference.currency.as_deref().is_some_and(|c| c != currency) {
            return Err(
                BgError::format(SERVICE, "currency does not match the account").at_path(path),
            );
        }
        out.push(iban.to_string());
    }
    Ok(out)
}

fn check_access_value(value: Option<&String>, field: &str) -> BgResult<Option<String>> {
    match value {
        Some(v) if !ACCESS_VALUES.contains(&v.as_str()) => Err(BgError::format(
            SERVICE,
            format!("{field} must be allAccounts or allAccountsWithOwnerName"),
        )
        .at_path(format!("access.{field}"))),
        other => Ok(other.cloned()),
    }
}

pub async fn create(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Body,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    tpp.require_psu_ip(SERVICE)?;
    let body = read_body(body)
        .await
        .ok_or_else(|| BgError::format(SERVICE, "body too large"))?;
    let request: ConsentRequest = json_body(&headers, &body, SERVICE)?;
    let asked = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let now = bank.now();
    let mut state = bank.lock();
    // A retried creation (same X-Request-ID and body within 24 h) answers the consent it
    // created; the same id on another body is refused.
    if let Some(id) = request_ids::earlier(
        &state,
        IdempotentOp::BgConsent,
        &tpp.request_id,
        &asked,
        now,
        SERVICE,
    )? && let Some(existing) = state.consents.get(&id)
    {
        let approach = approach_of(&state, &existing.authorisations, &tpp, SERVICE);
        return Ok(created(&bank, existing, approach));
    }
    if request.combined_service_indicator {
        return Err(BgError::new(
            SERVICE,
            StatusCode::BAD_REQUEST,
            "SESSIONS_NOT_SUPPORTED",
            "combined AIS/PIS sessions are not supported",
        ));
    }
    let max_frequency = if request.recurring_indicator { 4 } else { 1 };
    if !(1..=max_frequency).contains(&request.frequency_per_day) {
        return Err(BgError::format(
            SERVICE,
            format!("frequencyPerDay must be 1..={max_frequency} for this consent"),
        )
        .at_path("frequencyPerDay"));
    }
    let today = now.date();
    let valid_until = parse_date(&request.valid_until).ok_or_else(|| {
        BgError::format(SERVICE, "validUntil must be a date (YYYY-MM-DD)").at_path("validUntil")
    })?;
    if valid_until < today {
        return Err(BgError::format(SERVICE, "validUntil is in the past").at_path("validUntil"));
    }
    let valid_until = valid_until.min(today.saturating_add(Duration::days(MAX_VALIDITY_DAYS)));
    let currency = bank.config.currency.as_str();
    let access = &request.access;
    let requested = BgAccess {
        accounts: ibans(access.accounts.as_ref(), "accounts", &state, currency)?,
        balances: ibans(access.balances.as_ref(), "balances", &state, currency)?,
        transactions: ibans(
            access.transactions.as_ref(),
            "transactions",
            &state,
            currency,
        )?,
        available_accounts: check_access_value(
            access.available_accounts.as_ref(),
            "availableAccounts",
        )?,
        available_accounts_with_balance: check_access_value(
            access.available_accounts_with_balance.as_ref(),
            "availableAccountsWithBalance",
        )?,
        all_psd2: check_access_value(access.all_psd2.as_ref(), "allPsd2")?,
    };
    let global = requested.all_psd2.is_some()
        || requested.available_accounts.is_some()
        || requested.available_accounts_with_balance.is_some();
    if global && !requested.named_ibans().is_empty() {
        return Err(BgError::format(
            SERVICE,
            "allPsd2/availableAccounts cannot be combined with named accounts",
        )
        .at_path("access"));
    }
    let approach = choose_approach(&tpp, &state, SERVICE)?;
    let id = state.next_id("cns-");
    let mut consent = BgConsent {
        id: id.clone(),
        requested,
        recurring: request.recurring_indicator,
        valid_until,
        frequency_per_day: u32::try_from(request.frequency_per_day).unwrap_or(1),
        status: ConsentStatus::Received,
        psu: None,
        created_at: now,
        last_action: today,
        authorisations: Vec::new(),
        grants: Default::default(),
        list_access: ListAccess::default(),
        redirect_ok: tpp.redirect_uri.clone(),
        redirect_nok: tpp.nok_redirect_uri.clone(),
    };
    if tpp.explicit_authorisation != Some(true) {
        let bank_offered = consent.requested.is_bank_offered();
        let auth_id = new_authorisation(
            &mut state,
            AuthTarget::BgConsent(id.clone()),
            approach,
            &tpp,
            (None, None),
            now,
        );
        if let Some(auth) = state.authorisations.get_mut(&auth_id) {
            auth.choose_accounts = bank_offered;
        }
        consent.authorisations.push(auth_id);
    }
    let response = created(&bank, &consent, approach);
    state.consents.insert(id.clone(), consent);
    request_ids::remember(
        &mut state,
        IdempotentOp::BgConsent,
        &tpp.request_id,
        asked,
        id,
        now,
    );
    Ok(response)
}

/// The 201 answer for a consent: its links (`startAuthorisation` when the TPP asked to start
/// the authorisation explicitly, else the implicit one's), `Location` and `ASPSP-SCA-Approach`.
fn created(bank: &Bank, consent: &BgConsent, approach: ScaApproach) -> Response {
    let path = format!("/v1/consents/{}", consent.id);
    let self_url = bank.url(&path);
    let mut link_list = vec![
        ("self", self_url.clone()),
        ("status", bank.url(&format!("{path}/status"))),
    ];
    let mut psu_message = None;
    match consent.authorisations.first() {
        None => link_list.push((
            "startAuthorisation",
            bank.url(&format!("{path}/authorisations")),
        )),
        Some(auth_id) => {
            link_list.push((
                "scaStatus",
                bank.url(&format!("{path}/authorisations/{auth_id}")),
            ));
            match approach {
                ScaApproach::Redirect => {
                    link_list.push(("scaRedirect", bank.sca_page_url(auth_id)));
                }
                ScaApproach::Decoupled => {
                    psu_message = Some(format!(
                        "Please approve this request in your {} app.",
                        bank.config.name
                    ));
                }
            }
        }
    }
    let body = ConsentCreated {
        consent_status: consent.status.as_str(),
        consent_id: consent.id.clone(),
        links: links_from(link_list),
        psu_message,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    set_header(&mut response, "location", &self_url);
    set_header(&mut response, "aspsp-sca-approach", approach.header());
    response
}

fn unknown_consent() -> BgError {
    BgError::new(
        SERVICE,
        StatusCode::FORBIDDEN,
        "CONSENT_UNKNOWN",
        "no such consent",
    )
}

pub async fn read_consent(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read(&headers, SERVICE)?;
    let state = bank.lock();
    let consent = state
        .consents
        .get(params.get(0))
        .ok_or_else(unknown_consent)?;
    let iban_of = |rid: &String| {
        state.find_account(rid).and_then(|(u, a)| {
            state
                .books
                .get(u)?
                .accounts
                .get(a)
                .map(|acc| acc.iban.clone())
        })
    };
    let refs = |pick: fn(&crate::state::consent::Grant) -> bool| -> Option<Vec<AccountReference>> {
        let list: Vec<AccountReference> = consent
            .grants
            .iter()
            .filter(|(_, g)| pick(g))
            .filter_map(|(rid, _)| iban_of(rid))
            .map(|i| AccountReference::iban(&i, None))
            .collect();
        Some(list)
    };
    let req = &consent.requested;
    let named = |v: &Vec<String>| {
        (!v.is_empty()).then(|| v.iter().map(|i| AccountReference::iban(i, None)).collect())
    };
    let access = if req.is_bank_offered() && consent.status == ConsentStatus::Valid {
        AccountAccess {
            accounts: refs(|g| g.details),
            balances: refs(|g| g.balances),
            transactions: refs(|g| g.transactions),
            ..AccountAccess::default()
        }
    } else if req.is_bank_offered() {
        AccountAccess {
            accounts: Some(vec![]),
            balances: Some(vec![]),
            transactions: Some(vec![]),
            ..AccountAccess::default()
        }
    } else {
        AccountAccess {
            accounts: named(&req.accounts),
            balances: named(&req.balances),
            transactions: named(&req.transactions),
            available_accounts: req.available_accounts.clone(),
            available_accounts_with_balance: req.available_accounts_with_balance.clone(),
            all_psd2: req.all_psd2.clone(),
            ..AccountAccess::default()
        }
    };
    let body = ConsentInformation {
        access,
        recurring_indicator: consent.recurring,
        valid_until: format_date(consent.valid_until),
        frequency_per_day: consent.frequency_per_day,
        last_action_date: format_date(consent.last_action),
        consent_status: consent.status.as_str(),
        links: (consent.status == ConsentStatus::Valid)
            .then(|| links([("account", bank.url("/v1/accounts"))])),
    };
    Ok(Json(body).into_response())
}

pub async fn status(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read_headers(&headers)?;
    let state = bank.lock();
    let consent = state
        .consents
        .get(params.get(0))
        .ok_or_else(unknown_consent)?;
    Ok(Json(ConsentStatusResponse {
        consent_status: consent.status.as_str(),
    })
    .into_response())
}

fn read_headers(headers: &HeaderMap) -> BgResult<TppHeaders> {
    super::headers::read(headers, SERVICE)
}

pub async fn delete(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    read_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = state
        .consents
        .get_mut(params.get(0))
        .ok_or_else(unknown_consent)?;
    // Deleting an already ended consent changes nothing and is not an error: the TPP's goal
    // (no access) is reached either way.
    if matches!(
        consent.status,
        ConsentStatus::Received | ConsentStatus::Valid
    ) {
        consent.status = ConsentStatus::TerminatedByTpp;
        consent.last_action = now.date();
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
