//! The way back from the bank: the callback, bound to the payment by a single-use, expiring
//! state as in the connect flow, and the payment's completion at the bank after it.

use std::collections::BTreeMap;

use kontor_banks::{BankPaymentStatus, Callback, PaymentSession};
use kontor_domain::PaymentId;
use kontor_domain::payment::{Payment, PaymentPhase};
use kontor_store::{PaymentChange, PaymentSecrets, StoreError};

use super::authorise::payment_redirect;
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lease::LeaseOn;
use crate::link::NextStep;
use crate::tokens::{hash_token, token_matches};
use crate::vault::{context, seal_json};

impl Hub {
    /// The user came back from the bank. As for the connect flow, the state names the payment
    /// and carries a secret only the bank's redirect knows: a state whose secret is not the
    /// payment's own changes nothing and reveals nothing (the same error as a state naming no
    /// payment); a genuine one is used once, and afterwards (or once lapsed) only brings the
    /// user back to the tenant.
    pub async fn payment_callback(
        &self,
        params: BTreeMap<String, String>,
    ) -> ServiceResult<NextStep> {
        let state = params.get("state").cloned().unwrap_or_default();
        let invalid = || ServiceError::invalid(ErrorCode::InvalidState, "the link is not valid");
        let id = state
            .split_once('.')
            .and_then(|(id, _)| PaymentId::parse(id).ok())
            .ok_or_else(invalid)?;
        let cell = self.payment_cell(&id).await.map_err(|_| invalid())?;
        let now = self.clock().now();
        let current = match cell.payment_secrets(&id).await {
            Ok(current) => current,
            Err(StoreError::NotFound) => return Err(invalid()),
            Err(err) => return Err(ServiceError::from(err)),
        };
        if !current
            .state_hash
            .as_deref()
            .is_some_and(|stored| token_matches(&state, stored))
        {
            tracing::warn!(payment.id = %id, "payment callback with a state that is not the payment's; ignored");
            return Err(invalid());
        }
        let back_to_tenant = |payment: &Payment| -> ServiceResult<NextStep> {
            Ok(NextStep::Tenant {
                url: payment_redirect(payment)?,
                activated: None,
            })
        };
        if current.payment.phase != PaymentPhase::AwaitingSca
            || current.state_spent_at.is_some()
            || current.state_expires_at.is_none_or(|until| until <= now)
        {
            // Replayed, late or lapsed: the payment goes on regardless; back to the tenant.
            return back_to_tenant(&current.payment);
        }
        // The user's return is recorded whole, in one transaction with spending the state: the
        // step to `submitting` and the callback kept in the session. If the hub dies after it,
        // the worker completes the payment with the kept callback; before it, nothing happened.
        let mut session = self.payment_session(&current).await?.unwrap_or_default();
        session.callback = params;
        let key = self
            .vault()
            .user_key(cell, &current.payment.user_id)
            .await?;
        let mut returned =
            PaymentChange::phase(&[PaymentPhase::AwaitingSca], PaymentPhase::Submitting, now);
        returned.session = Some(seal_json(&key, &session, &context::payment_session(&id))?);
        // The request holds the payment's lease from then on, so that the worker does not
        // resume the completion while the request is still on it.
        let owner = self.request_lease_owner();
        let until = now.plus_seconds(self.settings().lease_seconds);
        let secrets = match cell
            .take_payment_state(&id, &hash_token(&state), now, &returned, (&owner, until))
            .await
        {
            Ok(secrets) => secrets,
            // Taken already, by an earlier try of this callback, or the worker has the payment:
            // it goes on regardless.
            Err(StoreError::NotFound | StoreError::StateRefused { .. }) => {
                let current = cell.payment_secrets(&id).await?;
                return back_to_tenant(&current.payment);
            }
            Err(err) => return Err(ServiceError::from(err)),
        };
        let submitted = self
            .holding_lease(LeaseOn::Payment(&id), &owner, self.submit(&secrets))
            .await
            .ok_or_else(super::progress::taken_over)?;
        back_to_tenant(&submitted?)
    }

    /// Completes the payment at the bank, from `submitting`: right after the user came back, or
    /// when the worker resumes a step a crash interrupted. The callback is the one kept in the
    /// session when the user came back (none if they never did). A code in it is exchanged for
    /// the user's token first, and the token saved, before the payment is submitted under the
    /// hub's idempotency key; so a resumed completion submits again with the token (the bank
    /// answers with the payment it made, if it made one), never with a spent code.
    pub(crate) async fn submit(&self, secrets: &PaymentSecrets) -> ServiceResult<Payment> {
        let payment = &secrets.payment;
        // Both callers hold the payment's lease and have just read it as `submitting`.
        if payment.phase != PaymentPhase::Submitting {
            return Ok(payment.clone());
        }
        let cell = self.payment_cell(&payment.id).await?;
        let connector = self
            .directory()
            .connector(&payment.bank_id, &payment.tenant_id)
            .ok_or(ServiceError::NotFound)?;
        let mut session = self.payment_session(secrets).await?.unwrap_or_default();
        let callback = Callback {
            params: session.callback.clone(),
        };
        let user_key = self.vault().user_key(cell, &payment.user_id).await?;
        let save = |session: &PaymentSession| -> ServiceResult<PaymentChange> {
            let mut keep = PaymentChange::phase(
                &[PaymentPhase::Submitting],
                PaymentPhase::Submitting,
                self.clock().now(),
            );
            keep.session = Some(seal_json(
                &user_key,
                session,
                &context::payment_session(&payment.id),
            )?);
            Ok(keep)
        };
        match connector
            .exchange_payment_code(&mut session, &callback)
            .await
        {
            Ok(true) => {
                session.callback.clear();
                cell.advance_payment(&payment.id, &save(&session)?).await?;
            }
            Ok(false) => {}
            // Completing tries the exchange again and answers for a code that is spent.
            Err(err) => {
                tracing::info!(payment.id = %payment.id, error = %err, "exchanging the code failed; completing decides");
            }
        }
        let key = Self::bank_idempotency_key(&payment.id)?;
        let outcome = connector
            .complete_payment(&mut session, &callback, &key)
            .await;
        if outcome.is_ok() {
            // The callback has served; the session saved with the status need not keep it.
            session.callback.clear();
        }
        let status = match outcome {
            Ok(status) => status,
            Err(err)
                if err.is_transient()
                    || matches!(err, kontor_banks::BankError::Protocol { .. }) =>
            {
                // The bank may have acted: keep what the session learnt (the user's token, say)
                // and let the worker ask again with the same key.
                cell.advance_payment(&payment.id, &save(&session)?).await?;
                tracing::warn!(payment.id = %payment.id, error = %err, "completing the payment unanswered; the worker resumes it");
                return Err(err.into());
            }
            Err(err) => {
                tracing::info!(payment.id = %payment.id, error = %err, "the bank refused to complete the payment");
                BankPaymentStatus {
                    verbatim: "RJCT".into(),
                    iso: None,
                    reason: Some(crate::bank_reason(&err)),
                }
            }
        };
        self.record_status(payment, &session, &status, &[PaymentPhase::Submitting])
            .await
    }
}
