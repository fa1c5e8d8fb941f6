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

mod revoke;

pub use revoke::REVOCATION_ATTEMPTS;

use kontor_banks::ConsentSession;
use kontor_domain::event::payload::{ErasureCompleted, UserErased};
use kontor_domain::event::{Event, EventData, NewEvent};
use kontor_domain::time::Timestamp;
use kontor_domain::{EventId, TenantId, UserId};
use kontor_store::{CellStore, ErasurePhase, ListFilter, NewRevocation, RevocationTally};
use serde::{Deserialize, Serialize};

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::vault::{context, open_json, seal_json};

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
        id: EventId::generate(user.cell()),
        tenant_id: tenant.clone(),
        user_id: None,
        event_type: data.event_type(),
        data: data.into_value(),
        created_at: Timestamp::now(),
    }
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
        let cell = self.cell_for_user(Some(tenant), user)?;
        cell.user(tenant, user).await?;
        if cell.erasure(user).await?.is_some() {
            return Ok(());
        }
        let revocations = self.revocations_for(cell, tenant, user).await?;
        cell.record_erasure(tenant, user, &revocations, self.clock().now())
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
        let cell = self.cell_for_user(Some(tenant), user)?;
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
            cell.erase_user_data(user, &event, self.clock().now())
                .await?;
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
}
