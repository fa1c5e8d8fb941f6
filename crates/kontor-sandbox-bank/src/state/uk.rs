//! UK Open Banking resources: account-access and domestic-payment consents, OAuth2 tokens and
//! authorisation codes, and `x-idempotency-key` records.

use time::OffsetDateTime;

/// `Status` of an account-access consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UkConsentStatus {
    AwaitingAuthorisation,
    Authorised,
    Rejected,
    Revoked,
    /// Payment consents only: used by its one payment.
    Consumed,
}

impl UkConsentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingAuthorisation => "AwaitingAuthorisation",
            Self::Authorised => "Authorised",
            Self::Rejected => "Rejected",
            Self::Revoked => "Revoked",
            Self::Consumed => "Consumed",
        }
    }
}

/// An account-access consent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UkAccountConsent {
    pub id: String,
    pub client_id: String,
    pub permissions: Vec<String>,
    pub expiration: Option<OffsetDateTime>,
    pub transaction_from: Option<OffsetDateTime>,
    pub transaction_to: Option<OffsetDateTime>,
    pub status: UkConsentStatus,
    pub created_at: OffsetDateTime,
    pub status_updated_at: OffsetDateTime,
    #[serde(with = "super::persist::psu")]
    pub psu: Option<super::persist::Username>,
    /// `AccountId`s the PSU chose.
    pub accounts: Vec<String>,
}

impl UkAccountConsent {
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Expired consents keep their status (the standard has no `Expired`) but stop working.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expiration.is_some_and(|e| e <= now)
    }
}

/// A domestic-payment consent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UkPaymentConsent {
    pub id: String,
    pub client_id: String,
    /// `Data.Initiation` exactly as sent; the payment must repeat it.
    pub initiation: serde_json::Value,
    /// `Risk` exactly as sent.
    pub risk: serde_json::Value,
    /// `Data` minus `Initiation`, echoed back (`ReadRefundAccount`, `Authorisation`, …).
    pub data_extra: serde_json::Map<String, serde_json::Value>,
    pub status: UkConsentStatus,
    pub created_at: OffsetDateTime,
    pub status_updated_at: OffsetDateTime,
    #[serde(with = "super::persist::psu")]
    pub psu: Option<super::persist::Username>,
    /// Debtor account `(user index, account index)`: named in the request or chosen by the PSU.
    pub debtor: Option<(usize, usize)>,
    pub amount: i64,
    pub currency: String,
    pub instant: bool,
    pub payment_id: Option<String>,
}

/// What an access token allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenGrant {
    /// Client credentials: the TPP itself, for consent endpoints.
    Client { scopes: Vec<String> },
    /// Authorization code: the PSU's consent.
    Psu {
        consent_id: String,
        scopes: Vec<String>,
    },
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AccessToken {
    pub client_id: String,
    pub grant: TokenGrant,
    pub expires_at: OffsetDateTime,
    /// Strict mode: `x5t#S256` of the TLS client certificate the token is bound to (RFC 8705).
    pub cnf_x5t_s256: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RefreshToken {
    pub client_id: String,
    pub consent_id: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub consent_id: String,
    pub scopes: Vec<String>,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub expires_at: OffsetDateTime,
    /// The authorization request's `nonce` and `state`, for the ID token (`nonce`, `s_hash`).
    pub nonce: Option<String>,
    pub state: Option<String>,
}

/// Which POST an idempotency key (UK `x-idempotency-key`, Berlin Group `X-Request-ID`) was used on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum IdempotentOp {
    AccountConsent,
    PaymentConsent,
    Payment,
    BgConsent,
    BgPayment,
}

/// The resource an idempotency key created, and when.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyRecord {
    pub resource_id: String,
    pub created_at: OffsetDateTime,
    /// Berlin Group: what the call asked for, to tell a retry from another request under the
    /// same `X-Request-ID`. UK keys have none: the standard answers the first resource whatever
    /// the body.
    pub request: Option<serde_json::Value>,
}
