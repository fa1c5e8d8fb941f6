//! Connections in a cell: creation, the authorisation handshake (state issued, then consumed
//! once), status changes checked by the domain's state machine and recorded with their event,
//! and the scheduling and leasing the worker relies on.

use async_trait::async_trait;
use kontor_domain::bank::BankId;
use kontor_domain::connection::{
    Access, Connection, ConnectionEvent, ConnectionStatus, FailureReason, Language, NewConnection,
    SyncError,
};
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, TenantId, UserId};
use kontor_store::{
    ConnectionSecrets, ConnectionStore, ListFilter, Page, PageKey, StoreError, StoreResult,
    SyncBookkeeping, SyncCounters, Transition,
};
use sqlx::any::AnyRow;
use time::Date;

use super::SqlCell;
use super::events::insert_event;
use super::lease;
use super::sync_state;
use crate::database::{column, optional_timestamp};
use crate::query::limit_arg;
use crate::tx::Tx;

macro_rules! connection_columns {
    () => {
        "id, tenant_id, user_id, bank_id, status, failure_reason, access, redirect_uri, language, \
         valid_until, frequency_per_day, created_at, updated_at, authorised_at, last_synced_at, \
         next_sync_at, sync_failures, last_sync_error_code, last_sync_error_message, \
         last_sync_error_at"
    };
}

pub(super) fn connection_from_row(row: &AnyRow) -> StoreResult<Connection> {
    let status: String = column(row, "status")?;
    let access: String = column(row, "access")?;
    let frequency: i64 = column(row, "frequency_per_day")?;
    Ok(Connection {
        id: ConnectionId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        user_id: UserId::parse(&column::<String>(row, "user_id")?).map_err(StoreError::corrupt)?,
        bank_id: column::<Option<String>>(row, "bank_id")?
            .map(|raw| BankId::parse(&raw))
            .transpose()
            .map_err(StoreError::corrupt)?,
        status: ConnectionStatus::parse(&status).map_err(StoreError::corrupt)?,
        failure_reason: column::<Option<String>>(row, "failure_reason")?
            .map(|raw| FailureReason::parse(&raw).ok_or_else(|| StoreError::corrupt(raw)))
            .transpose()?,
        access: Access::from_words(access.split_whitespace()).map_err(StoreError::corrupt)?,
        redirect_uri: column(row, "redirect_uri")?,
        language: column::<Option<String>>(row, "language")?.and_then(|raw| Language::parse(&raw)),
        valid_until: optional_timestamp(row, "valid_until")?,
        frequency_per_day: u8::try_from(frequency).map_err(StoreError::corrupt)?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
        updated_at: Timestamp::from_unix_micros(column(row, "updated_at")?),
        authorised_at: optional_timestamp(row, "authorised_at")?,
        last_synced_at: optional_timestamp(row, "last_synced_at")?,
        next_sync_at: optional_timestamp(row, "next_sync_at")?,
        sync_failures: u32::try_from(column::<i64>(row, "sync_failures")?)
            .map_err(StoreError::corrupt)?,
        last_sync_error: match optional_timestamp(row, "last_sync_error_at")? {
            Some(at) => Some(SyncError {
                code: column::<Option<String>>(row, "last_sync_error_code")?.unwrap_or_default(),
                message: column::<Option<String>>(row, "last_sync_error_message")?
                    .unwrap_or_default(),
                at,
            }),
            None => None,
        },
    })
}

fn secrets_from_row(row: &AnyRow) -> StoreResult<ConnectionSecrets> {
    Ok(ConnectionSecrets {
        connection: connection_from_row(row)?,
        connect_token_hash: column(row, "connect_token_hash")?,
        state_hash: column(row, "state_hash")?,
        state_expires_at: optional_timestamp(row, "state_expires_at")?,
        state_spent_at: optional_timestamp(row, "state_spent_at")?,
        session: column(row, "session")?,
        first_sync: match (
            column::<Option<String>>(row, "first_sync_psu_ip")?,
            optional_timestamp(row, "first_sync_started_at")?,
        ) {
            (Some(ip), Some(at)) => Some((ip, at)),
            _ => None,
        },
        psu_id: column(row, "psu_id")?,
        decoupled_starts: u32::try_from(column::<i64>(row, "decoupled_starts")?)
            .map_err(StoreError::corrupt)?,
    })
}

