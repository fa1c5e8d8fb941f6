//! Following a payment after the user: what a bank status means for the payment, polling until
//! a final status (with backoff, and `unknown` after days without one), and the worker's job of
//! resuming payments a crash left between phases.

use kontor_banks::{BankPaymentStatus, PaymentSession};
use kontor_domain::PaymentId;
use kontor_domain::payment::{Iso20022Status, Payment, PaymentPhase, PaymentStatus, uk_status};
use kontor_domain::time::Timestamp;
use kontor_store::PaymentChange;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lease::LeaseOn;
use crate::vault::{context, seal_json};

#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// A step toward the bank left unfinished this long (a crash) is resumed by the worker.
    pub stale_seconds: i64,
    /// A payment the user has not authorised within this time is cancelled.
    pub authorisation_ttl_seconds: i64,
    /// The first poll after submission; each later one waits twice as long, up to `poll_cap`.
    pub poll_base_seconds: i64,
    pub poll_cap_seconds: i64,
    /// Without a final status this long after creation, the payment's status becomes `unknown`
    /// (and polling slows to every six hours).
    pub unknown_after_seconds: i64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            stale_seconds: 60,
            authorisation_ttl_seconds: 3600,
            poll_base_seconds: 30,
            poll_cap_seconds: 3600,
            unknown_after_seconds: 3 * 86_400,
        }
    }
}

const SLOW_POLL_SECONDS: i64 = 6 * 3600;

impl Hub {
    /// What a bank status means for this payment: its ISO 20022 meaning (or the UK status's),
    /// unless that would move the payment backwards — a stale report is kept in the history but
    /// does not undo progress.
    pub(crate) fn kontor_status(
        &self,
        payment: &Payment,
        status: &BankPaymentStatus,
    ) -> PaymentStatus {
        let meaning = status
            .iso
            .or_else(|| Iso20022Status::parse(&status.verbatim).ok())
            .map(Iso20022Status::kontor_status)
            .or_else(|| uk_status(&status.verbatim));
        match meaning {
            Some(next) if payment.status.apply(next).is_ok() => next,
            Some(next) => {
                tracing::info!(payment.id = %payment.id, from = payment.status.as_str(), to = next.as_str(), "stale bank status ignored");
                payment.status
            }
            None => payment.status,
        }
    }

    fn next_poll(&self, attempts: u32, now: Timestamp) -> Timestamp {
        let settings = &self.settings().payments;
        let delay = settings
            .poll_base_seconds
            .saturating_mul(1i64.checked_shl(attempts.min(20)).unwrap_or(i64::MAX))
            .min(settings.poll_cap_seconds);
        now.plus_seconds(delay)
    }

    /// Records a status from the bank: the history, the event if it changed, and the next poll
    /// (none once final).
    pub(crate) async fn record_status(
        &self,
        payment: &Payment,
        session: &PaymentSession,
        status: &BankPaymentStatus,
        from: &[PaymentPhase],
    ) -> ServiceResult<Payment> {
        let cell = self.payment_cell(&payment.id).await?;
        let now = self.clock().now();
        let mut next = self.kontor_status(payment, status);
        let age = now.unix_seconds() - payment.created_at.unix_seconds();
        let overdue = age > self.settings().payments.unknown_after_seconds;
        if overdue && !next.is_final() && next != PaymentStatus::Unknown {
            next = PaymentStatus::Unknown;
        }
        let key = self.vault().user_key(cell, &payment.user_id).await?;
        let mut change = PaymentChange::phase(
            from,
            if next.is_final() {
                PaymentPhase::Done
            } else {
                PaymentPhase::Submitted
            },
            now,
        );
        change.status = Some((next, Some(status.verbatim.clone())));
        // The payer the bank named goes into the payment's details, not the session.
        let (session, details) = self.take_payer(payment, session).await?;
        change.details = details;
        change.session = Some(seal_json(
            &key,
            &session,
            &context::payment_session(&payment.id),
        )?);
        change.bank_payment_id = session.payment_id.clone();
        let attempts = payment.poll_attempts.saturating_add(1);
        change.poll_attempts = Some(attempts);
        change.next_poll_at = Some(if next.is_final() {
            None
        } else if overdue {
            Some(now.plus_seconds(SLOW_POLL_SECONDS))
        } else {
            Some(self.next_poll(attempts, now))
        });
        change.reason.clone_from(&status.reason);
        change.event = Self::status_event(payment, next, status);
        let updated = self.advance_status(cell, payment, &change).await?;
        if updated.status != payment.status {
            tracing::info!(payment.id = %payment.id, status = updated.status.as_str(), bank_status = %status.verbatim, "payment status");
        }
        Ok(updated)
    }

