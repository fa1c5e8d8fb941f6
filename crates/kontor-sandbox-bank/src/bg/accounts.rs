//! `GET /v1/accounts…`: account list, details and balances under a valid consent, with the
//! daily allowance of reads without the PSU (`frequencyPerDay`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use time::{Duration, OffsetDateTime};

use super::error::{BgError, BgResult, Service};
use super::headers::{TppHeaders, check_accept, read};
use super::wire::{
    AccountDetails, AccountDetailsResponse, AccountList, AccountReference, Amount, Balance,
    BalancesResponse,
};
use crate::core::dates::{format_date, timestamp};
use crate::core::money::format_signed;
use crate::data::model::{Account, AccountKind};
use crate::state::consent::{BgConsent, ConsentStatus, Grant, ReadEndpoint};
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, field, form_pairs};

const SERVICE: Service = Service::Ais;

/// The consent named by `Consent-ID`, if it may be used for reading now.
pub fn usable_consent(state: &BankState, tpp: &TppHeaders) -> BgResult<BgConsent> {
    let id = tpp.require_consent_id()?;
    let consent = state.consents.get(id).ok_or_else(|| {
        BgError::new(
            SERVICE,
            StatusCode::FORBIDDEN,
            "CONSENT_UNKNOWN",
            "no such consent",
        )
    })?;
    match consent.status {
        ConsentStatus::Valid => Ok(consent.clone()),
        ConsentStatus::Expired => Err(BgError::new(
            SERVICE,
            StatusCode::UNAUTHORIZED,
            "CONSENT_EXPIRED",
            "the consent has expired and needs to be renewed",
        )),
        other => Err(BgError::new(
            SERVICE,
            StatusCode::UNAUTHORIZED,
            "CONSENT_INVALID",
            format!("the consent is {}", other.as_str()),
        )),
    }
}

/// Counts a read made without the PSU (no `PSU-IP-Address`) against the consent's
/// `frequencyPerDay`, per account and endpoint.
pub fn count_unattended(
    state: &mut BankState,
    tpp: &TppHeaders,
    consent: &BgConsent,
    account: &str,
    endpoint: ReadEndpoint,
    now: OffsetDateTime,
) -> BgResult<()> {
    if tpp.psu_ip.is_some() {
        return Ok(());
    }
    if state.usage.try_count(
        &consent.id,
        account,
        endpoint,
        now.date(),
        consent.frequency_per_day,
    ) {
        Ok(())
    } else {
        let mut error = BgError::new(
            SERVICE,
            StatusCode::TOO_MANY_REQUESTS,
            "ACCESS_EXCEEDED",
            format!(
                "frequencyPerDay ({}) is used up for today",
                consent.frequency_per_day
            ),
        );
        let tomorrow = now
            .date()
            .saturating_add(Duration::days(1))
            .midnight()
            .assume_utc();
        error.retry_after = u32::try_from((tomorrow - now).whole_seconds()).ok();
        Err(error)
    }
}

/// The account behind `account-id` and what the consent grants on it.
pub fn granted_account(
    state: &BankState,
    consent: &BgConsent,
    account_id: &str,
) -> BgResult<((usize, usize), Grant)> {
    let location = state.find_account(account_id).ok_or_else(|| {
        BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such account",
        )
    })?;
    let grant = consent.grants.get(account_id).copied().ok_or_else(|| {
        BgError::new(
            SERVICE,
            StatusCode::UNAUTHORIZED,
            "CONSENT_INVALID",
            "the consent does not cover this account",
        )
    })?;
    Ok((location, grant))
}

fn amount(minor: i64, currency: &str) -> Amount {
    Amount {
        currency: currency.to_string(),
        amount: format_signed(minor),
    }
}

/// Balances of an account: closing booked (yesterday), interim booked, expected and available.
pub fn balances(state: &BankState, (u, a): (usize, usize), now: OffsetDateTime) -> Vec<Balance> {
    let Some(book) = state.books.get(u) else {
        return Vec::new();
    };
    let Some(account) = book.accounts.get(a) else {
        return Vec::new();
    };
    let b = book.balances(a, now);
    let c = account.currency.as_str();
    let yesterday = now.date().saturating_sub(Duration::days(1));
    vec![
        Balance {
            balance_amount: amount(b.closing_booked, c),
            balance_type: "closingBooked",
            credit_limit_included: None,
            last_change_date_time: None,
            reference_date: Some(format_date(yesterday)),
        },
        Balance {
            balance_amount: amount(b.booked, c),
            balance_type: "interimBooked",
            credit_limit_included: None,
            last_change_date_time: Some(timestamp(now)),
            reference_date: Some(format_date(now.date())),
        },
        Balance {
            balance_amount: amount(b.booked + b.pending, c),
            balance_type: "expected",
            credit_limit_included: Some(false),
            last_change_date_time: Some(timestamp(now)),
            reference_date: None,
        },
        Balance {
            balance_amount: amount(b.available, c),
            balance_type: "interimAvailable",
            credit_limit_included: Some(b.credit_limit > 0),
            last_change_date_time: Some(timestamp(now)),
            reference_date: None,
        },
    ]
}

