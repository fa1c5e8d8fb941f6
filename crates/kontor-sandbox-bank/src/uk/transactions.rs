//! `GET /accounts/{AccountId}/transactions`: booked and pending entries filtered by booking
//! date (and the consent's window and Credits/Debits permissions), paged through `Links.Next`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::AISP;
use super::accounts::{amount, consented, count, indicator, readable_consent, require};
use super::auth::check_fapi_headers;
use super::error::{UkError, UkResult};
use super::wire::{
    CardInstrument, CashAccount, CodeAndSubCode, Links, MerchantDetails, Meta, ProprietaryCode,
    ReadTransaction, Transaction, TransactionBalance, TransactionData,
};
use crate::core::dates::{parse_uk_query_datetime, timestamp};
use crate::data::model::{Account, Entry, EntryStatus};
use crate::state::Bank;
use crate::state::consent::ReadEndpoint;
use crate::web::extract::{Params, field, form_pairs};

fn transaction(
    bank: &Bank,
    account: &Account,
    entry: &Entry,
    status: EntryStatus,
    running: Option<i64>,
    detail: bool,
) -> Transaction {
    let booked = status == EntryStatus::Booked;
    let minor = if booked {
        entry.amount
    } else {
        entry.pending_amount
    };
    let c = &account.currency;
    let (code, sub_code) = entry.kind.uk_code();
    let party = entry.counterparty.as_ref().map(|p| CashAccount {
        scheme_name: "UK.OBIE.IBAN".into(),
        identification: p.iban.clone().unwrap_or_default(),
        name: Some(p.name.chars().take(350).collect()),
        secondary_identification: None,
    });
    let party = party.filter(|p| !p.identification.is_empty());
    let outgoing = minor < 0;
    let scheme = if account.masked_pan.starts_with('5') {
        "MasterCard"
    } else {
        "VISA"
    };
    let information = if entry.remittance.is_empty() {
        entry.kind.proprietary_code().to_string()
    } else {
        entry.remittance.clone()
    };
    Transaction {
        account_id: account.resource_id.clone(),
        transaction_id: if booked {
            entry.booked_id.clone()
        } else {
            entry.pending_id.clone()
        },
        transaction_reference: Some(if booked {
            entry.booked_reference.clone()
        } else {
            entry.pending_reference.clone()
        }),
        credit_debit_indicator: indicator(minor),
        status: if booked { "Booked" } else { "Pending" },
        transaction_mutability: if booked { "Immutable" } else { "Mutable" },
        booking_date_time: timestamp(if booked {
            entry.booked_at.unwrap_or(entry.visible_at)
        } else {
            entry.visible_at
        }),
        value_date_time: timestamp(entry.value_date.midnight().assume_utc()),
        transaction_information: detail.then_some(information),
        amount: amount(minor, c),
        bank_transaction_code: CodeAndSubCode { code, sub_code },
        proprietary_bank_transaction_code: ProprietaryCode {
            code: entry.kind.proprietary_code(),
            issuer: bank.config.name.clone(),
        },
        balance: running.filter(|_| detail).map(|r| TransactionBalance {
            credit_debit_indicator: indicator(r),
            kind: "InterimBooked",
            amount: amount(r, c),
        }),
        merchant_details: entry
            .merchant
            .as_ref()
            .filter(|_| detail)
            .map(|m| MerchantDetails {
                merchant_name: m.name.clone(),
                merchant_category_code: m.category_code.clone(),
            }),
        creditor_account: if detail && outgoing {
            party.clone()
        } else {
            None
        },
        debtor_account: if detail && !outgoing { party } else { None },
        card_instrument: (detail && entry.kind.is_card()).then(|| CardInstrument {
            card_scheme_name: scheme,
            authorisation_type: "Contactless",
            identification: account.masked_pan.clone(),
        }),
    }
}

fn parse_cursor(text: &str) -> Option<(usize, OffsetDateTime)> {
    let (offset, at) = text.split_once('-')?;
    Some((
        offset.parse().ok()?,
        OffsetDateTime::from_unix_timestamp(at.parse().ok()?).ok()?,
    ))
}

