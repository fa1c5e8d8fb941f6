//! Kontor's store traits implemented once, in SQL that PostgreSQL, CockroachDB, YugabyteDB and
//! SQLite all accept: no sequences, triggers, stored procedures, advisory locks or LISTEN/NOTIFY;
//! `TEXT` and `BIGINT` columns only, so sqlx's `Any` driver carries the same code to every backend.
//! The reads the API serves most run the same SQL on the backend's own driver instead ([`reads`]),
//! decoding its rows without the `Any` driver's copy of every value.
//! What differs per backend — connection setup, how a write transaction starts, which errors mean
//! "retry" — lives in [`backend`]; the migrations are one folder per schema shared by both
//! backends, with a backend's own file only where its SQL differs (`migrations/README.md`).

pub mod backend;
mod cell;
mod conns;
mod control;
mod database;
mod dialect;
mod erasures;
mod idempotency;
mod keys;
mod lease;
pub mod moves;
mod query;
mod reads;
mod stepwise;
mod tx;
mod user_keys;
mod webhooks;

pub use cell::SqlCell;
pub use control::SqlControl;
pub use database::{PoolSettings, SqlDatabase};
pub use dialect::Dialect;
pub use lease::LEASE_TTL as MIGRATION_LEASE_TTL;
pub use user_keys::SqlKeyStore;
