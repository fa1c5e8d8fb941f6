//! What goes into and comes out of a connector, in the hub's terms.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kontor_domain::bank::{BankId, Standard};
use kontor_domain::time::Timestamp;
use serde::{Deserialize, Serialize};
use time::Date;
use url::Url;

/// A bank as configured in the directory: where it is and how the hub identifies itself to it.
#[derive(Clone)]
pub struct BankProfile {
    pub id: BankId,
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub standard: Standard,
    /// The API root: for Berlin Group the part before `/v1/…`; for UK Open Banking the part before
    /// `/open-banking/v3.1/…`, which also serves `/.well-known/openid-configuration`.
    pub base_url: Url,
    /// The hub's OAuth2 client at the bank (UK Open Banking; Berlin Group banks identify the TPP
    /// by its certificate instead).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Whether the bank offers decoupled SCA (the user approves in the banking app).
    pub decoupled_sca: bool,
}

impl std::fmt::Debug for BankProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankProfile")
            .field("id", &self.id)
            .field("standard", &self.standard)
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

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
}

/// How the user authenticates at the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaPreference {
    /// The user is sent to the bank's pages and comes back to `redirect_uri`.
    Redirect,
    /// The user approves in the bank's app; the bank needs to know who they are.
    Decoupled { psu_id: String },
}

#[derive(Debug, Clone)]
pub struct ConsentRequest {
    pub access: Access,
    /// Last day of access the hub asks for (the bank may grant less).
    pub valid_until: Date,
    /// Unattended reads a day, 1..=4 (RTS Art. 36(5)(b)).
    pub frequency_per_day: u8,
    /// Where the bank sends the user back: the hub's callback. Connectors add the `state` to it
    /// (Berlin Group) or pass it as the OAuth2 `state` (UK).
    pub redirect_uri: Url,
    /// Opaque, single-use value binding the callback to this connection.
    pub state: String,
    pub sca: ScaPreference,
    /// The user's IP address when they are present (they are, when starting a consent).
    pub psu_ip: Option<IpAddr>,
}

/// How the user authorises a consent that was just created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaStep {
    /// Send the user's browser here.
    Redirect { url: Url },
    /// The user approves in their banking app; poll [`crate::BankConnector::consent_status`].
    Decoupled { message: Option<String> },
}

#[derive(Debug, Clone)]
pub struct ConsentStarted {
    pub session: ConsentSession,
    pub sca: ScaStep,
}

/// What a connector remembers about one consent. Holds secrets: the caller seals it at rest and
/// it never appears in logs (`Debug` shows the consent id only).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentSession {
    /// The bank's consent id.
    pub consent_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "timestamp_micros"
    )]
    pub access_token_expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    /// The redirect URI used when the consent was started (an OAuth2 token exchange repeats it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Anything else a connector wants to keep.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl std::fmt::Debug for ConsentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentSession")
            .field("consent_id", &self.consent_id)
            .finish_non_exhaustive()
    }
}

/// The query of the redirect that brought the user back from the bank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callback {
    pub params: BTreeMap<String, String>,
}

impl Callback {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Where a consent stands at the bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// Authorised; data may be read until `valid_until` (when the bank says).
    Active {
        valid_until: Option<Date>,
    },
    /// Not decided yet (decoupled SCA still running).
    Pending,
    /// The user cancelled, failed SCA, or the bank refused.
    Rejected {
        reason: String,
        /// The bank sent the user back with its negative answer (Berlin Group's
        /// `TPP-Nok-Redirect-URI`, OAuth2 `access_denied`): the user cancelled there, or gave
        /// up after failed attempts; neither standard tells the two apart. `false` when the
        /// bank refused the consent otherwise.
        by_user: bool,
    },
    Expired,
    Revoked,
}

/// Whether the user is present, which decides if a read counts against the consent's daily
/// allowance: it does not when the bank is told the user's IP address.
#[derive(Debug, Clone, Default)]
pub struct ReadContext {
    pub psu_ip: Option<IpAddr>,
    /// Sent as `X-Request-ID` / `x-fapi-interaction-id`, to correlate with the bank's logs.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Booked,
    Pending,
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionQuery {
    pub from: Option<Date>,
    pub to: Option<Date>,
    pub status: BookingStatus,
}

/// `Timestamp` serialises as RFC 3339 but has no `Deserialize`; a session stores it as
/// microseconds since the epoch instead, which round-trips exactly.
mod timestamp_micros {
    use kontor_domain::time::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(at) => s.serialize_some(&at.unix_micros()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        Ok(Option::<i64>::deserialize(d)?.map(Timestamp::from_unix_micros))
    }
}
