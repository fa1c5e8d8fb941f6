//! AISP reads with the PSU's token: accounts, balances and transactions (booking-date filters,
//! `Links.Next` paging), limited to the consent's accounts, permissions and date window, and
//! to the daily allowance of reads without the PSU present.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use time::{Duration, OffsetDateTime};

use super::AISP;
use super::auth::{check_fapi_headers, psu_present, psu_token};
use super::error::{UkError, UkResult};
use super::wire::{
    Account as WireAccount, AccountData, Amount, Balance, BalanceData, CashAccount, CreditLine,
    Links, Meta, ReadAccount, ReadBalance, Servicer,
};
use crate::core::dates::timestamp;
use crate::core::money::format_unsigned;
use crate::data::model::{Account, AccountKind};
use crate::state::consent::ReadEndpoint;
use crate::state::uk::{UkAccountConsent, UkConsentStatus};
use crate::state::{Bank, BankState};
use crate::web::extract::Params;

/// The consent behind the PSU token, if it may be used for reading now.
pub(super) fn readable_consent(
    state: &BankState,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> UkResult<UkAccountConsent> {
    let (_, consent_id) = psu_token(state, headers, "accounts", now)?;
    let consent = state
        .uk_account_consents
        .get(&consent_id)
        .ok_or_else(UkError::unauthorized)?;
    if consent.status != UkConsentStatus::Authorised {
        return Err(UkError::forbidden(
            "UK.OBIE.Resource.InvalidConsentStatus",
            format!("the consent is {}", consent.status.as_str()),
        ));
    }
    if consent.is_expired(now) {
        return Err(UkError::forbidden(
            "UK.OBIE.Resource.InvalidConsentStatus",
            "the consent has expired; ask the PSU for a new one",
        ));
    }
    Ok(consent.clone())
}

pub(super) fn require(consent: &UkAccountConsent, any_of: &[&str]) -> UkResult<()> {
    if any_of.iter().any(|p| consent.has(p)) {
        Ok(())
    } else {
        Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            format!("the consent lacks the permission {}", any_of.join(" or ")),
        ))
    }
}

/// Counts a read without the PSU present against the bank's daily allowance.
pub(super) fn count(
    bank: &Bank,
    state: &mut BankState,
    headers: &HeaderMap,
    consent: &str,
    account: &str,
    endpoint: ReadEndpoint,
    now: OffsetDateTime,
) -> UkResult<()> {
    if psu_present(headers)
        || state.usage.try_count(
            consent,
            account,
            endpoint,
            now.date(),
            bank.config.unattended_reads_per_day,
        )
    {
        return Ok(());
    }
    let tomorrow = now
        .date()
        .saturating_add(Duration::days(1))
        .midnight()
        .assume_utc();
    let mut error = UkError::new(StatusCode::TOO_MANY_REQUESTS, "", "");
    error.retry_after = u32::try_from((tomorrow - now).whole_seconds()).ok();
    Err(error)
}

/// The consented account with this id, or the spec's not-found error.
pub(super) fn consented(
    state: &BankState,
    consent: &UkAccountConsent,
    account_id: &str,
) -> UkResult<(usize, usize)> {
    consent
        .accounts
        .iter()
        .any(|a| a == account_id)
        .then(|| state.find_account(account_id))
        .flatten()
        .ok_or_else(|| {
            UkError::bad_request(
                "UK.OBIE.Resource.NotFound",
                "no account with this id under this consent",
            )
            .at("AccountId")
        })
}

fn sub_type(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Current => "CurrentAccount",
        AccountKind::Savings => "Savings",
        AccountKind::CreditCard => "CreditCard",
    }
}

fn wire_account(bank: &Bank, a: &Account, detail: bool) -> WireAccount {
    let ids = match (a.kind, &a.sort_code, &a.account_number) {
        (AccountKind::CreditCard, _, _) => vec![CashAccount {
            scheme_name: "UK.OBIE.PAN".into(),
            identification: a.masked_pan.clone(),
            name: Some(a.owner_name.into()),
            secondary_identification: None,
        }],
        (_, Some(sort), Some(number)) => vec![
            CashAccount {
                scheme_name: "UK.OBIE.SortCodeAccountNumber".into(),
                identification: format!("{sort}{number}"),
                name: Some(a.owner_name.into()),
                secondary_identification: None,
            },
            CashAccount {
                scheme_name: "UK.OBIE.IBAN".into(),
                identification: a.iban.clone(),
                name: Some(a.owner_name.into()),
                secondary_identification: None,
            },
        ],
        _ => vec![CashAccount {
            scheme_name: "UK.OBIE.IBAN".into(),
            identification: a.iban.clone(),
            name: Some(a.owner_name.into()),
            secondary_identification: None,
        }],
    };
    WireAccount {
        account_id: a.resource_id.clone(),
        status: "Enabled",
        status_update_date_time: timestamp(a.opened_on.midnight().assume_utc()),
        currency: a.currency.clone(),
        account_type: "Personal",
        account_sub_type: sub_type(a.kind),
        description: a.product.chars().take(35).collect(),
        nickname: a.nickname.clone(),
        opening_date: timestamp(a.opened_on.midnight().assume_utc()),
        account: detail.then_some(ids),
        servicer: detail.then(|| Servicer {
            scheme_name: "UK.OBIE.BICFI",
            identification: bank.config.bic.clone(),
        }),
    }
}