const SECRETS_SQL: &str = concat!(
    "SELECT ",
    connection_columns!(),
    ", connect_token_hash, state_hash, state_expires_at, state_spent_at, session, psu_id, \
     decoupled_starts, first_sync_psu_ip, first_sync_started_at FROM connections WHERE id = $1"
);

async fn secrets_in(tx: &mut Tx<'_>, id: &ConnectionId) -> StoreResult<ConnectionSecrets> {
    tx.row(sqlx::query(SECRETS_SQL).bind(id.as_str()), secrets_from_row)
        .await
}

fn illegal(from: ConnectionStatus, event: ConnectionEvent) -> StoreError {
    StoreError::state_refused(format_args!(
        "connection {from} cannot become {}",
        event.as_str()
    ))
}

impl SqlCell {
    /// The connections `sql` selects with `$1` a time they are before and `$2` a limit.
    async fn connections_before(
        &self,
        sql: &'static str,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>> {
        self.db
            .rows(
                || {
                    sqlx::query(sql)
                        .bind(before.unix_micros())
                        .bind(limit_arg(limit))
                },
                connection_from_row,
            )
            .await
    }
}

#[async_trait]
impl ConnectionStore for SqlCell {
    async fn create_connection(&self, new: &NewConnection) -> StoreResult<Connection> {
        self.ensure_home("connection", new.id.region())?;
        self.db.write("create_connection", |tx| Box::pin(async move {
super::fences::guard(tx, new.tenant_id.as_str(), Some(new.user_id.as_str())).await?;
            super::users::require_user(tx, &new.tenant_id, &new.user_id).await?;
            tx.execute(sqlx::query(
                "INSERT INTO connections (id, tenant_id, user_id, bank_id, status, access, \
                 redirect_uri, language, connect_token_hash, frequency_per_day, created_at, \
                 updated_at, psu_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            )
            .bind(new.id.as_str())
            .bind(new.tenant_id.as_str())
            .bind(new.user_id.as_str())
            .bind(new.bank_id.as_ref().map(BankId::as_str))
            .bind(ConnectionStatus::Pending.as_str())
            .bind(new.access.to_words())
            .bind(new.redirect_uri.as_str())
            .bind(new.language.map(Language::as_str))
            .bind(new.connect_token_hash.as_str())
            .bind(i64::from(new.frequency_per_day))
            .bind(new.created_at.unix_micros())
            .bind(new.psu_id.as_deref())).await?;
            let created = secrets_in(tx, &new.id).await?;

            Ok(created.connection)
        }))
        .await
    }

    async fn connection(&self, tenant: &TenantId, id: &ConnectionId) -> StoreResult<Connection> {
        let sql = concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE tenant_id = $1 AND id = $2"
        );
        self.db
            .row(
                || sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()),
                connection_from_row,
            )
            .await
    }

    async fn connection_secrets(&self, id: &ConnectionId) -> StoreResult<ConnectionSecrets> {
        self.db
            .row(
                || sqlx::query(SECRETS_SQL).bind(id.as_str()),
                secrets_from_row,
            )
            .await
    }

    async fn list_connections(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<ConnectionStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Connection>> {
        let mut q = crate::query::Filtered::new(concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE tenant_id = "
        ));
        let p = q.arg(crate::query::Arg::Text(tenant.to_string()));
        q.push(&p);
        q.push(concat!(" AND ", listed!("connections")));
        q.list_filter(filter, filter.status.map(ConnectionStatus::as_str));
        q.page_by_creation("", after, limit);
        q.fetch_page(&self.db, limit, connection_from_row, |c| PageKey {
            sort: c.created_at.unix_micros(),
            id: c.id.to_string(),
        })
        .await
    }

    async fn begin_authorisation(
        &self,
        id: &ConnectionId,
        bank: &BankId,
        state_hash: &str,
        state_expires_at: Timestamp,
        session: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.ensure_home("connection", id.region())?;
        let updated = self
            .db
            .write("begin_authorisation", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    let result = tx.execute(sqlx::query(
                    "UPDATE connections SET bank_id = $2, state_hash = $3, state_expires_at = $4, \
                 state_spent_at = NULL, session = $5, updated_at = $6 \
                 WHERE id = $1 AND status = 'pending'",
                )
                .bind(id.as_str())
                .bind(bank.as_str())
                .bind(state_hash)
                .bind(state_expires_at.unix_micros())
                .bind(session)
                .bind(at.unix_micros())).await?;

                    Ok(result)
                })
            })
            .await?;
        if updated == 0 {
            return Err(StoreError::state_refused("connection is not pending"));
        }
        Ok(())
    }

    async fn take_state(
        &self,
        id: &ConnectionId,
        state_hash: &str,
        now: Timestamp,
    ) -> StoreResult<ConnectionSecrets> {
        self.db
            .write("take_state", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    let current = secrets_in(tx, id).await?;
                    if !super::state_is_live(
                        current.state_hash.as_deref(),
                        current.state_spent_at,
                        current.state_expires_at,
                        state_hash,
                        now,
                    ) {
                        return Err(StoreError::NotFound);
                    }
                    tx.execute(sqlx::query(
                "UPDATE connections SET state_spent_at = $2, updated_at = $2 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(now.unix_micros())).await?;

                    Ok(current)
                })
            })
            .await
    }

    async fn transition(
        &self,
        id: &ConnectionId,
        change: &Transition,
        event: Option<&NewEvent>,
    ) -> StoreResult<Connection> {
        self.ensure_home("connection", id.region())?;
        self.db
            .write("connection_transition", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    let current = secrets_in(tx, id).await?.connection;
                    let next = current
                        .status
                        .apply(change.event)
                        .map_err(|_| illegal(current.status, change.event))?;
                    let authorised_at = match change.event {
                        ConnectionEvent::Authorised => Some(change.at),
                        _ => current.authorised_at,
                    };
                    let terminal = next.is_terminal();
                    tx.execute(
                        sqlx::query(
                            "UPDATE connections SET status = $2, \
                 failure_reason = COALESCE($3, failure_reason), \
                 valid_until = COALESCE($4, valid_until), \
                 expiry_notified_at = CASE WHEN $4 IS NULL THEN expiry_notified_at ELSE NULL END, \
                 session = CASE WHEN $5 = 1 THEN NULL ELSE COALESCE($6, session) END, \
                 next_sync_at = CASE WHEN $5 = 1 THEN NULL ELSE COALESCE($7, next_sync_at) END, \
                 first_sync_psu_ip = CASE WHEN $5 = 1 THEN NULL ELSE first_sync_psu_ip END, \
                 first_sync_started_at = \
                   CASE WHEN $5 = 1 THEN NULL ELSE first_sync_started_at END, \
                 state_spent_at = CASE WHEN $5 = 1 THEN COALESCE(state_spent_at, $9) \
                 ELSE state_spent_at END, \
                 authorised_at = $8, updated_at = $9 WHERE id = $1",
                        )
                        .bind(id.as_str())
                        .bind(next.as_str())
                        .bind(change.failure_reason.map(FailureReason::as_str))
                        .bind(change.valid_until.map(Timestamp::unix_micros))
                        .bind(i64::from(terminal))
                        .bind(change.session.as_deref())
                        .bind(change.next_sync_at.map(Timestamp::unix_micros))
                        .bind(authorised_at.map(Timestamp::unix_micros))
                        .bind(change.at.unix_micros()),
                    )
                    .await?;
                    if let Some(event) = event {
                        insert_event(tx, event).await?;
                    }
                    let updated = secrets_in(tx, id).await?.connection;

                    Ok(updated)
                })
            })
            .await
    }

    async fn count_decoupled_start(&self, id: &ConnectionId, max: u32) -> StoreResult<bool> {
        self.ensure_home("connection", id.region())?;
        super::link_guards::count_decoupled_start(&self.db, id, max).await
    }

    async fn authorised_sharing_accounts(
        &self,
        bank: &BankId,
        after: Timestamp,
        bank_account_ids: &[String],
        except: &ConnectionId,
    ) -> StoreResult<Vec<Connection>> {
        super::link_guards::authorised_sharing_accounts(
            &self.db,
            bank,
            after,
            bank_account_ids,
            except,
        )
        .await
    }

    async fn save_session(&self, id: &ConnectionId, session: &str) -> StoreResult<()> {
        self.db
            .write("save_session", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    tx.execute(
                        sqlx::query("UPDATE connections SET session = $2 WHERE id = $1")
                            .bind(id.as_str())
                            .bind(session),
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    async fn sync_counters(&self, id: &ConnectionId) -> StoreResult<SyncCounters> {
        sync_state::counters(&self.db, id).await
    }

    async fn reserve_read(
        &self,
        id: &ConnectionId,
        day: Date,
        allowance: u32,
    ) -> StoreResult<bool> {
        sync_state::reserve_read(&self.db, id, day, allowance).await
    }

    async fn start_first_sync(
        &self,
        id: &ConnectionId,
        psu_ip: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        sync_state::start_first_sync(&self.db, id, psu_ip, at).await
    }

    async fn due_for_sync(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<ConnectionId>> {
        let ids: Vec<String> = self
            .db
            .scalars(|| {
                sqlx::query_scalar(concat!(
                    "SELECT id FROM connections WHERE status = 'active' AND next_sync_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) AND ",
                    unfenced!("connections"),
                    " ORDER BY next_sync_at, id LIMIT $2"
                ))
                .bind(now.unix_micros())
                .bind(limit_arg(limit))
            })
            .await?;
        ids.iter()
            .map(|raw| ConnectionId::parse(raw).map_err(StoreError::corrupt))
            .collect()
    }

    async fn expiring_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>> {
        let sql = concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE status = 'active' AND valid_until < $1 \
             ORDER BY valid_until, id LIMIT $2"
        );
        self.connections_before(sql, before, limit).await
    }

    async fn expiring_unnotified(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>> {
        let sql = concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE status = 'active' AND valid_until < $1 \
             AND expiry_notified_at IS NULL ORDER BY valid_until, id LIMIT $2"
        );
        self.connections_before(sql, before, limit).await
    }

    async fn mark_expiry_notified(
        &self,
        id: &ConnectionId,
        at: Timestamp,
        event: &NewEvent,
    ) -> StoreResult<()> {
        self.db
            .write("mark_expiry_notified", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    let result = tx
                        .execute(
                            sqlx::query(
                                "UPDATE connections SET expiry_notified_at = $2 \
                 WHERE id = $1 AND expiry_notified_at IS NULL",
                            )
                            .bind(id.as_str())
                            .bind(at.unix_micros()),
                        )
                        .await?;
                    if result == 1 {
                        insert_event(tx, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn pending_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Connection>> {
        let sql = concat!(
            "SELECT ",
            connection_columns!(),
            " FROM connections WHERE status = 'pending' AND created_at < $1 \
             ORDER BY created_at, id LIMIT $2"
        );
        self.connections_before(sql, before, limit).await
    }

    async fn claim(
        &self,
        id: &ConnectionId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        lease::CONNECTIONS
            .claim(&self.db, id.as_str(), owner, until, now)
            .await
    }

    async fn renew(&self, id: &ConnectionId, owner: &str, until: Timestamp) -> StoreResult<bool> {
        lease::CONNECTIONS
            .renew(&self.db, id.as_str(), owner, until)
            .await
    }

    async fn release(&self, id: &ConnectionId, owner: &str) -> StoreResult<()> {
        lease::CONNECTIONS
            .release(&self.db, id.as_str(), owner)
            .await
    }

    async fn record_sync_failure(
        &self,
        id: &ConnectionId,
        bookkeeping: &SyncBookkeeping,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        self.db
            .write("record_sync_failure", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str())
                        .await?;
                    sync_state::write(tx, id, bookkeeping).await?;
                    if let Some(event) = event {
                        insert_event(tx, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }
}
