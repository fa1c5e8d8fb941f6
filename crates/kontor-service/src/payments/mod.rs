//! Payments: accepted once per idempotency key, authorised by the user at their bank through the
//! hub's page, and followed at the bank until a final status. Initiation is split into recorded
//! phases (see `PaymentPhase`); every call to the bank that creates something carries the
//! payment's own idempotency key, so the worker can resume any payment a crash left between
//! phases without creating a second one at the bank.

mod accept;
mod authorise;
mod callback;
mod cancel;
mod initiate;
mod legacy;
mod payer;
mod progress;

pub use authorise::{PaymentPage, payment_redirect};
pub use progress::PaymentSettings;

use kontor_banks::AccountReference;
use kontor_domain::bank::BankId;
use kontor_domain::event::payload::PaymentStatusChanged;
use kontor_domain::event::{Event, EventData};
use kontor_domain::iban::Iban;
use kontor_domain::money::Money;
use kontor_domain::payment::{
    CreditorName, EndToEndId, IdempotencyKey, Payment, PaymentPhase, PaymentScheme, PaymentStatus,
    RemittanceInfo, StatusChange,
};
use kontor_domain::{PaymentId, RedirectUri, SortCode, TenantId, UkAccountNumber, UserId};
use kontor_store::PaymentChange;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::vault::open_json;

/// A validated payment request.
#[derive(Debug, Clone)]
pub struct PaymentOrder {
    pub user_id: UserId,
    pub bank_id: BankId,
    pub scheme: PaymentScheme,
    pub debtor: Option<AccountReference>,
    pub creditor_name: CreditorName,
    pub creditor: AccountReference,
    pub amount: Money,
    pub remittance: Option<RemittanceInfo>,
    pub end_to_end_id: Option<EndToEndId>,
    pub redirect_uri: RedirectUri,
}

/// The personal parts of a payment, sealed with the user's data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentDetails {
    pub creditor_name: String,
    pub creditor: StoredAccount,
    /// The account paid from: named in the request, or, when it named none (UK), the one the
    /// bank reported after the user chose it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor: Option<StoredAccount>,
    /// The debtor account's name (its owner or owners), when the bank reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debtor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance: Option<String>,
    /// The token of the authorisation URL, kept so a replayed request can answer the same URL.
    pub authorize_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredAccount {
    Iban(String),
    SortCode {
        sort_code: String,
        account_number: String,
    },
}

impl StoredAccount {
    pub fn from_reference(reference: &AccountReference) -> Self {
        match reference {
            AccountReference::Iban(iban) => StoredAccount::Iban(iban.as_str().to_owned()),
            AccountReference::SortCode {
                sort_code,
                account_number,
            } => StoredAccount::SortCode {
                sort_code: sort_code.as_str().to_owned(),
                account_number: account_number.as_str().to_owned(),
            },
        }
    }

    pub fn to_reference(&self) -> ServiceResult<AccountReference> {
        Ok(match self {
            StoredAccount::Iban(raw) => AccountReference::Iban(
                Iban::parse(raw)
                    .map_err(|e| ServiceError::Internal(format!("stored IBAN: {e}")))?,
            ),
            StoredAccount::SortCode {
                sort_code,
                account_number,
            } => AccountReference::SortCode {
                sort_code: SortCode::parse(sort_code)
                    .map_err(|e| ServiceError::Internal(format!("stored sort code: {e}")))?,
                account_number: UkAccountNumber::parse(account_number)
                    .map_err(|e| ServiceError::Internal(format!("stored account number: {e}")))?,
            },
        })
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone)]
pub struct PaymentView {
    pub payment: Payment,
    pub details: PaymentDetails,
    pub history: Vec<StatusChange>,
    /// Where the user authorises it, while that is still to do.
    pub authorize_url: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct AcceptedPayment {
    pub view: PaymentView,
    /// Whether this answers an earlier request with the same idempotency key.
    pub replayed: bool,
}

impl Hub {
    fn authorize_url(&self, id: &PaymentId, token: &str) -> ServiceResult<Url> {
        let mut url = self
            .settings()
            .public_url
            .join(&format!("pay/{id}"))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        url.query_pairs_mut().append_pair("token", token);
        Ok(url)
    }

