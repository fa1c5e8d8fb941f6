//! Connections: a user's consent at one bank, as the hub keeps it, and the rules of its
//! lifecycle ([`status`]).

mod status;

pub use status::{ConnectionEvent, ConnectionStatus, ConnectionStatusError, IllegalTransition};

use serde::{Deserialize, Serialize};

use crate::bank::BankId;
use crate::id::{ConnectionId, TenantId, UserId};
use crate::time::Timestamp;

/// What the user agrees to share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub accounts: bool,
    pub balances: bool,
    pub transactions: bool,
}

impl Access {
    pub const ALL: Access = Access {
        accounts: true,
        balances: true,
        transactions: true,
    };

    /// Space-separated, as stored: `accounts balances transactions`.
    pub fn to_words(self) -> String {
        let mut words = Vec::new();
        if self.accounts {
            words.push("accounts");
        }
        if self.balances {
            words.push("balances");
        }
        if self.transactions {
            words.push("transactions");
        }
        words.join(" ")
    }

    /// Parses the stored or requested form. Balances and transactions imply accounts.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut access = Access {
            accounts: false,
            balances: false,
            transactions: false,
        };
        for word in words {
            match word {
                "accounts" => access.accounts = true,
                "balances" => access.balances = true,
                "transactions" => access.transactions = true,
                other => return Err(crate::region::truncate_for_error(other)),
            }
        }
        access.accounts |= access.balances || access.transactions;
        if access.accounts {
            Ok(access)
        } else {
            Err(String::from("(nothing)"))
        }
    }
}

/// The languages of the hosted pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    De,
    Fr,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::En, Language::De, Language::Fr];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Fr => "fr",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "en" => Some(Language::En),
            "de" => Some(Language::De),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    /// The first supported language of an `Accept-Language` header, English otherwise.
    pub fn negotiate(accept_language: &str) -> Self {
        accept_language
            .split(',')
            .filter_map(|item| item.split(';').next())
            .filter_map(|tag| Language::parse(tag.trim().split('-').next().unwrap_or_default()))
            .next()
            .unwrap_or(Language::En)
    }
}

crate::words!(
    /// Why a connection failed, as the tenant is told.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FailureReason as "failure reason" {
        /// The user cancelled, on the connect page or at the bank. Neither standard tells a press
        /// of the bank's cancel button from giving up after failed attempts: both come back as the
        /// bank's negative answer (Berlin Group `TPP-Nok-Redirect-URI`, UK `access_denied`), and
        /// both are reported as this.
        UserCancelled => "user_cancelled",
        /// The bank refused the authentication without the user coming back through its negative
        /// answer (a consent `rejected` after a positive return, say).
        ScaFailed => "sca_failed",
        /// The bank refused the consent.
        BankRejected => "bank_rejected",
        /// The bank could not be reached while linking.
        BankUnavailable => "bank_unavailable",
        /// The user came back after the link had lapsed, or with a state that does not match.
        LinkExpired => "link_expired",
        /// The bank reported the consent invalid later (other than revocation or expiry).
        ConsentInvalid => "consent_invalid",
        /// An expired consent: the bank ended it early because the same person authorised a newer
        /// one for the same third party at the same bank (Berlin Group: a new recurring consent
        /// expires the former one). All tenants sharing the hub's credentials at a bank are one
        /// third party there.
        Superseded => "superseded",
    }
    display
);

/// A connection as stored, without its secrets (the bank session, the connect token and state
/// hashes are read through their own store methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub bank_id: Option<BankId>,
    pub status: ConnectionStatus,
    pub failure_reason: Option<FailureReason>,
    pub access: Access,
    pub redirect_uri: String,
    pub language: Option<Language>,
    pub valid_until: Option<Timestamp>,
    pub frequency_per_day: u8,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub authorised_at: Option<Timestamp>,
    pub last_synced_at: Option<Timestamp>,
    /// When the next sync is due: the next slot, or the retry after a failure.
    pub next_sync_at: Option<Timestamp>,
    /// Syncs that failed in a row; 0 since the last success.
    pub sync_failures: u32,
    /// How the last failed sync ended; kept after a success, for reference.
    pub last_sync_error: Option<SyncError>,
}

/// How a sync failed, as the tenant is told: the API's error code and a message without
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncError {
    pub code: String,
    pub message: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub bank_id: Option<BankId>,
    pub access: Access,
    pub redirect_uri: String,
    pub language: Option<Language>,
    /// SHA-256 (hex) of the token in the connect URL.
    pub connect_token_hash: String,
    /// The bank login name the tenant bound, sealed with the user's data key.
    pub psu_id: Option<String>,
    pub frequency_per_day: u8,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_words_round_trip() {
        assert_eq!(Access::ALL.to_words(), "accounts balances transactions");
        assert_eq!(
            Access::from_words(["transactions"]).unwrap().to_words(),
            "accounts transactions"
        );
        assert!(Access::from_words(["everything"]).is_err());
        assert!(Access::from_words([]).is_err());
    }

    #[test]
    fn languages_are_negotiated() {
        assert_eq!(Language::negotiate("de-DE,de;q=0.9,en;q=0.8"), Language::De);
        assert_eq!(Language::negotiate("fr-FR, en-GB;q=0.8"), Language::Fr);
        assert_eq!(Language::negotiate("it-IT, fr;q=0.8"), Language::Fr);
        assert_eq!(Language::negotiate("it-IT, es;q=0.8"), Language::En);
        assert_eq!(Language::negotiate(""), Language::En);
        assert_eq!(Language::negotiate("*"), Language::En);
    }

    #[test]
    fn failure_reasons_round_trip() {
        for reason in FailureReason::ALL {
            assert_eq!(FailureReason::parse(reason.as_str()), Some(reason));
        }
    }
}
