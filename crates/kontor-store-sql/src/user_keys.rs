//! A region's key store: users' wrapped data keys in a database of their own, apart from the
//! cell. Shredding a key overwrites it before deleting it and then makes the engine forget it
//! (see [`Dialect::after_shred`]); every database runs with SQLite's `secure_delete`.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{Region, UserId};
use kontor_store::{DatabaseRole, MigrationStatus, Schema, StoreError, StoreResult, UserKeyStore};
use sqlx::Row;

use crate::database::{PoolSettings, SqlDatabase};
use crate::dialect::Dialect;
use crate::tx::Tx;

/// How often a checkpoint kept from completing by a reader is tried again.
const CHECKPOINT_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct SqlKeyStore {
    db: SqlDatabase,
    region: Region,
}

impl SqlKeyStore {
    pub fn open(region: Region, url: &str, settings: &PoolSettings) -> StoreResult<Self> {
        SqlDatabase::open(url, DatabaseRole::Keys, settings).map(|db| Self { db, region })
    }

    pub fn database(&self) -> &SqlDatabase {
        &self.db
    }

    fn ensure_home(&self, user: &UserId) -> StoreResult<()> {
        if user.region() == &self.region {
            Ok(())
        } else {
            Err(StoreError::WrongCell {
                record: "user key",
                record_region: user.region().clone(),
                cell_region: self.region.clone(),
            })
        }
    }

    /// Inserts `wrapped` unless the user has a key or was shredded; `true` when inserted.
    async fn insert_unless_known(&self, user: &UserId, wrapped: &str) -> StoreResult<bool> {
        self.ensure_home(user)?;
        self.db
            .write("insert_user_key", |tx| {
                Box::pin(async move {
                    let shredded: i64 = tx
                        .scalar(
                            sqlx::query_scalar(
                                "SELECT COUNT(*) FROM shredded_user_keys WHERE user_id = $1",
                            )
                            .bind(user.as_str()),
                        )
                        .await?;
                    if shredded > 0 {
                        return Err(StoreError::NotFound);
                    }
                    // The user moved to another cell's key store: a process with stale routes
                    // must not make them a second key here.
                    let moved: i64 = tx
                        .scalar(
                            sqlx::query_scalar(
                                "SELECT COUNT(*) FROM moved_user_keys WHERE user_id = $1",
                            )
                            .bind(user.as_str()),
                        )
                        .await?;
                    if moved > 0 {
                        return Err(StoreError::Moving {
                            subject: "user".into(),
                        });
                    }
                    let inserted = tx
                .execute(
                    sqlx::query(
                        "INSERT INTO user_keys (user_id, data_key, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO NOTHING",
                    )
                    .bind(user.as_str())
                    .bind(wrapped)
                    .bind(Timestamp::now().unix_micros()),
                )
                .await?;
                    Ok(inserted == 1)
                })
            })
            .await
    }

    /// Deletes a moved user's key from this (the source) key store after the move's switch:
    /// overwritten, deleted and forgotten like a shred, but not recorded as shredded (the key
    /// lives on in the target's key store; `moved_user_keys` keeps new keys from being made here).
    pub(crate) async fn forget_moved_key(&self, user: &UserId) -> StoreResult<()> {
        let deleted = self
            .db
            .write_idempotent("forget_moved_key", |tx| {
                Box::pin(async move { overwrite_and_delete(tx, user).await })
            })
            .await?;
        if deleted {
            self.forget().await?;
        }
        Ok(())
    }

    /// Makes the engine forget what was just deleted; see [`Dialect::after_shred`].
    async fn forget(&self) -> StoreResult<()> {
        let sql = self.db.dialect().after_shred();
        match self.db.dialect() {
            Dialect::Postgres => sqlx::raw_sql(sql)
                .execute(self.db.pool())
                .await
                .map(drop)
                .map_err(|e| self.db.classify(e)),
            Dialect::Sqlite => {
                for attempt in 1..=CHECKPOINT_ATTEMPTS {
                    let row = self.db.fetch_one(|| sqlx::query(sql)).await?;
                    let busy: i64 = row
                        .try_get(0)
                        .map_err(|e| StoreError::corrupt(format!("wal_checkpoint: {e}")))?;
                    if busy == 0 {
                        return Ok(());
                    }
                    tracing::warn!(
                        attempt,
                        "a reader kept the key store's checkpoint from completing"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt)))
                        .await;
                }
                Err(StoreError::Other {
                    source: "the key store's WAL could not be checkpointed after shredding a key"
                        .into(),
                })
            }
        }
    }
}

/// Overwrites the user's key (so that the row's last version holds nothing) and deletes it;
/// whether there was one.
async fn overwrite_and_delete(tx: &mut Tx<'_>, user: &UserId) -> StoreResult<bool> {
    let stored: Option<String> = tx
        .optional_scalar(
            sqlx::query_scalar("SELECT data_key FROM user_keys WHERE user_id = $1")
                .bind(user.as_str()),
        )
        .await?;
    if let Some(stored) = &stored {
        tx.execute(
            sqlx::query("UPDATE user_keys SET data_key = $2 WHERE user_id = $1")
                .bind(user.as_str())
                .bind("0".repeat(stored.len())),
        )
        .await?;
        tx.execute(sqlx::query("DELETE FROM user_keys WHERE user_id = $1").bind(user.as_str()))
            .await?;
    }
    Ok(stored.is_some())
}

#[async_trait]
impl UserKeyStore for SqlKeyStore {
    fn region(&self) -> &Region {
        &self.region
    }

    async fn user_key(&self, user: &UserId) -> StoreResult<Option<String>> {
        self.db
            .optional_scalar(|| {
                sqlx::query_scalar("SELECT data_key FROM user_keys WHERE user_id = $1")
                    .bind(user.as_str())
            })
            .await
    }

    async fn ensure_user_key(&self, user: &UserId, candidate: &str) -> StoreResult<String> {
        self.insert_unless_known(user, candidate).await?;
        self.user_key(user).await?.ok_or(StoreError::NotFound)
    }

    async fn import_user_key(&self, user: &UserId, wrapped: &str) -> StoreResult<bool> {
        match self.insert_unless_known(user, wrapped).await {
            Err(StoreError::NotFound) => Ok(false),
            other => other,
        }
    }

    async fn shred_user_key(&self, user: &UserId) -> StoreResult<bool> {
        self.ensure_home(user)?;
        let shredded = self
            .db
            .write_idempotent("shred_user_key", |tx| {
                Box::pin(async move {
                    let stored = overwrite_and_delete(tx, user).await?;
                    tx.execute(
                        sqlx::query(
                            "INSERT INTO shredded_user_keys (user_id, shredded_at) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO NOTHING",
                        )
                        .bind(user.as_str())
                        .bind(Timestamp::now().unix_micros()),
                    )
                    .await?;
                    // Deleting and recording a shredded id again changes nothing: safe to rerun.

                    Ok(stored)
                })
            })
            .await?;
        if shredded {
            self.forget().await?;
        }
        Ok(shredded)
    }
}

#[async_trait]
impl Schema for SqlKeyStore {
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
    fn migration_description(&self, version: i64) -> Option<String> {
        self.db.migration_description(version)
    }
}
