//! The changes feed of a connection's transactions: what was added, modified and removed since
//! a cursor, so that a tenant keeps an exact copy with one call after each `transactions.updated`.
//!
//! The first call (no cursor) walks the transactions as they are, all `added`, and notes the
//! log's head when it began; later calls read the change log (`ChangeStore`) from there. A
//! pending entry that books keeps its hub id and shows as `modified`; one the bank dropped (or
//! replaced by a booking the hub could not match to it) as `removed`, with its successor
//! `added`. Within one page, several entries of one transaction fold into one: added then
//! modified is `added` with the current state, anything then removed is `removed` — also when
//! the tenant never saw it added, which it can ignore.
//!
//! The log's numbers have no gaps as written (cell migration 0013), so a gap means entries that
//! are gone (retention, or a sync of the previous release that logged nothing): a cursor before
//! it is `cursor_expired`, and the tenant starts again without a cursor.

mod cursor;

use std::collections::HashMap;

use kontor_domain::{AccountId, ConnectionId, TenantId, TransactionId};
use kontor_store::{CellStore, ChangeKind, ChangeRow, TransactionFilter, TransactionRow};

use crate::ErrorCode;
use crate::details::{TransactionDetails, TransactionView};
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::vault::{context, open_json};
use cursor::Position;

/// A transaction that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedTransaction {
    pub id: TransactionId,
    pub account_id: AccountId,
}

/// One page of a connection's changes feed.
#[derive(Debug)]
pub struct TransactionChanges {
    pub added: Vec<TransactionView>,
    pub modified: Vec<TransactionView>,
    pub removed: Vec<RemovedTransaction>,
    /// Where the next call starts; also when nothing changed (then it is the cursor given).
    pub next_cursor: String,
    /// Whether more changes are waiting now: call again with `next_cursor` at once.
    pub has_more: bool,
}

fn expired() -> ServiceError {
    ServiceError::invalid(
        ErrorCode::CursorExpired,
        "the changes since this cursor are no longer all kept (older than the retention \
         period, or recorded before an upgrade): call again without a cursor, which lists every \
         transaction as added, and replace your copy with it",
    )
}

/// What one page of the log did to each transaction it names, folded, in the order of first
/// mention.
fn fold(rows: &[ChangeRow]) -> Vec<(TransactionId, AccountId, ChangeKind)> {
    let mut order: Vec<TransactionId> = Vec::new();
    let mut net: HashMap<TransactionId, (AccountId, ChangeKind)> = HashMap::new();
    for row in rows {
        match net.get_mut(&row.transaction_id) {
            None => {
                order.push(row.transaction_id.clone());
                net.insert(
                    row.transaction_id.clone(),
                    (row.account_id.clone(), row.kind),
                );
            }
            Some((_, kind)) => {
                *kind = match (*kind, row.kind) {
                    (_, ChangeKind::Removed) => ChangeKind::Removed,
                    (ChangeKind::Added, _) => ChangeKind::Added,
                    // Not written by a sync (ids are new on insert), but read as what it says.
                    (ChangeKind::Removed, later) => later,
                    (ChangeKind::Modified, _) => ChangeKind::Modified,
                };
            }
        }
    }
    order
        .into_iter()
        .filter_map(|id| net.remove(&id).map(|(account, kind)| (id, account, kind)))
        .collect()
}

/// Whether `rows`, read after `seq` with the log's head at least `head`, are the log's entries
/// without a gap: numbered `seq + 1`, `seq + 2`, … and, when none, with nothing between.
fn contiguous(seq: i64, head: i64, rows: &[ChangeRow]) -> bool {
    if rows.is_empty() {
        return head <= seq;
    }
    rows.iter()
        .zip(seq + 1..)
        .all(|(row, expected)| row.seq == expected)
}

