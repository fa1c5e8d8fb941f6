//! Idempotency keys in the control database: claimed in one serializable transaction, so two
//! requests with the same key can never both go ahead.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{TenantId, UserId};
use kontor_store::{
    Idempotency, IdempotencyStore, LegacyIdempotency, LegacyIdempotencyRow, StoreError,
    StoreResult, retry_serializable,
};

use crate::control::SqlControl;
use crate::database::{column, optional_timestamp};

/// A row in the legacy form: its request hash is a bare SHA-256 (64 hex digits), where the keyed
/// form starts `rh1.`.
macro_rules! legacy {
    () => {
        "request_hash NOT LIKE 'rh1.%'"
    };
}

#[async_trait]
impl IdempotencyStore for SqlControl {
    async fn begin_idempotent_with_legacy(
        &self,
        tenant: &TenantId,
        user: &UserId,
        key: &str,
        request_hash: &str,
        legacy: Option<LegacyIdempotency<'_>>,
        resource_id: &str,
        lock_until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Idempotency> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "begin_idempotent", |_| async {
            let mut tx = db.begin_write().await?;
            let mut existing = sqlx::query(
                "SELECT request_hash, resource_id, state, locked_until FROM idempotency_keys \
                 WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
            if let (None, Some(legacy)) = (&existing, legacy) {
                let old = sqlx::query(concat!(
                    "SELECT request_hash, resource_id, state, locked_until FROM idempotency_keys \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND ",
                    legacy!()
                ))
                .bind(tenant.as_str())
                .bind(legacy.key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?;
                if let Some(row) = old {
                    let stored_hash: String = column(&row, "request_hash")?;
                    let state: String = column(&row, "state")?;
                    let held = state != "done"
                        && optional_timestamp(&row, "locked_until")?.is_some_and(|u| u > now);
                    if held {
                        db.commit(tx).await?;
                        return Ok(Idempotency::InFlight);
                    }
                    if stored_hash != legacy.request_hash {
                        db.commit(tx).await?;
                        return Ok(Idempotency::Mismatch);
                    }
                    // The same request: from now on the row is kept in the keyed form only.
                    sqlx::query(
                        "UPDATE idempotency_keys SET idempotency_key = $3, request_hash = $4 \
                         WHERE tenant_id = $1 AND idempotency_key = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(legacy.key)
                    .bind(key)
                    .bind(request_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db.classify(e))?;
                    existing = Some(row);
                }
            }
            let outcome = match existing {
                None => {
                    sqlx::query(
                        "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash, \
                         resource_id, state, locked_until, created_at, user_id) \
                         VALUES ($1, $2, $3, $4, 'in_flight', $5, $6, $7)",
                    )
                    .bind(tenant.as_str())
                    .bind(key)
                    .bind(request_hash)
                    .bind(resource_id)
                    .bind(lock_until.unix_micros())
                    .bind(now.unix_micros())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db.classify(e))?;
                    Idempotency::New
                }
                Some(row) => {
                    let mut stored_hash: String = column(&row, "request_hash")?;
                    if legacy.is_some_and(|l| l.request_hash == stored_hash) {
                        // Converted above.
                        stored_hash = request_hash.to_owned();
                    }
                    let stored_resource: String = column(&row, "resource_id")?;
                    let state: String = column(&row, "state")?;
                    let locked = optional_timestamp(&row, "locked_until")?;
                    // A request still holding the key is answered "in use" whatever this one
                    // says: its outcome is not known yet.
                    if state != "done" && locked.is_some_and(|until| until > now) {
                        Idempotency::InFlight
                    } else if stored_hash != request_hash {
                        Idempotency::Mismatch
                    } else if state == "done" {
                        Idempotency::Replay {
                            resource_id: stored_resource,
                        }
                    } else {
                        // The request holding the key died: take it over, same resource.
                        sqlx::query(
                            "UPDATE idempotency_keys SET locked_until = $3 \
                             WHERE tenant_id = $1 AND idempotency_key = $2",
                        )
                        .bind(tenant.as_str())
                        .bind(key)
                        .bind(lock_until.unix_micros())
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| db.classify(e))?;
                        Idempotency::Resume {
                            resource_id: stored_resource,
                        }
                    }
                }
            };
            db.commit(tx).await?;
            Ok(outcome)
        })
        .await
    }

