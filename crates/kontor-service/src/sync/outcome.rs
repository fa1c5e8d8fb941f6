//! What a sync leaves behind: on success the data with its events and the next slot; on a bank
//! error the connection ended (the consent did) or the next attempt scheduled, the day's read
//! given back when the bank served nothing, and the tenant told when a run of failures starts
//! (`connection.sync_failed`) and when it ends (`connection.sync_recovered`).

use kontor_banks::{BankError, ConsentOutcome, ConsentSession};
use kontor_domain::connection::{ConnectionEvent, FailureReason, SyncError};
use kontor_domain::event::payload::{
    ConnectionEnded, EndedBy, SyncFailed, SyncRecovered, TransactionsUpdated,
};
use kontor_domain::event::{Event, EventData};
use kontor_store::{ReadsChange, SyncBookkeeping, SyncWrite, Transition};

use super::{Prepared, SyncReport};
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::schedule;

/// The longest error message kept on a connection.
const MESSAGE_CHARS: usize = 200;

impl Hub {
    pub(super) async fn record_success(
        &self,
        p: &Prepared<'_>,
        before: &ConsentSession,
        mut write: SyncWrite,
        report: SyncReport,
    ) -> ServiceResult<SyncReport> {
        let c = &p.connection;
        let now = self.clock().now();
        let next = schedule::next_attempt(now, &c.id, c.frequency_per_day, p.reads_left());
        write.bookkeeping = SyncBookkeeping {
            synced_at: Some(now),
            next_sync_at: Some(next),
            reads: ReadsChange::Keep,
            sync_failures: 0,
            error: None,
            session: self.changed_session(p, before)?,
        };
        if report.initial || report.changed() {
            let changes_cursor = self.changes_cursor_before(p).await;
            write.events.push(Event::new(
                c.tenant_id.clone(),
                &c.user_id,
                EventData::TransactionsUpdated(TransactionsUpdated {
                    connection_id: c.id.clone(),
                    initial: report.initial,
                    accounts: report.accounts.clone(),
                    changes_cursor,
                }),
            ));
        }
        if c.sync_failures > 0 {
            write.events.push(Event::new(
                c.tenant_id.clone(),
                &c.user_id,
                EventData::SyncRecovered(SyncRecovered {
                    connection_id: c.id.clone(),
                    consecutive_failures: c.sync_failures,
                    last_error_code: c.last_sync_error.as_ref().map(|e| e.code.clone()),
                    next_attempt_at: next,
                }),
            ));
        }
        p.cell.apply_sync(&write).await?;
        tracing::info!(
            connection.id = %c.id,
            initial = report.initial,
            changed = report.changed(),
            recovered_after = c.sync_failures,
            "sync done"
        );
        Ok(report)
    }

    /// The changes feed's cursor just before this sync's changes, for the tenant's convenience
    /// in `transactions.updated` (its own stored cursor is the sure way). The sync holds the
    /// connection's lease, so nothing is numbered between this read and its write; were the
    /// lease lost meanwhile, the cursor would only be earlier, which repeats changes and loses
    /// none. Left out, not failed, when it cannot be made.
    async fn changes_cursor_before(&self, p: &Prepared<'_>) -> Option<String> {
        let c = &p.connection;
        let made = async {
            let head = p.cell.change_head(&c.tenant_id, &c.id).await?;
            let root = self.vault().lookup_key(self.control()).await?;
            Ok::<_, ServiceError>(crate::changes::cursor_at(root, &c.tenant_id, &c.id, head))
        };
        match made.await {
            Ok(cursor) => Some(cursor),
            Err(err) => {
                tracing::warn!(connection.id = %c.id, error = %err, "no changes cursor for the event");
                None
            }
        }
    }

