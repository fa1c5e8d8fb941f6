//! Payments: what the hub keeps about a payment it initiates for a user, the phases that make
//! initiation crash-safe, and the status rules ([`status`]).

mod fields;
mod status;

pub use fields::{
    CreditorName, EndToEndId, FieldError, IdempotencyKey, RemittanceInfo, TEXT_PATTERN,
};
pub use status::{
    IllegalTransition, Iso20022Status, Iso20022StatusError, PaymentStatus, PaymentStatusError,
    UK_STATUSES, uk_status,
};

use serde::{Deserialize, Serialize};

use crate::bank::BankId;
use crate::id::{PaymentId, TenantId, UserId};
use crate::money::Money;
use crate::time::Timestamp;

/// The payment scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentScheme {
    /// SEPA credit transfer (Berlin Group `sepa-credit-transfers`).
    Sepa,
    /// SEPA instant credit transfer (Berlin Group `instant-sepa-credit-transfers`).
    SepaInstant,
    /// UK domestic payment (Faster Payments).
    UkDomestic,
}

impl PaymentScheme {
    pub const ALL: [PaymentScheme; 3] = [
        PaymentScheme::Sepa,
        PaymentScheme::SepaInstant,
        PaymentScheme::UkDomestic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentScheme::Sepa => "sepa",
            PaymentScheme::SepaInstant => "sepa_instant",
            PaymentScheme::UkDomestic => "uk_domestic",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Where a payment is in its initiation. Each phase is recorded before the step that leaves it,
/// so a process that dies between phases leaves a recovery point the worker resumes from, and
/// every step towards the bank can be repeated safely (it carries the payment's idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentPhase {
    /// Stored; the user has the authorisation link; nothing at the bank yet.
    Accepted,
    /// About to create the payment at the bank (or doing so when the process died).
    Initiating,
    /// Created at the bank; the user is authorising it there.
    AwaitingSca,
    /// The user came back; the hub is completing it at the bank (UK: submitting).
    Submitting,
    /// The bank has it; its status is polled until final.
    Submitted,
    /// A final status was reached; nothing more to do.
    Done,
}

impl PaymentPhase {
    pub const ALL: [PaymentPhase; 6] = [
        PaymentPhase::Accepted,
        PaymentPhase::Initiating,
        PaymentPhase::AwaitingSca,
        PaymentPhase::Submitting,
        PaymentPhase::Submitted,
        PaymentPhase::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentPhase::Accepted => "accepted",
            PaymentPhase::Initiating => "initiating",
            PaymentPhase::AwaitingSca => "awaiting_sca",
            PaymentPhase::Submitting => "submitting",
            PaymentPhase::Submitted => "submitted",
            PaymentPhase::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// A payment as stored, without its sealed details (creditor, debtor, remittance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub bank_id: BankId,
    pub scheme: PaymentScheme,
    pub status: PaymentStatus,
    pub phase: PaymentPhase,
    pub amount: Money,
    pub end_to_end_id: String,
    pub redirect_uri: String,
    /// The bank's id for the payment, once it has one.
    pub bank_payment_id: Option<String>,
    /// The bank's last status, verbatim.
    pub bank_status: Option<String>,
    /// Why the payment has its status, when the bank said (a rejection's reason); never
    /// personal data.
    pub status_reason: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub next_poll_at: Option<Timestamp>,
    pub poll_attempts: u32,
}

/// One entry of a payment's status history: what the bank said, verbatim, and what it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub status: PaymentStatus,
    pub bank_status: Option<String>,
    /// The bank's reason, when it gave one.
    pub reason: Option<String>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for phase in PaymentPhase::ALL {
            assert_eq!(PaymentPhase::parse(phase.as_str()), Some(phase));
        }
        for scheme in [
            PaymentScheme::Sepa,
            PaymentScheme::SepaInstant,
            PaymentScheme::UkDomestic,
        ] {
            assert_eq!(PaymentScheme::parse(scheme.as_str()), Some(scheme));
        }
    }
}
