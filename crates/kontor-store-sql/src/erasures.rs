//! The erasure ledger in the control database (see [`kontor_store::ErasureLedger`]).

use async_trait::async_trait;
use kontor_domain::time::Timestamp;
use kontor_domain::{Region, TenantId, UserId};
use kontor_store::{Erasure, ErasureLedger, StoreError, StoreResult};
use sqlx::any::AnyRow;

use crate::control::SqlControl;
use crate::database::column;
use crate::query::limit_arg;

fn erasure_from_row(row: &AnyRow) -> StoreResult<Erasure> {
    Ok(Erasure {
        user_id: UserId::parse(&column::<String>(row, "user_id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        region: Region::parse(&column::<String>(row, "region")?).map_err(StoreError::corrupt)?,
        erased_at: Timestamp::from_unix_micros(column(row, "erased_at")?),
    })
}

#[async_trait]
impl ErasureLedger for SqlControl {
    async fn record_erasure(&self, erasure: &Erasure) -> StoreResult<()> {
        let db = self.database();
        db.write_idempotent("record_erasure", |tx| {
            Box::pin(async move {
                tx.execute(
                    sqlx::query(
                        "INSERT INTO erasures (user_id, tenant_id, region, erased_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING",
                    )
                    .bind(erasure.user_id.as_str())
                    .bind(erasure.tenant_id.as_str())
                    .bind(erasure.region.as_str())
                    .bind(erasure.erased_at.unix_micros()),
                )
                .await?;
                // An entry recorded twice is one entry: safe to rerun.
                Ok(())
            })
        })
        .await
    }

    async fn erasures(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<Erasure>> {
        let after = after.map(UserId::as_str).unwrap_or("");
        let limit = limit_arg(limit);
        self.database()
            .fetch_all(|| {
                sqlx::query(
                    "SELECT user_id, tenant_id, region, erased_at FROM erasures \
                     WHERE user_id > $1 ORDER BY user_id LIMIT $2",
                )
                .bind(after)
                .bind(limit)
            })
            .await?
            .iter()
            .map(erasure_from_row)
            .collect()
    }
}
