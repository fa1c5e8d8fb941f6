//! The key canary in the control database (see [`kontor_store::KeyCanaryStore`]).

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::time::Timestamp;
use kontor_store::{KeyCanaryStore, StoreError, StoreResult};

use crate::control::SqlControl;
use crate::database::{SqlDatabase, column};
use crate::tx::Mode;

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
        put_named(
            self.database(),
            (Mode::Write, "put_key_canary"),
            "key_canary",
            NAME,
            wrapped,
            replacing,
            at,
        )
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
        put_named(
            db,
            (Mode::Idempotent, "put_deployment_key"),
            "deployment_keys",
            name,
            wrapped,
            replacing,
            at,
        )
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

/// Stores a wrapped key under `name` in `table` (`key_canary` or `deployment_keys`): inserted
/// when there is none, or replacing `replacing` only if that is still the stored one. Whether it
/// was written.
async fn put_named(
    db: &SqlDatabase,
    (mode, op): (Mode, &'static str),
    table: &'static str,
    name: &str,
    wrapped: &str,
    replacing: Option<&str>,
    at: Timestamp,
) -> StoreResult<bool> {
    let sql = &match replacing {
        None => format!(
            "INSERT INTO {table} (name, wrapped, sealed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        ),
        Some(_) => format!(
            "UPDATE {table} SET wrapped = $2, sealed_at = $3 WHERE name = $1 AND wrapped = $4"
        ),
    };
    db.transaction(mode, op, |tx| {
        Box::pin(async move {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(name)
                .bind(wrapped)
                .bind(at.unix_micros());
            if let Some(previous) = replacing {
                query = query.bind(previous);
            }
            Ok(tx.execute(query).await? == 1)
        })
    })
    .await
}
