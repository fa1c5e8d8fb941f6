//! The sandbox bank's test suite: every exchange is validated against the standards' specs.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a broken assumption should fail the test at once, with its message"
)]

mod admin;
mod bg_ais;
mod bg_pis;
mod bg_request_ids;
mod bg_rules;
mod bg_sca;
mod bg_surface;
mod common;
mod faults;
mod flows;
mod persistence;
mod spec;
mod strict;
mod strict_bodies;
mod uk_ais;
mod uk_flows;
mod uk_pis;
mod uk_rules;
mod validate;
