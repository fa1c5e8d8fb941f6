//! Exporting everything the hub holds about one user (GDPR Art. 15 and 20): the user, then their
//! connections, accounts with balances, transactions, payments with their history, and events,
//! read in batches from the user's cell so that a long history never sits in memory at once.
//! Secrets are not part of it: no bank session, token, state or authorisation link.

use std::collections::VecDeque;

use futures_util::stream::{self, BoxStream, StreamExt};
use kontor_domain::connection::Connection;
use kontor_domain::event::Event;
use kontor_domain::user::User;
use kontor_domain::{AccountId, TenantId, UserId};
use kontor_store::{BalanceRow, EventFilter, ListFilter, PageKey, TransactionFilter};

use crate::details::{AccountView, TransactionView};
use crate::error::ServiceResult;
use crate::hub::Hub;
use crate::payments::PaymentView;

/// How many rows one read of the export fetches (transactions, events, and the like).
pub const EXPORT_BATCH: usize = 200;

/// One record of an export.
#[derive(Debug, Clone)]
pub enum ExportItem {
    Connection {
        connection: Connection,
        account_ids: Vec<AccountId>,
    },
    Account(AccountView),
    Balance(BalanceRow),
    Transaction(TransactionView),
    /// Without its authorisation link: that link is a bearer capability, not data about the user.
    Payment(PaymentView),
    Event(Event),
}

/// A user's export: the user, read before anything is streamed (so an unknown or erased user is
/// answered as such), and the rest as batches of records in a fixed order.
pub struct UserExport {
    pub user: User,
    pub records: BoxStream<'static, ServiceResult<Vec<ExportItem>>>,
}

impl std::fmt::Debug for UserExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserExport")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

/// Where the export stands between two batches.
enum Step {
    Connections(Option<PageKey>),
    Accounts(Option<PageKey>),
    Transactions(Option<PageKey>),
    Payments(Option<PageKey>),
    Events(Option<PageKey>),
    Done,
}

struct Cursor {
    hub: Hub,
    tenant: TenantId,
    user: UserId,
    step: Step,
    /// The accounts met while listing them, whose transactions follow; the front one is current.
    accounts: VecDeque<AccountId>,
}

impl Hub {
    /// Everything held about the tenant's user `id`; `NotFound` for an unknown, erased or
    /// other tenant's user, exactly like reading the user.
    pub async fn export_user(&self, tenant: &TenantId, id: &UserId) -> ServiceResult<UserExport> {
        let user = self.user(tenant, id).await?;
        let cursor = Cursor {
            hub: self.clone(),
            tenant: tenant.clone(),
            user: id.clone(),
            step: Step::Connections(None),
            accounts: VecDeque::new(),
        };
        let records = stream::try_unfold(cursor, |mut cursor| async move {
            loop {
                if matches!(cursor.step, Step::Done) {
                    return Ok(None);
                }
                let batch = cursor.next_batch().await?;
                if !batch.is_empty() {
                    return Ok(Some((batch, cursor)));
                }
            }
        })
        .boxed();
        Ok(UserExport { user, records })
    }
}

impl Cursor {
    /// Reads the next batch and moves on; a batch may be empty when a step had nothing.
    async fn next_batch(&mut self) -> ServiceResult<Vec<ExportItem>> {
        let hub = &self.hub;
        let tenant = &self.tenant;
        let cell = hub.cell_for_user(Some(tenant), &self.user)?;
        let user = &self.user;
        match std::mem::replace(&mut self.step, Step::Done) {
            Step::Connections(after) => {
                let page = cell
                    .list_connections(
                        tenant,
                        &ListFilter::user(user),
                        after.as_ref(),
                        EXPORT_BATCH,
                    )
                    .await?;
                let mut batch = Vec::with_capacity(page.items.len());
                for connection in page.items {
                    let account_ids = cell
                        .connection_accounts(&connection.id)
                        .await?
                        .into_iter()
                        .map(|account| account.id)
                        .collect();
                    batch.push(ExportItem::Connection {
                        connection,
                        account_ids,
                    });
                }
                self.step = match page.next {
                    Some(next) => Step::Connections(Some(next)),
                    None => Step::Accounts(None),
                };
                Ok(batch)
            }
            Step::Accounts(after) => {
                let page = hub
                    .accounts_of(tenant, user, after.as_ref(), EXPORT_BATCH)
                    .await?;
                let mut batch = Vec::with_capacity(page.items.len() * 3);
                for view in page.items {
                    let balances = hub.balances(tenant, &view.row.id).await?;
                    self.accounts.push_back(view.row.id.clone());
                    batch.push(ExportItem::Account(view));
                    batch.extend(balances.into_iter().map(ExportItem::Balance));
                }
                self.step = match page.next {
                    Some(next) => Step::Accounts(Some(next)),
                    None => Step::Transactions(None),
                };
                Ok(batch)
            }
            Step::Transactions(after) => {
                let Some(account) = self.accounts.front().cloned() else {
                    self.step = Step::Payments(None);
                    return Ok(Vec::new());
                };
                let page = hub
                    .transactions(
                        tenant,
                        &account,
                        &TransactionFilter::default(),
                        after.as_ref(),
                        EXPORT_BATCH,
                    )
                    .await?;
                self.step = match page.next {
                    Some(next) => Step::Transactions(Some(next)),
                    None => {
                        self.accounts.pop_front();
                        Step::Transactions(None)
                    }
                };
                Ok(page
                    .items
                    .into_iter()
                    .map(ExportItem::Transaction)
                    .collect())
            }
            Step::Payments(after) => {
                let page = cell
                    .list_payments(
                        tenant,
                        &ListFilter::user(user),
                        after.as_ref(),
                        EXPORT_BATCH,
                    )
                    .await?;
                let mut batch = Vec::with_capacity(page.items.len());
                for payment in page.items {
                    let mut view = hub.payment_view(tenant, &payment.id).await?;
                    view.authorize_url = None;
                    batch.push(ExportItem::Payment(view));
                }
                self.step = match page.next {
                    Some(next) => Step::Payments(Some(next)),
                    None => Step::Events(None),
                };
                Ok(batch)
            }
            Step::Events(after) => {
                let filter = EventFilter {
                    user: Some(user.clone()),
                    ..EventFilter::default()
                };
                let page = cell
                    .list_events(tenant, &filter, after.as_ref(), EXPORT_BATCH)
                    .await?;
                match page.next {
                    Some(next) => self.step = Step::Events(Some(next)),
                    // An erasure that committed while the export ran removed rows already read
                    // past: the export ends in an error rather than look complete.
                    None => {
                        hub.user(tenant, user).await?;
                    }
                }
                Ok(page.items.into_iter().map(ExportItem::Event).collect())
            }
            Step::Done => Ok(Vec::new()),
        }
    }
}
