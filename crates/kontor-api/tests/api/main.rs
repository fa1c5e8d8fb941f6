//! API tests: the real router on fresh databases over real HTTP, one module per resource.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod connect;
mod contract;
mod docs;
mod errors;
mod isolation;
mod lifecycle;
mod oauth;
mod ops;
mod payments;
mod regions;
mod support;
mod sync;
mod users;
mod webhooks;