    /// Records a sync the bank failed: the connection ends if the consent did; otherwise the
    /// next attempt is scheduled (backoff, within what is left of today's reads), the read
    /// given back if the bank served nothing, and the tenant told at the first failure of a run.
    pub(super) async fn record_bank_error(
        &self,
        p: &mut Prepared<'_>,
        before: &ConsentSession,
        err: &BankError,
    ) -> ServiceResult<()> {
        let id = p.connection.id.clone();
        let now = self.clock().now();
        let ended = match err {
            BankError::ConsentExpired => Some((ConnectionEvent::Expired, None)),
            BankError::ConsentInvalid { .. } => {
                Some(match p.connector.consent_status(&mut p.session).await {
                    Ok(ConsentOutcome::Revoked) => (ConnectionEvent::Revoked, None),
                    Ok(ConsentOutcome::Expired) => (ConnectionEvent::Expired, None),
                    _ => (ConnectionEvent::Failed, Some(FailureReason::ConsentInvalid)),
                })
            }
            _ => None,
        };
        if let Some((event_kind, reason)) = ended {
            // An early expiry may have a cause the hub saw: a newer consent that superseded it.
            let reason = match (event_kind, reason) {
                (ConnectionEvent::Expired, None) => self.expiry_reason(&p.connection).await,
                (_, reason) => reason,
            };
            let ended = ConnectionEnded::new(id.clone())
                .by(EndedBy::Bank)
                .reason(reason);
            let event = Event::new(
                p.connection.tenant_id.clone(),
                &p.connection.user_id,
                ended.on(event_kind).ok_or_else(|| {
                    ServiceError::Internal(format!("{event_kind:?} ends no connection"))
                })?,
            );
            let change = Transition {
                event: event_kind,
                failure_reason: reason,
                valid_until: None,
                session: None,
                next_sync_at: None,
                at: now,
            };
            p.cell.transition(&id, &change, Some(&event)).await?;
            if event_kind == ConnectionEvent::Expired {
                crate::lifecycle::count_expiry(p.cell.region(), "bank");
            }
            tracing::info!(connection.id = %id, status = ?event_kind, "the bank ended the consent");
            return Ok(());
        }
        let c = &p.connection;
        // A read counts when the bank served it (RTS Art. 36(5)(b) limits accesses to the
        // account, and banks count the requests they answer). The account list answered, or an
        // answer the connector could not read, counts; a refusal (5xx, timeout, 429, a 4xx
        // before any data) served nothing and the read counted beforehand is given back.
        let served = p.served || matches!(err, BankError::Protocol { .. });
        let reads = match err {
            // The bank's count says the day is used up, whatever ours says.
            BankError::AccessExceeded => {
                p.reads_today = p.allowance();
                ReadsChange::UsedUp {
                    day: p.today,
                    allowance: p.allowance(),
                }
            }
            _ if p.unattended() && !served => {
                p.reads_today = p.reads_today.saturating_sub(1);
                ReadsChange::GiveBack(p.today)
            }
            _ => ReadsChange::Keep,
        };
        let failures = c.sync_failures.saturating_add(1);
        let next = match err {
            BankError::AccessExceeded => {
                schedule::first_slot_tomorrow(now, &id, c.frequency_per_day)
            }
            _ => schedule::next_attempt_after_failure(
                now,
                failures,
                &id,
                c.frequency_per_day,
                p.reads_left(),
            ),
        };
        let code = ErrorCode::of_bank(err).as_str();
        let event = (failures == 1).then(|| {
            Event::new(
                c.tenant_id.clone(),
                &c.user_id,
                EventData::SyncFailed(SyncFailed {
                    connection_id: id.clone(),
                    code: code.to_owned(),
                    next_attempt_at: next,
                }),
            )
        });
        let bookkeeping = SyncBookkeeping {
            synced_at: None,
            next_sync_at: Some(next),
            reads,
            sync_failures: failures,
            error: Some(SyncError {
                code: code.to_owned(),
                message: err.to_string().chars().take(MESSAGE_CHARS).collect(),
                at: now,
            }),
            session: self.changed_session(p, before)?,
        };
        p.cell
            .record_sync_failure(&id, &bookkeeping, event.as_ref())
            .await?;
        tracing::warn!(
            connection.id = %id,
            error = %err,
            failures,
            served,
            next_attempt_at = %next,
            "sync failed"
        );
        Ok(())
    }
}
