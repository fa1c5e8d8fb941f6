//! Syncing a connection: read accounts, balances and transactions from the bank, reconcile them
//! with what the hub holds (no duplicates, nothing lost, pending entries followed until they
//! book), and write the result with its event in one transaction. Unattended syncs stay within
//! the consent's daily allowance; syncs with the user present do not count against it.
//!
//! Reading is in `fetch.rs`; what a sync leaves behind (schedule, failures, events) in
//! `outcome.rs`.

mod fetch;
mod outcome;

use std::net::IpAddr;
use std::time::Instant;

use kontor_banks::{ConsentSession, ReadContext};
use kontor_crypto::DataKey;
use kontor_domain::ConnectionId;
use kontor_domain::connection::{Connection, ConnectionStatus};
use kontor_domain::time::Timestamp;
use kontor_store::{CellStore, ConnectionSecrets, ReadsChange, SyncBookkeeping};
use serde::Serialize;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lease::LeaseOn;
use crate::schedule;
use crate::vault::{context, open_json, seal_json};

/// How long after the user started a connection's first sync it is still resumed as theirs
/// (with their IP address, not counting against the allowance) after a crash interrupted it.
/// Later, the user is no longer there in any sense, and the sync is an unattended read.
const FIRST_SYNC_RESUMED_AS_PRESENT_SECONDS: i64 = 3600;

/// Why a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    /// The worker's schedule: the user is not present; counts against the daily allowance.
    /// (Unless it resumes a first sync the user started: that stays theirs.)
    Scheduled,
    /// The user is present (their IP address is sent to the bank); does not count.
    UserPresent(IpAddr),
}

/// What one account's sync changed: as the `transactions.updated` event says it.
pub use kontor_domain::event::payload::AccountChanges;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub connection_id: String,
    /// Whether this was the connection's first sync.
    pub initial: bool,
    pub accounts: Vec<AccountChanges>,
}

impl SyncReport {
    pub fn changed(&self) -> bool {
        self.accounts
            .iter()
            .any(|a| a.added + a.updated + a.removed > 0)
    }
}

/// A claimed connection, ready to be read.
struct Prepared<'a> {
    cell: &'a dyn CellStore,
    connection: Connection,
    connector: std::sync::Arc<dyn kontor_banks::BankConnector>,
    key: DataKey,
    session: ConsentSession,
    today: time::Date,
    /// How this sync runs: the caller's trigger, or the user's own first sync resumed.
    trigger: SyncTrigger,
    /// Unattended reads counted today, this sync's included (it counted one beforehand if
    /// scheduled).
    reads_today: u32,
    /// Whether the bank served the sync's first read (the account list): then it counts as a
    /// read, whatever fails after it.
    served: bool,
}

impl Prepared<'_> {
    fn unattended(&self) -> bool {
        self.trigger == SyncTrigger::Scheduled
    }

    fn allowance(&self) -> u32 {
        u32::from(
            self.connection
                .frequency_per_day
                .clamp(1, schedule::MAX_UNATTENDED_PER_DAY),
        )
    }

    fn reads_left(&self) -> u32 {
        self.allowance().saturating_sub(self.reads_today)
    }
}

impl Hub {
    /// Syncs a connection now. Bank errors change the connection as they mean (an expired
    /// consent expires it, a revoked one revokes it) and are returned, so callers can tell the
    /// tenant; transient ones reschedule the next attempt with backoff. The connection is
    /// leased meanwhile (renewed while the sync runs): `sync_in_progress` when another process
    /// has it.
    pub async fn sync(&self, id: &ConnectionId, trigger: SyncTrigger) -> ServiceResult<SyncReport> {
        let started = Instant::now();
        let cell = self.cell_of(id)?;
        let owner = self.lease_owner("sync");
        let in_progress = || {
            ServiceError::conflict(
                ErrorCode::SyncInProgress,
                "a sync of this connection is running",
            )
        };
        let result = if self.claim_lease(LeaseOn::Connection(id), &owner).await? {
            self.holding_lease(
                LeaseOn::Connection(id),
                &owner,
                self.sync_claimed(cell, id, trigger),
            )
            .await
            .unwrap_or_else(|| Err(in_progress()))
        } else {
            Err(in_progress())
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ServiceError::Bank(_)) => "bank_error",
            Err(ServiceError::Conflict { .. }) => "skipped",
            Err(_) => "error",
        };
        metrics::counter!("kontor_syncs_total", "result" => outcome).increment(1);
        metrics::histogram!("kontor_sync_duration_seconds").record(started.elapsed().as_secs_f64());
        result
    }

    async fn sync_claimed(
        &self,
        cell: &dyn CellStore,
        id: &ConnectionId,
        trigger: SyncTrigger,
    ) -> ServiceResult<SyncReport> {
        let mut p = self.prepare(cell, id, trigger).await?;
        let before = p.session.clone();
        let context = ReadContext {
            psu_ip: match p.trigger {
                SyncTrigger::UserPresent(ip) => Some(ip),
                SyncTrigger::Scheduled => None,
            },
            request_id: None,
        };
        match self.fetch_and_plan(&mut p, &context).await {
            Ok((write, report)) => self.record_success(&p, &before, write, report).await,
            Err(ServiceError::Bank(err)) => {
                self.record_bank_error(&mut p, &before, &err).await?;
                Err(ServiceError::Bank(err))
            }
            Err(other) => {
                self.give_back_read(&p).await;
                Err(other)
            }
        }
    }

    /// Loads the connection and decides how the sync runs: a scheduled sync first counts its
    /// read (or stops, when today's are used up); a first sync the user starts is recorded as
    /// theirs, so that resuming it after a crash does not count either.
    async fn prepare<'a>(
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
        let now = Timestamp::now();
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
    async fn give_back_read(&self, p: &Prepared<'_>) {
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

    fn changed_session(
        &self,
        p: &Prepared<'_>,
        before: &ConsentSession,
    ) -> ServiceResult<Option<String>> {
        if &p.session == before {
            return Ok(None);
        }
        seal_json(&p.key, &p.session, &context::session(&p.connection.id)).map(Some)
    }
}
