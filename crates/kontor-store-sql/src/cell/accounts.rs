//! Accounts, balances and transactions in a cell: the read side the API pages through, and the
//! one transaction a sync writes everything in.

use async_trait::async_trait;
use kontor_domain::account::{AccountKind, Balance, BalanceKind};
use kontor_domain::currency::Currency;
use kontor_domain::money::Money;
use kontor_domain::time::Timestamp;
use kontor_domain::transaction::{DedupKey, TransactionStatus};
use kontor_domain::{AccountId, ConnectionId, TenantId, TransactionId, UserId};
use kontor_store::{
    AccountRow, AccountStore, BalanceRow, ChangeKind, Page, PageKey, StoreError, StoreResult,
    SyncWrite, TransactionFilter, TransactionRow,
};
use time::Date;

use super::SqlCell;
use super::changes;
use super::events::insert_event;
use super::sync_state;
use crate::database::{SqlDatabase, date_text, optional_date, optional_timestamp, parse_date};
use crate::query::{Arg, Filtered, page_limit, rows_per_statement, runs};
use crate::reads::{Columns, Param, decoder};
use crate::tx::{Mode, Tx};

macro_rules! account_columns {
    () => {
        "id, tenant_id, user_id, connection_id, bank_account_id, currency, kind, details, \
         created_at, updated_at"
    };
}

macro_rules! transaction_columns {
    () => {
        "id, tenant_id, account_id, dedup_key, status, booking_date, value_date, sort_date, \
         transaction_date, amount_minor, currency, details, created_at, updated_at"
    };
}

fn currency(row: &impl Columns) -> StoreResult<Currency> {
    Currency::parse(row.text("currency")?).map_err(StoreError::corrupt)
}

