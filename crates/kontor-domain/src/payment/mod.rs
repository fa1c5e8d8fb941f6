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

crate::words!(
    /// The payment scheme.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PaymentScheme as "payment scheme" {
        /// SEPA credit transfer (Berlin Group `sepa-credit-transfers`).
        Sepa => "sepa",
        /// SEPA instant credit transfer (Berlin Group `instant-sepa-credit-transfers`).
        SepaInstant => "sepa_instant",
        /// UK domestic payment (Faster Payments).
        UkDomestic => "uk_domestic",
    }
);

crate::words!(
    /// Where a payment is in its initiation. Each phase is recorded before the step that leaves it,
    /// so a process that dies between phases leaves a recovery point the worker resumes from, and
    /// every step towards the bank can be repeated safely (it carries the payment's idempotency key).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PaymentPhase as "payment phase" {
        /// Stored; the user has the authorisation link; nothing at the bank yet.
        Accepted => "accepted",
        /// About to create the payment at the bank (or doing so when the process died).
        Initiating => "initiating",
        /// Created at the bank; the user is authorising it there.
        AwaitingSca => "awaiting_sca",
        /// The user came back; the hub is completing it at the bank (UK: submitting).
        Submitting => "submitting",
        /// The bank has it; its status is polled until final.
        Submitted => "submitted",
        /// A final status was reached; nothing more to do.
        Done => "done",
    }
);

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
