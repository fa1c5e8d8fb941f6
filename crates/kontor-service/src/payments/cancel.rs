//! The tenant cancels a payment (`POST /v1/payments/{id}/cancel`). What that takes depends on
//! how far the payment got, which its recorded phase says:
//!
//! | phase | Berlin Group | UK Open Banking |
//! |---|---|---|
//! | `accepted`, `initiating` | cancelled at the hub: the user never reached the bank's SCA, so nobody can authorise it | the same |
//! | `awaiting_sca` | cancelled at the bank (`DELETE /v1/payments/{product}/{id}`), then at the hub | cancelled at the hub: the consent is never used, the hub never submits the payment |
//! | `submitting`, `submitted` | cancelled at the bank if it still allows (a SEPA credit transfer before settlement), else refused | refused: a domestic payment cannot be cancelled once the user authorised it |
//! | `done` | already cancelled: the same answer again; otherwise refused | the same |
//!
//! The cancel holds the payment's lease, as every step toward the bank does: while it runs, no
//! worker resumes an initiation or a submission, no request starts one, and the user's return
//! from the bank does not take the payment (it finds it taken, and later finished, and only
//! sends the user back to the tenant). A cancel that finds the lease held answers
//! `payment_busy` and changes nothing. Every change is also a checked phase change, so a step
//! that began from a phase the cancel has left cannot record anything.

use kontor_banks::{BankPaymentStatus, PaymentCancellation};
use kontor_domain::payment::{PaymentPhase, PaymentStatus};
use kontor_domain::{PaymentId, TenantId};

use super::PaymentView;
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// The reason recorded with a cancellation the tenant asked for.
pub const TENANT_CANCELLED: &str = "tenant_cancelled";

fn not_cancellable(message: impl Into<String>) -> ServiceError {
    ServiceError::conflict(ErrorCode::PaymentNotCancellable, message)
}

impl Hub {
    /// Cancels the tenant's payment where it can still be cancelled (see the module's table)
    /// and answers it as it now stands; `payment_not_cancellable` where it cannot (nothing
    /// changes), `payment_busy` while another process is stepping it toward the bank.
    /// Repeating a successful cancel answers the cancelled payment again.
    pub async fn cancel_payment_for_tenant(
        &self,
        tenant: &TenantId,
        id: &PaymentId,
    ) -> ServiceResult<PaymentView> {
        let cell = self.payment_cell(id).await?;
        // Another tenant's payment does not exist for this one, before any lease is taken.
        cell.payment(tenant, id).await?;
        let owner = self.request_lease_owner();
        self.with_payment_lease(id, &owner, self.cancel_claimed(id))
            .await?
            .ok_or_else(|| {
                ServiceError::conflict(
                    ErrorCode::PaymentBusy,
                    "the payment is being sent to or completed at the bank; try again in a moment",
                )
            })?;
        self.payment_view(tenant, id).await
    }

    /// The cancel itself, under the payment's lease, from the phase as it is now.
    async fn cancel_claimed(&self, id: &PaymentId) -> ServiceResult<()> {
        let cell = self.payment_cell(id).await?;
        let secrets = cell.payment_secrets(id).await?;
        let payment = secrets.payment.clone();
        if payment.status == PaymentStatus::Cancelled {
            return Ok(());
        }
        if payment.status.is_final() {
            return Err(not_cancellable(format!(
                "the payment is {} already",
                payment.status
            )));
        }
        let at_hub = BankPaymentStatus {
            verbatim: "CANC".into(),
            iso: None,
            reason: Some(TENANT_CANCELLED.into()),
        };
        let connector = self
            .directory()
            .connector(&payment.bank_id, &payment.tenant_id)
            .ok_or(ServiceError::NotFound)?;
        let submits_later = connector.submits_after_authorisation();
        let phase = payment.phase;
        match phase {
            // Nothing the user can authorise exists: an initiation a crash interrupted left
            // at most a payment at the bank whose SCA link nobody ever received.
            PaymentPhase::Accepted | PaymentPhase::Initiating => {}
            // UK: the user may authorise the consent, but only the hub's submission makes the
            // payment, and a cancelled payment is never submitted.
            PaymentPhase::AwaitingSca if submits_later => {}
            PaymentPhase::Submitting | PaymentPhase::Submitted if submits_later => {
                return Err(not_cancellable(
                    "the user authorised it: a UK Open Banking domestic payment cannot be \
                     cancelled once authorised",
                ));
            }
            PaymentPhase::AwaitingSca | PaymentPhase::Submitting | PaymentPhase::Submitted => {
                let mut session = self.payment_session(&secrets).await?.unwrap_or_default();
                return match connector.cancel_payment(&mut session).await? {
                    PaymentCancellation::Cancelled(mut status) => {
                        status.reason = Some(TENANT_CANCELLED.into());
                        self.finish(&payment, PaymentStatus::Cancelled, &status, &[phase])
                            .await?;
                        tracing::info!(payment.id = %id, "payment cancelled at the bank");
                        Ok(())
                    }
                    PaymentCancellation::Refused { reason } => Err(not_cancellable(format!(
                        "the bank refused to cancel it ({reason})"
                    ))),
                    PaymentCancellation::NeedsAuthorisation => Err(not_cancellable(
                        "the bank wants the user to authorise the cancellation, which Kontor \
                         does not offer",
                    )),
                };
            }
            PaymentPhase::Done => {
                return Err(not_cancellable(format!(
                    "the payment is {} already",
                    payment.status
                )));
            }
        }
        self.finish(&payment, PaymentStatus::Cancelled, &at_hub, &[phase])
            .await?;
        tracing::info!(payment.id = %id, phase = phase.as_str(), "payment cancelled at the hub");
        Ok(())
    }
}
