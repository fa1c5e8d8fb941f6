//! Payments initiated through either standard, their ISO 20022 status over simulated time,
//! and their booking on the debtor's account.

use time::{Duration, OffsetDateTime};

use crate::config::Standard;

/// ISO 20022 payment status codes the sandbox moves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PaymentStatus {
    /// Received, not yet authorised by the PSU.
    Rcvd,
    /// Authorised and accepted; the debit is pending on the account.
    Actc,
    /// Settled: booked on the debtor's account.
    Acsc,
    /// Rejected (failed SCA, insufficient funds, or the PSU cancelled at the bank).
    Rjct,
    /// Cancelled by the TPP: before authorisation, or after it while a non-instant payment
    /// had not settled yet.
    Canc,
}

impl PaymentStatus {
    pub fn iso(self) -> &'static str {
        match self {
            Self::Rcvd => "RCVD",
            Self::Actc => "ACTC",
            Self::Acsc => "ACSC",
            Self::Rjct => "RJCT",
            Self::Canc => "CANC",
        }
    }

    /// The UK Open Banking `Status` of a domestic payment in this state.
    pub fn uk(self) -> &'static str {
        match self {
            Self::Rcvd => "Pending",
            Self::Actc => "AcceptedSettlementInProcess",
            Self::Acsc => "AcceptedSettlementCompleted",
            Self::Rjct | Self::Canc => "Rejected",
        }
    }
}

/// The payment products the sandbox executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaymentProduct {
    SepaCreditTransfers,
    InstantSepaCreditTransfers,
    /// UK domestic payment (Faster Payments unless another `LocalInstrument` was asked for).
    UkDomestic,
}

impl PaymentProduct {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SepaCreditTransfers => "sepa-credit-transfers",
            Self::InstantSepaCreditTransfers => "instant-sepa-credit-transfers",
            Self::UkDomestic => "uk-domestic",
        }
    }

    /// How long after acceptance the payment settles, in simulated time: instant schemes
    /// within seconds, SEPA credit transfers in the next settlement cycle.
    pub fn settlement_delay(self, instant_like: bool) -> Duration {
        match self {
            Self::InstantSepaCreditTransfers => Duration::seconds(5),
            Self::UkDomestic if instant_like => Duration::seconds(5),
            Self::SepaCreditTransfers | Self::UkDomestic => Duration::hours(4),
        }
    }
}

/// Where the money goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreditorAccount {
    /// `iban` for Berlin Group; the UK `SchemeName` otherwise.
    pub scheme: String,
    pub identification: String,
    pub name: String,
}

/// One payment resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    pub id: String,
    pub standard: Standard,
    pub product: PaymentProduct,
    /// Debtor account (`(user index, account index)` into the bank's books) once known.
    pub debtor: Option<(usize, usize)>,
    pub debtor_iban: Option<String>,
    pub creditor: CreditorAccount,
    pub amount: i64,
    pub currency: String,
    pub remittance: Option<String>,
    pub end_to_end_id: Option<String>,
    /// The body the TPP sent, echoed where the standard echoes it.
    pub request: serde_json::Value,
    pub created_at: OffsetDateTime,
    #[serde(with = "super::persist::psu")]
    pub psu: Option<super::persist::Username>,
    pub authorisations: Vec<String>,
    /// The idempotency key (UK `x-idempotency-key`, Berlin Group `X-Request-ID`).
    pub idempotency_key: Option<String>,
    pub uk_consent_id: Option<String>,
    /// Faster Payments and SCT Inst settle within seconds.
    pub instant: bool,
    /// `TPP-Redirect-URI` / `TPP-Nok-Redirect-URI` given at initiation.
    pub redirect_ok: Option<String>,
    pub redirect_nok: Option<String>,
    /// Rejected because the debtor account could not cover it (Berlin Group reports
    /// `fundsAvailable: false` then).
    pub lacked_funds: bool,
    state: Lifecycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Lifecycle {
    Received,
    Rejected {
        at: OffsetDateTime,
    },
    Cancelled {
        at: OffsetDateTime,
    },
    Accepted {
        at: OffsetDateTime,
        settles_at: OffsetDateTime,
    },
}