    async fn complete_idempotent(
        &self,
        tenant: &TenantId,
        key: &str,
        at: Timestamp,
    ) -> StoreResult<()> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "complete_idempotent", |_| async {
            let mut tx = db.begin_write().await?;
            sqlx::query(
                "UPDATE idempotency_keys SET state = 'done', locked_until = NULL, completed_at = $3 \
                 WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(at.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
            db.commit(tx).await
        })
        .await
    }

    async fn release_idempotent(&self, tenant: &TenantId, key: &str) -> StoreResult<()> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "release_idempotent", |_| async {
            let mut tx = db.begin_write().await?;
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2 \
                 AND state = 'in_flight'",
            )
            .bind(tenant.as_str())
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
            db.commit(tx).await
        })
        .await
    }

    async fn purge_idempotency(&self, before: Timestamp) -> StoreResult<u64> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "purge_idempotency", |_| async {
            let mut tx = db.begin_write().await?;
            let result = sqlx::query(
                "DELETE FROM idempotency_keys WHERE created_at < $1 AND state = 'done'",
            )
            .bind(before.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
            db.commit(tx).await?;
            Ok(result.rows_affected())
        })
        .await
    }

    async fn erase_idempotency(
        &self,
        tenant: &TenantId,
        user: &UserId,
        resources: &[String],
    ) -> StoreResult<u64> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "erase_idempotency", |_| async {
            let mut tx = db.begin_write().await?;
            let mut erased =
                sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db.classify(e))?
                    .rows_affected();
            // Records from before keys named their user are found by what they created.
            for resource in resources {
                erased += sqlx::query(
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND resource_id = $2",
                )
                .bind(tenant.as_str())
                .bind(resource)
                .execute(&mut *tx)
                .await
                .map_err(|e| db.classify(e))?
                .rows_affected();
            }
            db.commit(tx).await?;
            Ok(erased)
        })
        .await
    }

    async fn legacy_idempotency_keys(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<LegacyIdempotencyRow>> {
        let db = self.database();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = concat!(
            "SELECT tenant_id, idempotency_key, request_hash FROM idempotency_keys \
             WHERE state = 'done' AND ",
            legacy!(),
            " ORDER BY created_at, tenant_id LIMIT $1"
        );
        let rows = db
            .read(|pool| sqlx::query(sql).bind(limit).fetch_all(pool))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(LegacyIdempotencyRow {
                    tenant: TenantId::parse(&column::<String>(row, "tenant_id")?)
                        .map_err(StoreError::corrupt)?,
                    key: column(row, "idempotency_key")?,
                    request_hash: column(row, "request_hash")?,
                })
            })
            .collect()
    }

    async fn convert_idempotency_key(
        &self,
        old: &LegacyIdempotencyRow,
        key: &str,
        request_hash: &str,
    ) -> StoreResult<bool> {
        let db = self.database();
        retry_serializable(db.retry_policy(), "convert_idempotency_key", |_| async {
            let mut tx = db.begin_write().await?;
            let taken: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(old.tenant.as_str())
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
            let changed = if taken > 0 {
                sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND request_hash = $3",
                )
                .bind(old.tenant.as_str())
                .bind(old.key.as_str())
                .bind(old.request_hash.as_str())
                .execute(&mut *tx)
                .await
            } else {
                sqlx::query(
                    "UPDATE idempotency_keys SET idempotency_key = $4, request_hash = $5 \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND request_hash = $3",
                )
                .bind(old.tenant.as_str())
                .bind(old.key.as_str())
                .bind(old.request_hash.as_str())
                .bind(key)
                .bind(request_hash)
                .execute(&mut *tx)
                .await
            }
            .map_err(|e| db.classify(e))?
            .rows_affected();
            db.commit(tx).await?;
            Ok(changed == 1)
        })
        .await
    }
}
