//! Before a sync reads anything: the connection is loaded and opened, and how the sync runs is
//! decided (a scheduled one counts its read first; a first sync the user started stays theirs);
//! and what is given back when it stops early.

use std::net::IpAddr;

use kontor_banks::ConsentSession;
use kontor_crypto::DataKey;
use kontor_domain::ConnectionId;
use kontor_domain::connection::ConnectionStatus;
use kontor_domain::time::Timestamp;
use kontor_store::{CellStore, ConnectionSecrets, ReadsChange, SyncBookkeeping};

use super::{Prepared, SyncTrigger};
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::schedule;
use crate::vault::{context, open_json, seal_json};

/// How long after the user started a connection's first sync it is still resumed as theirs
/// (with their IP address, not counting against the allowance) after a crash interrupted it.
/// Later, the user is no longer there in any sense, and the sync is an unattended read.
const FIRST_SYNC_RESUMED_AS_PRESENT_SECONDS: i64 = 3600;

impl Hub {
    /// Loads the connection and decides how the sync runs: a scheduled sync first counts its
    /// read (or stops, when today's are used up); a first sync the user starts is recorded as
    /// theirs, so that resuming it after a crash does not count either.
    pub(super) async fn prepare<'a>(
        &'a self,
        cell: &'a dyn CellStore,
        id: &ConnectionId,
        trigger: SyncTrigger,
    ) -> ServiceResult<Prepared<'a>> {
        let secrets = cell.connection_secrets(id).await?;
        let connection = secrets.connection.clone();
        if connection.status != ConnectionStatus::Active {
            return Err(ServiceError::conflict(
                ErrorCode::ConnectionNotActive,
                "only an active connection can be synced",
            ));
        }
        let connector = self.connection_connector(&connection)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = secrets
            .session
            .clone()
            .ok_or_else(|| ServiceError::Internal("active without a session".into()))?;
        let session: ConsentSession = open_json(&key, &sealed, &context::session(id))?;
        let now = self.clock().now();
        let today = schedule::utc_day(now);
        let trigger = self
            .effective_trigger(cell, &secrets, &key, trigger, now)
            .await?;
        let counters = cell.sync_counters(id).await?;
        let mut p = Prepared {
            cell,
            connection,
            connector,
            key,
            session,
            now,
            today,
            trigger,
            reads_today: if counters.reads_day == Some(today) {
                counters.unattended_reads
            } else {
                0
            },
            served: false,
        };
        if p.unattended() {
            let counted = cell.reserve_read(id, today, p.allowance()).await?;
            if !counted {
                self.wait_for_tomorrow(&p, now).await?;
                return Err(ServiceError::conflict(
                    ErrorCode::AccessExceeded,
                    "today's unattended reads are used up",
                ));
            }
            p.reads_today += 1;
        }
        Ok(p)
    }

    /// A scheduled sync of a connection that never synced resumes the first sync the user
    /// started, if they did so recently: it stays theirs. A first sync the user starts now is
    /// recorded for that.
    async fn effective_trigger(
        &self,
        cell: &dyn CellStore,
        secrets: &ConnectionSecrets,
        key: &DataKey,
        trigger: SyncTrigger,
        now: Timestamp,
    ) -> ServiceResult<SyncTrigger> {
        let id = &secrets.connection.id;
        if secrets.connection.last_synced_at.is_some() {
            return Ok(trigger);
        }
        match trigger {
            SyncTrigger::UserPresent(ip) => {
                let sealed = seal_json(key, &ip, &context::first_sync_ip(id))?;
                cell.start_first_sync(id, &sealed, now).await?;
                Ok(trigger)
            }
            SyncTrigger::Scheduled => match &secrets.first_sync {
                Some((sealed, started))
                    if now.unix_seconds() - started.unix_seconds()
                        < FIRST_SYNC_RESUMED_AS_PRESENT_SECONDS =>
                {
                    let ip: IpAddr = open_json(key, sealed, &context::first_sync_ip(id))?;
                    tracing::info!(connection.id = %id, "resuming the user's first sync");
                    Ok(SyncTrigger::UserPresent(ip))
                }
                _ => Ok(trigger),
            },
        }
    }

    /// Today's unattended reads are used up: the next scheduled sync is tomorrow's first slot.
    async fn wait_for_tomorrow(&self, p: &Prepared<'_>, now: Timestamp) -> ServiceResult<()> {
        let c = &p.connection;
        let bookkeeping = SyncBookkeeping {
            synced_at: None,
            next_sync_at: Some(schedule::first_slot_tomorrow(
                now,
                &c.id,
                c.frequency_per_day,
            )),
            reads: ReadsChange::Keep,
            sync_failures: c.sync_failures,
            error: None,
            session: None,
        };
        p.cell
            .record_sync_failure(&c.id, &bookkeeping, None)
            .await
            .map_err(ServiceError::from)
    }

    /// The sync failed before the bank served anything, for a reason of the hub's own (a
    /// database or a key): the read it counted is given back, and the schedule stays as it was.
    pub(super) async fn give_back_read(&self, p: &Prepared<'_>) {
        if !p.unattended() || p.served {
            return;
        }
        let c = &p.connection;
        let bookkeeping = SyncBookkeeping {
            synced_at: None,
            next_sync_at: c.next_sync_at,
            reads: ReadsChange::GiveBack(p.today),
            sync_failures: c.sync_failures,
            error: None,
            session: None,
        };
        if let Err(err) = p.cell.record_sync_failure(&c.id, &bookkeeping, None).await {
            tracing::warn!(connection.id = %c.id, error = %err, "could not give back an unattended read");
        }
    }
}
