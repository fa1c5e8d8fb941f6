//! The moves' fences in a cell (`move_fences`, cell migration 0016): every write transaction of
//! a tenant's or user's rows calls one of these guards first, inside the transaction, and is
//! refused with [`StoreError::Moving`] (nothing written; retry shortly) while a move fences the
//! subject here. The read of `move_fences` inside the writer's serializable transaction is what
//! makes a move's final pass sound on PostgreSQL (see `moves::sync::final_diff`), so a guard must
//! run in the same transaction as the writes it protects.
//!
//! Worker claims and tenant-wide lists add [`NOT_FENCED`]-style conditions instead: fenced rows
//! are not claimed, and rows of an `incoming` or `gone` fence are not listed.

use kontor_store::{StoreError, StoreResult};

use crate::query::Filtered;
use crate::tx::Tx;

/// Refuses the write when a fence covers the tenant, or the user (`None`: a row about no user,
/// covered only by the tenant's fence).
pub(crate) async fn guard(tx: &mut Tx<'_>, tenant: &str, user: Option<&str>) -> StoreResult<()> {
    let fenced: Option<String> = tx
        .optional_scalar(
            sqlx::query_scalar(
                "SELECT state FROM move_fences WHERE tenant_id = $1 \
                 AND (user_id IS NULL OR user_id = $2) LIMIT 1",
            )
            .bind(tenant)
            .bind(user),
        )
        .await?;
    refuse(fenced.is_some(), user.is_some())
}

/// What a guard by an existing row reads: the fence of the row's tenant or user.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Row {
    User,
    Connection,
    Payment,
    Delivery,
    Event,
    Erasure,
    Revocation,
}

/// The fence read of a row kind: `FROM` the row's table joined to its fences, then the column
/// the ids are compared with. One text serves the one-id read and the list read.
macro_rules! by_row {
    // A table with `tenant_id` and `user_id` columns, read by `id`.
    (owned $table:literal) => {
        by_row!(
            concat!(
                $table,
                " r JOIN move_fences f ON f.tenant_id = r.tenant_id \
                 AND (f.user_id IS NULL OR f.user_id = r.user_id)"
            ),
            "r.id"
        )
    };
    ($from:expr, $key:literal) => {
        (
            concat!(
                "SELECT f.state FROM ",
                $from,
                " WHERE ",
                $key,
                " = $1 LIMIT 1"
            ),
            concat!("SELECT f.state FROM ", $from, " WHERE ", $key, " IN ("),
        )
    };
}

impl Row {
    /// The read by one id (`$1`), and the same read up to its open `IN (` list.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Row::User => by_row!(
                "users r JOIN move_fences f ON f.tenant_id = r.tenant_id \
                 AND (f.user_id IS NULL OR f.user_id = r.id)",
                "r.id"
            ),
            Row::Connection => by_row!(owned "connections"),
            Row::Payment => by_row!(owned "payments"),
            Row::Delivery => by_row!(
                "webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id \
                 JOIN move_fences f ON f.tenant_id = d.tenant_id \
                 AND (f.user_id IS NULL OR f.user_id = e.user_id)",
                "d.id"
            ),
            Row::Event => by_row!(owned "events"),
            Row::Erasure => by_row!(
                "erasures r JOIN move_fences f ON f.tenant_id = r.tenant_id \
                 AND (f.user_id IS NULL OR f.user_id = r.user_id)",
                "r.user_id"
            ),
            Row::Revocation => by_row!(owned "erasure_revocations"),
        }
    }

    /// Whether a fence found by this row names its user (rows about no user are covered by the
    /// tenant's fence alone, as far as the refusal says).
    fn of_user(self) -> bool {
        !matches!(self, Row::Delivery | Row::Event)
    }
}

/// Refuses the write when a fence covers the tenant or user of the row `id` of `row`'s table.
pub(crate) async fn guard_row(tx: &mut Tx<'_>, row: Row, id: &str) -> StoreResult<()> {
    let fenced: Option<String> = tx
        .optional_scalar(sqlx::query_scalar(row.sql().0).bind(id))
        .await?;
    refuse(fenced.is_some(), row.of_user())
}

/// Most ids one read of [`guard_rows`] binds.
const IDS_PER_READ: usize = 50;

/// [`guard_row`] for many rows of one table: one read per [`IDS_PER_READ`] ids.
pub(crate) async fn guard_rows<'a>(
    tx: &mut Tx<'_>,
    row: Row,
    ids: impl IntoIterator<Item = &'a str>,
) -> StoreResult<()> {
    let ids: Vec<&str> = ids.into_iter().collect();
    for chunk in ids.chunks(IDS_PER_READ) {
        let mut q = Filtered::new(row.sql().1);
        q.push_list(chunk.iter().map(|id| (*id).to_owned()));
        q.push(") LIMIT 1");
        let fenced = tx.fetch_optional(q.build()).await?;
        refuse(fenced.is_some(), row.of_user())?;
    }
    Ok(())
}

fn refuse(fenced: bool, user: bool) -> StoreResult<()> {
    if fenced {
        Err(StoreError::Moving {
            subject: if user { "user" } else { "tenant" }.into(),
        })
    } else {
        Ok(())
    }
}

/// A condition keeping rows of `table` (with `tenant_id` and `user_id` columns) out of worker
/// claims while any fence covers them.
macro_rules! unfenced {
    ($table:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = ",
            $table,
            ".tenant_id AND (f.user_id IS NULL OR f.user_id = ",
            $table,
            ".user_id))"
        )
    };
}

/// A condition keeping rows of `table` out of tenant-wide lists while they are a move's copy
/// not switched to yet (`incoming`) or a moved subject's leftovers (`gone`).
macro_rules! listed {
    ($table:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = ",
            $table,
            ".tenant_id AND (f.user_id IS NULL OR f.user_id = ",
            $table,
            ".user_id) AND f.state IN ('incoming', 'gone'))"
        )
    };
}

/// [`listed!`] for `users`, whose user is its own `id`.
macro_rules! listed_user {
    () => {
        "NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = users.tenant_id \
         AND (f.user_id IS NULL OR f.user_id = users.id) AND f.state IN ('incoming', 'gone'))"
    };
}
