//! The personal parts of accounts and transactions, kept sealed: what goes in, and how a stored
//! row and its details become the domain's types again.

use kontor_domain::account::BankAccount;
use kontor_domain::iban::Iban;
use kontor_domain::transaction::BankTransaction;
use kontor_store::{AccountRow, TransactionRow};
use serde::{Deserialize, Serialize};

use crate::error::{ServiceError, ServiceResult};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_identification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
}

impl From<&BankAccount> for AccountDetails {
    fn from(a: &BankAccount) -> Self {
        Self {
            iban: a.iban.as_ref().map(|i| i.as_str().to_owned()),
            other_identification: a.other_identification.clone(),
            name: a.name.clone(),
            product: a.product.clone(),
            owner_name: a.owner_name.clone(),
        }
    }
}

impl AccountDetails {
    pub fn iban(&self) -> ServiceResult<Option<Iban>> {
        self.iban
            .as_deref()
            .map(Iban::parse)
            .transpose()
            .map_err(|e| ServiceError::Internal(format!("stored IBAN: {e}")))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_transaction_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category_code: Option<String>,
}

impl From<&BankTransaction> for TransactionDetails {
    fn from(t: &BankTransaction) -> Self {
        Self {
            transaction_id: t.transaction_id.clone(),
            entry_reference: t.entry_reference.clone(),
            counterparty_name: t.counterparty_name.clone(),
            counterparty_account: t.counterparty_account.clone(),
            remittance: t.remittance.clone(),
            end_to_end_id: t.end_to_end_id.clone(),
            mandate_id: t.mandate_id.clone(),
            creditor_id: t.creditor_id.clone(),
            bank_transaction_code: t.bank_transaction_code.clone(),
            merchant_category_code: t.merchant_category_code.clone(),
        }
    }
}

/// A stored transaction as the bank reported it, for reconciliation and for the API.
pub fn bank_transaction(row: &TransactionRow, details: TransactionDetails) -> BankTransaction {
    BankTransaction {
        transaction_id: details.transaction_id,
        entry_reference: details.entry_reference,
        status: row.status,
        booking_date: row.booking_date,
        value_date: row.value_date,
        amount: row.amount,
        counterparty_name: details.counterparty_name,
        counterparty_account: details.counterparty_account,
        remittance: details.remittance,
        end_to_end_id: details.end_to_end_id,
        mandate_id: details.mandate_id,
        creditor_id: details.creditor_id,
        bank_transaction_code: details.bank_transaction_code,
        merchant_category_code: details.merchant_category_code,
    }
}

/// An account row with its details opened.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub row: AccountRow,
    pub details: AccountDetails,
}

/// A transaction row with its details opened.
#[derive(Debug, Clone)]
pub struct TransactionView {
    pub row: TransactionRow,
    pub details: TransactionDetails,
}
