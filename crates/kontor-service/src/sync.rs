//! Syncing a connection: read accounts, balances and transactions from the bank, reconcile them
//! with what the hub holds (no duplicates, nothing lost, pending entries followed until they
//! book), and write the result with its event in one transaction. Unattended syncs stay within
//! the consent's daily allowance; syncs with the user present do not count against it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use kontor_banks::{
    BankConnector, BankError, BookingStatus, ConsentOutcome, ConsentSession, ReadContext,
    TransactionQuery,
};
use kontor_crypto::DataKey;
use kontor_domain::connection::{Connection, ConnectionEvent, ConnectionStatus, FailureReason};
use kontor_domain::event::{Event, EventType};
use kontor_domain::reconcile::{FetchWindow, StoredTransaction, reconcile};
use kontor_domain::time::Timestamp;
use kontor_domain::{AccountId, ConnectionId, TransactionId};
use kontor_store::{
    AccountRow, BalanceRow, CellStore, SyncBookkeeping, SyncWrite, TransactionRow, Transition,
};
use serde::Serialize;
use time::Duration;

use crate::details::{AccountDetails, TransactionDetails, bank_transaction};
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::schedule;
use crate::vault::{context, open_json, seal_json};

/// Why a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTrigger {
    /// The worker's schedule: the user is not present; counts against the daily allowance.
    Scheduled,
    /// The user is present (their IP address is sent to the bank); does not count.
    UserPresent(IpAddr),
}

/// What one account's sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountChanges {
    pub account_id: String,
    pub added: usize,
    pub updated: usize,
    /// Pending transactions that booked (also counted in `updated`).
    pub booked: usize,
    pub removed: usize,
}

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

struct Prepared<'a> {
    cell: &'a dyn CellStore,
    connection: Connection,
    connector: std::sync::Arc<dyn BankConnector>,
    key: DataKey,
    session: ConsentSession,
    reads_today: u32,
    today: time::Date,
}

