//! Transaction lists under a NextGenPSD2 consent: every page, booked and pending merged, each
//! entry mapped to the hub's signed, exact form.

use std::collections::HashSet;

use kontor_domain::transaction::{BankTransaction, TransactionStatus};
use time::Date;
use time::macros::date;

use super::BerlinGroup;
use super::wire::{AccountReference, Transaction, TransactionsResponse};
use crate::support::amount::signed;
use crate::support::dates::{date as parse_date, format_date};
use crate::support::text;
use crate::support::urls::{resolve_link, with_query};
use crate::{BankError, BookingStatus, ConsentSession, ReadContext, TransactionQuery};

/// `dateFrom` is mandatory; without a start the hub wants everything the bank keeps, and a
/// bank clamps an early date to the history it has.
const EVERYTHING_FROM: Date = date!(1970 - 01 - 01);

/// A bank whose `next` links never end would otherwise be followed forever.
const MAX_PAGES: usize = 10_000;

impl BerlinGroup {
    pub(super) async fn read_transactions(
        &self,
        session: &ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError> {
        let booking_status = match query.status {
            BookingStatus::Booked => "booked",
            BookingStatus::Pending => "pending",
            BookingStatus::Both => "both",
        };
        let from = format_date(query.from.unwrap_or(EVERYTHING_FROM));
        let mut pairs = vec![
            ("bookingStatus", booking_status),
            ("dateFrom", from.as_str()),
        ];
        let to = query.to.map(format_date);
        if let Some(to) = &to {
            pairs.push(("dateTo", to.as_str()));
        }
        let first = with_query(
            &self.url(&["v1", "accounts", bank_account_id, "transactions"])?,
            &pairs,
        );

        let mut transactions = Vec::new();
        let mut pending_seen = HashSet::new();
        let mut visited = HashSet::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if visited.len() >= MAX_PAGES || !visited.insert(url.to_string()) {
                return Err(BankError::protocol("the transaction pages do not end"));
            }
            // The caller's request id goes on the first page only: X-Request-ID is per call.
            let request_id = (visited.len() == 1)
                .then_some(context.request_id.as_deref())
                .flatten();
            let out = self.read(
                url,
                "/v1/accounts/{account-id}/transactions",
                session,
                context,
                request_id,
            )?;
            let page: TransactionsResponse =
                self.transport.send(out).await?.json("transactions")?;
            let Some(report) = page.transactions else {
                break;
            };
            if query.status != BookingStatus::Pending {
                for entry in report.booked {
                    transactions.push(transaction(entry, TransactionStatus::Booked)?);
                }
            }
            if query.status != BookingStatus::Booked {
                for entry in report.pending {
                    let mapped = transaction(entry, TransactionStatus::Pending)?;
                    // Some banks repeat the pending entries on every page.
                    let key = mapped
                        .transaction_id
                        .clone()
                        .or_else(|| mapped.entry_reference.clone());
                    if key.is_none_or(|key| pending_seen.insert(key)) {
                        transactions.push(mapped);
                    }
                }
            }
            next = report
                .links
                .get("next")
                .map(|link| resolve_link(&self.profile.base_url, &link.href))
                .transpose()?;
        }
        Ok(transactions)
    }
}

fn transaction(
    entry: Transaction,
    status: TransactionStatus,
) -> Result<BankTransaction, BankError> {
    let amount = signed(
        &entry.transaction_amount.amount,
        &entry.transaction_amount.currency,
        "transaction",
    )?;
    // The other party is the creditor when money goes out, the debtor when it comes in.
    let creditor = (entry.creditor_name, entry.creditor_account);
    let debtor = (entry.debtor_name, entry.debtor_account);
    let (name, account) = if amount.is_negative() {
        creditor
    } else if amount.is_positive() {
        debtor
    } else if creditor.0.is_some() || creditor.1.is_some() {
        creditor
    } else {
        debtor
    };
    let remittance = text(entry.remittance_information_unstructured.as_deref())
        .or_else(|| {
            let lines: Vec<String> = entry
                .remittance_information_unstructured_array
                .iter()
                .flatten()
                .filter_map(|line| text(Some(line)))
                .collect();
            (!lines.is_empty()).then(|| lines.join(" "))
        })
        .or_else(|| text(entry.remittance_information_structured.as_deref()));
    Ok(BankTransaction {
        transaction_id: text(entry.transaction_id.as_deref()),
        entry_reference: text(entry.entry_reference.as_deref()),
        status,
        booking_date: entry
            .booking_date
            .as_deref()
            .map(|d| parse_date(d, "transaction bookingDate"))
            .transpose()?,
        value_date: entry
            .value_date
            .as_deref()
            .map(|d| parse_date(d, "transaction valueDate"))
            .transpose()?,
        amount,
        counterparty_name: text(name.as_deref()),
        counterparty_account: account.as_ref().and_then(identification),
        remittance,
        end_to_end_id: text(entry.end_to_end_id.as_deref()),
        mandate_id: text(entry.mandate_id.as_deref()),
        creditor_id: text(entry.creditor_id.as_deref()),
        bank_transaction_code: text(entry.bank_transaction_code.as_deref())
            .or_else(|| text(entry.proprietary_bank_transaction_code.as_deref())),
        merchant_category_code: text(entry.merchant_category_code.as_deref()),
    })
}

