//! Accounts, balances and transactions read from banks, kept in the user's cell. Personal
//! details travel sealed (the service layer seals and opens them); what lists filter and sort
//! on — dates, amounts, status — is stored in clear.

use async_trait::async_trait;
use kontor_domain::account::AccountKind;
use kontor_domain::currency::Currency;
use kontor_domain::money::Money;
use kontor_domain::time::Timestamp;
use kontor_domain::transaction::{DedupKey, TransactionStatus};
use kontor_domain::{AccountId, ConnectionId, TenantId, TransactionId, UserId};
use time::Date;

use crate::connections::SyncBookkeeping;
use crate::error::StoreResult;
use crate::page::{Page, PageKey};
use kontor_domain::event::NewEvent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: AccountId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub connection_id: ConnectionId,
    pub bank_account_id: String,
    pub currency: Currency,
    pub kind: AccountKind,
    /// Sealed JSON: IBAN, other identification, names, product.
    pub details: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub use kontor_domain::account::BalanceRow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    pub id: TransactionId,
    pub tenant_id: TenantId,
    pub account_id: AccountId,
    pub key: DedupKey,
    pub status: TransactionStatus,
    pub booking_date: Option<Date>,
    pub value_date: Option<Date>,
    /// What lists order by: booking date, else value date, else the day first seen.
    pub sort_date: Date,
    /// The date the transaction happened (see [`TransactionRow::happened_on`]). `None` on rows
    /// the previous release wrote, until the worker's backfill reaches them.
    pub transaction_date: Option<Date>,
    pub amount: Money,
    /// Sealed JSON: counterparty, remittance, bank references.
    pub details: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The date a transaction happened, by precedence: the bank's booking date, else its
/// transaction date (a date the bank gives apart from booking and value, which neither
/// standard's account report carries today), else the value date, else the day the hub first
/// saw it. What ingest stores in `transaction_date`.
pub fn transaction_date(
    booking: Option<Date>,
    bank_transaction_date: Option<Date>,
    value: Option<Date>,
    first_seen: Date,
) -> Date {
    booking
        .or(bank_transaction_date)
        .or(value)
        .unwrap_or(first_seen)
}

impl TransactionRow {
    /// The date the transaction happened, never missing: the stored `transaction_date`, or, on
    /// a row the backfill has not reached yet, the same rule applied to the stored dates. A
    /// booking date always comes first, also over a stored value, so that a row the previous
    /// release booked (it does not know the column) reads right before the backfill.
    pub fn happened_on(&self) -> Date {
        self.booking_date.unwrap_or_else(|| {
            self.transaction_date
                .unwrap_or_else(|| transaction_date(None, None, self.value_date, self.sort_date))
        })
    }
}

pub use kontor_domain::list::TransactionFilter;

/// Everything one successful sync writes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct SyncWrite {
    pub connection_id: ConnectionId,
    /// Accounts to insert or update (matched on connection and bank account id).
    pub accounts: Vec<AccountRow>,
    /// Each account's balances, replacing the previous ones.
    pub balances: Vec<(AccountId, Vec<BalanceRow>)>,
    pub inserts: Vec<TransactionRow>,
    pub updates: Vec<TransactionRow>,
    pub removals: Vec<TransactionId>,
    pub bookkeeping: SyncBookkeeping,
    pub events: Vec<NewEvent>,
}

/// Accounts page by `(created_at, id)`, oldest first; transactions by `(sort_date, id)`, newest
/// first, with the page key's `sort` holding the date's Julian day number.
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<AccountRow>>;

    async fn account(&self, tenant: &TenantId, id: &AccountId) -> StoreResult<AccountRow>;

    async fn connection_accounts(&self, connection: &ConnectionId) -> StoreResult<Vec<AccountRow>>;

    async fn balances(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> StoreResult<Vec<BalanceRow>>;

    async fn list_transactions(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        filter: &TransactionFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<TransactionRow>>;

    /// What reconciliation compares a fetch with: the account's transactions dated on or after
    /// `from` (all when `None`), and every pending one regardless of date.
    async fn transactions_for_sync(
        &self,
        account: &AccountId,
        from: Option<Date>,
    ) -> StoreResult<Vec<TransactionRow>>;

    async fn apply_sync(&self, write: &SyncWrite) -> StoreResult<()>;

    /// Fills `transaction_date` on at most `batch` rows that lack it (rows the previous release
    /// wrote), by the rule of [`transaction_date`] over the stored dates, in one short
    /// transaction. Returns how many it filled: 0 when nothing is left, which costs one look at
    /// an empty partial index. Safe to run from several workers at once and to stop at any time.
    async fn backfill_transaction_dates(&self, batch: usize) -> StoreResult<u64>;
}
