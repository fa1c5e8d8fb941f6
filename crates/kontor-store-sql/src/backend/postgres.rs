//! The PostgreSQL backend. The SQL itself is shared (the rest of this crate) and kept portable to
//! CockroachDB and YugabyteDB; what is PostgreSQL's own lives here: how a write transaction
//! starts and which errors mean "retry" or "unavailable". Its migrations that differ from
//! SQLite's are in `migrations/postgres/` (see [`super::migrations`]).

use sqlx::any::AnyPoolOptions;
use sqlx::error::DatabaseError;

pub const BACKEND: &str = "postgres";

/// Every write transaction is SERIALIZABLE; conflicts surface as SQLSTATE 40001 and are retried.
pub const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";

/// How a queue's own transactions begin (claiming rows, recording what became of one):
/// READ COMMITTED, because what makes them safe is row locks — taken with [`SKIP_LOCKED`] by a
/// claim, and by the UPDATE that opens a record — not serializability. Concurrent workers then
/// split the due rows between them instead of aborting one another on predicate locks that
/// cover neighbouring rows.
/// How a move's final pass reads a frozen subject: one serializable snapshot that also reads the
/// fence, so that a write transaction which began before the fence cannot commit after it
/// unseen (docs/ARCHITECTURE.md, "Moving a tenant or user between cells").
pub const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY";

pub const BEGIN_QUEUE: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Appended to the SELECT that picks rows to claim: rows another transaction is claiming are
/// skipped, not waited for, so several workers take disjoint batches of the same queue.
pub const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

/// Run after a key was shredded, outside any transaction: removes the dead row versions that
/// still held the key from the key table's pages (the row was overwritten before it was
/// deleted, but PostgreSQL writes an update as a new row version).
pub const AFTER_SHRED: &str = "VACUUM user_keys";

/// SQLSTATEs after which the server has rolled the transaction back and a rerun may succeed.
const RETRYABLE: &[&str] = &[
    "40001", // serialization_failure
    "40P01", // deadlock_detected
];

/// SQLSTATEs that mean "this server cannot take the work now": a shutdown, a crash recovery, or
/// a primary that became a replica during a failover.
const UNAVAILABLE: &[&str] = &["57P01", "57P02", "57P03", "25006", "53300"];

pub fn is_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Pool settings of this backend. PostgreSQL needs nothing per connection: isolation is chosen per
/// transaction by [`BEGIN_WRITE`], which keeps reads at the cheaper READ COMMITTED.
pub fn configure(options: AnyPoolOptions) -> AnyPoolOptions {
    options
}

/// Whether the server rolled the transaction back in a way a rerun may fix.
pub fn is_retryable(err: &dyn DatabaseError) -> bool {
    err.code()
        .is_some_and(|code| RETRYABLE.contains(&code.as_ref()))
}

/// SQLSTATEs with which the server ends a session: an administrator's or a crash's shutdown,
/// `pg_terminate_backend`, and class 08 (connection exceptions).
const SESSION_ENDED: &[&str] = &["57P01", "57P02"];

/// Whether the server ended the session the statement ran on; another connection may work.
pub fn is_connection_lost(err: &dyn DatabaseError) -> bool {
    err.code()
        .is_some_and(|code| SESSION_ENDED.contains(&code.as_ref()) || code.starts_with("08"))
}

/// SQLSTATEs of a server that is not (or not yet) a primary taking writes: a read-only
/// transaction (an old primary that came back as a replica after a failover) and a server still
/// starting up. Nothing was written; another connection — through the proxy that tracks the
/// primary — may reach the new one.
const NOT_A_PRIMARY: &[&str] = &["25006", "57P03"];

/// Whether a write transaction failed because of the connection or the server it reached
/// rather than because of its statements: the session ended ([`is_connection_lost`]), or the
/// server takes no writes. Before COMMIT nothing was committed, so running it again is safe.
pub fn is_lost_before_commit(err: &dyn DatabaseError) -> bool {
    is_connection_lost(err)
        || err
            .code()
            .is_some_and(|code| NOT_A_PRIMARY.contains(&code.as_ref()))
}

/// Whether the error says the server cannot take work now (as opposed to rejecting this work).
pub fn is_unavailable(err: &dyn DatabaseError) -> bool {
    err.code()
        .is_some_and(|code| UNAVAILABLE.contains(&code.as_ref()) || code.starts_with("08"))
}
