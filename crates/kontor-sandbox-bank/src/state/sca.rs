//! SCA authorisations: one per attempt by a PSU to approve a consent or payment, with the
//! login → one-time code → (account choice) steps, attempt counting and the final outcome.

use time::OffsetDateTime;

/// What an authorisation approves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AuthTarget {
    BgConsent(String),
    BgPayment(String),
    UkAccountConsent(String),
    UkPaymentConsent(String),
}

/// How the PSU authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScaApproach {
    /// The TPP sends the PSU's browser to the bank's pages.
    Redirect,
    /// The PSU approves in the bank's app (the sandbox's `/app` page).
    Decoupled,
}

impl ScaApproach {
    pub fn header(self) -> &'static str {
        match self {
            Self::Redirect => "REDIRECT",
            Self::Decoupled => "DECOUPLED",
        }
    }
}

/// Berlin Group `scaStatus` values the sandbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScaStatus {
    Received,
    PsuAuthenticated,
    /// Decoupled: the push to the banking app has been sent.
    Started,
    Finalised,
    Failed,
}

impl ScaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::PsuAuthenticated => "psuAuthenticated",
            Self::Started => "started",
            Self::Finalised => "finalised",
            Self::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Finalised | Self::Failed)
    }
}

/// The page a redirect authorisation shows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Step {
    Login,
    OneTimeCode,
    ChooseAccounts,
    Done,
}

/// The OAuth2 request behind a UK authorisation, needed to send the PSU back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OAuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
}

/// Wrong passwords or codes allowed before the authorisation fails.
pub const MAX_FAILURES: u8 = 3;

/// One SCA process.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Authorisation {
    pub id: String,
    pub target: AuthTarget,
    pub approach: ScaApproach,
    pub status: ScaStatus,
    pub step: Step,
    /// The PSU once known (logged in, or named by `PSU-ID` for decoupled SCA).
    #[serde(with = "super::persist::psu")]
    pub psu: Option<super::persist::Username>,
    pub failures: u8,
    pub redirect_ok: Option<String>,
    pub redirect_nok: Option<String>,
    pub oauth: Option<OAuthRequest>,
    /// The account choice page is needed (bank-offered consents, UK consents).
    pub choose_accounts: bool,
    /// UK payments without a debtor: the PSU picks exactly one account.
    pub choose_single_account: bool,
    pub created_at: OffsetDateTime,
    /// Where the PSU was last sent (shown on the final page).
    pub outcome_url: Option<String>,
}

impl Authorisation {
    pub fn new(id: String, target: AuthTarget, approach: ScaApproach, now: OffsetDateTime) -> Self {
        Self {
            id,
            target,
            approach,
            status: if approach == ScaApproach::Decoupled {
                ScaStatus::Started
            } else {
                ScaStatus::Received
            },
            step: Step::Login,
            psu: None,
            failures: 0,
            redirect_ok: None,
            redirect_nok: None,
            oauth: None,
            choose_accounts: false,
            choose_single_account: false,
            created_at: now,
            outcome_url: None,
        }
    }

    /// Counts a wrong password or code; true when this one used up the attempts.
    pub fn record_failure(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= MAX_FAILURES {
            self.status = ScaStatus::Failed;
            self.step = Step::Done;
            true
        } else {
            false
        }
    }
}