/// The cursor just before the entries numbered after `seq`: what a `transactions.updated`
/// event carries, taken before the sync it reports writes its changes.
pub(crate) fn cursor_at(
    root: &kontor_crypto::LookupKey,
    tenant: &TenantId,
    connection: &ConnectionId,
    seq: i64,
) -> String {
    Position::Log { seq }.encode(root, tenant, connection)
}

impl Hub {
    /// A page of the changes to a connection's transactions after `cursor` (from the start
    /// when `None`), at most `limit` of them. Another tenant's connection is `NotFound`; a
    /// cursor not issued for this connection `invalid_cursor`; one whose changes are no longer
    /// all kept `cursor_expired`.
    pub async fn transaction_changes(
        &self,
        tenant: &TenantId,
        id: &ConnectionId,
        cursor: Option<&str>,
        limit: usize,
    ) -> ServiceResult<TransactionChanges> {
        let limit = limit.max(1);
        let cell = self.cell_of(id).await?;
        let connection = cell.connection(tenant, id).await?;
        let root = self.vault().lookup_key(self.control()).await?;
        let head = cell.change_head(tenant, id).await?;
        let position = match cursor {
            None => Position::Snapshot {
                seq: head,
                account: None,
                after: None,
            },
            Some(raw) => Position::decode(raw, root, tenant, id)?,
        };
        let key = self.vault().user_key(cell, &connection.user_id).await?;
        let open = |rows: Vec<TransactionRow>| -> ServiceResult<Vec<TransactionView>> {
            rows.into_iter()
                .map(|row| {
                    let details: TransactionDetails =
                        open_json(&key, &row.details, &context::transaction(&row.id))?;
                    Ok(TransactionView { row, details })
                })
                .collect()
        };
        let (added, modified, removed, next, has_more) = match position {
            Position::Snapshot {
                seq,
                account,
                after,
            } => {
                if seq > head {
                    return Err(expired());
                }
                let (rows, next) = self
                    .snapshot_page(cell, tenant, id, seq, account, after, limit)
                    .await?;
                let has_more = match &next {
                    Position::Snapshot { .. } => true,
                    Position::Log { .. } => head > seq,
                };
                (open(rows)?, Vec::new(), Vec::new(), next, has_more)
            }
            Position::Log { seq } => {
                if seq > head {
                    // Ahead of the log: a cell restored from a backup older than the cursor.
                    return Err(expired());
                }
                let fetch = limit.saturating_add(1);
                let mut rows = cell.changes_after(id, seq, fetch).await?;
                if !contiguous(seq, head, &rows) {
                    return Err(expired());
                }
                let has_more = rows.len() > limit;
                rows.truncate(limit);
                let next = Position::Log {
                    seq: rows.last().map_or(seq, |row| row.seq),
                };
                let folded = fold(&rows);
                let wanted: Vec<TransactionId> = folded
                    .iter()
                    .filter(|(_, _, kind)| *kind != ChangeKind::Removed)
                    .map(|(id, _, _)| id.clone())
                    .collect();
                let mut current: HashMap<TransactionId, TransactionRow> = cell
                    .connection_transactions(id, &wanted)
                    .await?
                    .into_iter()
                    .map(|row| (row.id.clone(), row))
                    .collect();
                let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
                for (transaction, account, kind) in folded {
                    match kind {
                        ChangeKind::Removed => removed.push(RemovedTransaction {
                            id: transaction,
                            account_id: account,
                        }),
                        // Gone since: a later entry, on a later page, removes it.
                        _ => match current.remove(&transaction) {
                            None => {}
                            Some(row) if kind == ChangeKind::Added => added.push(row),
                            Some(row) => modified.push(row),
                        },
                    }
                }
                (open(added)?, open(modified)?, removed, next, has_more)
            }
        };
        Ok(TransactionChanges {
            added,
            modified,
            removed,
            next_cursor: next.encode(root, tenant, id),
            has_more,
        })
    }

