//! The one error type of the storage layer. Driver errors are classified once, in each dialect,
//! into the variants callers match on.

use kontor_domain::Region;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("record not found")]
    NotFound,

    /// A uniqueness rule or a limit was violated; `constraint` names the rule (e.g.
    /// `users_tenant_external_id`, `webhook_endpoints_per_tenant`).
    #[error("conflicts with an existing record ({constraint})")]
    Conflict { constraint: String },

    /// A state change the record's current state does not allow: a step from the wrong phase,
    /// an illegal status transition, a lease another owner holds. Nothing was written; `reason`
    /// says what the state was (never personal data).
    #[error("state change refused: {reason}")]
    StateRefused { reason: String },

    /// The database aborted the transaction to keep it serializable (SQLSTATE 40001/40P01), or
    /// SQLite could not take its lock in time. Safe to retry: nothing was committed.
    #[error("transaction aborted by a concurrent one; retry")]
    SerializationFailure {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The connection was lost before the transaction committed — the server ended the session,
    /// the socket broke, no server could be reached, or the connection reached a server that
    /// takes no writes (an old primary that came back as a replica after a failover). Nothing was
    /// committed, so the retry helper runs the transaction again on a fresh connection for as
    /// long as [`crate::RetryPolicy::reconnect_window`] allows. A connection lost *during* COMMIT
    /// is not this: its outcome is unknown, and it surfaces as [`StoreError::Unavailable`] unless
    /// the operation is idempotent.
    #[error("the database connection was lost before the transaction committed; retry")]
    ConnectionLost {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The retry helper gave up after this many attempts.
    #[error("transaction still conflicting after {attempts} attempts")]
    Contention { attempts: u32 },

    /// A write addressed to the wrong region's cell: a routing bug, refused before any SQL runs.
    #[error("a {record} of region {record_region} must not be written to the {cell_region} cell")]
    WrongCell {
        record: &'static str,
        record_region: Region,
        cell_region: Region,
    },

    /// The tenant's (or user's) rows are being moved to another cell and their writes are paused
    /// in this one, or they moved away (the move's fence in the cell, see
    /// `kontor_store_sql::moves`). Nothing was written. Retry shortly: the pause lasts seconds,
    /// and a process that refreshed its routes writes to the new cell.
    #[error("the {subject} is moving between cells; retry shortly")]
    Moving { subject: String },

    /// No cell is configured for this region.
    #[error("no cell is configured for region {0}")]
    UnknownRegion(Region),

    /// No cell of this name is configured.
    #[error("no cell {0} is configured")]
    UnknownCell(kontor_domain::CellId),

    /// The database could not be reached (connection refused, pool timeout, I/O).
    #[error("database unavailable")]
    Unavailable {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A stored row does not parse into domain types: data written by something else, or a bug.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),

    #[error("database error")]
    Other {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether a fresh attempt of the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::SerializationFailure { .. } | StoreError::ConnectionLost { .. }
        )
    }

    /// Whether the database could not serve the request now (unreachable, connection lost,
    /// still contended after the retries, or the subject's writes paused by a move): a caller
    /// answers "retry later".
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. }
                | StoreError::ConnectionLost { .. }
                | StoreError::Moving { .. }
                | StoreError::Contention { .. }
        )
    }

    pub fn state_refused(reason: impl std::fmt::Display) -> Self {
        StoreError::StateRefused {
            reason: reason.to_string(),
        }
    }

    /// Whether the transaction failed because its connection was lost before it committed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, StoreError::ConnectionLost { .. })
    }

    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}
