//! Reading what syncs stored, for the API: rows with their sealed details opened with the
//! user's data key. Every read is scoped by tenant.

use kontor_domain::{AccountId, TenantId, UserId};
use kontor_store::{BalanceRow, Page, PageKey, TransactionFilter};

use crate::details::{AccountDetails, AccountView, TransactionDetails, TransactionView};
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;
use crate::vault::{context, open_json};

impl Hub {
    /// A page of a user's accounts (the user's region is in their id).
    pub async fn accounts_of(
        &self,
        tenant: &TenantId,
        user: &UserId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<AccountView>> {
        let cell = self.cell_for_user(Some(tenant), user)?;
        let page = cell.list_accounts(tenant, Some(user), after, limit).await?;
        if page.items.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next: page.next,
            });
        }
        let key = self.vault().user_key(cell, user).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for row in page.items {
            let details: AccountDetails =
                open_json(&key, &row.details, &context::account(&row.id))?;
            items.push(AccountView { row, details });
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    pub async fn account(&self, tenant: &TenantId, id: &AccountId) -> ServiceResult<AccountView> {
        let cell = self.account_cell(tenant, id).await?;
        let row = cell.account(tenant, id).await?;
        self.account_owners().remember(id, &row.user_id);
        let key = self.vault().user_key(cell, &row.user_id).await?;
        let details: AccountDetails = open_json(&key, &row.details, &context::account(id))?;
        Ok(AccountView { row, details })
    }

    pub async fn balances(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> ServiceResult<Vec<BalanceRow>> {
        let cell = self.account_cell(tenant, id).await?;
        cell.balances(tenant, id).await.map_err(ServiceError::from)
    }

    pub async fn transactions(
        &self,
        tenant: &TenantId,
        id: &AccountId,
        filter: &TransactionFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> ServiceResult<Page<TransactionView>> {
        let cell = self.account_cell(tenant, id).await?;
        // The page query is scoped by tenant, so rows it finds are the tenant's, of this account;
        // whose key opens them is known from an earlier read of the account (an account never
        // changes owner). Without that, and for an empty page — no rows, or no such account for
        // this tenant (404) — the account is read.
        let known = self.account_owners().get(id);
        let owner = match &known {
            Some(owner) => owner.clone(),
            None => self.account_owner(cell, tenant, id).await?,
        };
        let page = cell
            .list_transactions(tenant, id, filter, after, limit)
            .await?;
        if page.items.is_empty() {
            if known.is_some() {
                self.account_owner(cell, tenant, id).await?;
            }
            return Ok(Page {
                items: Vec::new(),
                next: page.next,
            });
        }
        let key = self.vault().user_key(cell, &owner).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for row in page.items {
            let details: TransactionDetails =
                open_json(&key, &row.details, &context::transaction(&row.id))?;
            items.push(TransactionView { row, details });
        }
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// The account's owner, read from the cell (`NotFound` when the tenant has no such account)
    /// and remembered.
    async fn account_owner(
        &self,
        cell: &dyn kontor_store::CellStore,
        tenant: &TenantId,
        id: &AccountId,
    ) -> ServiceResult<UserId> {
        let account = cell.account(tenant, id).await?;
        self.account_owners().remember(id, &account.user_id);
        Ok(account.user_id)
    }
}
