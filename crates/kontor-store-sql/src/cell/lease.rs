//! Leases, one implementation for every kind: a worker's claim on a row (a connection it syncs,
//! a payment it moves on), a named job only one worker runs at a time (`worker_leases`), and the
//! migration lease (`crate::lease`). A lease names its holder and when it lapses; its live holder
//! renews it while it works, and a process that dies loses its claim when it lapses, without
//! anyone releasing it. Expiry is judged by the caller's clock (`now`).

use kontor_domain::time::Timestamp;
use kontor_store::StoreResult;

use crate::database::SqlDatabase;
use crate::tx::Mode;

/// Where one kind of lease is kept: the table, the column naming what is leased, the holder's
/// column and the expiry's (microseconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaseTable {
    table: &'static str,
    key: &'static str,
    holder: &'static str,
    until: &'static str,
    /// Whether a lease is a row of its own, made on the first claim and deleted on release
    /// (named leases), rather than two columns of an existing row.
    own_rows: bool,
    /// How the lease's transactions begin.
    mode: Mode,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Claim,
    Renew,
    Release,
}

/// Sync leases on `connections`.
pub(crate) const CONNECTIONS: LeaseTable = LeaseTable {
    table: "connections",
    key: "id",
    holder: "lease_owner",
    until: "lease_until",
    own_rows: false,
    mode: Mode::Write,
};

/// Leases on `payments`, held while a worker moves a payment on.
pub(crate) const PAYMENTS: LeaseTable = LeaseTable {
    table: "payments",
    ..CONNECTIONS
};

/// Named jobs a cell runs on one worker at a time. Row-locked like the webhook queue's
/// transactions: two workers asking at once would otherwise abort one another under
/// SERIALIZABLE.
pub(crate) const WORKER_JOBS: LeaseTable = LeaseTable {
    table: "worker_leases",
    key: "name",
    holder: "owner",
    until: "lease_until",
    own_rows: true,
    mode: Mode::Queue,
};

/// The migration lease (see `crate::lease`).
pub(crate) const MIGRATIONS: LeaseTable = LeaseTable {
    table: "kontor_migration_lease",
    key: "name",
    holder: "holder",
    until: "expires_at",
    own_rows: true,
    mode: Mode::Write,
};

impl LeaseTable {
    /// The statement of one step. Claim: `$1` the key, `$2` the holder, `$3` until, `$4` now,
    /// taking the lease when it is free, lapsed or the holder's. Renew: `$1`–`$3`. Release:
    /// `$1`, `$2`.
    fn sql(&self, step: Step) -> String {
        let LeaseTable {
            table,
            key,
            holder,
            until,
            own_rows,
            ..
        } = *self;
        match (step, own_rows) {
            (Step::Claim, true) => format!(
                "INSERT INTO {table} ({key}, {holder}, {until}) VALUES ($1, $2, $3) \
                 ON CONFLICT ({key}) DO UPDATE SET {holder} = excluded.{holder}, \
                 {until} = excluded.{until} \
                 WHERE {table}.{until} < $4 OR {table}.{holder} = excluded.{holder}"
            ),
            // A row a move fences is not claimed (rows with a lease of their own carry a tenant
            // and a user: connections and payments).
            (Step::Claim, false) => format!(
                "UPDATE {table} SET {holder} = $2, {until} = $3 WHERE {key} = $1 \
                 AND ({until} IS NULL OR {until} < $4 OR {holder} = $2) \
                 AND NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = {table}.tenant_id \
                 AND (f.user_id IS NULL OR f.user_id = {table}.user_id))"
            ),
            (Step::Renew, _) => {
                format!("UPDATE {table} SET {until} = $3 WHERE {key} = $1 AND {holder} = $2")
            }
            (Step::Release, true) => {
                format!("DELETE FROM {table} WHERE {key} = $1 AND {holder} = $2")
            }
            (Step::Release, false) => format!(
                "UPDATE {table} SET {holder} = NULL, {until} = NULL \
                 WHERE {key} = $1 AND {holder} = $2"
            ),
        }
    }

    /// Runs one statement on a lease (bound to the key, the holder, then `times` in
    /// microseconds) in a transaction of its own; whether it changed the lease.
    async fn update(
        &self,
        db: &SqlDatabase,
        op: &'static str,
        sql: String,
        key: &str,
        holder: &str,
        times: &[Timestamp],
    ) -> StoreResult<bool> {
        let sql = &sql;
        db.transaction(self.mode, op, |tx| {
            Box::pin(async move {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(key)
                    .bind(holder);
                for at in times {
                    query = query.bind(at.unix_micros());
                }
                Ok(tx.execute(query).await? == 1)
            })
        })
        .await
    }

    /// Takes the lease for `holder` until `until` if nobody else holds one at `now`.
    pub(crate) async fn claim(
        &self,
        db: &SqlDatabase,
        key: &str,
        holder: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let sql = self.sql(Step::Claim);
        self.update(db, "claim_lease", sql, key, holder, &[until, now])
            .await
    }

    /// Extends the lease to `until` if `holder` still holds it (a lapsed lease nobody took
    /// meanwhile is still the holder's).
    pub(crate) async fn renew(
        &self,
        db: &SqlDatabase,
        key: &str,
        holder: &str,
        until: Timestamp,
    ) -> StoreResult<bool> {
        let sql = self.sql(Step::Renew);
        self.update(db, "renew_lease", sql, key, holder, &[until])
            .await
    }

    /// Gives the lease back, if `holder` still holds it.
    pub(crate) async fn release(
        &self,
        db: &SqlDatabase,
        key: &str,
        holder: &str,
    ) -> StoreResult<()> {
        let sql = self.sql(Step::Release);
        self.update(db, "release_lease", sql, key, holder, &[])
            .await
            .map(drop)
    }
}