    /// A page of the first pass: the connection's accounts in order, each account's
    /// transactions in the list endpoint's order, from `account` and `after` on. Returns the
    /// rows and where the next call starts: further in the pass, or the log from `seq` once
    /// the pass is through.
    #[expect(clippy::too_many_arguments, reason = "one position, spelled out")]
    async fn snapshot_page(
        &self,
        cell: &dyn CellStore,
        tenant: &TenantId,
        id: &ConnectionId,
        seq: i64,
        account: Option<AccountId>,
        mut after: Option<kontor_store::PageKey>,
        limit: usize,
    ) -> ServiceResult<(Vec<TransactionRow>, Position)> {
        let accounts = cell.connection_accounts(id).await?;
        let start = match &account {
            None => 0,
            // Accounts are never removed from a live connection: one that is gone went with
            // an erasure, which leaves no connection to ask about either.
            Some(account) => accounts
                .iter()
                .position(|a| &a.id == account)
                .ok_or_else(expired)?,
        };
        let mut rows = Vec::with_capacity(limit);
        for (index, account) in accounts.iter().enumerate().skip(start) {
            let page = cell
                .list_transactions(
                    tenant,
                    &account.id,
                    &TransactionFilter::default(),
                    after.take().as_ref(),
                    limit - rows.len(),
                )
                .await?;
            rows.extend(page.items);
            if let Some(key) = page.next {
                let next = Position::Snapshot {
                    seq,
                    account: Some(account.id.clone()),
                    after: Some(key),
                };
                return Ok((rows, next));
            }
            if rows.len() >= limit {
                if let Some(following) = accounts.get(index + 1) {
                    let next = Position::Snapshot {
                        seq,
                        account: Some(following.id.clone()),
                        after: None,
                    };
                    return Ok((rows, next));
                }
                break;
            }
        }
        Ok((rows, Position::Log { seq }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::Region;
    use kontor_domain::time::Timestamp;

    fn row(seq: i64, tx: &TransactionId, account: &AccountId, kind: ChangeKind) -> ChangeRow {
        ChangeRow {
            seq,
            account_id: account.clone(),
            transaction_id: tx.clone(),
            kind,
            created_at: Timestamp::from_unix_micros(0),
        }
    }

    #[test]
    fn entries_of_one_transaction_fold_into_what_the_tenant_must_do() {
        use ChangeKind::{Added, Modified, Removed};
        let region = Region::parse("de").unwrap();
        let account = AccountId::generate(&region);
        let [a, b, c, d] = std::array::from_fn(|_| TransactionId::generate(&region));
        let rows = vec![
            row(1, &a, &account, Added),
            row(2, &b, &account, Modified),
            row(3, &a, &account, Modified),
            row(4, &c, &account, Added),
            row(5, &b, &account, Modified),
            row(6, &c, &account, Removed),
            row(7, &d, &account, Modified),
            row(8, &d, &account, Removed),
        ];
        assert_eq!(
            fold(&rows),
            vec![
                (a, account.clone(), Added),
                (b, account.clone(), Modified),
                (c, account.clone(), Removed),
                (d, account, Removed),
            ]
        );
    }

    #[test]
    fn a_gap_in_the_numbers_is_noticed() {
        let region = Region::parse("de").unwrap();
        let account = AccountId::generate(&region);
        let tx = TransactionId::generate(&region);
        let rows = |seqs: &[i64]| -> Vec<ChangeRow> {
            seqs.iter()
                .map(|&s| row(s, &tx, &account, ChangeKind::Added))
                .collect()
        };
        assert!(contiguous(0, 0, &[]));
        assert!(contiguous(5, 5, &[]));
        assert!(!contiguous(5, 6, &[]), "the entry after the cursor is gone");
        assert!(contiguous(2, 4, &rows(&[3, 4])));
        assert!(!contiguous(2, 5, &rows(&[4, 5])), "3 is gone");
        assert!(!contiguous(2, 5, &rows(&[3, 5])), "4 is gone");
    }
}
