//! API tests: the real router on fresh databases over real HTTP, one module per resource.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod connect;
mod docs;
mod errors;
mod forwarded;
mod headers;
mod isolation;
mod keys;
mod lifecycle;
mod oauth;
mod ops;
mod payments;
mod redirect_uris;
mod regions;
mod support;
mod sync;
mod users;
mod webhooks;
