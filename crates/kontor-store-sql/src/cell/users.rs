//! Users in a cell: creation, tenant-scoped reads, erasure, and the wrapped data keys an earlier
//! release kept here (moved to the key store by `kontor migrate`).

use async_trait::async_trait;
use kontor_domain::event::NewEvent;
use kontor_domain::time::Timestamp;
use kontor_domain::user::ExternalId;
use kontor_domain::{TenantId, UserId};
use kontor_store::{
    ExternalIdLookup, NewStoredUser, Page, PageKey, StoreError, StoreResult, StoredExternalId,
    StoredUser, UnsealedUser, UserStore,
};

use super::SqlCell;
use super::events::insert_event;
use crate::database::column;
use crate::query::limit_arg;
use crate::reads::{Columns, Param, decoder};
use crate::tx::Tx;

macro_rules! user_columns {
    () => {
        "id, tenant_id, external_id, external_id_sealed, created_at"
    };
}

/// Users found by `external_id`: by the blind index, or by the plaintext on a row not yet
/// converted (`$2` the index, `$3` the plaintext).
macro_rules! by_external_id {
    () => {
        "tenant_id = $1 AND (external_id = $2 OR (external_id = $3 AND external_id_sealed IS NULL))"
    };
}

fn user_from_row<R: Columns>(row: &R) -> StoreResult<StoredUser> {
    let external_id = match row.opt_text("external_id_sealed")? {
        Some(sealed) => StoredExternalId::Sealed(sealed.to_owned()),
        None => StoredExternalId::Plain(
            ExternalId::parse(row.text("external_id")?).map_err(StoreError::corrupt)?,
        ),
    };
    Ok(StoredUser {
        id: UserId::parse(row.text("id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(StoreError::corrupt)?,
        external_id,
        created_at: Timestamp::from_unix_micros(row.int("created_at")?),
    })
}

fn user_key(user: &StoredUser) -> PageKey {
    PageKey {
        sort: user.created_at.unix_micros(),
        id: user.id.to_string(),
    }
}

#[async_trait]
impl UserStore for SqlCell {
    async fn create_user(&self, user: &NewStoredUser) -> StoreResult<StoredUser> {
        self.ensure_home("user", user.id.region())?;
        // Writes first, and reads nothing a neighbour writes: a creation that first counted the
        // tenant's users with this `external_id` read the tenant's stretch of
        // `users_by_tenant_created` (the page every creation of the tenant then writes to; the
        // planner's choice for that query), so on PostgreSQL each pair of concurrent creations
        // of one tenant read what the other wrote, and one was aborted, over and over under a
        // few creators. The unique constraint keeps the blind index unique by itself.
        self.db
            .write("create_user", |tx| {
                Box::pin(async move {
                    super::fences::guard(tx, user.tenant_id.as_str(), Some(user.id.as_str()))
                        .await?;
                    let inserted = tx
                        .execute(
                            sqlx::query(
                                "INSERT INTO users (id, tenant_id, external_id, \
                                 external_id_sealed, data_key, created_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6) \
                                 ON CONFLICT (tenant_id, external_id) DO NOTHING",
                            )
                            .bind(user.id.as_str())
                            .bind(user.tenant_id.as_str())
                            .bind(user.external_id_index.as_str())
                            .bind(user.external_id_sealed.as_str())
                            .bind(user.data_key.as_deref())
                            .bind(user.created_at.unix_micros()),
                        )
                        .await?;
                    // A row not yet converted holds the plaintext, which only this check sees.
                    // It reads `users_unsealed` (cell 0019), which holds only such rows: no
                    // creation writes to it, so reading it aborts none.
                    let taken = inserted == 0
                        || tx
                            .scalar::<i64>(
                                sqlx::query_scalar(
                                    "SELECT COUNT(*) FROM users WHERE tenant_id = $1 \
                                     AND external_id = $2 AND external_id_sealed IS NULL",
                                )
                                .bind(user.tenant_id.as_str())
                                .bind(user.unconverted_match.as_str()),
                            )
                            .await?
                            > 0;
                    if taken {
                        return Err(StoreError::Conflict {
                            constraint: "users_tenant_external_id".into(),
                        });
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(StoredUser {
            id: user.id.clone(),
            tenant_id: user.tenant_id.clone(),
            external_id: StoredExternalId::Sealed(user.external_id_sealed.clone()),
            created_at: user.created_at,
        })
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<StoredUser> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND id = $2"
        );
        self.db
            .typed_row(
                sql,
                &[Param::Text(tenant.as_str()), Param::Text(id.as_str())],
                &decoder!(user_from_row),
            )
            .await
    }

    async fn user_by_external_id(
        &self,
        tenant: &TenantId,
        lookup: ExternalIdLookup<'_>,
    ) -> StoreResult<Option<StoredUser>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE ",
            by_external_id!(),
            " LIMIT 1"
        );
        self.db
            .fetch_optional(|| {
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(lookup.index)
                    .bind(lookup.plain.as_str())
            })
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<StoredUser>> {
        let fetch = crate::query::page_limit(limit);
        let rows = self
            .db
            .read(|pool| async move {
                match after {
                    None => {
                        let sql = concat!(
                            "SELECT ",
                            user_columns!(),
                            " FROM users WHERE tenant_id = $1 AND ",
                            listed_user!(),
                            " ORDER BY created_at, id LIMIT $2"
                        );
                        sqlx::query(sql)
                            .bind(tenant.as_str())
                            .bind(fetch)
                            .fetch_all(pool)
                            .await
                    }
                    Some(key) => {
                        let sql = concat!(
                            "SELECT ",
                            user_columns!(),
                            " FROM users WHERE tenant_id = $1 AND ",
                            listed_user!(),
                            " AND (created_at, id) > ($2, $3) \
                     ORDER BY created_at, id LIMIT $4"
                        );
                        sqlx::query(sql)
                            .bind(tenant.as_str())
                            .bind(key.sort)
                            .bind(key.id.as_str())
                            .bind(fetch)
                            .fetch_all(pool)
                            .await
                    }
                }
            })
            .await?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(users, limit, user_key))
    }

    async fn delete_user(
        &self,
        tenant: &TenantId,
        id: &UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        self.ensure_home("user", id.region())?;
        self.db
            .write("delete_user", |tx| {
                Box::pin(async move {
                    super::fences::guard(tx, tenant.as_str(), Some(id.as_str())).await?;
                    super::users::require_user(tx, tenant, id).await?;
                    // Children first, explicitly: erasure must not depend on foreign-key settings.
                    for &sql in ERASE_USER {
                        tx.execute(sqlx::query(sql).bind(id.as_str())).await?;
                    }
                    if let Some(event) = event {
                        insert_event(tx, event).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn user_data_key(&self, id: &UserId) -> StoreResult<Option<String>> {
        self.db
            .read(|pool| {
                sqlx::query_scalar::<_, Option<String>>("SELECT data_key FROM users WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(pool)
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn unsealed_users(&self, limit: usize) -> StoreResult<Vec<UnsealedUser>> {
        let limit = limit_arg(limit);
        let rows = self
            .db
            .fetch_all(|| sqlx::query(UNSEALED).bind(limit))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UnsealedUser {
                    id: UserId::parse(&column::<String>(row, "id")?)
                        .map_err(StoreError::corrupt)?,
                    tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
                        .map_err(StoreError::corrupt)?,
                    external_id: ExternalId::parse(&column::<String>(row, "external_id")?)
                        .map_err(StoreError::corrupt)?,
                })
            })
            .collect()
    }

    async fn seal_external_id(
        &self,
        user: &UnsealedUser,
        index: &str,
        sealed: &str,
    ) -> StoreResult<bool> {
        self.ensure_home("user", user.id.region())?;
        self.db
            .write("seal_external_id", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::User, user.id.as_str())
                        .await?;
                    let changed = tx
                        .execute(
                            sqlx::query(
                                "UPDATE users SET external_id = $3, external_id_sealed = $4 \
                 WHERE id = $1 AND external_id = $2 AND external_id_sealed IS NULL",
                            )
                            .bind(user.id.as_str())
                            .bind(user.external_id.as_str())
                            .bind(index)
                            .bind(sealed),
                        )
                        .await?;

                    Ok(changed == 1)
                })
            })
            .await
    }

    async fn legacy_data_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<(UserId, String)>> {
        let after = after.map(UserId::as_str).unwrap_or("");
        let limit = limit_arg(limit);
        let rows: Vec<(String, String)> = self
            .db
            .read(|pool| {
                sqlx::query_as(
                    "SELECT id, data_key FROM users WHERE data_key IS NOT NULL AND id > $1 \
                     ORDER BY id LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
            })
            .await?;
        rows.into_iter()
            .map(|(id, key)| Ok((UserId::parse(&id).map_err(StoreError::corrupt)?, key)))
            .collect()
    }

    async fn clear_legacy_data_key(&self, id: &UserId, wrapped: &str) -> StoreResult<bool> {
        self.ensure_home("user", id.region())?;
        self.db
            .write("clear_legacy_data_key", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::User, id.as_str()).await?;
                    let cleared = tx
                        .execute(
                            sqlx::query(
                                "UPDATE users SET data_key = NULL WHERE id = $1 AND data_key = $2",
                            )
                            .bind(id.as_str())
                            .bind(wrapped),
                        )
                        .await?;

                    Ok(cleared == 1)
                })
            })
            .await
    }
}

/// The users whose `external_id` is still plaintext (written before it was sealed).
const UNSEALED: &str = "SELECT id, tenant_id, external_id FROM users \
     WHERE external_id_sealed IS NULL ORDER BY created_at, id LIMIT $1";

/// Everything held about a user in a cell, child rows first. Each takes the user id as `$1`.
/// The user's events go with their webhook deliveries and attempts: nothing about the user stays
/// listable (`GET /v1/events?user_id=`) or redeliverable.
pub(crate) const ERASE_USER: &[&str] = &[
    "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries \
     WHERE event_id IN (SELECT id FROM events WHERE user_id = $1))",
    "DELETE FROM webhook_deliveries WHERE event_id IN (SELECT id FROM events WHERE user_id = $1)",
    "DELETE FROM events WHERE user_id = $1",
    "DELETE FROM transactions WHERE account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
    "DELETE FROM balances WHERE account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
    "DELETE FROM accounts WHERE user_id = $1",
    "DELETE FROM payment_status_history WHERE payment_id IN (SELECT id FROM payments WHERE user_id = $1)",
    "DELETE FROM payments WHERE user_id = $1",
    "DELETE FROM transaction_changes WHERE connection_id IN \
     (SELECT id FROM connections WHERE user_id = $1)",
    "DELETE FROM connections WHERE user_id = $1",
    "DELETE FROM users WHERE id = $1",
];

/// `NotFound` unless the tenant has this user, read in the caller's write transaction.
pub(super) async fn require_user(
    tx: &mut Tx<'_>,
    tenant: &TenantId,
    user: &UserId,
) -> StoreResult<()> {
    let owned: i64 = tx
        .scalar(
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(user.as_str()),
        )
        .await?;
    if owned == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
