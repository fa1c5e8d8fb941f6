//! The key canary in the control database (see [`kontor_store::KeyCanaryStore`]).

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::time::Timestamp;
use kontor_store::{KeyCanaryStore, StoreError, StoreResult, retry_serializable};

use crate::control::SqlControl;
use crate::database::column;

/// The canary's row: there is one.
const NAME: &str = "kek";

#[async_trait]
impl KeyCanaryStore for SqlControl {
    async fn key_canary(&self) -> StoreResult<Option<String>> {
        let db = self.database();
        sqlx::query_scalar("SELECT wrapped FROM key_canary WHERE name = $1")
            .bind(NAME)
            .fetch_optional(db.pool())
            .await
            .map_err(|e| db.classify(e))
    }

    async fn put_key_canary(
        &self,
        wrapped: &str,
        replacing: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "put_key_canary", |_| async {
            let mut tx = db.begin_write().await?;
            let written = match replacing {
                None => {
                    sqlx::query(
                        "INSERT INTO key_canary (name, wrapped, sealed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(NAME)
                    .bind(wrapped)
                    .bind(at.unix_micros())
                    .execute(&mut *tx)
                    .await
                }
                Some(previous) => {
                    sqlx::query(
                        "UPDATE key_canary SET wrapped = $2, sealed_at = $3 \
                     WHERE name = $1 AND wrapped = $4",
                    )
                    .bind(NAME)
                    .bind(wrapped)
                    .bind(at.unix_micros())
                    .bind(previous)
                    .execute(&mut *tx)
                    .await
                }
            }
            .map_err(|e| db.classify(e))?
            .rows_affected();
            db.commit(tx).await?;
            Ok(written == 1)
        })
        .await
    }

    async fn deployment_key(&self, name: &str) -> StoreResult<Option<String>> {
        let db = self.database();
        db.read(|pool| {
            sqlx::query_scalar("SELECT wrapped FROM deployment_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
        })
        .await
    }

    async fn put_deployment_key(
        &self,
        name: &str,
        wrapped: &str,
        replacing: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "put_deployment_key", |_| async {
            let mut tx = db.begin_write().await?;
            let written = match replacing {
                None => sqlx::query(
                    "INSERT INTO deployment_keys (name, wrapped, sealed_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(wrapped)
                .bind(at.unix_micros())
                .execute(&mut *tx)
                .await,
                Some(previous) => {
                    sqlx::query(
                        "UPDATE deployment_keys SET wrapped = $2, sealed_at = $3 \
                         WHERE name = $1 AND wrapped = $4",
                    )
                    .bind(name)
                    .bind(wrapped)
                    .bind(at.unix_micros())
                    .bind(previous)
                    .execute(&mut *tx)
                    .await
                }
            }
            .map_err(|e| db.classify(e))?
            .rows_affected();
            tx.commit().await.map_err(|e| db.classify(e))?;
            Ok(written == 1)
        })
        .await
    }

    async fn newest_tenant_key(&self) -> StoreResult<Option<(TenantId, String)>> {
        let db = self.database();
        let row = sqlx::query(
            "SELECT tenant_id, data_key FROM tenant_keys ORDER BY created_at DESC, tenant_id LIMIT 1",
        )
        .fetch_optional(db.pool())
        .await
        .map_err(|e| db.classify(e))?;
        row.map(|row| {
            let tenant = TenantId::parse(&column::<String>(&row, "tenant_id")?)
                .map_err(StoreError::corrupt)?;
            Ok((tenant, column(&row, "data_key")?))
        })
        .transpose()
    }
}
