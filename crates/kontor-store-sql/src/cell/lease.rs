//! Leases: a worker's claim on a row (a connection it syncs, a payment it moves on), so that
//! several workers never work on the same one at once. A lease lapses at `lease_until`, so a
//! worker that dies loses its claim without anyone releasing it.

use kontor_domain::time::Timestamp;
use kontor_store::{StoreResult, retry_serializable};

use crate::database::SqlDatabase;

/// The tables that carry `lease_owner` and `lease_until` columns.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leased {
    Connections,
    Payments,
}

impl Leased {
    fn claim_sql(self) -> &'static str {
        match self {
            Leased::Connections => {
                "UPDATE connections SET lease_owner = $2, lease_until = $3 WHERE id = $1 \
                 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $2)"
            }
            Leased::Payments => {
                "UPDATE payments SET lease_owner = $2, lease_until = $3 WHERE id = $1 \
                 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $2)"
            }
        }
    }

    fn release_sql(self) -> &'static str {
        match self {
            Leased::Connections => {
                "UPDATE connections SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2"
            }
            Leased::Payments => {
                "UPDATE payments SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_owner = $2"
            }
        }
    }
}

/// Takes the lease for `owner` until `until` if nobody else holds one at `now`.
pub(crate) async fn claim(
    db: &SqlDatabase,
    table: Leased,
    id: &str,
    owner: &str,
    until: Timestamp,
    now: Timestamp,
) -> StoreResult<bool> {
    retry_serializable(db.retry_policy(), "claim_lease", |_| async {
        let mut tx = db.begin_write().await?;
        let result = sqlx::query(table.claim_sql())
            .bind(id)
            .bind(owner)
            .bind(until.unix_micros())
            .bind(now.unix_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
        tx.commit().await.map_err(|e| db.classify(e))?;
        Ok(result.rows_affected() == 1)
    })
    .await
}

/// Gives the lease back, if `owner` still holds it.
pub(crate) async fn release(
    db: &SqlDatabase,
    table: Leased,
    id: &str,
    owner: &str,
) -> StoreResult<()> {
    retry_serializable(db.retry_policy(), "release_lease", |_| async {
        let mut tx = db.begin_write().await?;
        sqlx::query(table.release_sql())
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await
            .map_err(|e| db.classify(e))?;
        tx.commit().await.map_err(|e| db.classify(e))
    })
    .await
}
