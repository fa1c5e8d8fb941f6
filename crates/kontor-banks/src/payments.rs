//! Payment initiation (PIS), in the hub's terms. One payment at the bank per hub payment: every
//! request that creates something carries the hub's idempotency key for that payment (UK
//! `x-idempotency-key`; Berlin Group `X-Request-ID`, which this hub keeps stable per payment), so
//! repeating a call whose answer was lost cannot create a second payment.
//!
//! How the key reaches the bank:
//! - Berlin Group: `X-Request-ID` of the initiation is the key itself when it is a UUID, else a
//!   UUID derived from it ([`crate::berlin_group::payment_request_id`]).
//! - UK: the domestic payment is submitted with the key itself as `x-idempotency-key`; the
//!   payment consent before it with a key derived from it
//!   ([`crate::uk_open_banking::consent_idempotency_key`]), so that the two never share one.
//!
//! A request the standard forbids (a field too long, a product or currency the standard does
//! not carry, a missing debtor account where it is mandatory) is refused before anything is
//! sent, with [`crate::BankError::invalid_request`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use kontor_domain::money::Money;
use kontor_domain::payment::{
    CreditorName, EndToEndId, IdempotencyKey, Iso20022Status, RemittanceInfo,
};
use serde::{Deserialize, Serialize};
use url::Url;

/// Which payment product to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentProduct {
    /// Berlin Group `sepa-credit-transfers`.
    SepaCreditTransfer,
    /// Berlin Group `instant-sepa-credit-transfers`.
    InstantSepaCreditTransfer,
    /// UK Open Banking domestic payment (Faster Payments).
    UkDomestic,
}

pub use kontor_domain::account_reference::AccountReference;

/// The account a payment is made from, as the bank reported it (UK: the consent's or the
/// payment's `Debtor`, or the payment's `Refund.Account`, which a bank gives when the consent
/// asked for it with `ReadRefundAccount`). `Debug` shows only the account's last digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayerAccount {
    pub account: AccountReference,
    /// The account's name as the bank holds it: its owner or owners (1 to 350 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl std::fmt::Debug for PayerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayerAccount")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// What the hub asks the bank to pay. `Debug` leaves out the names and texts (personal data).
#[derive(Clone)]
pub struct PaymentRequest {
    pub product: PaymentProduct,
    /// When absent, the user picks the account at the bank: UK only. Berlin Group 1.3.8 makes
    /// `debtorAccount` mandatory (`paymentInitiation_json.required`), so a Berlin Group
    /// connector refuses a request without one.
    pub debtor: Option<AccountReference>,
    /// 1 to 70 characters: SEPA's `creditorName` limit, within UK's (`CreditorAccount.Name`, 350).
    pub creditor_name: CreditorName,
    /// An IBAN for SEPA; a sort code and account number or an IBAN for UK.
    pub creditor: AccountReference,
    /// Positive, in the currency the bank accepts (EUR for SEPA, GBP for UK domestic).
    pub amount: Money,
    /// Unstructured remittance, 1 to 140 characters.
    pub remittance: Option<RemittanceInfo>,
    /// The end-to-end id carried to the creditor (1 to 35 characters; Faster Payments carries
    /// only the first 31).
    pub end_to_end_id: EndToEndId,
    /// The hub's idempotency key for this payment, at most [`IdempotencyKey::MAX_BANK_LEN`]
    /// characters (connectors refuse a longer one), the same
    /// for every call about this payment that creates something. A UUID travels unchanged to
    /// both standards, which makes the bank's records easiest to reconcile.
    pub idempotency_key: IdempotencyKey,
    /// The hub's callback; connectors add the state to it (Berlin Group) or pass it as the OAuth2
    /// `state` (UK).
    pub redirect_uri: Url,
    /// Keep it (and `redirect_uri`) when repeating a request: a Berlin Group bank that answers
    /// a repeated initiation from its record of the first sends the user back to the first
    /// request's redirect, with the first state.
    pub state: String,
    /// The user's IP address (present when they start the authorisation). Berlin Group
    /// requires `PSU-IP-Address` on the initiation; without one (a resumed initiation) the
    /// connector sends the hub's own address, as the header's definition says to.
    pub psu_ip: Option<IpAddr>,
}

impl std::fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("product", &self.product)
            .field("debtor", &self.debtor)
            .field("creditor", &self.creditor)
            .field("amount", &self.amount)
            .field("idempotency_key", &self.idempotency_key)
            .finish_non_exhaustive()
    }
}

/// What a connector remembers about one payment. Holds secrets (tokens) and the payment's
/// details (UK: the consent's `Initiation`, repeated on submission): the caller seals it, and
/// saves it after every call that had it, including calls that failed: a UK `complete_payment`
/// that exchanged the code and then could not reach the bank keeps the token it needs to try
/// again.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentSession {
    /// Berlin Group `paymentId`; UK `DomesticPaymentId` once the payment is submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// UK `ConsentId` of the domestic payment consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorisation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// The query the user came back from the bank with, kept by the caller until the code in
    /// it has been exchanged, so that a completion a crash interrupted can be resumed with it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub callback: BTreeMap<String, String>,
    /// The account the bank said the payment is made from, when it said (UK), for the caller
    /// to keep with the payment; set again on every answer that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<PayerAccount>,
}

impl std::fmt::Debug for PaymentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSession")
            .field("payment_id", &self.payment_id)
            .field("consent_id", &self.consent_id)
            .finish_non_exhaustive()
    }
}

/// A payment's status as the bank states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankPaymentStatus {
    /// Exactly what the bank said: an ISO 20022 code (Berlin Group `transactionStatus`) or a UK
    /// status name (`AcceptedSettlementCompleted`, `AwaitingAuthorisation`, …). The one
    /// exception: a UK authorisation that comes back with an OAuth2 `error` is `Rejected`, the
    /// consent status it leads to, without asking the bank.
    pub verbatim: String,
    /// Its ISO 20022 meaning, when it has one. UK statuses map by name (`Pending` PDNG,
    /// `AcceptedSettlementInProcess` ACSP, `AcceptedSettlementCompleted` ACSC,
    /// `AcceptedCreditSettlementCompleted` ACCC, `AcceptedWithoutPosting` ACWP, `Rejected`
    /// RJCT); a UK payment consent's to where the payment stands: `AwaitingAuthorisation` RCVD,
    /// `Authorised` ACTC, `Rejected` RJCT, and `Consumed` none (a payment was submitted; its own
    /// status is the answer: call `complete_payment` again to learn it).
    pub iso: Option<Iso20022Status>,
    /// Why, for rejections, when the bank says (no personal data).
    pub reason: Option<String>,
}

/// What the bank made of a request to cancel a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCancellation {
    /// Cancelled at the bank (Berlin Group: `204`, or `202` with a cancelled status).
    Cancelled(BankPaymentStatus),
    /// The bank will not cancel it: too late (settled, past its cut-off), or a standard that
    /// cannot cancel a payment once authorised (UK domestic payments). `reason` is the bank's
    /// code (`CANCELLATION_INVALID`) or the rule; never personal data.
    Refused { reason: String },
    /// The bank wants the user to authorise the cancellation (Berlin Group `202` with a
    /// `startAuthorisation` link), which the hub does not offer: nothing was cancelled.
    NeedsAuthorisation,
}

/// A payment created at the bank and how the user authorises it.
#[derive(Debug, Clone)]
pub struct PaymentStarted {
    pub session: PaymentSession,
    pub sca: crate::ScaStep,
    pub status: BankPaymentStatus,
}
