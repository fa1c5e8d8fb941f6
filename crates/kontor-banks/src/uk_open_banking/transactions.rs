//! Transactions at a UK bank: every page between the booking dates asked for, each entry mapped
//! to the hub's signed, exact form.

use kontor_domain::transaction::{BankTransaction, TransactionStatus};

use super::reads::MAX_PAGES;
use super::wire::{CashAccount, ReadTransaction, Transaction};
use super::{UkOpenBanking, interaction_id};
use crate::support::amount::with_indicator;
use crate::support::dates::{date_time, format_date};
use crate::support::text;
use crate::support::urls::{resolve_link, with_query};
use crate::{BankError, BookingStatus, ConsentSession, ReadContext, TransactionQuery};

impl UkOpenBanking {
    pub(super) async fn read_transactions(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError> {
        // Whole days, inclusive; the spec has the bank ignore any zone, so the times are UTC.
        let from = query
            .from
            .map(|d| format!("{}T00:00:00+00:00", format_date(d)));
        let to = query
            .to
            .map(|d| format!("{}T23:59:59+00:00", format_date(d)));
        let mut pairs = Vec::new();
        if let Some(from) = &from {
            pairs.push(("fromBookingDateTime", from.as_str()));
        }
        if let Some(to) = &to {
            pairs.push(("toBookingDateTime", to.as_str()));
        }
        let first = with_query(
            &self.aisp(&["accounts", bank_account_id, "transactions"])?,
            &pairs,
        );
        let interaction = interaction_id(context.request_id.as_deref());

        let mut transactions = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(BankError::protocol("the transaction pages do not end"));
            }
            let answer = self
                .psu_get(
                    session,
                    &url,
                    "/open-banking/v3.1/aisp/accounts/{AccountId}/transactions",
                    context,
                    &interaction,
                )
                .await?;
            let page: ReadTransaction = answer.json("transactions")?;
            for entry in page.data.transaction {
                // The standard has no status filter: the hub filters what it was given.
                if let Some(mapped) = transaction(&entry)?
                    && matches!(
                        (query.status, mapped.status),
                        (BookingStatus::Both, _)
                            | (BookingStatus::Booked, TransactionStatus::Booked)
                            | (BookingStatus::Pending, TransactionStatus::Pending)
                    )
                {
                    transactions.push(mapped);
                }
            }
            next = page
                .links
                .next
                .map(|href| resolve_link(&self.profile.base_url, &href))
                .transpose()?;
        }
        Ok(transactions)
    }
}

/// One entry; `None` for a `Rejected` one, which never moved money.
fn transaction(entry: &Transaction) -> Result<Option<BankTransaction>, BankError> {
    let status = match entry.status.as_str() {
        "Booked" => TransactionStatus::Booked,
        "Pending" => TransactionStatus::Pending,
        "Rejected" => return Ok(None),
        _ => return Err(BankError::protocol("transaction with an unknown Status")),
    };
    let amount = with_indicator(
        &entry.amount.amount,
        &entry.amount.currency,
        &entry.credit_debit_indicator,
        "transaction",
    )?;
    // The other party: whom the money went to on a debit (a merchant, for a card payment), whom
    // it came from on a credit.
    let debit = entry.credit_debit_indicator == "Debit";
    let party = if debit {
        entry.creditor_account.as_ref()
    } else {
        entry.debtor_account.as_ref()
    };
    let merchant_name = entry
        .merchant_details
        .as_ref()
        .and_then(|m| text(m.merchant_name.as_deref()));
    let counterparty_name =
        party
            .and_then(|p| text(p.name.as_deref()))
            .or(if debit { merchant_name } else { None });
    let bank_transaction_code = match (
        &entry.bank_transaction_code,
        &entry.proprietary_bank_transaction_code,
    ) {
        (Some(code), _) => Some(format!("{}-{}", code.code, code.sub_code)),
        (None, Some(proprietary)) => text(Some(&proprietary.code)),
        (None, None) => None,
    };
    Ok(Some(BankTransaction {
        transaction_id: text(entry.transaction_id.as_deref()),
        entry_reference: text(entry.transaction_reference.as_deref()),
        status,
        booking_date: Some(
            date_time(&entry.booking_date_time, "transaction BookingDateTime")?.date(),
        ),
        value_date: entry
            .value_date_time
            .as_deref()
            .map(|raw| date_time(raw, "transaction ValueDateTime").map(|at| at.date()))
            .transpose()?,
        amount,
        counterparty_name,
        counterparty_account: party.and_then(identification),
        remittance: text(entry.transaction_information.as_deref()),
        end_to_end_id: None,
        mandate_id: None,
        creditor_id: None,
        bank_transaction_code,
        merchant_category_code: entry
            .merchant_details
            .as_ref()
            .and_then(|m| text(m.merchant_category_code.as_deref())),
    }))
}

