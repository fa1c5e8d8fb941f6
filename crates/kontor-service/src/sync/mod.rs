//! Syncing a connection: read accounts, balances and transactions from the bank, reconcile them
//! with what the hub holds (no duplicates, nothing lost, pending entries followed until they
//! book), and write the result with its event in one transaction. Unattended syncs stay within
//! the consent's daily allowance; syncs with the user present do not count against it.
//!
//! Loading the connection and deciding how the sync runs is in `prepare.rs`; reading in
//! `fetch.rs`; what a sync leaves behind (schedule, failures, events) in `outcome.rs`.

mod fetch;
mod outcome;
mod prepare;

use std::net::IpAddr;
use std::time::Instant;

use kontor_banks::{ConsentSession, ReadContext};
use kontor_crypto::DataKey;
use kontor_domain::ConnectionId;
use kontor_domain::connection::Connection;
use kontor_domain::time::Timestamp;
use kontor_store::CellStore;
use serde::Serialize;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::lease::LeaseOn;
use crate::schedule;
use crate::vault::{context, seal_json};

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
    /// The sync's moment: when it began, for its decisions and for the rows it writes.
    now: Timestamp,
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
        let cell = self.cell_of(id).await?;
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