fn account_from_row<R: Columns>(row: &R) -> StoreResult<AccountRow> {
    let kind = row.text("kind")?;
    Ok(AccountRow {
        id: AccountId::parse(row.text("id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(StoreError::corrupt)?,
        user_id: UserId::parse(row.text("user_id")?).map_err(StoreError::corrupt)?,
        connection_id: ConnectionId::parse(row.text("connection_id")?)
            .map_err(StoreError::corrupt)?,
        bank_account_id: row.text("bank_account_id")?.to_owned(),
        currency: currency(row)?,
        kind: AccountKind::parse(kind).ok_or_else(|| StoreError::corrupt(kind))?,
        details: row.text("details")?.to_owned(),
        created_at: Timestamp::from_unix_micros(row.int("created_at")?),
        updated_at: Timestamp::from_unix_micros(row.int("updated_at")?),
    })
}

fn balance_from_row<R: Columns>(row: &R) -> StoreResult<BalanceRow> {
    let kind = row.text("kind")?;
    let amount =
        Money::from_minor(row.int("amount_minor")?, currency(row)?).map_err(StoreError::corrupt)?;
    Ok(BalanceRow {
        account_id: AccountId::parse(row.text("account_id")?).map_err(StoreError::corrupt)?,
        balance: Balance {
            kind: BalanceKind::parse(kind).ok_or_else(|| StoreError::corrupt(kind))?,
            amount,
            credit_limit_included: row.opt_int("credit_limit_included")?.map(|flag| flag != 0),
            reference_date: optional_date(row, "reference_date")?,
            last_change: optional_timestamp(row, "last_change_at")?,
        },
        fetched_at: Timestamp::from_unix_micros(row.int("fetched_at")?),
    })
}

fn transaction_from_row<R: Columns>(row: &R) -> StoreResult<TransactionRow> {
    let status = row.text("status")?;
    Ok(TransactionRow {
        id: TransactionId::parse(row.text("id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(StoreError::corrupt)?,
        account_id: AccountId::parse(row.text("account_id")?).map_err(StoreError::corrupt)?,
        key: DedupKey::from_stored(row.text("dedup_key")?.to_owned()),
        status: TransactionStatus::parse(status).ok_or_else(|| StoreError::corrupt(status))?,
        booking_date: optional_date(row, "booking_date")?,
        value_date: optional_date(row, "value_date")?,
        sort_date: parse_date(row.text("sort_date")?)?,
        transaction_date: optional_date(row, "transaction_date")?,
        amount: Money::from_minor(row.int("amount_minor")?, currency(row)?)
            .map_err(StoreError::corrupt)?,
        details: row.text("details")?.to_owned(),
        created_at: Timestamp::from_unix_micros(row.int("created_at")?),
        updated_at: Timestamp::from_unix_micros(row.int("updated_at")?),
    })
}

/// Transactions page newest first; the key carries the sort date as a Julian day number.
fn transaction_key(row: &TransactionRow) -> PageKey {
    PageKey {
        sort: i64::from(row.sort_date.to_julian_day()),
        id: row.id.to_string(),
    }
}

#[async_trait]
impl AccountStore for SqlCell {
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<AccountRow>> {
        let mut q = Filtered::new(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE tenant_id = "
        ));
        let p = q.arg(Arg::Text(tenant.to_string()));
        q.push(&p);
        if let Some(user) = user {
            let p = q.arg(Arg::Text(user.to_string()));
            q.push(&format!(" AND user_id = {p}"));
        }
        q.page_by_creation("", after, limit);
        q.fetch_page(&self.db, limit, account_from_row, |a| PageKey {
            sort: a.created_at.unix_micros(),
            id: a.id.to_string(),
        })
        .await
    }

    async fn account(&self, tenant: &TenantId, id: &AccountId) -> StoreResult<AccountRow> {
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE tenant_id = $1 AND id = $2"
        );
        self.db
            .typed_row(
                sql,
                &[Param::Text(tenant.as_str()), Param::Text(id.as_str())],
                &decoder!(account_from_row),
            )
            .await
    }

    async fn connection_accounts(&self, connection: &ConnectionId) -> StoreResult<Vec<AccountRow>> {
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE connection_id = $1 ORDER BY created_at, id"
        );
        self.db
            .rows(
                || sqlx::query(sql).bind(connection.as_str()),
                account_from_row,
            )
            .await
    }

    async fn balances(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> StoreResult<Vec<BalanceRow>> {
        // Scoped by tenant through the account, so another tenant's account id finds nothing.
        self.account(tenant, account).await?;
        self.db
            .typed_rows(
                "SELECT account_id, kind, amount_minor, currency, credit_limit_included, \
                 reference_date, last_change_at, fetched_at FROM balances WHERE account_id = $1 \
                 ORDER BY kind",
                &[Param::Text(account.as_str())],
                &decoder!(balance_from_row),
            )
            .await
    }

    async fn list_transactions(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        filter: &TransactionFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<TransactionRow>> {
        let mut q = Filtered::new(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE tenant_id = "
        ));
        let p = q.arg(Arg::Text(tenant.to_string()));
        q.push(&p);
        let p = q.arg(Arg::Text(account.to_string()));
        q.push(&format!(" AND account_id = {p}"));
        if let Some(from) = filter.from {
            let p = q.arg(Arg::Text(date_text(from)));
            q.push(&format!(" AND sort_date >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = q.arg(Arg::Text(date_text(to)));
            q.push(&format!(" AND sort_date <= {p}"));
        }
        if let Some(status) = filter.status {
            let p = q.arg(Arg::Text(status.as_str().to_owned()));
            q.push(&format!(" AND status = {p}"));
        }
        if let Some(key) = after {
            let day = i32::try_from(key.sort)
                .ok()
                .and_then(|jd| Date::from_julian_day(jd).ok())
                .ok_or_else(|| StoreError::corrupt("page key"))?;
            let sort = q.arg(Arg::Text(date_text(day)));
            let id = q.arg(Arg::Text(key.id.clone()));
            q.push(&format!(" AND (sort_date, id) < ({sort}, {id})"));
        }
        let fetch = q.arg(Arg::Int(page_limit(limit)));
        q.push(&format!(" ORDER BY sort_date DESC, id DESC LIMIT {fetch}"));
        let items = q
            .typed_rows(&self.db, &decoder!(transaction_from_row))
            .await?;
        Ok(Page::from_rows(items, limit, transaction_key))
    }

    async fn transactions_for_sync(
        &self,
        account: &AccountId,
        from: Option<Date>,
    ) -> StoreResult<Vec<TransactionRow>> {
        let sql = concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE account_id = $1 AND (status = 'pending' OR sort_date >= $2) \
             ORDER BY sort_date, id"
        );
        let from = from.map_or_else(|| String::from("0000-01-01"), date_text);
        self.db
            .rows(
                || sqlx::query(sql).bind(account.as_str()).bind(from.as_str()),
                transaction_from_row,
            )
            .await
    }

    async fn apply_sync(&self, write: &SyncWrite) -> StoreResult<()> {
        self.ensure_home("connection", write.connection_id.region())?;
        self.db
            .write("apply_sync", |tx| {
                Box::pin(async move {
                    // The row first: the serializable snapshot is taken at the first statement,
                    // and a lease renewal must wait for this write rather than abort it.
                    take_connection_row(tx, &write.connection_id).await?;
                    super::fences::guard_row(
                        tx,
                        super::fences::Row::Connection,
                        write.connection_id.as_str(),
                    )
                    .await?;
                    for account in &write.accounts {
                        upsert_account(tx, account).await?;
                    }
                    for (account, balances) in &write.balances {
                        replace_balances(tx, account, balances).await?;
                    }
                    let mut logged = Vec::new();
                    let per_insert = rows_per_statement(
                        tx.dialect(),
                        TRANSACTION_PARAMS,
                        TRANSACTIONS_PER_INSERT,
                    );
                    for run in runs(&write.inserts, per_insert) {
                        insert_transactions(tx, run).await?;
                    }
                    for row in &write.inserts {
                        logged.push((row.account_id.clone(), &row.id, ChangeKind::Added));
                    }
                    for row in &write.updates {
                        update_transaction(tx, row).await?;
                        logged.push((row.account_id.clone(), &row.id, ChangeKind::Modified));
                    }
                    for id in &write.removals {
                        // Only what was there is logged: the log's numbers stay without gaps.
                        let account: Option<String> = tx
                            .optional_scalar(
                                sqlx::query_scalar(
                                    "DELETE FROM transactions WHERE id = $1 RETURNING account_id",
                                )
                                .bind(id.as_str()),
                            )
                            .await?;
                        if let Some(account) = account {
                            let account =
                                AccountId::parse(&account).map_err(StoreError::corrupt)?;
                            logged.push((account, id, ChangeKind::Removed));
                        }
                    }
                    if let Some(synced_at) = write.bookkeeping.synced_at {
                        let changes: Vec<changes::Change<'_>> = logged
                            .iter()
                            .map(|(account_id, transaction_id, kind)| changes::Change {
                                account_id,
                                transaction_id,
                                kind: *kind,
                            })
                            .collect();
                        changes::record(tx, &write.connection_id, synced_at, &changes).await?;
                    }
                    sync_state::write(tx, &write.connection_id, &write.bookkeeping).await?;
                    for event in &write.events {
                        insert_event(tx, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn backfill_transaction_dates(&self, batch: usize) -> StoreResult<u64> {
        // Two statements: the batch is chosen (and, on PostgreSQL, locked, skipping rows another
        // worker holds) first, then filled. One `UPDATE … WHERE id IN (SELECT … LIMIT n FOR
        // UPDATE SKIP LOCKED)` may run its subquery more than once and fill more than a batch.
        // The SELECT repeats the partial index's predicate literally so that it finds the rows
        // left through `transactions_undated`; the UPDATE checks it again, so that a row a sync
        // filled meanwhile is left alone. The rule is `kontor_store::transaction_date`'s over
        // the stored dates (no bank transaction date was stored before this column).
        //
        // Rows of a subject a move fences (`cell::fences`) are left alone in both statements: the
        // source's copy is frozen, the target's is the move's to write. At READ COMMITTED on
        // PostgreSQL the UPDATE reads the fence after the SELECT locked the batch, and the
        // source's fence locks the subject's undated rows in its own transaction (as it does
        // payments and deliveries, `moves::fence`): a batch locked first commits before the
        // fence, one locked after it skips those rows, and a statement after the fence's commit
        // sees it. On SQLite the transaction holds the write lock from its `BEGIN IMMEDIATE`.
        let select = &format!(
            "SELECT id FROM transactions WHERE transaction_date IS NULL AND {} LIMIT $1{}",
            UNFENCED_TRANSACTION,
            self.db.dialect().skip_locked()
        );
        let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        self.db
            .transaction(Mode::Queue, "backfill_transaction_dates", |tx| {
                Box::pin(async move {
                    let ids: Vec<String> = tx
                        .scalars(
                            sqlx::query_scalar(sqlx::AssertSqlSafe(select.as_str())).bind(limit),
                        )
                        .await?;
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    let placeholders: Vec<String> =
                        (1..=ids.len()).map(|n| format!("${n}")).collect();
                    let update = format!(
                        "UPDATE transactions \
                     SET transaction_date = COALESCE(booking_date, value_date, sort_date) \
                     WHERE transaction_date IS NULL AND {UNFENCED_TRANSACTION} AND id IN ({})",
                        placeholders.join(", ")
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(update));
                    for id in &ids {
                        query = query.bind(id.as_str());
                    }
                    tx.execute(query).await
                })
            })
            .await
    }
}

/// A transaction row no move fences: neither its tenant nor its account's user.
const UNFENCED_TRANSACTION: &str = "NOT EXISTS (SELECT 1 FROM move_fences f \
     WHERE f.tenant_id = transactions.tenant_id AND (f.user_id IS NULL OR f.user_id IN \
     (SELECT a.user_id FROM accounts a WHERE a.id = transactions.account_id)))";

/// The transactions among `ids` that exist under `connection` (the changes feed's current
/// state of what its log names).
pub(super) async fn transactions_by_ids(
    db: &SqlDatabase,
    connection: &ConnectionId,
    ids: &[TransactionId],
) -> StoreResult<Vec<TransactionRow>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let mut q = Filtered::new(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM transactions WHERE account_id IN \
             (SELECT id FROM accounts WHERE connection_id = "
        ));
        let p = q.arg(Arg::Text(connection.to_string()));
        q.push(&p);
        q.push(") AND id IN (");
        for (i, id) in chunk.iter().enumerate() {
            let p = q.arg(Arg::Text(id.to_string()));
            q.push(if i == 0 { "" } else { ", " });
            q.push(&p);
        }
        q.push(")");
        let rows = db.fetch_all(|| q.build()).await?;
        for row in &rows {
            out.push(transaction_from_row(row)?);
        }
    }
    Ok(out)
}

/// Ids bound per query: well under every backend's limit on bound parameters.
const IDS_PER_QUERY: usize = 200;

/// Makes the connection's row this transaction's first write. The sync's lease is kept on that
/// row and renewed while the sync runs (`lease::CONNECTIONS`); the write ends by updating the row
/// (the change log's counter, the bookkeeping), and on PostgreSQL that update fails to serialize
/// (SQLSTATE 40001) when a renewal committed after the transaction's first statement. A write
/// that runs longer than the renewal period (a first sync of thousands of rows on a loaded
/// database) lost every attempt so and gave up. With the row taken first, a renewal waits for
/// this commit instead, and its own retry goes through after it.
async fn take_connection_row(tx: &mut Tx<'_>, connection: &ConnectionId) -> StoreResult<()> {
    tx.execute(
        sqlx::query("UPDATE connections SET lease_until = lease_until WHERE id = $1")
            .bind(connection.as_str()),
    )
    .await
    .map(drop)
}

async fn upsert_account(tx: &mut Tx<'_>, a: &AccountRow) -> StoreResult<()> {
    tx.execute(sqlx::query(
        "INSERT INTO accounts (id, tenant_id, user_id, connection_id, bank_account_id, currency, \
         kind, details, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (connection_id, bank_account_id) DO UPDATE SET currency = excluded.currency, \
         kind = excluded.kind, details = excluded.details, updated_at = excluded.updated_at",
    )
    .bind(a.id.as_str())
    .bind(a.tenant_id.as_str())
    .bind(a.user_id.as_str())
    .bind(a.connection_id.as_str())
    .bind(a.bank_account_id.as_str())
    .bind(a.currency.code())
    .bind(a.kind.as_str())
    .bind(a.details.as_str())
    .bind(a.created_at.unix_micros())
    .bind(a.updated_at.unix_micros())).await.map(drop)
}

async fn replace_balances(
    tx: &mut Tx<'_>,
    account: &AccountId,
    balances: &[BalanceRow],
) -> StoreResult<()> {
    tx.execute(sqlx::query("DELETE FROM balances WHERE account_id = $1").bind(account.as_str()))
        .await?;
    for row in balances {
        let b = &row.balance;
        tx.execute(
            sqlx::query(
                "INSERT INTO balances (account_id, kind, amount_minor, currency, \
             credit_limit_included, reference_date, last_change_at, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account_id, kind) DO UPDATE \
             SET amount_minor = excluded.amount_minor, currency = excluded.currency, \
             credit_limit_included = excluded.credit_limit_included, \
             reference_date = excluded.reference_date, last_change_at = excluded.last_change_at, \
             fetched_at = excluded.fetched_at",
            )
            .bind(account.as_str())
            .bind(b.kind.as_str())
            .bind(b.amount.minor_units())
            .bind(b.amount.currency().code())
            .bind(b.credit_limit_included.map(i64::from))
            .bind(b.reference_date.map(date_text))
            .bind(b.last_change.map(Timestamp::unix_micros))
            .bind(row.fetched_at.unix_micros()),
        )
        .await?;
    }
    Ok(())
}

/// Rows per multi-row `INSERT INTO transactions` of a sync, at most, where the backend takes
/// that many bound parameters (PostgreSQL; SQLite's 999 allows 64): a first sync of 1,420 rows
/// is 8 statements instead of 24.
const TRANSACTIONS_PER_INSERT: usize = 256;
/// Bound parameters a row of that `INSERT`.
const TRANSACTION_PARAMS: usize = 14;

/// Inserts a run of a sync's new transactions with one statement (one round trip instead of one
/// per row; plain multi-row `VALUES`, portable).
async fn insert_transactions(tx: &mut Tx<'_>, rows: &[TransactionRow]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = Filtered::new(
        "INSERT INTO transactions (id, tenant_id, account_id, dedup_key, status, booking_date, \
         value_date, sort_date, amount_minor, currency, details, created_at, updated_at, \
         transaction_date) VALUES ",
    );
    for (i, t) in rows.iter().enumerate() {
        let values = [
            q.arg(Arg::Text(t.id.to_string())),
            q.arg(Arg::Text(t.tenant_id.to_string())),
            q.arg(Arg::Text(t.account_id.to_string())),
            q.arg(Arg::Text(t.key.as_str().to_owned())),
            q.arg(Arg::Text(t.status.as_str().to_owned())),
            q.arg(Arg::OptText(t.booking_date.map(date_text))),
            q.arg(Arg::OptText(t.value_date.map(date_text))),
            q.arg(Arg::Text(date_text(t.sort_date))),
            q.arg(Arg::Int(t.amount.minor_units())),
            q.arg(Arg::Text(t.amount.currency().code().to_owned())),
            q.arg(Arg::Text(t.details.as_str().to_owned())),
            q.arg(Arg::Int(t.created_at.unix_micros())),
            q.arg(Arg::Int(t.updated_at.unix_micros())),
            q.arg(Arg::OptText(t.transaction_date.map(date_text))),
        ];
        q.push(if i == 0 { "(" } else { ", (" });
        q.push(&values.join(", "));
        q.push(")");
    }
    tx.execute(q.build()).await.map(drop)
}

async fn update_transaction(tx: &mut Tx<'_>, t: &TransactionRow) -> StoreResult<()> {
    tx.execute(sqlx::query(
        "UPDATE transactions SET dedup_key = $2, status = $3, booking_date = $4, value_date = $5, \
         sort_date = $6, amount_minor = $7, currency = $8, details = $9, updated_at = $10, \
         transaction_date = $11 \
         WHERE id = $1",
    )
    .bind(t.id.as_str())
    .bind(t.key.as_str())
    .bind(t.status.as_str())
    .bind(t.booking_date.map(date_text))
    .bind(t.value_date.map(date_text))
    .bind(date_text(t.sort_date))
    .bind(t.amount.minor_units())
    .bind(t.amount.currency().code())
    .bind(t.details.as_str())
    .bind(t.updated_at.unix_micros())
    .bind(t.transaction_date.map(date_text))).await.map(drop)
}
