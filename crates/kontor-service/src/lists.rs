//! Tenant-wide lists of connections and payments. A tenant's users live in the cells of several
//! regions, and this process holds all of them (`Cells`, one per region): a page is read from
//! every cell at once and merged in `(created_at, id)` order. The position after a page is that
//! order's key, which means the same in every cell (ids are unique across regions), so a page
//! that ends in one cell's rows resumes correctly in all of them.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::try_join_all;
use kontor_crypto::DataKey;
use kontor_domain::connection::{Connection, ConnectionStatus};
use kontor_domain::payment::{PaymentStatus, StatusChange};
use kontor_domain::{AccountId, CellId, PaymentId, TenantId, UserId};
use kontor_store::{CellStore, ListFilter, Page, PageKey, PaymentSecrets, StoreResult};

use crate::ServiceError;
use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::payments::{PaymentDetails, PaymentView};
use crate::vault::{context, open_json};

/// A connection with the accounts read under it.
#[derive(Debug, Clone)]
pub struct ListedConnection {
    pub connection: Connection,
    pub account_ids: Vec<AccountId>,
}

/// Merges pages read from several cells after the same key: the first `limit` rows of their
/// union in key order, and the key after them when any cell has more.
fn merge<T>(pages: Vec<Page<T>>, limit: usize, key_of: impl Fn(&T) -> PageKey) -> Page<T> {
    let more = pages.iter().any(|page| page.next.is_some());
    let mut rows: Vec<(PageKey, T)> = pages
        .into_iter()
        .flat_map(|page| page.items)
        .map(|row| (key_of(&row), row))
        .collect();
    rows.sort_by(|a, b| (a.0.sort, &a.0.id).cmp(&(b.0.sort, &b.0.id)));
    let more = more || rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(key, _)| key.clone())
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, row)| row).collect(),
        next,
    }
}

impl Hub {
    /// The cells a filter can match rows in: the user's alone when it names one (none when this
    /// deployment does not serve their region), else every cell.
    fn cells_for<S>(&self, tenant: &TenantId, filter: &ListFilter<S>) -> Vec<&dyn CellStore> {
        match &filter.user {
            Some(user) => self.cell_for_user(Some(tenant), user).into_iter().collect(),
            None => self.cells().iter().map(|(_, cell)| cell.as_ref()).collect(),
        }
    }

    /// Reads a page from each of `cells` after `after` and merges them.
    async fn merged<'a, T, Fut>(
        cells: Vec<&'a dyn CellStore>,
        limit: usize,
        read: impl Fn(&'a dyn CellStore) -> Fut,
        key_of: impl Fn(&T) -> PageKey,
    ) -> ServiceResult<Page<T>>
    where
        Fut: Future<Output = StoreResult<Page<T>>>,
    {
        let pages = try_join_all(cells.into_iter().map(read)).await?;
        Ok(merge(pages, limit, key_of))
    }

    /// A page of the tenant's connections, oldest first, from every cell the filter allows.
    pub async fn list_connections(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<ConnectionStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<ListedConnection>> {
        let page = Self::merged(
            self.cells_for(tenant, filter),
            limit,
            |cell| cell.list_connections(tenant, filter, after, limit),
            |c: &Connection| PageKey {
                sort: c.created_at.unix_micros(),
                id: c.id.to_string(),
            },
        )
        .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for connection in page.items {
            let accounts = self
                .cell_of(&connection.id)
                .await?
                .connection_accounts(&connection.id)
                .await?;
            items.push(ListedConnection {
                connection,
                account_ids: accounts.into_iter().map(|a| a.id).collect(),
            });
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// A page of the tenant's payments, oldest first, from every cell the filter allows.
    pub async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<PaymentStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<PaymentView>> {
        let page = Self::merged(
            self.cells_for(tenant, filter),
            limit,
            |cell| cell.list_payments(tenant, filter, after, limit),
            |p: &kontor_domain::payment::Payment| PageKey {
                sort: p.created_at.unix_micros(),
                id: p.id.to_string(),
            },
        )
        .await?;
        // Per cell, the page's sealed details and histories in one read each (not four reads
        // per payment), and each user's key once.
        let mut by_cell: BTreeMap<CellId, Vec<PaymentId>> = BTreeMap::new();
        for payment in &page.items {
            by_cell
                .entry(self.route_user(Some(tenant), &payment.user_id))
                .or_default()
                .push(payment.id.clone());
        }
        let mut secrets: HashMap<PaymentId, PaymentSecrets> = HashMap::new();
        let mut histories: HashMap<PaymentId, Vec<StatusChange>> = HashMap::new();
        let mut keys: HashMap<UserId, DataKey> = HashMap::new();
        for (cell, ids) in &by_cell {
            let cell = self.cell(cell)?;
            let (rows, changes) =
                tokio::try_join!(cell.payments_secrets(ids), cell.status_histories(ids))?;
            for (id, change) in changes {
                histories.entry(id).or_default().push(change);
            }
            for row in rows {
                let user = &row.payment.user_id;
                if !keys.contains_key(user) {
                    let key = self.vault().user_key(cell, user).await?;
                    keys.insert(user.clone(), key);
                }
                secrets.insert(row.payment.id.clone(), row);
            }
        }
        let mut items = Vec::with_capacity(page.items.len());
        for listed in page.items {
            // Deleted since the page was read (the user erased): left out, as a later page
            // would not show it either.
            let Some(row) = secrets.remove(&listed.id) else {
                continue;
            };
            let key = keys.get(&row.payment.user_id).ok_or_else(|| {
                ServiceError::Internal(format!("no key read for {}", row.payment.user_id))
            })?;
            let details: PaymentDetails =
                open_json(key, &row.details, &context::payment(&listed.id))?;
            let history = histories.remove(&listed.id).unwrap_or_default();
            items.push(self.view_of(row.payment, details, history)?);
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sort: i64, id: &str) -> PageKey {
        PageKey {
            sort,
            id: id.into(),
        }
    }

    fn page(rows: &[(i64, &str)], more: bool) -> Page<PageKey> {
        let items: Vec<_> = rows.iter().map(|(s, i)| key(*s, i)).collect();
        let next = more.then(|| items.last().cloned()).flatten();
        Page { items, next }
    }

    #[test]
    fn merges_in_key_order_and_resumes_after_the_last_row() {
        let de = page(&[(1, "con_de_a"), (4, "con_de_b")], false);
        let uk = page(&[(2, "con_uk_a"), (3, "con_uk_b")], false);
        let merged = merge(vec![de, uk], 3, Clone::clone);
        let ids: Vec<_> = merged.items.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["con_de_a", "con_uk_a", "con_uk_b"]);
        assert_eq!(merged.next, Some(key(3, "con_uk_b")));
    }

    #[test]
    fn a_cell_with_more_rows_keeps_the_list_going() {
        let de = page(&[(1, "con_de_a")], true);
        let uk = page(&[], false);
        let merged = merge(vec![de, uk], 1, Clone::clone);
        assert_eq!(merged.next, Some(key(1, "con_de_a")));
        let last = merge(vec![page(&[(1, "con_de_a")], false)], 1, Clone::clone);
        assert_eq!(last.next, None);
    }

    #[test]
    fn equal_times_are_ordered_by_id() {
        let de = page(&[(5, "con_uk_z")], false);
        let uk = page(&[(5, "con_de_z")], false);
        let merged = merge(vec![de, uk], 2, Clone::clone);
        assert_eq!(merged.items[0].id, "con_de_z");
    }
}