pub fn cash_account_type(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Current => "CACC",
        AccountKind::Savings => "SVGS",
        AccountKind::CreditCard => "CARD",
    }
}

fn details(
    bank: &Bank,
    account: &Account,
    grant: Grant,
    owner: bool,
    balances: Option<Vec<Balance>>,
) -> AccountDetails {
    let path = format!("/v1/accounts/{}", account.resource_id);
    let mut link_list = Vec::new();
    if grant.balances {
        link_list.push(("balances", bank.url(&format!("{path}/balances"))));
    }
    if grant.transactions {
        link_list.push(("transactions", bank.url(&format!("{path}/transactions"))));
    }
    AccountDetails {
        resource_id: account.resource_id.clone(),
        iban: account.iban.clone(),
        bban: account.bban.clone(),
        currency: account.currency.clone(),
        name: account.nickname.clone(),
        display_name: account.nickname.clone(),
        product: account.product.chars().take(35).collect(),
        cash_account_type: cash_account_type(account.kind),
        status: "enabled",
        bic: bank.config.bic.clone(),
        usage: "PRIV",
        owner_name: owner.then(|| account.owner_name.to_string()),
        balances,
        links: (!link_list.is_empty()).then(|| {
            link_list
                .into_iter()
                .map(|(k, v)| (k, super::wire::Href { href: v }))
                .collect()
        }),
    }
}

fn with_owner_name(consent: &BgConsent) -> bool {
    let r = &consent.requested;
    [
        &r.all_psd2,
        &r.available_accounts,
        &r.available_accounts_with_balance,
    ]
    .iter()
    .any(|v| v.as_deref() == Some("allAccountsWithOwnerName"))
}

fn with_balance(query: Option<&str>) -> BgResult<bool> {
    let pairs = form_pairs(query.unwrap_or("").as_bytes());
    match field(&pairs, "withBalance") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(
            BgError::format(SERVICE, "withBalance must be true or false").at_path("withBalance"),
        ),
    }
}

pub async fn list(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    check_accept(&headers, SERVICE)?;
    let want_balances = with_balance(query.as_deref())?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = usable_consent(&state, &tpp)?;
    count_unattended(
        &mut state,
        &tpp,
        &consent,
        "*",
        ReadEndpoint::AccountList,
        now,
    )?;
    let owner = with_owner_name(&consent);
    let mut accounts = Vec::new();
    let psu_book = consent.psu.and_then(|p| state.book_of(p));
    for (u, book) in state.books.iter().enumerate() {
        for (a, account) in book.accounts.iter().enumerate() {
            let granted = consent.grants.get(&account.resource_id).copied();
            let listed =
                granted.is_some() || (consent.list_access.list_only && Some(u) == psu_book);
            if !listed {
                continue;
            }
            let grant = granted.unwrap_or_default();
            let show_balance =
                want_balances && (grant.balances || consent.list_access.with_balance);
            let balance_list = show_balance.then(|| balances(&state, (u, a), now));
            accounts.push(details(&bank, account, grant, owner, balance_list));
        }
    }
    Ok(Json(AccountList { accounts }).into_response())
}

pub async fn details_handler(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    RawQuery(query): RawQuery,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    check_accept(&headers, SERVICE)?;
    let want_balances = with_balance(query.as_deref())?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = usable_consent(&state, &tpp)?;
    let account_id = params.get(0);
    let (location, grant) = granted_account(&state, &consent, account_id)?;
    count_unattended(
        &mut state,
        &tpp,
        &consent,
        account_id,
        ReadEndpoint::AccountDetails,
        now,
    )?;
    let balance_list = (want_balances && grant.balances).then(|| balances(&state, location, now));
    let account = state
        .books
        .get(location.0)
        .and_then(|b| b.accounts.get(location.1))
        .cloned();
    let account = account.ok_or_else(|| {
        BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such account",
        )
    })?;
    let body = AccountDetailsResponse {
        account: details(
            &bank,
            &account,
            grant,
            with_owner_name(&consent),
            balance_list,
        ),
    };
    Ok(Json(body).into_response())
}

pub async fn balances_handler(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    check_accept(&headers, SERVICE)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = usable_consent(&state, &tpp)?;
    let account_id = params.get(0);
    let (location, grant) = granted_account(&state, &consent, account_id)?;
    if !grant.balances {
        return Err(BgError::new(
            SERVICE,
            StatusCode::UNAUTHORIZED,
            "CONSENT_INVALID",
            "the consent does not cover balances of this account",
        ));
    }
    count_unattended(
        &mut state,
        &tpp,
        &consent,
        account_id,
        ReadEndpoint::Balances,
        now,
    )?;
    let iban = state
        .books
        .get(location.0)
        .and_then(|b| b.accounts.get(location.1))
        .map(|a| (a.iban.clone(), a.currency.clone()));
    let (iban, currency) = iban.unwrap_or_default();
    let body = BalancesResponse {
        account: AccountReference::iban(&iban, Some(&currency)),
        balances: balances(&state, location, now),
    };
    Ok(Json(body).into_response())
}

pub use balances_handler as balances_route;
