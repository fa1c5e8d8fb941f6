//! Erasing a user (GDPR Art. 17) as one resumable operation, and the event log's retention.
//!
//! The steps, each recorded before the next begins, so that a crash anywhere is resumed by the
//! worker ([`Hub::work_erasures`]):
//! 1. **Record** ([`Hub::record_erasure`]): open each live connection's sealed bank session with
//!    the user's data key and keep what revoking its consent needs (bank, consent id) sealed
//!    with the *tenant's* data key — the user's is about to be destroyed — in the erasure's
//!    revocation queue, in the user's cell.
//! 2. **Erase** ([`Hub::carry_out_erasure`]): delete the user's idempotency records in the control
//!    database, then, in one cell transaction, everything held about the user (their data key
//!    with it) including their events, deliveries and attempts, and record `user.erased`.
//! 3. **Revoke**: the worker revokes each consent at its bank, retrying an unreachable bank with
//!    backoff; a revocation that still fails after [`REVOCATION_ATTEMPTS`] is given up with a
//!    `user.consent_revocation_failed` event. When none is left, the erasure is closed with
//!    `user.erasure_completed` and its rows are deleted.
//!
//! Events about an erased user carry the user's id (the tenant's handle for the erasure) in
//! their data only, never in their `user_id` column: `GET /v1/events?user_id=` lists nothing.

use kontor_banks::{BankError, ConsentSession};
use kontor_domain::bank::BankId;
use kontor_domain::event::payload::{ConsentRevocationFailed, ErasureCompleted, UserErased};
use kontor_domain::event::{Event, EventData, NewEvent};
use kontor_domain::time::Timestamp;
use kontor_domain::{EventId, TenantId, UserId};
use kontor_store::{
    CellStore, ErasurePhase, ListFilter, NewRevocation, Revocation, RevocationOutcome,
    RevocationTally, UserErasure,
};
use serde::{Deserialize, Serialize};

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::vault::{context, open_json, seal_json};

/// Attempts at revoking one consent before the tenant is told it failed: backoff from one
/// minute, doubling, at most six hours apart — about a day in all.
pub const REVOCATION_ATTEMPTS: u32 = 12;
const FIRST_BACKOFF_SECONDS: i64 = 60;
const MAX_BACKOFF_SECONDS: i64 = 6 * 3600;
/// Rows one round handles per cell.
const BATCH: usize = 100;
/// The cell's named job lease under which one worker at a time works its erasures.
const JOB: &str = "erasures";

/// How long events, webhook deliveries and attempts are kept (`[retention]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    pub events_days: u32,
    /// Events deleted per transaction.
    pub batch: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            events_days: 90,
            batch: 1000,
        }
    }
}

/// What revoking a consent at the bank needs once the user's key is gone. A UK consent is
/// deleted with the hub's client-credentials token, a Berlin Group one by its id alone: the
/// consent id is all.
#[derive(Serialize, Deserialize)]
struct Ticket {
    consent_id: String,
}

fn ticket_context(id: &str) -> String {
    format!("erasure_revocations/{id}/ticket")
}

/// What one round of erasure work did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasureRound {
    /// Erasures a crash had interrupted, carried out.
    pub resumed: usize,
    pub revoked: usize,
    /// Attempts that failed and will be retried.
    pub retried: usize,
    /// Revocations given up after their last attempt.
    pub failed: usize,
    /// Erasures finished (`user.erasure_completed`).
    pub completed: usize,
}

/// An event about an erased user: their id in the data, none in the event's `user_id`.
fn erasure_event(tenant: &TenantId, user: &UserId, data: EventData) -> NewEvent {
    Event {
        id: EventId::generate(user.region()),
        tenant_id: tenant.clone(),
        user_id: None,
        event_type: data.event_type(),
        data: data.into_value(),
        created_at: Timestamp::now(),
    }
}

fn backoff(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF_SECONDS << doublings).min(MAX_BACKOFF_SECONDS)
}

impl Hub {
    /// `DELETE /v1/users/{id}`: records the erasure, then carries it out. Consents are revoked
    /// at the banks by the worker afterwards. `NotFound` when the tenant has no such user.
    pub async fn erase_user(&self, tenant: &TenantId, user: &UserId) -> ServiceResult<()> {
        self.record_erasure(tenant, user).await?;
        self.carry_out_erasure(tenant, user).await?;
        tracing::info!(user.id = %user, "user erased");
        Ok(())
    }

    /// Step 1: the erasure and its revocation queue, recorded before anything is deleted. A
    /// repeat (of an erasure a crash interrupted) keeps the first record.
    pub async fn record_erasure(&self, tenant: &TenantId, user: &UserId) -> ServiceResult<()> {
        let cell = self.cell(user.region())?;
        cell.user(tenant, user).await?;
        if cell.erasure(user).await?.is_some() {
            return Ok(());
        }
        let revocations = self.revocations_for(cell, tenant, user).await?;
        cell.record_erasure(tenant, user, &revocations, Timestamp::now())
            .await?;
        Ok(())
    }