pub async fn transactions(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
    RawQuery(query): RawQuery,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let pairs = form_pairs(query.as_deref().unwrap_or("").as_bytes());
    let bound = |name: &str| -> UkResult<Option<OffsetDateTime>> {
        field(&pairs, name)
            .map(|t| {
                parse_uk_query_datetime(t).ok_or_else(|| {
                    UkError::bad_request(
                        "UK.OBIE.Field.InvalidDate",
                        format!("{name} must be an ISO 8601 date-time"),
                    )
                    .at(name)
                })
            })
            .transpose()
    };
    let (from, to) = (bound("fromBookingDateTime")?, bound("toBookingDateTime")?);
    let cursor = match field(&pairs, "cursor") {
        Some(t) => Some(parse_cursor(t).ok_or_else(|| {
            UkError::bad_request(
                "UK.OBIE.Field.Invalid",
                "cursor is not one this bank issued",
            )
            .at("cursor")
        })?),
        None => None,
    };
    let now = bank.now();
    let mut state = bank.lock();
    let consent = readable_consent(&state, &headers, now)?;
    require(
        &consent,
        &["ReadTransactionsBasic", "ReadTransactionsDetail"],
    )?;
    let id = params.get(0).to_string();
    let (u, a) = consented(&state, &consent, &id)?;
    if cursor.is_none() {
        count(
            &bank,
            &mut state,
            &headers,
            &consent.id,
            &id,
            ReadEndpoint::Transactions,
            now,
        )?;
    }
    let (offset, as_of) = cursor.unwrap_or((0, now));
    let Some(book) = state.books.get(u) else {
        return Err(UkError::unauthorized());
    };
    let Some(account) = book.accounts.get(a) else {
        return Err(UkError::unauthorized());
    };
    let detail = consent.has("ReadTransactionsDetail");
    let (credits, debits) = (
        consent.has("ReadTransactionsCredits"),
        consent.has("ReadTransactionsDebits"),
    );
    let lower = [from, consent.transaction_from].into_iter().flatten().max();
    let upper = [to, consent.transaction_to].into_iter().flatten().min();
    let mut visible: Vec<(&Entry, EntryStatus, Option<i64>, OffsetDateTime)> = book
        .visible_entries(a, as_of)
        .into_iter()
        .map(|(e, s, r)| {
            let at = if s == EntryStatus::Booked {
                e.booked_at.unwrap_or(e.visible_at)
            } else {
                e.visible_at
            };
            (e, s, r, at)
        })
        .filter(|(e, s, _, at)| {
            let minor = if *s == EntryStatus::Booked {
                e.amount
            } else {
                e.pending_amount
            };
            lower.is_none_or(|l| *at >= l)
                && upper.is_none_or(|t| *at <= t)
                && if minor < 0 { debits } else { credits }
        })
        .collect();
    visible.sort_by_key(|entry| std::cmp::Reverse(entry.3));
    let page_size = bank.config.page_size;
    let total = visible.len();
    let page = visible
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(e, s, r, _)| transaction(&bank, account, e, *s, *r, detail))
        .collect();
    let path = format!("{AISP}/accounts/{id}/transactions");
    let url_with = |extra: Option<String>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(k, _)| k != "cursor") {
            s.append_pair(k, v);
        }
        if let Some(c) = extra {
            s.append_pair("cursor", &c);
        }
        let q = s.finish();
        bank.url(&if q.is_empty() {
            path.clone()
        } else {
            format!("{path}?{q}")
        })
    };
    let links = Links {
        self_: url_with(cursor.map(|(o, t)| format!("{o}-{}", t.unix_timestamp()))),
        first: Some(url_with(None)),
        next: (offset + page_size < total).then(|| {
            url_with(Some(format!(
                "{}-{}",
                offset + page_size,
                as_of.unix_timestamp()
            )))
        }),
        last: None,
    };
    let pages = i32::try_from(total.div_ceil(page_size).max(1)).unwrap_or(i32::MAX);
    let meta = Meta {
        total_pages: Some(pages),
        first_available_date_time: Some(timestamp(book.first_day().midnight().assume_utc())),
        last_available_date_time: Some(timestamp(as_of)),
    };
    Ok(Json(ReadTransaction {
        data: TransactionData { transaction: page },
        links,
        meta,
    })
    .into_response())
}
