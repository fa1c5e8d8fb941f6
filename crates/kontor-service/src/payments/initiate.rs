//! The step to the bank's SCA: the payment is created at the bank (recorded first as
//! `initiating`, so that a crash is resumed with the same request) and the user sent to its SCA.

use std::net::IpAddr;

use kontor_banks::{BankPaymentStatus, PaymentRequest, PaymentSession, ScaStep};
use kontor_domain::PaymentId;
use kontor_domain::payment::{Payment, PaymentPhase, PaymentStatus};
use kontor_store::{PaymentChange, PaymentSecrets};
use url::Url;

use super::PaymentDetails;
use super::authorise::{payment_redirect, product};
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::link::NextStep;
use crate::tokens::{hash_token, random_token};
use crate::vault::{context, open_json, seal_json};
use kontor_domain::payment::{CreditorName, EndToEndId, FieldError, RemittanceInfo};

impl Hub {
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
        let cell = self.payment_cell(id).await?;
        let details = self.payment_details(secrets).await?;
        // One state per payment: a repeated initiation (the user retrying, or the worker resuming
        // after a crash) must carry the same one, since the bank answers a repeat with the first
        // request's redirect.
        let state = match self.initiation_state(secrets).await? {
            Some(state) => state,
            None => format!("{}.{}", id, random_token()),
        };
        let now = self.clock().now();
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
        let cell = self.payment_cell(&payment.id).await?;
        if let Some(url) = sca_url {
            session.extra.insert("sca_url".into(), url.to_string());
        }
        // Keep the initiation's state: a later repeat of the initiation must reuse it.
        if let Some(state) = self
            .initiation_state(&cell.payment_secrets(&payment.id).await?)
            .await?
        {
            session.extra.entry("state".into()).or_insert(state);
        }
        let key = self.vault().user_key(cell, &payment.user_id).await?;
        let next = self.kontor_status(payment, &status);
        let mut change = PaymentChange::phase(
            &[PaymentPhase::Initiating],
            PaymentPhase::AwaitingSca,
            self.clock().now(),
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
        let cell = self.payment_cell(&secrets.payment.id).await?;
        let key = self
            .vault()
            .user_key(cell, &secrets.payment.user_id)
            .await?;
        open_json(&key, sealed, &context::payment_session(&secrets.payment.id)).map(Some)
    }
}

/// A stored payment field that no longer parses: written by something else, or a bug.
fn stored(err: &FieldError) -> ServiceError {
    ServiceError::Internal(format!("stored payment: {err}"))
}
