//! API tests: the real router on fresh databases over real HTTP, one module per resource.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod bank_deadline;
mod branding;
mod callbacks;
mod cells;
mod changes;
mod connect;
mod contract;
mod decoupled;
mod docs;
mod erasure;
mod errors;
mod event_schemas;
mod export;
mod forwarded;
mod forwarded_certificates;
mod headers;
mod isolation;
mod keys;
mod lifecycle;
mod limits;
mod moves;
mod oauth;
mod ops;
mod payer_account;
mod payment_cancel;
mod payment_retries;
mod payment_words;
mod payments;
mod redirect_uris;
mod regions;
mod rejections;
mod sealed;
mod slow_clients;
mod supersession;
mod support;
mod sync;
mod sync_leases;
mod sync_state;
mod telemetry;
mod tenant_lists;
mod transaction_dates;
mod users;
mod webhooks;