impl Payment {
    #[expect(clippy::too_many_arguments, reason = "a plain constructor of a record")]
    pub fn new(
        id: String,
        standard: Standard,
        product: PaymentProduct,
        creditor: CreditorAccount,
        amount: i64,
        currency: String,
        request: serde_json::Value,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            standard,
            product,
            debtor: None,
            debtor_iban: None,
            creditor,
            amount,
            currency,
            remittance: None,
            end_to_end_id: None,
            request,
            created_at,
            psu: None,
            authorisations: Vec::new(),
            idempotency_key: None,
            uk_consent_id: None,
            instant: product == PaymentProduct::InstantSepaCreditTransfers,
            redirect_ok: None,
            redirect_nok: None,
            lacked_funds: false,
            state: Lifecycle::Received,
        }
    }

    /// The status as of `now`: acceptance turns into settlement when its time has come.
    pub fn status_at(&self, now: OffsetDateTime) -> PaymentStatus {
        match self.state {
            Lifecycle::Received => PaymentStatus::Rcvd,
            Lifecycle::Rejected { .. } => PaymentStatus::Rjct,
            Lifecycle::Cancelled { .. } => PaymentStatus::Canc,
            Lifecycle::Accepted { settles_at, .. } if now >= settles_at => PaymentStatus::Acsc,
            Lifecycle::Accepted { .. } => PaymentStatus::Actc,
        }
    }

    /// When the status last changed, as of `now`.
    pub fn status_changed_at(&self, now: OffsetDateTime) -> OffsetDateTime {
        match self.state {
            Lifecycle::Received => self.created_at,
            Lifecycle::Rejected { at } | Lifecycle::Cancelled { at } => at,
            Lifecycle::Accepted { settles_at, .. } if now >= settles_at => settles_at,
            Lifecycle::Accepted { at, .. } => at,
        }
    }

    /// The instant the PSU's authorisation was accepted, once it was.
    pub fn accepted_at(&self) -> Option<OffsetDateTime> {
        match self.state {
            Lifecycle::Accepted { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The instant the payment settles (or settled), once accepted.
    pub fn settles_at(&self) -> Option<OffsetDateTime> {
        match self.state {
            Lifecycle::Accepted { settles_at, .. } => Some(settles_at),
            _ => None,
        }
    }

    pub fn is_received(&self) -> bool {
        self.state == Lifecycle::Received
    }

    pub fn reject(&mut self, at: OffsetDateTime) {
        if self.state == Lifecycle::Received {
            self.state = Lifecycle::Rejected { at };
        }
    }

    pub fn cancel(&mut self, at: OffsetDateTime) {
        if self.state == Lifecycle::Received {
            self.state = Lifecycle::Cancelled { at };
        }
    }

    /// Whether the TPP may still cancel the payment at `now`: before the PSU authorised it, or
    /// after, while a payment that is not instant waits for its settlement cycle (the standard
    /// leaves the cut-off to the bank; this one's is settlement).
    pub fn cancellable_at(&self, now: OffsetDateTime) -> bool {
        match self.state {
            Lifecycle::Received => true,
            Lifecycle::Accepted { settles_at, .. } => !self.instant && now < settles_at,
            Lifecycle::Rejected { .. } | Lifecycle::Cancelled { .. } => false,
        }
    }

    /// Stops an accepted payment before it settles; the caller takes its entries off the books.
    /// Returns false (and changes nothing) when it is not [`Payment::cancellable_at`].
    pub fn cancel_accepted(&mut self, now: OffsetDateTime) -> bool {
        if !matches!(self.state, Lifecycle::Accepted { .. }) || !self.cancellable_at(now) {
            return false;
        }
        self.state = Lifecycle::Cancelled { at: now };
        true
    }

    /// Marks the payment accepted; returns false if it was not waiting (never executes twice).
    pub fn accept(&mut self, at: OffsetDateTime) -> bool {
        if self.state != Lifecycle::Received {
            return false;
        }
        let settles_at = at + self.product.settlement_delay(self.instant);
        self.state = Lifecycle::Accepted { at, settles_at };
        true
    }

    /// True once the payment moved money (accepted or settled).
    pub fn executed(&self) -> bool {
        matches!(self.state, Lifecycle::Accepted { .. })
    }
}
