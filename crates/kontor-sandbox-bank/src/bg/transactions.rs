//! `GET /v1/accounts/{account-id}/transactions`: booked and pending entries filtered by
//! `bookingStatus`, `dateFrom`/`dateTo` or `entryReferenceFrom`, paged through `_links.next`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::accounts::{balances, count_unattended, granted_account, usable_consent};
use super::error::{BgError, BgResult, Service};
use super::headers::{check_accept, read};
use super::wire::{
    AccountReference, AccountReport, Amount, Balance, Href, Links, Transaction,
    TransactionsResponse,
};
use crate::core::dates::{format_date, parse_date};
use crate::core::money::format_signed;
use crate::data::model::{Entry, EntryStatus};
use crate::state::Bank;
use crate::state::consent::ReadEndpoint;
use crate::web::extract::{Params, field, form_pairs};

const SERVICE: Service = Service::Ais;

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The wire form of one entry as it looks in `status`.
pub fn transaction(
    entry: &Entry,
    status: EntryStatus,
    running: Option<i64>,
    currency: &str,
) -> Transaction {
    let booked = status == EntryStatus::Booked;
    let minor = if booked {
        entry.amount
    } else {
        entry.pending_amount
    };
    let party_name = entry.counterparty.as_ref().map(|c| clip(&c.name, 70));
    let party_account = entry
        .counterparty
        .as_ref()
        .and_then(|c| c.iban.as_deref())
        .map(|i| AccountReference::iban(i, None));
    let outgoing = minor < 0;
    Transaction {
        transaction_id: if booked {
            entry.booked_id.clone()
        } else {
            entry.pending_id.clone()
        },
        entry_reference: if booked {
            entry.booked_reference.clone()
        } else {
            entry.pending_reference.clone()
        },
        end_to_end_id: entry.end_to_end_id.as_deref().map(|e| clip(e, 35)),
        mandate_id: entry.mandate_id.as_deref().map(|m| clip(m, 35)),
        creditor_id: entry.creditor_id.as_deref().map(|c| clip(c, 35)),
        booking_date: booked.then(|| {
            format_date(
                entry
                    .booked_at
                    .map_or(entry.value_date, OffsetDateTime::date),
            )
        }),
        value_date: format_date(entry.value_date),
        transaction_amount: Amount {
            currency: currency.to_string(),
            amount: format_signed(minor),
        },
        creditor_name: if outgoing { party_name.clone() } else { None },
        creditor_account: if outgoing {
            party_account.clone()
        } else {
            None
        },
        debtor_name: if outgoing { None } else { party_name },
        debtor_account: if outgoing { None } else { party_account },
        remittance_information_unstructured: clip(&entry.remittance, 140),
        bank_transaction_code: entry.kind.iso_code(),
        proprietary_bank_transaction_code: entry.kind.proprietary_code(),
        balance_after_transaction: running.map(|r| Balance {
            balance_amount: Amount {
                currency: currency.to_string(),
                amount: format_signed(r),
            },
            balance_type: "interimBooked",
            credit_limit_included: None,
            last_change_date_time: None,
            reference_date: None,
        }),
    }
}

/// A page position that also pins the instant the first page was read, so later pages do not
/// shift when new entries arrive meanwhile. Opaque to TPPs: they follow `_links.next`.
fn parse_cursor(text: &str) -> Option<(usize, OffsetDateTime)> {
    let (offset, at) = text.split_once('-')?;
    let at = OffsetDateTime::from_unix_timestamp(at.parse().ok()?).ok()?;
    Some((offset.parse().ok()?, at))
}