    /// Ends a payment with a final status decided here (cancelled, or rejected before the bank
    /// had it).
    pub(crate) async fn finish(
        &self,
        payment: &Payment,
        status: PaymentStatus,
        bank: &BankPaymentStatus,
        from: &[PaymentPhase],
    ) -> ServiceResult<Payment> {
        let cell = self.payment_cell(&payment.id).await?;
        let mut change = PaymentChange::phase(from, PaymentPhase::Done, self.clock().now());
        change.status = Some((status, Some(bank.verbatim.clone())));
        // The callback state is kept: a genuine callback that comes after the end is still
        // recognised, and sends the user back to the tenant.
        change.next_poll_at = Some(None);
        change.reason.clone_from(&bank.reason);
        change.event = Self::status_event(payment, status, bank);
        self.advance_status(cell, payment, &change).await
    }

    /// Runs `step` holding the payment's lease for `owner` (renewed while it runs), so that no
    /// worker and no other request works on the payment meanwhile; `None` (without running it)
    /// when someone else holds the lease. A process that dies holding it loses it when it
    /// lapses, within `lease_seconds`.
    pub(crate) async fn with_payment_lease<T>(
        &self,
        id: &PaymentId,
        owner: &str,
        step: impl Future<Output = ServiceResult<T>>,
    ) -> ServiceResult<Option<T>> {
        if !self.claim_lease(LeaseOn::Payment(id), owner).await? {
            return Ok(None);
        }
        match self.holding_lease(LeaseOn::Payment(id), owner, step).await {
            Some(result) => result.map(Some),
            None => Err(taken_over()),
        }
    }

    /// A lease owner for one request: distinct from the workers' (and this process's worker),
    /// so that a request never takes over a claim the worker holds.
    pub(crate) fn request_lease_owner(&self) -> String {
        self.lease_owner("request")
    }

    /// The worker's step for one payment: resume an interrupted step, poll a submitted payment,
    /// or close an authorisation nobody finished. Safe to run concurrently with requests and other
    /// workers: it holds the payment's lease, and every step is a checked phase change.
    pub async fn progress_payment(&self, id: &PaymentId, now: Timestamp) -> ServiceResult<Payment> {
        let owner = self.settings().instance_id.clone();
        self.with_payment_lease(id, &owner, self.progress_claimed(id, now))
            .await?
            .ok_or_else(|| {
                ServiceError::conflict(ErrorCode::PaymentBusy, "another worker has this payment")
            })
    }