fn accounts_response(
    bank: &Bank,
    state: &BankState,
    consent: &UkAccountConsent,
    only: Option<&str>,
    self_url: String,
) -> ReadAccount {
    let detail = consent.has("ReadAccountsDetail");
    let list = consent
        .accounts
        .iter()
        .filter(|id| only.is_none_or(|o| o == id.as_str()))
        .filter_map(|id| state.find_account(id))
        .filter_map(|(u, a)| state.books.get(u)?.accounts.get(a))
        .map(|a| wire_account(bank, a, detail))
        .collect();
    ReadAccount {
        data: AccountData { account: list },
        links: Links::only(self_url),
        meta: Meta::one_page(),
    }
}

pub async fn list(State(bank): State<Arc<Bank>>, headers: HeaderMap) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = readable_consent(&state, &headers, now)?;
    require(&consent, &["ReadAccountsBasic", "ReadAccountsDetail"])?;
    count(
        &bank,
        &mut state,
        &headers,
        &consent.id,
        "*",
        ReadEndpoint::AccountList,
        now,
    )?;
    Ok(Json(accounts_response(
        &bank,
        &state,
        &consent,
        None,
        bank.url(&format!("{AISP}/accounts")),
    ))
    .into_response())
}

pub async fn one(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = readable_consent(&state, &headers, now)?;
    require(&consent, &["ReadAccountsBasic", "ReadAccountsDetail"])?;
    let id = params.get(0);
    consented(&state, &consent, id)?;
    count(
        &bank,
        &mut state,
        &headers,
        &consent.id,
        id,
        ReadEndpoint::AccountDetails,
        now,
    )?;
    Ok(Json(accounts_response(
        &bank,
        &state,
        &consent,
        Some(id),
        bank.url(&format!("{AISP}/accounts/{id}")),
    ))
    .into_response())
}

pub(super) fn indicator(minor: i64) -> &'static str {
    if minor < 0 { "Debit" } else { "Credit" }
}

pub(super) fn amount(minor: i64, currency: &str) -> Amount {
    Amount {
        amount: format_unsigned(minor),
        currency: currency.to_string(),
    }
}

fn balances_of(state: &BankState, (u, a): (usize, usize), now: OffsetDateTime) -> Vec<Balance> {
    let Some(book) = state.books.get(u) else {
        return Vec::new();
    };
    let Some(account) = book.accounts.get(a) else {
        return Vec::new();
    };
    let b = book.balances(a, now);
    let c = &account.currency;
    let line = (b.credit_limit > 0).then(|| {
        let kind = if account.kind == AccountKind::CreditCard {
            "Credit"
        } else {
            "Pre-Agreed"
        };
        vec![CreditLine {
            included: true,
            kind,
            amount: amount(b.credit_limit, c),
        }]
    });
    let entry = |kind: &'static str,
                 minor: i64,
                 at: OffsetDateTime,
                 credit_line: Option<Vec<CreditLine>>| Balance {
        account_id: account.resource_id.clone(),
        credit_debit_indicator: indicator(minor),
        kind,
        date_time: timestamp(at),
        amount: amount(minor, c),
        credit_line,
    };
    vec![
        entry(
            "ClosingBooked",
            b.closing_booked,
            now.date().midnight().assume_utc(),
            None,
        ),
        entry("InterimBooked", b.booked, now, None),
        entry("Expected", b.booked + b.pending, now, None),
        entry("InterimAvailable", b.available, now, line),
    ]
}

pub async fn balances(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = readable_consent(&state, &headers, now)?;
    require(&consent, &["ReadBalances"])?;
    let id = params.get(0);
    let location = consented(&state, &consent, id)?;
    count(
        &bank,
        &mut state,
        &headers,
        &consent.id,
        id,
        ReadEndpoint::Balances,
        now,
    )?;
    let body = ReadBalance {
        data: BalanceData {
            balance: balances_of(&state, location, now),
        },
        links: Links::only(bank.url(&format!("{AISP}/accounts/{id}/balances"))),
        meta: Meta::one_page(),
    };
    Ok(Json(body).into_response())
}

pub async fn all_balances(State(bank): State<Arc<Bank>>, headers: HeaderMap) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let mut state = bank.lock();
    let consent = readable_consent(&state, &headers, now)?;
    require(&consent, &["ReadBalances"])?;
    count(
        &bank,
        &mut state,
        &headers,
        &consent.id,
        "*",
        ReadEndpoint::Balances,
        now,
    )?;
    let list = consent
        .accounts
        .iter()
        .filter_map(|id| state.find_account(id))
        .flat_map(|loc| balances_of(&state, loc, now))
        .collect();
    let body = ReadBalance {
        data: BalanceData { balance: list },
        links: Links::only(bank.url(&format!("{AISP}/balances"))),
        meta: Meta::one_page(),
    };
    Ok(Json(body).into_response())
}