pub async fn list(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    RawQuery(query): RawQuery,
) -> BgResult<Response> {
    let tpp = read(&headers, SERVICE)?;
    check_accept(&headers, SERVICE)?;
    let pairs = form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let booking_status = field(&pairs, "bookingStatus").ok_or_else(|| {
        BgError::format(SERVICE, "query parameter bookingStatus is missing")
            .at_path("bookingStatus")
    })?;
    let (want_booked, want_pending) = match booking_status {
        "booked" => (true, false),
        "pending" => (false, true),
        "both" => (true, true),
        "information" => {
            return Err(BgError::new(
                SERVICE,
                StatusCode::BAD_REQUEST,
                "PARAMETER_NOT_SUPPORTED",
                "bookingStatus=information is not supported",
            ));
        }
        _ => {
            return Err(BgError::format(
                SERVICE,
                "bookingStatus must be booked, pending, both or information",
            )
            .at_path("bookingStatus"));
        }
    };
    if field(&pairs, "deltaList").is_some() {
        return Err(BgError::new(
            SERVICE,
            StatusCode::BAD_REQUEST,
            "PARAMETER_NOT_SUPPORTED",
            "deltaList is not supported; use entryReferenceFrom",
        ));
    }
    let entry_reference_from = field(&pairs, "entryReferenceFrom");
    let with_balance = match field(&pairs, "withBalance") {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(
                BgError::format(SERVICE, "withBalance must be true or false")
                    .at_path("withBalance"),
            );
        }
    };
    let cursor = match field(&pairs, "cursor") {
        None => None,
        Some(text) => Some(parse_cursor(text).ok_or_else(|| {
            BgError::format(SERVICE, "cursor is not one this bank issued").at_path("cursor")
        })?),
    };
    let now = bank.now();
    let date_from = match field(&pairs, "dateFrom") {
        Some(text) => Some(parse_date(text).ok_or_else(|| {
            BgError::format(SERVICE, "dateFrom must be a date (YYYY-MM-DD)").at_path("dateFrom")
        })?),
        None if entry_reference_from.is_none() => {
            return Err(
                BgError::format(SERVICE, "query parameter dateFrom is missing").at_path("dateFrom"),
            );
        }
        None => None,
    };
    let date_to = match field(&pairs, "dateTo") {
        Some(text) => parse_date(text).ok_or_else(|| {
            BgError::format(SERVICE, "dateTo must be a date (YYYY-MM-DD)").at_path("dateTo")
        })?,
        None => now.date(),
    };
    if date_from.is_some_and(|from| from > date_to) {
        return Err(BgError::new(
            SERVICE,
            StatusCode::BAD_REQUEST,
            "PERIOD_INVALID",
            "dateFrom is after dateTo",
        ));
    }
    let mut state = bank.lock();
    let consent = usable_consent(&state, &tpp)?;
    let account_id = params.get(0).to_string();
    let ((u, a), grant) = granted_account(&state, &consent, &account_id)?;
    if !grant.transactions {
        return Err(BgError::new(
            SERVICE,
            StatusCode::UNAUTHORIZED,
            "CONSENT_INVALID",
            "the consent does not cover transactions of this account",
        ));
    }
    // Following `_links.next` continues one read; only the first page counts against the
    // daily allowance.
    if cursor.is_none() {
        count_unattended(
            &mut state,
            &tpp,
            &consent,
            &account_id,
            ReadEndpoint::Transactions,
            now,
        )?;
    }
    let (offset, as_of) = cursor.unwrap_or((0, now));
    let Some(book) = state.books.get(u) else {
        return Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such account",
        ));
    };
    let Some(account) = book.accounts.get(a) else {
        return Err(BgError::new(
            SERVICE,
            StatusCode::NOT_FOUND,
            "RESOURCE_UNKNOWN",
            "no such account",
        ));
    };
    let currency = account.currency.clone();
    let visible = book.visible_entries(a, as_of);
    let in_range = |day: time::Date| date_from.is_none_or(|from| day >= from) && day <= date_to;
    let mut booked: Vec<&(&Entry, EntryStatus, Option<i64>)> = visible
        .iter()
        .filter(|(e, s, _)| {
            *s == EntryStatus::Booked
                && in_range(e.booked_at.map_or(e.value_date, OffsetDateTime::date))
        })
        .collect();
    if let Some(reference) = entry_reference_from {
        let position = visible
            .iter()
            .position(|(e, s, _)| *s == EntryStatus::Booked && e.booked_reference == reference);
        let Some(position) = position else {
            return Err(BgError::format(
                SERVICE,
                "entryReferenceFrom names no booked entry of this account",
            )
            .at_path("entryReferenceFrom"));
        };
        // `visible` is newest first, so "after the reference" means earlier in the list.
        let newer: Vec<&str> = visible[..position]
            .iter()
            .map(|(e, _, _)| e.booked_id.as_str())
            .collect();
        booked.retain(|(e, _, _)| newer.contains(&e.booked_id.as_str()));
    }
    let pending: Vec<Transaction> = visible
        .iter()
        .filter(|(e, s, _)| *s == EntryStatus::Pending && in_range(e.visible_at.date()))
        .map(|(e, s, r)| transaction(e, *s, *r, &currency))
        .collect();
    let page_size = bank.config.page_size;
    let total = booked.len();
    let page: Vec<Transaction> = booked
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(e, s, r)| transaction(e, *s, *r, &currency))
        .collect();
    let mut link_list: Links = Links::new();
    let path = format!("/v1/accounts/{account_id}/transactions");
    link_list.insert(
        "account",
        Href {
            href: bank.url(&format!("/v1/accounts/{account_id}")),
        },
    );
    let base_query: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let encode = |extra: Option<String>| {
        let mut serializer = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &base_query {
            serializer.append_pair(k, v);
        }
        if let Some(c) = extra {
            serializer.append_pair("cursor", &c);
        }
        bank.url(&format!("{path}?{}", serializer.finish()))
    };
    link_list.insert("first", Href { href: encode(None) });
    if offset + page_size < total && want_booked {
        link_list.insert(
            "next",
            Href {
                href: encode(Some(format!(
                    "{}-{}",
                    offset + page_size,
                    as_of.unix_timestamp()
                ))),
            },
        );
    }
    let report = AccountReport {
        booked: want_booked.then_some(page),
        pending: (want_pending && offset == 0).then_some(pending),
        links: link_list,
    };
    let balances_list = (with_balance && grant.balances).then(|| balances(&state, (u, a), now));
    let body = TransactionsResponse {
        account: AccountReference::iban(&account.iban, Some(&currency)),
        transactions: report,
        balances: balances_list,
    };
    Ok(Json(body).into_response())
}
