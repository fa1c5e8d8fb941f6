//! Berlin Group AIS consents: what was asked for, what the PSU granted, and the daily counter
//! of unattended reads.

use std::collections::BTreeMap;

use time::{Date, OffsetDateTime};

/// `consentStatus` values the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConsentStatus {
    Received,
    Rejected,
    Valid,
    RevokedByPsu,
    Expired,
    TerminatedByTpp,
}

impl ConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Rejected => "rejected",
            Self::Valid => "valid",
            Self::RevokedByPsu => "revokedByPsu",
            Self::Expired => "expired",
            Self::TerminatedByTpp => "terminatedByTpp",
        }
    }
}

/// The `access` object as requested (IBANs only; the sandbox addresses accounts by IBAN).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BgAccess {
    pub accounts: Vec<String>,
    pub balances: Vec<String>,
    pub transactions: Vec<String>,
    pub available_accounts: Option<String>,
    pub available_accounts_with_balance: Option<String>,
    pub all_psd2: Option<String>,
}

impl BgAccess {
    /// A "bank-offered consent": no accounts named, the PSU picks them at the bank.
    pub fn is_bank_offered(&self) -> bool {
        self.accounts.is_empty()
            && self.balances.is_empty()
            && self.transactions.is_empty()
            && self.available_accounts.is_none()
            && self.available_accounts_with_balance.is_none()
            && self.all_psd2.is_none()
    }

    /// Every IBAN the request names.
    pub fn named_ibans(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .accounts
            .iter()
            .chain(&self.balances)
            .chain(&self.transactions)
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// What a valid consent allows on one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub details: bool,
    pub balances: bool,
    pub transactions: bool,
}

/// How much of the account list a consent shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListAccess {
    /// Accounts appear in `GET /v1/accounts` (even without detail access).
    pub list_only: bool,
    pub with_balance: bool,
}

/// A Berlin Group AIS consent resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BgConsent {
    pub id: String,
    pub requested: BgAccess,
    pub recurring: bool,
    pub valid_until: Date,
    pub frequency_per_day: u32,
    pub status: ConsentStatus,
    #[serde(with = "super::persist::psu")]
    pub psu: Option<super::persist::Username>,
    pub created_at: OffsetDateTime,
    pub last_action: Date,
    pub authorisations: Vec<String>,
    /// Granted access by account `resourceId`, filled when SCA finalises.
    pub grants: BTreeMap<String, Grant>,
    pub list_access: ListAccess,
    /// `TPP-Redirect-URI` / `TPP-Nok-Redirect-URI` given at creation.
    pub redirect_ok: Option<String>,
    pub redirect_nok: Option<String>,
}

impl BgConsent {
    /// Applies expiry by date: `validUntil` is inclusive, so the consent dies at the next day.
    pub fn refresh(&mut self, today: Date) {
        if matches!(self.status, ConsentStatus::Valid | ConsentStatus::Received)
            && today > self.valid_until
        {
            self.status = ConsentStatus::Expired;
            self.last_action = today;
        }
    }
}

/// Which AIS endpoint a read used; Berlin Group counts unattended reads per consent, account
/// and endpoint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum ReadEndpoint {
    AccountList,
    AccountDetails,
    Balances,
    Transactions,
}

/// Counts unattended reads per (consent, account, endpoint, day).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct UsageCounter {
    #[serde(with = "super::persist::pairs")]
    counts: BTreeMap<(String, String, ReadEndpoint, Date), u32>,
}

impl UsageCounter {
    /// Records one read if the limit allows it; false when the day's allowance is used up.
    pub fn try_count(
        &mut self,
        consent: &str,
        account: &str,
        endpoint: ReadEndpoint,
        day: Date,
        limit: u32,
    ) -> bool {
        let key = (consent.to_string(), account.to_string(), endpoint, day);
        let count = self.counts.entry(key).or_insert(0);
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}
