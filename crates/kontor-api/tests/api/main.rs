//! API tests: the real router on fresh databases over real HTTP, one module per resource.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod docs;
mod errors;
mod isolation;
mod oauth;
mod ops;
mod regions;
mod users;
