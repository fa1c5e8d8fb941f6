//! Idempotency keys in the control database: claimed in one serializable transaction, so two
//! requests with the same key can never both go ahead.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{TenantId, UserId};
use kontor_store::{
    Idempotency, IdempotencyStore, LegacyIdempotency, LegacyIdempotencyRow, StoreError, StoreResult,
};

use crate::control::SqlControl;
use crate::database::{column, optional_timestamp};
use crate::query::limit_arg;

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
        db.write("begin_idempotent", |tx| {
            Box::pin(async move {
                // The key is claimed by writing it first, and only read when it was there: a
                // claim that looked its key up first read the index page the tenant's keys
                // share and then wrote to it, as did every claim beside it, and on PostgreSQL
                // one of each such pair was aborted.
                let claimed = tx.execute(sqlx::query(
                    "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash, \
                     resource_id, state, locked_until, created_at, user_id) \
                     VALUES ($1, $2, $3, $4, 'in_flight', $5, $6, $7) \
                     ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(key)
                .bind(request_hash)
                .bind(resource_id)
                .bind(lock_until.unix_micros())
                .bind(now.unix_micros())
                .bind(user.as_str())).await? == 1;
                let mut existing = if claimed {
                    let Some(legacy) = legacy else {
                        return Ok(Idempotency::New);
                    };
                    let held_before: Option<i64> = tx.optional_scalar(sqlx::query_scalar(concat!(
                        "SELECT CAST(1 AS BIGINT) FROM idempotency_keys \
                         WHERE tenant_id = $1 AND idempotency_key = $2 AND ",
                        legacy!()
                    ))
                    .bind(tenant.as_str())
                    .bind(legacy.key)).await?;
                    if held_before.is_none() {
                        return Ok(Idempotency::New);
                    }
                    // The key is held in the legacy form: that row decides, as below.
                    tx.execute(sqlx::query(
                        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(key)).await?;
                    None
                } else {
                    tx.fetch_optional(sqlx::query(
                        "SELECT request_hash, resource_id, state, locked_until FROM idempotency_keys \
                         WHERE tenant_id = $1 AND idempotency_key = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(key)).await?
                };
                if let (None, Some(legacy)) = (&existing, legacy) {
                    let old = tx.fetch_optional(sqlx::query(concat!(
                    "SELECT request_hash, resource_id, state, locked_until FROM idempotency_keys \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND ",
                    legacy!()
                ))
                .bind(tenant.as_str())
                .bind(legacy.key)).await?;
                    if let Some(row) = old {
                        let stored_hash: String = column(&row, "request_hash")?;
                        let state: String = column(&row, "state")?;
                        let held = state != "done"
                            && optional_timestamp(&row, "locked_until")?.is_some_and(|u| u > now);
                        if held {
                            return Ok(Idempotency::InFlight);
                        }
                        if stored_hash != legacy.request_hash {
                            return Ok(Idempotency::Mismatch);
                        }
                        // The same request: from now on the row is kept in the keyed form only.
                        tx.execute(
                        sqlx::query(
                            "UPDATE idempotency_keys SET idempotency_key = $3, request_hash = $4 \
                         WHERE tenant_id = $1 AND idempotency_key = $2",
                        )
                        .bind(tenant.as_str())
                        .bind(legacy.key)
                        .bind(key)
                        .bind(request_hash),
                    )
                    .await?;
                        existing = Some(row);
                    }
                }
                let outcome = match existing {
                    None => {
                        tx.execute(sqlx::query(
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
                    .bind(user.as_str())).await?;
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
                            tx.execute(
                                sqlx::query(
                                    "UPDATE idempotency_keys SET locked_until = $3 \
                             WHERE tenant_id = $1 AND idempotency_key = $2",
                                )
                                .bind(tenant.as_str())
                                .bind(key)
                                .bind(lock_until.unix_micros()),
                            )
                            .await?;
                            Idempotency::Resume {
                                resource_id: stored_resource,
                            }
                        }
                    }
                };
                Ok(outcome)
            })
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
        db.write("complete_idempotent", |tx| Box::pin(async move {
            tx.execute(sqlx::query(
                "UPDATE idempotency_keys SET state = 'done', locked_until = NULL, completed_at = $3 \
                 WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key)
            .bind(at.unix_micros())).await?;
            Ok(())
        }))
        .await
    }

    async fn release_idempotent(&self, tenant: &TenantId, key: &str) -> StoreResult<()> {
        let db = self.database();
        db.write("release_idempotent", |tx| {
            Box::pin(async move {
                tx.execute(sqlx::query(
                "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2 \
                 AND state = 'in_flight'",
            )
            .bind(tenant.as_str())
            .bind(key)).await?;
                Ok(())
            })
        })
        .await
    }

    async fn purge_idempotency(&self, before: Timestamp) -> StoreResult<u64> {
        let db = self.database();
        db.write("purge_idempotency", |tx| {
            Box::pin(async move {
                let result = tx
                    .execute(
                        sqlx::query(
                            "DELETE FROM idempotency_keys WHERE created_at < $1 AND state = 'done'",
                        )
                        .bind(before.unix_micros()),
                    )
                    .await?;

                Ok(result)
            })
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
        db.write("erase_idempotency", |tx| {
            Box::pin(async move {
                let mut erased = tx
                    .execute(
                        sqlx::query(
                            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2",
                        )
                        .bind(tenant.as_str())
                        .bind(user.as_str()),
                    )
                    .await?;
                // Records from before keys named their user are found by what they created.
                for resource in resources {
                    erased += tx.execute(sqlx::query(
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND resource_id = $2",
                )
                .bind(tenant.as_str())
                .bind(resource)).await?;
                }

                Ok(erased)
            })
        })
        .await
    }

    async fn legacy_idempotency_keys(
        &self,
        limit: usize,
    ) -> StoreResult<Vec<LegacyIdempotencyRow>> {
        let db = self.database();
        let limit = limit_arg(limit);
        let sql = concat!(
            "SELECT tenant_id, idempotency_key, request_hash FROM idempotency_keys \
             WHERE state = 'done' AND ",
            legacy!(),
            " ORDER BY created_at, tenant_id LIMIT $1"
        );
        let rows = db.fetch_all(|| sqlx::query(sql).bind(limit)).await?;
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
        db.write("convert_idempotency_key", |tx| Box::pin(async move {
            let taken: i64 = tx.scalar(sqlx::query_scalar(
                "SELECT COUNT(*) FROM idempotency_keys WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(old.tenant.as_str())
            .bind(key)).await?;
            let changed = if taken > 0 {
                tx.execute(sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND request_hash = $3",
                )
                .bind(old.tenant.as_str())
                .bind(old.key.as_str())
                .bind(old.request_hash.as_str()))
                .await?
            } else {
                tx.execute(sqlx::query(
                    "UPDATE idempotency_keys SET idempotency_key = $4, request_hash = $5 \
                     WHERE tenant_id = $1 AND idempotency_key = $2 AND request_hash = $3",
                )
                .bind(old.tenant.as_str())
                .bind(old.key.as_str())
                .bind(old.request_hash.as_str())
                .bind(key)
                .bind(request_hash))
                .await?
            };

            Ok(changed == 1)
        }))
        .await
    }
}
