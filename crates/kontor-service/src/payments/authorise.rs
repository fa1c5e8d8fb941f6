//! The user's side of a payment: the hub's page (who is paid how much, from which bank), the
//! step to the bank's SCA, and the way back through the callback to the tenant. The callback is
//! bound to the payment by a single-use, expiring state, as in the connect flow.

use std::collections::BTreeMap;
use std::net::IpAddr;

use kontor_banks::{
    BankPaymentStatus, Callback, PaymentProduct, PaymentRequest, PaymentSession, ScaStep,
};
use kontor_domain::PaymentId;
use kontor_domain::payment::{CreditorName, EndToEndId, FieldError, RemittanceInfo};
use kontor_domain::payment::{Payment, PaymentPhase, PaymentScheme, PaymentStatus};
use kontor_domain::time::Timestamp;
use kontor_store::{PaymentChange, PaymentSecrets, StoreError};
use url::Url;

use super::PaymentDetails;
use crate::ErrorCode;
use crate::directory::BankEntry;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lease::LeaseOn;
use crate::link::NextStep;
use crate::tokens::{hash_token, random_token, token_matches};
use crate::vault::{context, open_json, seal_json};

/// A stored payment field that no longer parses: written by something else, or a bug.
fn stored(err: &FieldError) -> ServiceError {
    ServiceError::Internal(format!("stored payment: {err}"))
}

/// What the payment page shows.
#[derive(Debug, Clone)]
pub struct PaymentPage {
    pub payment: Payment,
    pub details: PaymentDetails,
    /// The tenant's display name if it set one, else its name.
    pub tenant_name: String,
    /// The tenant's logo and accent colour for the page.
    pub branding: kontor_domain::branding::Branding,
    pub bank: Option<BankEntry>,
}

/// The tenant's redirect URI with the payment's id and status.
pub fn payment_redirect(payment: &Payment) -> ServiceResult<Url> {
    let mut url = Url::parse(&payment.redirect_uri)
        .map_err(|e| ServiceError::Internal(format!("stored redirect_uri: {e}")))?;
    url.query_pairs_mut()
        .append_pair("payment_id", payment.id.as_str())
        .append_pair("status", payment.status.as_str());
    Ok(url)
}

pub(crate) fn product(scheme: PaymentScheme) -> PaymentProduct {
    match scheme {
        PaymentScheme::Sepa => PaymentProduct::SepaCreditTransfer,
        PaymentScheme::SepaInstant => PaymentProduct::InstantSepaCreditTransfer,
        PaymentScheme::UkDomestic => PaymentProduct::UkDomestic,
    }
}

impl Hub {
    async fn checked_payment(&self, id: &PaymentId, token: &str) -> ServiceResult<PaymentSecrets> {
        let cell = self.cell(id.region())?;
        let secrets = cell.payment_secrets(id).await?;
        if !token_matches(token, &secrets.authorize_token_hash) {
            return Err(ServiceError::NotFound);
        }
        Ok(secrets)
    }

    pub(crate) async fn payment_details(
        &self,
        secrets: &PaymentSecrets,
    ) -> ServiceResult<PaymentDetails> {
        let cell = self.cell(secrets.payment.id.region())?;
        let key = self
            .vault()
            .user_key(cell, &secrets.payment.user_id)
            .await?;
        open_json(
            &key,
            &secrets.details,
            &context::payment(&secrets.payment.id),
        )
    }

    pub async fn payment_page(&self, id: &PaymentId, token: &str) -> ServiceResult<PaymentPage> {
        let secrets = self.checked_payment(id, token).await?;
        let details = self.payment_details(&secrets).await?;
        let (tenant_name, branding) = self.tenant_face(&secrets.payment.tenant_id).await?;
        let bank = self.directory().get(&secrets.payment.bank_id).cloned();
        Ok(PaymentPage {
            payment: secrets.payment,
            details,
            tenant_name,
            branding,
            bank,
        })
    }

