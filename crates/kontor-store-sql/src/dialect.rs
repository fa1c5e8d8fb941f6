//! The two backends, and the few things that differ between them.

use kontor_store::DatabaseRole;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;

use crate::backend::{postgres, sqlite};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The backend a database URL names, if it is one Kontor supports.
    pub fn of_url(url: &str) -> Option<Self> {
        if postgres::is_url(url) {
            Some(Dialect::Postgres)
        } else if sqlite::is_url(url) {
            Some(Dialect::Sqlite)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::BACKEND,
            Dialect::Sqlite => sqlite::BACKEND,
        }
    }

    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::BEGIN_WRITE,
            Dialect::Sqlite => sqlite::BEGIN_WRITE,
        }
    }

    /// How a consistent read of a moving subject begins (a move's final pass).
    pub(crate) fn begin_snapshot(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::BEGIN_SNAPSHOT,
            Dialect::Sqlite => sqlite::BEGIN_SNAPSHOT,
        }
    }

    /// How a queue's own transactions begin: claiming due rows for a worker, and recording
    /// what became of one (both safe by row locks rather than serializability).
    pub(crate) fn begin_queue(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::BEGIN_QUEUE,
            Dialect::Sqlite => sqlite::BEGIN_QUEUE,
        }
    }

    /// Bound parameters one statement may carry here: PostgreSQL's wire protocol counts them in
    /// 16 bits (32767 keeps within every server that speaks it); older SQLite builds take 999.
    pub(crate) fn max_bound_params(self) -> usize {
        match self {
            Dialect::Postgres => 32_767,
            Dialect::Sqlite => 999,
        }
    }

    /// The clause that makes concurrent claims skip each other's rows, if the backend needs one.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::SKIP_LOCKED,
            Dialect::Sqlite => sqlite::SKIP_LOCKED,
        }
    }

    /// What makes the engine forget a shredded key; run outside a transaction.
    pub(crate) fn after_shred(self) -> &'static str {
        match self {
            Dialect::Postgres => postgres::AFTER_SHRED,
            Dialect::Sqlite => sqlite::AFTER_SHRED,
        }
    }

    pub(crate) fn migrator(self, role: DatabaseRole) -> &'static Migrator {
        crate::backend::migrations::migrator(self, role)
    }

    pub(crate) fn is_retryable(self, err: &dyn DatabaseError) -> bool {
        match self {
            Dialect::Postgres => postgres::is_retryable(err),
            Dialect::Sqlite => sqlite::is_retryable(err),
        }
    }

    pub(crate) fn is_unavailable(self, err: &dyn DatabaseError) -> bool {
        match self {
            Dialect::Postgres => postgres::is_unavailable(err),
            Dialect::Sqlite => sqlite::is_unavailable(err),
        }
    }

    /// Whether a statement failed because its connection died rather than because of the
    /// statement: a broken socket, or the server ending the session.
    pub(crate) fn is_connection_lost(self, err: &sqlx::Error) -> bool {
        match err {
            // Protocol: see `is_lost_before_commit`.
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => match self {
                Dialect::Postgres => postgres::is_connection_lost(db.as_ref()),
                Dialect::Sqlite => false,
            },
            _ => false,
        }
    }

    /// Whether a statement of a write transaction failed because its connection died or reached
    /// a server that takes no writes (see [`kontor_store::StoreError::ConnectionLost`]).
    pub(crate) fn is_lost_before_commit(self, err: &sqlx::Error) -> bool {
        match err {
            // A broken socket, or a connection that broke while it was being set up: HAProxy in
            // front of a cell whose primary is gone answers a new connection's SSLRequest with
            // a byte that is neither `S` nor `N` and closes it. A protocol error mid-session
            // leaves the connection unusable too; the transaction on it never committed.
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => match self {
                Dialect::Postgres => postgres::is_lost_before_commit(db.as_ref()),
                Dialect::Sqlite => false,
            },
            _ => false,
        }
    }

    /// A query answering 1 when sqlx's migration table exists, 0 otherwise.
    pub(crate) fn migrations_table_exists(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
            }
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
        }
    }
}
