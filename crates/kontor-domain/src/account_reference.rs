//! An account to pay from or to, as a payment names it: an IBAN, or a UK sort code and
//! account number. A value the API parses and the connectors send.

use serde::{Deserialize, Serialize};

use crate::iban::Iban;
use crate::uk_account::{SortCode, UkAccountNumber};

/// An account to pay from or to. `Debug` shows only the country or the last digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountReference {
    Iban(Iban),
    /// UK: sort code and account number, parsed by the domain (`kontor_domain::uk_account`).
    SortCode {
        sort_code: SortCode,
        account_number: UkAccountNumber,
    },
}

impl std::fmt::Debug for AccountReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountReference::Iban(iban) => write!(f, "{iban:?}"),
            AccountReference::SortCode { account_number, .. } => write!(f, "{account_number:?}"),
        }
    }
}
