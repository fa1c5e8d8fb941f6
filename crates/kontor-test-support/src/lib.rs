//! Test scaffolding shared by Kontor's test suites: fresh databases on both backends, with the
//! PostgreSQL half skipped loudly (or failed, in CI) when no server is reachable.

#![expect(
    clippy::panic,
    clippy::expect_used,
    reason = "test scaffolding fails loudly"
)]

mod databases;
mod skip;

pub use databases::{Backend, TestDatabase, TestStores};
pub use skip::{loud_skip, postgres_admin_url, require_postgres};
