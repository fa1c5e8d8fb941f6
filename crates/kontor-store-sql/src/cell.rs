//! A region's cell: the users of that region (and, as the hub grows, everything about them).

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::user::{ExternalId, NewUser, User};
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{
    CellStore, DatabaseRole, MigrationStatus, Page, PageKey, Schema, StoreError, StoreResult,
    UserStore, retry_serializable,
};
use sqlx::any::AnyRow;

use crate::database::{PoolSettings, SqlDatabase, column};

#[derive(Debug, Clone)]
pub struct SqlCell {
    db: SqlDatabase,
    region: Region,
}

impl SqlCell {
    pub fn open(region: Region, url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        SqlDatabase::open(url, DatabaseRole::Cell, settings).map(|db| Self { db, region })
    }

    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }

    /// Refuses, before any SQL runs, a record that belongs to another region.
    fn ensure_home(&self, record: &'static str, region: &Region) -> StoreResult<()> {
        if region == &self.region {
            Ok(())
        } else {
            Err(StoreError::WrongCell {
                record,
                record_region: region.clone(),
                cell_region: self.region.clone(),
            })
        }
    }
}

macro_rules! user_columns {
    () => {
        "id, tenant_id, external_id, created_at"
    };
}

fn user_from_row(row: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: UserId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        external_id: ExternalId::parse(&column::<String>(row, "external_id")?)
            .map_err(StoreError::corrupt)?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
    })
}

fn user_key(user: &User) -> PageKey {
    PageKey {
        created_at: user.created_at,
        id: user.id.to_string(),
    }
}

#[async_trait]
impl UserStore for SqlCell {
    async fn create_user(&self, user: &NewUser) -> StoreResult<User> {
        self.ensure_home("user", user.region())?;
        retry_serializable(self.db.retry_policy(), "create_user", |_| async {
            let mut tx = self.db.begin_write().await?;
            sqlx::query(
                "INSERT INTO users (id, tenant_id, external_id, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(user.id.as_str())
            .bind(user.tenant_id.as_str())
            .bind(user.external_id.as_str())
            .bind(user.created_at.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.db.classify(e))?;
            tx.commit().await.map_err(|e| self.db.classify(e))
        })
        .await?;
        Ok(User {
            id: user.id.clone(),
            tenant_id: user.tenant_id.clone(),
            external_id: user.external_id.clone(),
            created_at: user.created_at,
        })
    }

    async fn user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<User> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND id = $2"
        );
        let row = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.db.classify(e))?
            .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    async fn user_by_external_id(
        &self,
        tenant: &TenantId,
        external_id: &ExternalId,
    ) -> StoreResult<Option<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE tenant_id = $1 AND external_id = $2"
        );
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(external_id.as_str())
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.db.classify(e))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(
        &self,
        tenant: &TenantId,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<User>> {
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = match after {
            None => {
                let sql = concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2"
                );
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(fetch)
                    .fetch_all(self.db.pool())
                    .await
            }
            Some(key) => {
                let sql = concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant_id = $1 AND (created_at, id) > ($2, $3) \
                     ORDER BY created_at, id LIMIT $4"
                );
                sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(key.created_at.unix_micros())
                    .bind(key.id.as_str())
                    .bind(fetch)
                    .fetch_all(self.db.pool())
                    .await
            }
        }
        .map_err(|e| self.db.classify(e))?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(users, limit, user_key))
    }

    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<()> {
        self.ensure_home("user", id.region())?;
        let deleted = retry_serializable(self.db.retry_policy(), "delete_user", |_| async {
            let mut tx = self.db.begin_write().await?;
            let result = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db.classify(e))?;
            tx.commit().await.map_err(|e| self.db.classify(e))?;
            Ok(result.rows_affected())
        })
        .await?;
        if deleted == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}

impl CellStore for SqlCell {
    fn region(&self) -> &Region {
        &self.region
    }
}

#[async_trait]
impl Schema for SqlCell {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }
    fn role(&self) -> DatabaseRole {
        self.db.role()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.db.ping().await
    }
    async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        self.db.migration_status().await
    }
    async fn migrate(&self) -> StoreResult<Vec<i64>> {
        self.db.migrate().await
    }
}