    /// The hub's idempotency key towards the bank for this payment: stable, at most 40 characters.
    pub(crate) fn bank_idempotency_key(id: &PaymentId) -> ServiceResult<IdempotencyKey> {
        let random = id.as_str().rsplit('_').next().unwrap_or(id.as_str());
        IdempotencyKey::parse(&format!("kp-{random}"))
            .map_err(|e| ServiceError::Internal(format!("the bank's idempotency key: {e}")))
    }

    /// A tenant's payment with its details, history, and (while pending) the authorisation URL.
    pub async fn payment_view(
        &self,
        tenant: &TenantId,
        id: &PaymentId,
    ) -> ServiceResult<PaymentView> {
        let cell = self.payment_cell(id).await?;
        // One read of the row, with its sealed details; another tenant's payment is not found.
        let secrets = cell.payment_secrets(id).await?;
        if &secrets.payment.tenant_id != tenant {
            return Err(ServiceError::NotFound);
        }
        let key = self
            .vault()
            .user_key(cell, &secrets.payment.user_id)
            .await?;
        let details: PaymentDetails =
            open_json(&key, &secrets.details, &crate::vault::context::payment(id))?;
        let history = cell.status_history(id).await?;
        self.view_of(secrets.payment, details, history)
    }

    /// The view of a payment whose details are open and history read.
    pub(crate) fn view_of(
        &self,
        payment: Payment,
        details: PaymentDetails,
        history: Vec<StatusChange>,
    ) -> ServiceResult<PaymentView> {
        let open = matches!(
            payment.phase,
            PaymentPhase::Accepted | PaymentPhase::Initiating | PaymentPhase::AwaitingSca
        );
        let authorize_url = if open {
            Some(self.authorize_url(&payment.id, &details.authorize_token)?)
        } else {
            None
        };
        Ok(PaymentView {
            payment,
            details,
            history,
            authorize_url,
        })
    }

    /// Rewrites the statuses earlier releases stored as `executing` as `authorised`, the one
    /// word for that stage now, in batches, in every cell; returns how many rows changed.
    /// Reads already take `executing` as `authorised` (`PaymentStatus::parse`); this makes the
    /// stored words match, so that a filter on `status` in SQL finds them. Resumable
    /// (`kontor migrate` runs it); rows an earlier release writes during a rollout are
    /// converted by the next run.
    pub async fn merge_legacy_payment_statuses(&self) -> ServiceResult<u64> {
        const BATCH: usize = 500;
        let mut changed = 0;
        for (_, cell) in self.cells().iter() {
            let cell = cell.as_ref();
            loop {
                let batch = cell
                    .rename_payment_status(
                        PaymentStatus::LEGACY_EXECUTING,
                        PaymentStatus::Authorised.as_str(),
                        BATCH,
                    )
                    .await?;
                if batch == 0 {
                    break;
                }
                changed += batch;
            }
        }
        Ok(changed)
    }

    /// Records a step that may change the payment's status (`payment` is the payment before
    /// it), counting a change in `kontor_payment_status_changes_total{region, status}`.
    pub(crate) async fn advance_status(
        &self,
        cell: &dyn kontor_store::CellStore,
        payment: &Payment,
        change: &PaymentChange,
    ) -> ServiceResult<Payment> {
        let updated = cell.advance_payment(&payment.id, change).await?;
        if updated.status != payment.status {
            metrics::counter!(
                "kontor_payment_status_changes_total",
                "region" => updated.id.region().as_str().to_owned(),
                "status" => updated.status.as_str(),
            )
            .increment(1);
        }
        Ok(updated)
    }

    /// The event a status change emits.
    pub(crate) fn status_event(
        payment: &Payment,
        next: PaymentStatus,
        bank: &kontor_banks::BankPaymentStatus,
    ) -> Option<Event> {
        (next != payment.status).then(|| {
            Event::new(
                payment.tenant_id.clone(),
                &payment.user_id,
                EventData::PaymentStatusChanged(PaymentStatusChanged {
                    payment_id: payment.id.clone(),
                    status: next,
                    previous_status: payment.status,
                    bank_status: bank.verbatim.clone(),
                    reason: bank.reason.clone(),
                }),
            )
        })
    }
}
