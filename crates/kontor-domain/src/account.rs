//! Bank accounts and balances, as connectors report them (whatever the standard) and as the hub
//! keeps them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::currency::Currency;
use crate::iban::Iban;
use crate::id::AccountId;
use crate::money::Money;
use crate::time::Timestamp;

crate::words!(
    /// What kind of account this is, as far as the bank says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AccountKind as "account kind" {
        Current => "current",
        Savings => "savings",
        CreditCard => "credit_card",
        Loan => "loan",
        Other => "other",
    }
);

/// An account as a connector read it from the bank. Personal data: `Debug` shows ids and kind
/// only.
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount {
    /// The bank's id for the account (Berlin Group `resourceId`, UK `AccountId`); stable for
    /// the consent's lifetime.
    pub bank_account_id: String,
    pub iban: Option<Iban>,
    /// Other identification when there is no IBAN: a UK sort code and account number
    /// (`SortCodeAccountNumber`, 14 digits), a masked card number, a BBAN.
    pub other_identification: Option<String>,
    pub currency: Currency,
    /// The name the account holder gave it, or the bank's product name.
    pub name: Option<String>,
    pub product: Option<String>,
    pub owner_name: Option<String>,
    pub kind: AccountKind,
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("bank_account_id", &self.bank_account_id)
            .field("currency", &self.currency)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

crate::words!(
    /// The balance types of both standards (Berlin Group `balanceType`, UK `Type`), one vocabulary.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum BalanceKind as "balance kind" {
        ClosingBooked => "closing_booked",
        ClosingAvailable => "closing_available",
        Expected => "expected",
        InterimAvailable => "interim_available",
        InterimBooked => "interim_booked",
        OpeningBooked => "opening_booked",
        ForwardAvailable => "forward_available",
        NonInvoiced => "non_invoiced",
        Information => "information",
        Other => "other",
    }
);

/// One balance of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    pub kind: BalanceKind,
    /// Signed: a credit card's or overdrawn account's balance is negative.
    pub amount: Money,
    /// Whether the bank included the credit limit (Berlin Group `creditLimitIncluded`, UK
    /// `CreditLine.Included`).
    pub credit_limit_included: Option<bool>,
    pub reference_date: Option<Date>,
    pub last_change: Option<Timestamp>,
}

/// A balance as the hub keeps it: whose account, and when it was read from the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    pub account_id: AccountId,
    pub balance: Balance,
    pub fetched_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AccountKind::ALL {
            assert_eq!(AccountKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for kind in BalanceKind::ALL {
            assert_eq!(BalanceKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(AccountKind::parse("chequing"), None);
    }

    #[test]
    fn debug_hides_personal_data() {
        let account = BankAccount {
            bank_account_id: "acc-1".into(),
            iban: Some(Iban::parse("DE89370400440532013000").unwrap()),
            other_identification: None,
            currency: Currency::parse("EUR").unwrap(),
            name: Some("Jane's account".into()),
            product: None,
            owner_name: Some("Jane Doe".into()),
            kind: AccountKind::Current,
        };
        let shown = format!("{account:?}");
        assert!(
            !shown.contains("Jane") && !shown.contains("0532013000"),
            "{shown}"
        );
    }
}