    /// The payment request the bank gets; the same every time for one payment.
    pub(crate) fn bank_request(
        &self,
        payment: &Payment,
        details: &PaymentDetails,
        state: String,
        psu_ip: Option<IpAddr>,
    ) -> ServiceResult<PaymentRequest> {
        Ok(PaymentRequest {
            product: product(payment.scheme),
            debtor: details
                .debtor
                .as_ref()
                .map(super::StoredAccount::to_reference)
                .transpose()?,
            creditor_name: CreditorName::parse(&details.creditor_name).map_err(|e| stored(&e))?,
            creditor: details.creditor.to_reference()?,
            amount: payment.amount,
            remittance: details
                .remittance
                .as_deref()
                .map(RemittanceInfo::parse)
                .transpose()
                .map_err(|e| stored(&e))?,
            end_to_end_id: EndToEndId::parse(&payment.end_to_end_id).map_err(|e| stored(&e))?,
            idempotency_key: Self::bank_idempotency_key(&payment.id)?,
            redirect_uri: self
                .settings()
                .public_url
                .join("pay/callback")
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
            state,
            psu_ip,
        })
    }

    /// The user confirmed on the hub's page: create the payment at the bank (recorded first as
    /// `initiating`, so a crash here is resumed) and send the user to its SCA.
    pub async fn start_payment(
        &self,
        id: &PaymentId,
        token: &str,
        psu_ip: Option<IpAddr>,
    ) -> ServiceResult<NextStep> {
        let secrets = self.checked_payment(id, token).await?;
        let payment = secrets.payment.clone();
        match payment.phase {
            PaymentPhase::Accepted | PaymentPhase::Initiating => {}
            // Already at the bank: send the user back there (if the page was reloaded, say).
            PaymentPhase::AwaitingSca => {
                if let Some(url) = self.stored_sca_url(&secrets).await? {
                    return Ok(NextStep::Bank(url));
                }
            }
            _ => {
                return Ok(NextStep::Tenant {
                    url: payment_redirect(&payment)?,
                    activated: None,
                });
            }
        }
        // Under the payment's lease, so that the worker does not resume an initiation this
        // request is still making.
        let owner = self.request_lease_owner();
        self.with_payment_lease(id, &owner, self.initiate(&secrets, psu_ip))
            .await?
            .ok_or_else(|| {
                ServiceError::conflict(
                    ErrorCode::PaymentBusy,
                    "the payment is being sent to the bank; try again in a moment",
                )
            })
    }

    /// Creates the payment at the bank and says where the user goes next.
    async fn initiate(
        &self,
        secrets: &PaymentSecrets,
        psu_ip: Option<IpAddr>,
    ) -> ServiceResult<NextStep> {
        let payment = secrets.payment.clone();
        let id = &payment.id;
        let cell = self.cell(id.region())?;
        let details = self.payment_details(secrets).await?;
        // One state per payment: a repeated initiation (the user retrying, or the worker resuming
        // after a crash) must carry the same one, since the bank answers a repeat with the first
        // request's redirect.
        let state = match self.initiation_state(secrets).await? {
            Some(state) => state,
            None => format!("{}.{}", id, random_token()),
        };
        let now = Timestamp::now();
        let cell_key = self.vault().user_key(cell, &payment.user_id).await?;
        let mut pending = PaymentSession::default();
        pending.extra.insert("state".into(), state.clone());
        let mut record = PaymentChange::phase(
            &[
                PaymentPhase::Accepted,
                PaymentPhase::Initiating,
                PaymentPhase::AwaitingSca,
            ],
            PaymentPhase::Initiating,
            now,
        );
        record.state = Some(Some((
            hash_token(&state),
            now.plus_seconds(self.settings().state_ttl_seconds),
        )));
        record.session = Some(seal_json(
            &cell_key,
            &pending,
            &context::payment_session(id),
        )?);
        cell.advance_payment(id, &record).await?;
        let connector = self
            .directory()
            .connector(&payment.bank_id, &payment.tenant_id)
            .ok_or(ServiceError::NotFound)?;
        let request = self.bank_request(&payment, &details, state, psu_ip)?;
        match connector.initiate_payment(&request).await {
            Ok(started) => {
                let url = match &started.sca {
                    ScaStep::Redirect { url } => Some(url.clone()),
                    ScaStep::Decoupled { .. } => None,
                };
                self.record_initiated(&payment, started.session, started.status, url.as_ref())
                    .await?;
                match url {
                    Some(url) => Ok(NextStep::Bank(url)),
                    None => Ok(NextStep::Wait),
                }
            }
            Err(err) if err.is_transient() => {
                // The bank may or may not have it; the worker asks again with the same key.
                tracing::warn!(payment.id = %id, error = %err, "payment initiation unanswered; the worker resumes it");
                Err(err.into())
            }
            Err(err) => {
                tracing::info!(payment.id = %id, error = %err, "the bank refused the payment");
                let rejected = BankPaymentStatus {
                    verbatim: "RJCT".into(),
                    iso: None,
                    reason: Some(crate::bank_reason(&err)),
                };
                let finished = self
                    .finish(
                        &payment,
                        PaymentStatus::Rejected,
                        &rejected,
                        &[PaymentPhase::Initiating],
                    )
                    .await?;
                Ok(NextStep::Tenant {
                    url: payment_redirect(&finished)?,
                    activated: None,
                })
            }
        }
    }