/// The most useful identifier of an `accountReference`.
fn identification(reference: &AccountReference) -> Option<String> {
    [
        &reference.iban,
        &reference.bban,
        &reference.masked_pan,
        &reference.pan,
        &reference.msisdn,
    ]
    .into_iter()
    .find_map(|value| text(value.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> Transaction {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_direct_debit_names_its_creditor() {
        let t = transaction(
            entry(
                r#"{"transactionId":"T1","entryReference":"E1","endToEndId":"E2E","mandateId":"M-1",
                "creditorId":"DE98ZZZ09999999999","bookingDate":"2026-03-02","valueDate":"2026-03-03",
                "transactionAmount":{"currency":"EUR","amount":"-49.99"},"creditorName":"Stadtwerke",
                "creditorAccount":{"iban":"DE89370400440532013000"},"debtorName":"Alice",
                "remittanceInformationUnstructured":"Abschlag März","bankTransactionCode":"PMNT-RDDT-ESDD",
                "proprietaryBankTransactionCode":"DDT"}"#,
            ),
            TransactionStatus::Booked,
        )
        .unwrap();
        assert_eq!(t.transaction_id.as_deref(), Some("T1"));
        assert_eq!(t.entry_reference.as_deref(), Some("E1"));
        assert_eq!(t.amount.minor_units(), -4999);
        assert_eq!(t.counterparty_name.as_deref(), Some("Stadtwerke"));
        assert_eq!(
            t.counterparty_account.as_deref(),
            Some("DE89370400440532013000")
        );
        assert_eq!(t.remittance.as_deref(), Some("Abschlag März"));
        assert_eq!(t.mandate_id.as_deref(), Some("M-1"));
        assert_eq!(t.creditor_id.as_deref(), Some("DE98ZZZ09999999999"));
        assert_eq!(t.end_to_end_id.as_deref(), Some("E2E"));
        assert_eq!(t.bank_transaction_code.as_deref(), Some("PMNT-RDDT-ESDD"));
        assert_eq!(t.booking_date.unwrap().to_string(), "2026-03-02");
        assert_eq!(t.value_date.unwrap().to_string(), "2026-03-03");
        assert_eq!(t.status, TransactionStatus::Booked);
    }

    #[test]
    fn a_credit_names_its_debtor_and_joins_remittance_lines() {
        let t = transaction(
            entry(
                r#"{"transactionAmount":{"currency":"EUR","amount":"2500.00"},"debtorName":"ACME GmbH",
                "debtorAccount":{"bban":"370400440532013000"},"creditorName":"Alice",
                "remittanceInformationUnstructuredArray":["Gehalt"," März 2026 ",""],
                "proprietaryBankTransactionCode":"SAL","merchantCategoryCode":"5411"}"#,
            ),
            TransactionStatus::Pending,
        )
        .unwrap();
        assert_eq!(t.counterparty_name.as_deref(), Some("ACME GmbH"));
        assert_eq!(
            t.counterparty_account.as_deref(),
            Some("370400440532013000")
        );
        assert_eq!(t.remittance.as_deref(), Some("Gehalt März 2026"));
        assert_eq!(t.bank_transaction_code.as_deref(), Some("SAL"));
        assert_eq!(t.merchant_category_code.as_deref(), Some("5411"));
        assert_eq!(t.transaction_id, None);
        assert_eq!(t.booking_date, None);
    }

    #[test]
    fn malformed_entries_are_protocol_errors() {
        for json in [
            r#"{"transactionAmount":{"currency":"EUR","amount":"12.345"}}"#,
            r#"{"transactionAmount":{"currency":"EUR","amount":"1"},"bookingDate":"2026-13-01"}"#,
            r#"{"transactionAmount":{"currency":"???","amount":"1"}}"#,
        ] {
            assert!(
                matches!(
                    transaction(entry(json), TransactionStatus::Booked),
                    Err(BankError::Protocol { .. })
                ),
                "{json}"
            );
        }
    }
}