    async fn progress_claimed(&self, id: &PaymentId, now: Timestamp) -> ServiceResult<Payment> {
        let cell = self.payment_cell(id).await?;
        let secrets = cell.payment_secrets(id).await?;
        let payment = secrets.payment.clone();
        let settings = &self.settings().payments;
        let idle = now.unix_seconds() - payment.updated_at.unix_seconds();
        let abandoned = idle > settings.authorisation_ttl_seconds;
        let expired = BankPaymentStatus {
            verbatim: "CANC".into(),
            iso: None,
            reason: Some("authorisation_expired".into()),
        };
        match payment.phase {
            PaymentPhase::Accepted if abandoned => {
                self.finish(
                    &payment,
                    PaymentStatus::Cancelled,
                    &expired,
                    &[PaymentPhase::Accepted],
                )
                .await
            }
            PaymentPhase::Initiating if idle > settings.stale_seconds => {
                // The answer to the initiation was lost: ask again with the same idempotency key;
                // the bank returns the payment it made, if it made one.
                let details = self.payment_details(&secrets).await?;
                // The same state as the interrupted attempt: the bank redirects with the first one.
                let state = self
                    .initiation_state(&secrets)
                    .await?
                    .unwrap_or_else(|| format!("{id}.{}", crate::tokens::random_token()));
                let request = self.bank_request(&payment, &details, state, None)?;
                let connector = self
                    .directory()
                    .connector(&payment.bank_id, &payment.tenant_id)
                    .ok_or(ServiceError::NotFound)?;
                let started = connector.initiate_payment(&request).await?;
                let url = match &started.sca {
                    kontor_banks::ScaStep::Redirect { url } => Some(url.clone()),
                    kontor_banks::ScaStep::Decoupled { .. } => None,
                };
                tracing::info!(payment.id = %id, "resumed an interrupted initiation");
                self.record_initiated(&payment, started.session, started.status, url.as_ref())
                    .await
            }
            PaymentPhase::AwaitingSca if abandoned => {
                // The user never came back. If the bank went ahead anyway (a lost callback), follow
                // it; otherwise the authorisation has lapsed.
                let connector = self
                    .directory()
                    .connector(&payment.bank_id, &payment.tenant_id)
                    .ok_or(ServiceError::NotFound)?;
                let mut session = self.payment_session(&secrets).await?.unwrap_or_default();
                match connector.payment_status(&mut session).await {
                    Ok(status) => {
                        let meaning = self.kontor_status(&payment, &status);
                        // Authorised at the bank, but the user's return (and the code in it)
                        // never reached the hub: nothing can submit it.
                        let stranded = meaning == PaymentStatus::Authorised
                            && connector.submits_after_authorisation()
                            && session.payment_id.is_none();
                        if meaning == PaymentStatus::Pending || stranded {
                            self.finish(
                                &payment,
                                PaymentStatus::Cancelled,
                                &expired,
                                &[PaymentPhase::AwaitingSca],
                            )
                            .await
                        } else {
                            self.record_status(
                                &payment,
                                &session,
                                &status,
                                &[PaymentPhase::AwaitingSca],
                            )
                            .await
                        }
                    }
                    Err(err) if err.is_transient() => Err(err.into()),
                    Err(_) => {
                        self.finish(
                            &payment,
                            PaymentStatus::Cancelled,
                            &expired,
                            &[PaymentPhase::AwaitingSca],
                        )
                        .await
                    }
                }
            }
            PaymentPhase::Submitting if idle > settings.stale_seconds => {
                tracing::info!(payment.id = %id, "resuming an interrupted submission by asking the bank");
                self.submit(&secrets).await
            }
            PaymentPhase::Submitted if payment.next_poll_at.is_some_and(|at| at <= now) => {
                let connector = self
                    .directory()
                    .connector(&payment.bank_id, &payment.tenant_id)
                    .ok_or(ServiceError::NotFound)?;
                let mut session = self.payment_session(&secrets).await?.unwrap_or_default();
                match connector.payment_status(&mut session).await {
                    Ok(status) => {
                        self.record_status(&payment, &session, &status, &[PaymentPhase::Submitted])
                            .await
                    }
                    Err(err) => {
                        // Try again later, backing off as for a status that did not change.
                        let attempts = payment.poll_attempts.saturating_add(1);
                        let mut change = PaymentChange::phase(
                            &[PaymentPhase::Submitted],
                            PaymentPhase::Submitted,
                            now,
                        );
                        change.poll_attempts = Some(attempts);
                        change.next_poll_at = Some(Some(self.next_poll(attempts, now)));
                        cell.advance_payment(id, &change).await?;
                        Err(err.into())
                    }
                }
            }
            _ => Ok(payment),
        }
    }
}

/// Our lease on a payment lapsed and another process has the payment now.
pub(crate) fn taken_over() -> ServiceError {
    ServiceError::conflict(
        ErrorCode::PaymentBusy,
        "another process took this payment over",
    )
}
