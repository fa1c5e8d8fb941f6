//! The worker's side of erasures: per cell, one worker at a time carries out erasures a crash
//! interrupted, revokes due consents at their banks (retrying with backoff) and closes finished
//! erasures.

use kontor_banks::{BankError, ConsentSession};
use kontor_domain::bank::BankId;
use kontor_domain::event::EventData;
use kontor_domain::event::payload::ConsentRevocationFailed;
use kontor_domain::time::Timestamp;
use kontor_store::{CellStore, ErasurePhase, Revocation, RevocationOutcome, UserErasure};

use super::{ErasureRound, Ticket, erasure_event, ticket_context};
use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::vault::open_json;

/// Attempts at revoking one consent before the tenant is told it failed: backoff from one
/// minute, doubling, at most six hours apart — about a day in all.
pub const REVOCATION_ATTEMPTS: u32 = 12;

const FIRST_BACKOFF_SECONDS: i64 = 60;
const MAX_BACKOFF_SECONDS: i64 = 6 * 3600;
/// Rows one round handles per cell.
const BATCH: usize = 100;
/// The cell's named job lease under which one worker at a time works its erasures.
const JOB: &str = "erasures";

fn backoff(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF_SECONDS << doublings).min(MAX_BACKOFF_SECONDS)
}

impl Hub {
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
                let code = crate::ErrorCode::of_bank(&err).as_str().to_owned();
                let attempts = revocation.attempts + 1;
                tracing::info!(revocation.id = %revocation.id, bank.id = %bank, attempts, error = %err, "consent revocation failed");
                if attempts >= REVOCATION_ATTEMPTS {
                    RevocationOutcome::Failed { error: code }
                } else {
                    RevocationOutcome::Retry {
                        next_attempt_at: self.clock().now().plus_seconds(backoff(attempts)),
                        error: code,
                    }
                }
            }
        }
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
