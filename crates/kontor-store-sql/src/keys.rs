//! The key canary in the control database (see [`kontor_store::KeyCanaryStore`]).

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::time::Timestamp;
use kontor_store::{KeyCanaryStore, StoreError, StoreResult};

use crate::control::SqlControl;
use crate::database::column;

/// The canary's row: there is one.
const NAME: &str = "kek";

#[async_trait]
impl KeyCanaryStore for SqlControl {
    async fn key_canary(&self) -> StoreResult<Option<String>> {
        let db = self.database();
        db.optional_scalar(|| {
            sqlx::query_scalar("SELECT wrapped FROM key_canary WHERE name = $1").bind(NAME)
        })
        .await
    }

    async fn put_key_canary(
        &self,
        wrapped: &str,
        replacing: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let db = self.database();
        db.write("put_key_canary", |tx| {
            Box::pin(async move {
                let written =
                    match replacing {
                        None => tx.execute(sqlx::query(
                            "INSERT INTO key_canary (name, wrapped, sealed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                        )
                        .bind(NAME)
                        .bind(wrapped)
                        .bind(at.unix_micros())).await,
                        Some(previous) => {
                            tx.execute(sqlx::query(
                                "UPDATE key_canary SET wrapped = $2, sealed_at = $3 \
                     WHERE name = $1 AND wrapped = $4",
                            )
                            .bind(NAME)
                            .bind(wrapped)
                            .bind(at.unix_micros())
                            .bind(previous)).await
                        }
                    }?;

                Ok(written == 1)
            })
        })
        .await
    }

    async fn deployment_key(&self, name: &str) -> StoreResult<Option<String>> {
        let db = self.database();
        db.optional_scalar(|| {
            sqlx::query_scalar("SELECT wrapped FROM deployment_keys WHERE name = $1").bind(name)
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
        db.write_idempotent("put_deployment_key", |tx| {
            Box::pin(async move {
                let written = match replacing {
                None => tx.execute(sqlx::query(
                    "INSERT INTO deployment_keys (name, wrapped, sealed_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(wrapped)
                .bind(at.unix_micros())).await,
                Some(previous) => {
                    tx.execute(sqlx::query(
                        "UPDATE deployment_keys SET wrapped = $2, sealed_at = $3 \
                         WHERE name = $1 AND wrapped = $4",
                    )
                    .bind(name)
                    .bind(wrapped)
                    .bind(at.unix_micros())
                    .bind(previous)).await
                }
            }?;

                Ok(written == 1)
            })
        })
        .await
    }

    async fn newest_tenant_key(&self) -> StoreResult<Option<(TenantId, String)>> {
        let db = self.database();
        let row = db.fetch_optional(|| sqlx::query(
            "SELECT tenant_id, data_key FROM tenant_keys ORDER BY created_at DESC, tenant_id LIMIT 1",
        )).await?;
        row.map(|row| {
            let tenant = TenantId::parse(&column::<String>(&row, "tenant_id")?)
                .map_err(StoreError::corrupt)?;
            Ok((tenant, column(&row, "data_key")?))
        })
        .transpose()
    }
}
