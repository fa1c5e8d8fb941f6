//! Leases: a worker's claim on a row (a connection it syncs, a payment it moves on), so that
//! several workers never work on the same one at once. A lease is short and its live holder
//! renews it while it works; it lapses at `lease_until`, so a process that dies loses its claim
//! soon, without anyone releasing it.

use kontor_domain::time::Timestamp;
use kontor_store::StoreResult;

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

    fn renew_sql(self) -> &'static str {
        match self {
            Leased::Connections => {
                "UPDATE connections SET lease_until = $3 WHERE id = $1 AND lease_owner = $2"
            }
            Leased::Payments => {
                "UPDATE payments SET lease_until = $3 WHERE id = $1 AND lease_owner = $2"
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

/// Runs one statement on a lease (bound to the row's id, the owner, then `times` in
/// microseconds) in a write transaction of its own; whether it changed the row.
async fn update(
    db: &SqlDatabase,
    op: &'static str,
    sql: &'static str,
    id: &str,
    owner: &str,
    times: &[Timestamp],
) -> StoreResult<bool> {
    db.write(op, |tx| {
        Box::pin(async move {
            let mut query = sqlx::query(sql).bind(id).bind(owner);
            for at in times {
                query = query.bind(at.unix_micros());
            }
            Ok(tx.execute(query).await? == 1)
        })
    })
    .await
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
    update(
        db,
        "claim_lease",
        table.claim_sql(),
        id,
        owner,
        &[until, now],
    )
    .await
}

/// Extends the lease to `until` if `owner` still holds it (a lapsed lease nobody took meanwhile
/// is still the owner's).
pub(crate) async fn renew(
    db: &SqlDatabase,
    table: Leased,
    id: &str,
    owner: &str,
    until: Timestamp,
) -> StoreResult<bool> {
    update(db, "renew_lease", table.renew_sql(), id, owner, &[until]).await
}

/// Gives the lease back, if `owner` still holds it.
pub(crate) async fn release(
    db: &SqlDatabase,
    table: Leased,
    id: &str,
    owner: &str,
) -> StoreResult<()> {
    update(db, "release_lease", table.release_sql(), id, owner, &[])
        .await
        .map(drop)
}
