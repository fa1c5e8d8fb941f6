//! Reading a connection from the bank and planning the write: accounts, balances, and each
//! account's transactions reconciled with what the hub holds. Nothing is stored here.

use std::collections::HashMap;

use kontor_banks::{BookingStatus, ReadContext, TransactionQuery};
use kontor_domain::reconcile::{FetchWindow, StoredTransaction, reconcile};
use kontor_domain::{AccountId, TransactionId};
use kontor_store::{
    AccountRow, BalanceRow, ReadsChange, SyncBookkeeping, SyncWrite, TransactionRow,
};
use time::Duration;

use super::{AccountChanges, Prepared, SyncReport};
use crate::details::{AccountDetails, TransactionDetails, bank_transaction};
use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::schedule;
use crate::vault::{context, open_json, seal_json};

impl Hub {
    /// Reads everything from the bank and plans the write; nothing is stored yet.
    pub(super) async fn fetch_and_plan(
        &self,
        p: &mut Prepared<'_>,
        context: &ReadContext,
    ) -> ServiceResult<(SyncWrite, SyncReport)> {
        let connection = p.connection.clone();
        let initial = connection.last_synced_at.is_none();
        let now = p.now;
        let existing: HashMap<String, AccountRow> = p
            .cell
            .connection_accounts(&connection.id)
            .await?
            .into_iter()
            .map(|a| (a.bank_account_id.clone(), a))
            .collect();
        let fetched = p.connector.accounts(&mut p.session, context).await?;
        // The bank served the sync: it counts as a read now, whatever fails after this.
        p.served = true;
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
                reads: ReadsChange::Keep,
                sync_failures: 0,
                error: None,
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
                || AccountId::generate(connection.id.cell()),
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
        let stored_rows = p.cell.transactions_for_sync(account, from).await?;
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
        let now = p.now;
        let changes = AccountChanges {
            account_id: account.to_string(),
            added: plan.insert.len(),
            updated: plan.update.len(),
            booked: plan.booked,
            removed: plan.remove.len(),
        };
        for (key, tx) in plan.insert {
            let id = TransactionId::generate(account.cell());
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
                transaction_date: Some(kontor_store::transaction_date(
                    tx.booking_date,
                    None,
                    tx.value_date,
                    p.today,
                )),
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
                // The day first seen is kept from the stored row.
                transaction_date: Some(kontor_store::transaction_date(
                    tx.booking_date,
                    None,
                    tx.value_date,
                    old.sort_date,
                )),
                amount: tx.amount,
                details,
                created_at: old.created_at,
                updated_at: now,
            });
        }
        write.removals.extend(plan.remove);
        Ok(changes)
    }
}