impl Hub {
    /// Syncs a connection now. Bank errors change the connection as they mean (an expired
    /// consent expires it, a revoked one revokes it) and are returned, so callers can tell the
    /// tenant; transient ones reschedule the next attempt with backoff.
    pub async fn sync(&self, id: &ConnectionId, trigger: SyncTrigger) -> ServiceResult<SyncReport> {
        let started = Instant::now();
        let owner = self.settings().instance_id.clone();
        let cell = self.cell_of(id)?;
        let now = Timestamp::now();
        let until = now.plus_seconds(self.settings().lease_seconds);
        if !cell
            .claim(id, &owner, until, now)
            .await
            .map_err(ServiceError::from_store)?
        {
            return Err(ServiceError::conflict(
                "sync_in_progress",
                "a sync of this connection is running",
            ));
        }
        let result = self.sync_claimed(cell, id, trigger).await;
        if let Err(err) = cell.release(id, &owner).await {
            tracing::warn!(connection.id = %id, error = %err, "could not release the sync lease");
        }
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

    async fn prepare<'a>(
        &'a self,
        cell: &'a dyn CellStore,
        id: &ConnectionId,
        trigger: SyncTrigger,
    ) -> ServiceResult<Prepared<'a>> {
        let secrets = cell
            .connection_secrets(id)
            .await
            .map_err(ServiceError::from_store)?;
        let connection = secrets.connection;
        if connection.status != ConnectionStatus::Active {
            return Err(ServiceError::conflict(
                "connection_not_active",
                "only an active connection can be synced",
            ));
        }
        let now = Timestamp::now();
        let today = schedule::utc_day(now);
        let counters = cell
            .sync_counters(id)
            .await
            .map_err(ServiceError::from_store)?;
        let reads_today = if counters.reads_day == Some(today) {
            counters.unattended_reads
        } else {
            0
        };
        if trigger == SyncTrigger::Scheduled
            && schedule::allowance_left(
                counters.reads_day,
                counters.unattended_reads,
                today,
                connection.frequency_per_day,
            ) == 0
        {
            let bookkeeping = SyncBookkeeping {
                synced_at: None,
                next_sync_at: Some(schedule::next_sync(
                    schedule::next_utc_day(now),
                    id,
                    connection.frequency_per_day,
                )),
                reads_day: Some(today),
                unattended_reads: reads_today,
                sync_failures: counters.sync_failures,
                session: None,
            };
            cell.record_sync_failure(id, &bookkeeping, None)
                .await
                .map_err(ServiceError::from_store)?;
            return Err(ServiceError::conflict(
                "access_exceeded",
                "today's unattended reads are used up",
            ));
        }
        let connector = self.connection_connector(&connection)?;
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let sealed = secrets
            .session
            .ok_or_else(|| ServiceError::Internal("active without a session".into()))?;
        let session: ConsentSession = open_json(&key, &sealed, &context::session(id))?;
        Ok(Prepared {
            cell,
            connection,
            connector,
            key,
            session,
            reads_today,
            today,
        })
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
            psu_ip: match trigger {
                SyncTrigger::UserPresent(ip) => Some(ip),
                SyncTrigger::Scheduled => None,
            },
            request_id: None,
        };
        let reads_today = p.reads_today + u32::from(trigger == SyncTrigger::Scheduled);
        match self.fetch_and_plan(&mut p, &context).await {
            Ok((mut write, report)) => {
                let now = Timestamp::now();
                write.bookkeeping = SyncBookkeeping {
                    synced_at: Some(now),
                    next_sync_at: Some(schedule::next_sync(
                        now,
                        id,
                        p.connection.frequency_per_day,
                    )),
                    reads_day: Some(p.today),
                    unattended_reads: reads_today,
                    sync_failures: 0,
                    session: self.changed_session(&p, &before)?,
                };
                if report.initial || report.changed() {
                    write.events.push(Event::new(
                        p.connection.tenant_id.clone(),
                        &p.connection.user_id,
                        EventType::TransactionsUpdated,
                        serde_json::to_value(&report)
                            .map_err(|e| ServiceError::Internal(e.to_string()))?,
                    ));
                }
                p.cell
                    .apply_sync(&write)
                    .await
                    .map_err(ServiceError::from_store)?;
                tracing::info!(connection.id = %id, initial = report.initial, changed = report.changed(), "sync done");
                Ok(report)
            }
            Err(ServiceError::Bank(err)) => {
                self.handle_bank_error(&mut p, &before, reads_today, &err)
                    .await?;
                Err(ServiceError::Bank(err))
            }
            Err(other) => Err(other),
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

    /// Reads everything from the bank and plans the write; nothing is stored yet.
    async fn fetch_and_plan(
        &self,
        p: &mut Prepared<'_>,
        context: &ReadContext,
    ) -> ServiceResult<(SyncWrite, SyncReport)> {
        let connection = p.connection.clone();
        let initial = connection.last_synced_at.is_none();
        let now = Timestamp::now();
        let existing: HashMap<String, AccountRow> = p
            .cell
            .connection_accounts(&connection.id)
            .await
            .map_err(ServiceError::from_store)?
            .into_iter()
            .map(|a| (a.bank_account_id.clone(), a))
            .collect();
        let fetched = p.connector.accounts(&mut p.session, context).await?;
        let mut write = SyncWrite {
            connection_id: connection.id.clone(),
            accounts: Vec::new(),
            balances: Vec::new(),
            inserts: Vec::new(),
            updates: Vec::new(),
            removals: Vec::new(),
            bookkeeping: SyncBookkeeping {
                synced_at: None,
                next_sync_at: None,
                reads_day: None,
                unattended_reads: 0,
                sync_failures: 0,
                session: None,
            },
            events: Vec::new(),
        };
        let mut report = SyncReport {
            connection_id: connection.id.to_string(),
            initial,
            accounts: Vec::new(),
        };
        for account in fetched {
            let known = existing.get(&account.bank_account_id);
            let id = known.map_or_else(
                || AccountId::generate(connection.id.region()),
                |a| a.id.clone(),
            );
            let details = seal_json(
                &p.key,
                &AccountDetails::from(&account),
                &context::account(&id),
            )?;
            write.accounts.push(AccountRow {
                id: id.clone(),
                tenant_id: connection.tenant_id.clone(),
                user_id: connection.user_id.clone(),
                connection_id: connection.id.clone(),
                bank_account_id: account.bank_account_id.clone(),
                currency: account.currency,
                kind: account.kind,
                details,
                created_at: known.map_or(now, |a| a.created_at),
                updated_at: now,
            });
            if connection.access.balances {
                let balances = p
                    .connector
                    .balances(&mut p.session, &account.bank_account_id, context)
                    .await?;
                let rows = balances
                    .into_iter()
                    .map(|balance| BalanceRow {
                        account_id: id.clone(),
                        balance,
                        fetched_at: now,
                    })
                    .collect();
                write.balances.push((id.clone(), rows));
            }
            if connection.access.transactions {
                // A new account gets its whole history; a known one the days since the last sync,
                // with some overlap for entries the bank books late.
                let from = match (known, connection.last_synced_at) {
                    (Some(_), Some(last)) => {
                        Some(schedule::utc_day(last) - Duration::days(self.settings().overlap_days))
                    }
                    _ => None,
                };
                let changes = self
                    .plan_transactions(p, &id, &account.bank_account_id, from, context, &mut write)
                    .await?;
                report.accounts.push(changes);
            } else {
                report.accounts.push(AccountChanges {
                    account_id: id.to_string(),
                    ..AccountChanges::default()
                });
            }
        }
        Ok((write, report))
    }

    async fn plan_transactions(
        &self,
        p: &mut Prepared<'_>,
        account: &AccountId,
        bank_account_id: &str,
        from: Option<time::Date>,
        context: &ReadContext,
        write: &mut SyncWrite,
    ) -> ServiceResult<AccountChanges> {
        let query = TransactionQuery {
            from,
            to: None,
            status: BookingStatus::Both,
        };
        let fetched = p
            .connector
            .transactions(&mut p.session, bank_account_id, &query, context)
            .await?;
        let stored_rows = p
            .cell
            .transactions_for_sync(account, from)
            .await
            .map_err(ServiceError::from_store)?;
        let mut by_id: HashMap<TransactionId, TransactionRow> = HashMap::new();
        let mut stored = Vec::with_capacity(stored_rows.len());
        for row in stored_rows {
            let details: TransactionDetails =
                open_json(&p.key, &row.details, &context::transaction(&row.id))?;
            stored.push(StoredTransaction {
                id: row.id.clone(),
                key: row.key.clone(),
                tx: bank_transaction(&row, details),
            });
            by_id.insert(row.id.clone(), row);
        }
        let plan = reconcile(
            &stored,
            fetched,
            FetchWindow {
                from,
                pending_included: true,
            },
        );
        let now = Timestamp::now();
        let changes = AccountChanges {
            account_id: account.to_string(),
            added: plan.insert.len(),
            updated: plan.update.len(),
            booked: plan.booked,
            removed: plan.remove.len(),
        };
        for (key, tx) in plan.insert {
            let id = TransactionId::generate(account.region());
            let details = seal_json(
                &p.key,
                &TransactionDetails::from(&tx),
                &context::transaction(&id),
            )?;
            write.inserts.push(TransactionRow {
                id,
                tenant_id: p.connection.tenant_id.clone(),
                account_id: account.clone(),
                key,
                status: tx.status,
                booking_date: tx.booking_date,
                value_date: tx.value_date,
                sort_date: tx.date().unwrap_or(p.today),
                amount: tx.amount,
                details,
                created_at: now,
                updated_at: now,
            });
        }
        for (id, key, tx) in plan.update {
            let Some(old) = by_id.get(&id) else { continue };
            let details = seal_json(
                &p.key,
                &TransactionDetails::from(&tx),
                &context::transaction(&id),
            )?;
            write.updates.push(TransactionRow {
                id,
                tenant_id: old.tenant_id.clone(),
                account_id: account.clone(),
                key,
                status: tx.status,
                booking_date: tx.booking_date,
                value_date: tx.value_date,
                sort_date: tx.date().unwrap_or(old.sort_date),
                amount: tx.amount,
                details,
                created_at: old.created_at,
                updated_at: now,
            });
        }
        write.removals.extend(plan.remove);
        Ok(changes)
    }

    async fn handle_bank_error(
        &self,
        p: &mut Prepared<'_>,
        before: &ConsentSession,
        reads_today: u32,
        err: &BankError,
    ) -> ServiceResult<()> {
        let id = p.connection.id.clone();
        let now = Timestamp::now();
        let ended = match err {
            BankError::ConsentExpired => {
                Some((ConnectionEvent::Expired, EventType::ConnectionExpired, None))
            }
            BankError::ConsentInvalid { .. } => {
                Some(match p.connector.consent_status(&mut p.session).await {
                    Ok(ConsentOutcome::Revoked) => {
                        (ConnectionEvent::Revoked, EventType::ConnectionRevoked, None)
                    }
                    Ok(ConsentOutcome::Expired) => {
                        (ConnectionEvent::Expired, EventType::ConnectionExpired, None)
                    }
                    _ => (
                        ConnectionEvent::Failed,
                        EventType::ConnectionFailed,
                        Some(FailureReason::ConsentInvalid),
                    ),
                })
            }
            _ => None,
        };
        if let Some((event_kind, event_type, reason)) = ended {
            // An early expiry may have a cause the hub saw: a newer consent that superseded it.
            let reason = match (event_kind, reason) {
                (ConnectionEvent::Expired, None) => self.expiry_reason(&p.connection).await,
                (_, reason) => reason,
            };
            let event = Event::new(
                p.connection.tenant_id.clone(),
                &p.connection.user_id,
                event_type,
                serde_json::json!({ "connection_id": id, "by": "bank", "reason": reason.map(FailureReason::as_str) }),
            );
            let change = Transition {
                event: event_kind,
                failure_reason: reason,
                valid_until: None,
                session: None,
                next_sync_at: None,
                at: now,
            };
            p.cell
                .transition(&id, &change, Some(&event))
                .await
                .map_err(ServiceError::from_store)?;
            tracing::info!(connection.id = %id, status = ?event_kind, "the bank ended the consent");
            return Ok(());
        }
        let counters = p
            .cell
            .sync_counters(&id)
            .await
            .map_err(ServiceError::from_store)?;
        let (next, failures, reads) = match err {
            BankError::AccessExceeded => (
                schedule::next_sync(
                    schedule::next_utc_day(now),
                    &id,
                    p.connection.frequency_per_day,
                ),
                counters.sync_failures,
                u32::from(p.connection.frequency_per_day),
            ),
            _ => {
                let failures = counters.sync_failures.saturating_add(1);
                (
                    schedule::retry_after_failure(now, failures),
                    failures,
                    reads_today,
                )
            }
        };
        let event = (failures == 1 && counters.sync_failures == 0).then(|| {
            Event::new(
                p.connection.tenant_id.clone(),
                &p.connection.user_id,
                EventType::SyncFailed,
                serde_json::json!({ "connection_id": id, "code": crate::error_code(err), "next_attempt_at": next }),
            )
        });
        let bookkeeping = SyncBookkeeping {
            synced_at: None,
            next_sync_at: Some(next),
            reads_day: Some(p.today),
            unattended_reads: reads,
            sync_failures: failures,
            session: self.changed_session(p, before)?,
        };
        p.cell
            .record_sync_failure(&id, &bookkeeping, event.as_ref())
            .await
            .map_err(ServiceError::from_store)?;
        tracing::warn!(connection.id = %id, error = %err, failures, "sync failed");
        Ok(())
    }
}