    /// Every consent of the user the bank may still honour, with its ticket sealed for the
    /// tenant.
    async fn revocations_for(
        &self,
        cell: &dyn CellStore,
        tenant: &TenantId,
        user: &UserId,
    ) -> ServiceResult<Vec<NewRevocation>> {
        let mut out = Vec::new();
        let mut after = None;
        let mut keys = None;
        loop {
            let page = cell
                .list_connections(tenant, &ListFilter::user(user), after.as_ref(), 100)
                .await?;
            for connection in &page.items {
                if connection.status.is_terminal() {
                    continue;
                }
                let Some(bank) = &connection.bank_id else {
                    continue;
                };
                let secrets = cell.connection_secrets(&connection.id).await?;
                let Some(sealed) = secrets.session else {
                    continue;
                };
                if keys.is_none() {
                    keys = Some((
                        self.vault().user_key(cell, user).await?,
                        self.vault().tenant_key(self.control(), tenant).await?,
                    ));
                }
                let Some((user_key, tenant_key)) = &keys else {
                    continue;
                };
                let session: ConsentSession = match open_json(
                    user_key,
                    &sealed,
                    &context::session(&connection.id),
                ) {
                    Ok(session) => session,
                    Err(err) => {
                        // Nothing can revoke a consent whose id cannot be read; the user's
                        // erasure goes ahead regardless.
                        tracing::warn!(connection.id = %connection.id, error = %err, "bank session unreadable; its consent is not revoked");
                        continue;
                    }
                };
                let id = format!("rvk_{}", crate::tokens::random_token());
                let ticket = seal_json(
                    tenant_key,
                    &Ticket {
                        consent_id: session.consent_id,
                    },
                    &ticket_context(&id),
                )?;
                out.push(NewRevocation {
                    id,
                    connection_id: connection.id.clone(),
                    bank_id: bank.to_string(),
                    ticket,
                });
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Step 2, repeatable: the control database's records of the user, then everything in the
    /// cell. Does nothing for an erasure past this step.
    pub async fn carry_out_erasure(&self, tenant: &TenantId, user: &UserId) -> ServiceResult<()> {
        let cell = self.cell(user.region())?;
        let Some(erasure) = cell.erasure(user).await? else {
            return Err(ServiceError::NotFound);
        };
        if erasure.phase == ErasurePhase::Recorded {
            let payments: Vec<String> = cell
                .user_payment_ids(user)
                .await?
                .iter()
                .map(ToString::to_string)
                .collect();
            self.control()
                .erase_idempotency(tenant, user, &payments)
                .await?;
            // The key next, with the erasure in the ledger: from here nothing sealed for the
            // user opens again, whatever copy of the cell survives (the revocations were sealed
            // with the tenant's key in step 1).
            self.shred_user_key(tenant, user).await?;
            let event = erasure_event(
                tenant,
                user,
                EventData::UserErased(UserErased {
                    user_id: user.clone(),
                }),
            );
            cell.erase_user_data(user, &event, Timestamp::now()).await?;
        }
        self.close_erasure(cell, tenant, user).await?;
        Ok(())
    }

    async fn close_erasure(
        &self,
        cell: &dyn CellStore,
        tenant: &TenantId,
        user: &UserId,
    ) -> ServiceResult<Option<RevocationTally>> {
        let event = |tally: RevocationTally| {
            erasure_event(
                tenant,
                user,
                EventData::UserErasureCompleted(ErasureCompleted {
                    user_id: user.clone(),
                    consents_revoked: tally.revoked,
                    consents_not_revoked: tally.failed,
                }),
            )
        };
        let closed = cell.close_erasure(user, &event).await?;
        if closed.is_some() {
            tracing::info!(user.id = %user, "erasure completed");
        }
        Ok(closed)
    }

    /// The worker's round: per cell (one worker at a time), carries out erasures a crash
    /// interrupted, revokes due consents, and closes finished erasures.
    pub async fn work_erasures(&self, now: Timestamp) -> ErasureRound {
        let mut round = ErasureRound::default();
        let owner = self.settings().instance_id.clone();
        let lease = self.settings().lease_seconds.max(1);
        for (region, cell) in self.cells().iter() {
            let cell = cell.as_ref();
            match cell
                .claim_job(JOB, &owner, now.plus_seconds(lease * 4), now)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(err) => {
                    tracing::warn!(%region, error = %err, "cannot claim the erasure job");
                    continue;
                }
            }
            if let Err(err) = self.work_cell_erasures(cell, now, &mut round).await {
                tracing::warn!(%region, error = %err, "erasure round failed; retried next round");
            }
            if let Err(err) = cell.release_job(JOB, &owner).await {
                tracing::warn!(%region, error = %err, "cannot release the erasure job");
            }
        }
        round
    }

    async fn work_cell_erasures(
        &self,
        cell: &dyn CellStore,
        now: Timestamp,
        round: &mut ErasureRound,
    ) -> ServiceResult<()> {
        // A request that recorded an erasure and died: it is stale once its lease would be.
        let stale = now.plus_seconds(-self.settings().lease_seconds.max(1));
        let unfinished = cell.erasures_to_finish(stale, BATCH).await?;
        for UserErasure {
            user_id,
            tenant_id,
            phase,
            ..
        } in unfinished
        {
            if phase == ErasurePhase::Recorded {
                self.carry_out_erasure(&tenant_id, &user_id).await?;
                round.resumed += 1;
            }
            if self
                .close_erasure(cell, &tenant_id, &user_id)
                .await?
                .is_some()
            {
                round.completed += 1;
            }
        }
        let due = cell.revocations_due(now, BATCH).await?;
        for revocation in due {
            let outcome = self.revoke_at_bank(&revocation).await;
            let event = match &outcome {
                RevocationOutcome::Revoked => {
                    round.revoked += 1;
                    None
                }
                RevocationOutcome::Retry { .. } => {
                    round.retried += 1;
                    None
                }
                RevocationOutcome::Failed { error } => {
                    round.failed += 1;
                    Some(erasure_event(
                        &revocation.tenant_id,
                        &revocation.user_id,
                        EventData::ConsentRevocationFailed(ConsentRevocationFailed {
                            user_id: revocation.user_id.clone(),
                            connection_id: revocation.connection_id.clone(),
                            bank_id: revocation.bank_id.clone(),
                            attempts: revocation.attempts + 1,
                            code: error.clone(),
                        }),
                    ))
                }
            };
            cell.record_revocation(&revocation.id, &outcome, event.as_ref(), now)
                .await?;
            if self
                .close_erasure(cell, &revocation.tenant_id, &revocation.user_id)
                .await?
                .is_some()
            {
                round.completed += 1;
            }
        }
        Ok(())
    }

    /// One attempt at withdrawing a consent at its bank.
    async fn revoke_at_bank(&self, revocation: &Revocation) -> RevocationOutcome {
        let give_up = |error: &str| RevocationOutcome::Failed {
            error: error.to_owned(),
        };
        let Ok(bank) = BankId::parse(&revocation.bank_id) else {
            return give_up("bank_unknown");
        };
        let Some(connector) = self.directory().connector(&bank, &revocation.tenant_id) else {
            return give_up("bank_unknown");
        };
        let ticket: Ticket = match self
            .vault()
            .tenant_key(self.control(), &revocation.tenant_id)
            .await
            .and_then(|key| open_json(&key, &revocation.ticket, &ticket_context(&revocation.id)))
        {
            Ok(ticket) => ticket,
            Err(err) => {
                tracing::warn!(revocation.id = %revocation.id, error = %err, "revocation ticket unreadable");
                return give_up("ticket_unreadable");
            }
        };
        let mut session = ConsentSession {
            consent_id: ticket.consent_id,
            ..ConsentSession::default()
        };
        match connector.revoke(&mut session).await {
            // Expired or unknown at the bank: nothing is left to withdraw.
            Ok(()) | Err(BankError::ConsentInvalid { .. } | BankError::ConsentExpired) => {
                RevocationOutcome::Revoked
            }
            Err(err) => {
                let code = ErrorCode::of_bank(&err).as_str().to_owned();
                let attempts = revocation.attempts + 1;
                tracing::info!(revocation.id = %revocation.id, bank.id = %bank, attempts, error = %err, "consent revocation failed");
                if attempts >= REVOCATION_ATTEMPTS {
                    RevocationOutcome::Failed { error: code }
                } else {
                    RevocationOutcome::Retry {
                        next_attempt_at: Timestamp::now().plus_seconds(backoff(attempts)),
                        error: code,
                    }
                }
            }
        }
    }

    /// Retention: deletes events (with their deliveries and attempts) older than
    /// `retention.events_days`, in batches, in every cell; returns how many events went.
    pub async fn enforce_retention(&self, now: Timestamp) -> u64 {
        let retention = &self.settings().retention;
        let before = now.plus_seconds(-i64::from(retention.events_days) * 86_400);
        let mut total = 0;
        for (region, cell) in self.cells().iter() {
            loop {
                match cell.purge_events(before, retention.batch.max(1)).await {
                    Ok(n) => {
                        total += n;
                        if n < u64::try_from(retention.batch.max(1)).unwrap_or(u64::MAX) {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%region, error = %err, "event retention failed; retried next round");
                        break;
                    }
                }
            }
        }
        total
    }

    /// Retention of the changes feed's log: entries are kept as long as events
    /// (`retention.events_days`), so that a tenant who can still read a `transactions.updated`
    /// can still fetch its changes. Returns how many went, in every cell.
    pub async fn enforce_change_retention(&self, now: Timestamp) -> u64 {
        let retention = &self.settings().retention;
        let before = now.plus_seconds(-i64::from(retention.events_days) * 86_400);
        let batch = retention.batch.max(1);
        let mut total = 0;
        for (region, cell) in self.cells().iter() {
            loop {
                match cell.purge_changes(before, batch).await {
                    Ok(n) => {
                        total += n;
                        if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%region, error = %err, "change log retention failed; retried next round");
                        break;
                    }
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_minute_to_six_hours() {
        assert_eq!(backoff(1), 60);
        assert_eq!(backoff(2), 120);
        assert_eq!(backoff(5), 960);
        assert_eq!(backoff(10), MAX_BACKOFF_SECONDS);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF_SECONDS);
    }
}