    /// Stores what initiation returned: the session (with the bank's ids) and the SCA address.
    pub(crate) async fn record_initiated(
        &self,
        payment: &Payment,
        mut session: PaymentSession,
        status: BankPaymentStatus,
        sca_url: Option<&Url>,
    ) -> ServiceResult<Payment> {
        let cell = self.cell(payment.id.region())?;
        if let Some(url) = sca_url {
            session.extra.insert("sca_url".into(), url.to_string());
        }
        // Keep the initiation's state: a later repeat of the initiation must reuse it.
        if let Some(state) = self
            .initiation_state(
                &self
                    .cell(payment.id.region())?
                    .payment_secrets(&payment.id)
                    .await?,
            )
            .await?
        {
            session.extra.entry("state".into()).or_insert(state);
        }
        let key = self.vault().user_key(cell, &payment.user_id).await?;
        let next = self.kontor_status(payment, &status);
        let mut change = PaymentChange::phase(
            &[PaymentPhase::Initiating],
            PaymentPhase::AwaitingSca,
            Timestamp::now(),
        );
        change.session = Some(seal_json(
            &key,
            &session,
            &context::payment_session(&payment.id),
        )?);
        change.bank_payment_id = session
            .payment_id
            .clone()
            .or_else(|| session.consent_id.clone());
        change.status = Some((next, Some(status.verbatim.clone())));
        change.reason.clone_from(&status.reason);
        change.event = Self::status_event(payment, next, &status);
        self.advance_status(cell, payment, &change).await
    }

    /// The state of this payment's initiation, if one was made before.
    pub(crate) async fn initiation_state(
        &self,
        secrets: &PaymentSecrets,
    ) -> ServiceResult<Option<String>> {
        Ok(self
            .payment_session(secrets)
            .await?
            .and_then(|s| s.extra.get("state").cloned()))
    }

    async fn stored_sca_url(&self, secrets: &PaymentSecrets) -> ServiceResult<Option<Url>> {
        let Some(session) = self.payment_session(secrets).await? else {
            return Ok(None);
        };
        Ok(session
            .extra
            .get("sca_url")
            .and_then(|raw| Url::parse(raw).ok()))
    }

    pub(crate) async fn payment_session(
        &self,
        secrets: &PaymentSecrets,
    ) -> ServiceResult<Option<PaymentSession>> {
        let Some(sealed) = &secrets.session else {
            return Ok(None);
        };
        let cell = self.cell(secrets.payment.id.region())?;
        let key = self
            .vault()
            .user_key(cell, &secrets.payment.user_id)
            .await?;
        open_json(&key, sealed, &context::payment_session(&secrets.payment.id)).map(Some)
    }

    /// The user cancelled on the hub's page, before going to the bank.
    pub async fn cancel_payment(&self, id: &PaymentId, token: &str) -> ServiceResult<NextStep> {
        let secrets = self.checked_payment(id, token).await?;
        let payment = secrets.payment;
        if payment.phase != PaymentPhase::Accepted {
            return Ok(NextStep::Tenant {
                url: payment_redirect(&payment)?,
                activated: None,
            });
        }
        let cancelled = BankPaymentStatus {
            verbatim: "CANC".into(),
            iso: None,
            reason: Some("user_cancelled".into()),
        };
        let done = self
            .finish(
                &payment,
                PaymentStatus::Cancelled,
                &cancelled,
                &[PaymentPhase::Accepted],
            )
            .await?;
        Ok(NextStep::Tenant {
            url: payment_redirect(&done)?,
            activated: None,
        })
    }

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
        let cell = self.cell(id.region()).map_err(|_| invalid())?;
        let now = Timestamp::now();
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
        let cell = self.cell(payment.id.region())?;
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
                Timestamp::now(),
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