fn identification(account: &CashAccount) -> Option<String> {
    text(account.identification.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: &str) -> Transaction {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_card_payment_names_the_merchant() {
        let t = transaction(&entry(
            r#"{"AccountId":"a","TransactionId":"T1","TransactionReference":"R1",
                "CreditDebitIndicator":"Debit","Status":"Pending",
                "BookingDateTime":"2026-03-02T12:30:00+00:00","ValueDateTime":"2026-03-03T00:00:00+00:00",
                "TransactionInformation":"TESCO STORES 2041","Amount":{"Amount":"23.40","Currency":"GBP"},
                "ProprietaryBankTransactionCode":{"Code":"POS","Issuer":"Thames"},
                "MerchantDetails":{"MerchantName":"Tesco","MerchantCategoryCode":"5411"}}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(t.amount.minor_units(), -2340);
        assert_eq!(t.status, TransactionStatus::Pending);
        assert_eq!(t.counterparty_name.as_deref(), Some("Tesco"));
        assert_eq!(t.counterparty_account, None);
        assert_eq!(t.merchant_category_code.as_deref(), Some("5411"));
        assert_eq!(t.bank_transaction_code.as_deref(), Some("POS"));
        assert_eq!(t.entry_reference.as_deref(), Some("R1"));
        assert_eq!(t.remittance.as_deref(), Some("TESCO STORES 2041"));
        assert_eq!(t.booking_date.unwrap().to_string(), "2026-03-02");
        assert_eq!(t.value_date.unwrap().to_string(), "2026-03-03");
    }

    #[test]
    fn a_credit_names_the_debtor() {
        let t = transaction(&entry(
            r#"{"AccountId":"a","CreditDebitIndicator":"Credit","Status":"Booked",
                "BookingDateTime":"2026-02-27T08:00:00Z","Amount":{"Amount":"2950.00","Currency":"GBP"},
                "BankTransactionCode":{"Code":"ReceivedCreditTransfer","SubCode":"DomesticCreditTransfer"},
                "DebtorAccount":{"SchemeName":"UK.OBIE.SortCodeAccountNumber","Identification":"20000012345678","Name":"ACME Ltd"},
                "CreditorAccount":{"Name":"Bob"}}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(t.amount.minor_units(), 295_000);
        assert_eq!(t.counterparty_name.as_deref(), Some("ACME Ltd"));
        assert_eq!(t.counterparty_account.as_deref(), Some("20000012345678"));
        assert_eq!(
            t.bank_transaction_code.as_deref(),
            Some("ReceivedCreditTransfer-DomesticCreditTransfer")
        );
    }

    #[test]
    fn rejected_entries_are_left_out_and_malformed_ones_refused() {
        let rejected = r#"{"AccountId":"a","CreditDebitIndicator":"Debit","Status":"Rejected",
            "BookingDateTime":"2026-02-27T08:00:00Z","Amount":{"Amount":"1.00","Currency":"GBP"}}"#;
        assert!(transaction(&entry(rejected)).unwrap().is_none());
        for bad in [
            r#"{"AccountId":"a","CreditDebitIndicator":"Debit","Status":"Booked","BookingDateTime":"2026-02-27","Amount":{"Amount":"1.00","Currency":"GBP"}}"#,
            r#"{"AccountId":"a","CreditDebitIndicator":"Debit","Status":"Booked","BookingDateTime":"2026-02-27T08:00:00Z","Amount":{"Amount":"-1.00","Currency":"GBP"}}"#,
            r#"{"AccountId":"a","CreditDebitIndicator":"Debit","Status":"Later","BookingDateTime":"2026-02-27T08:00:00Z","Amount":{"Amount":"1.00","Currency":"GBP"}}"#,
        ] {
            assert!(
                matches!(transaction(&entry(bad)), Err(BankError::Protocol { .. })),
                "{bad}"
            );
        }
    }
}
