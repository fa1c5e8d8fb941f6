//! Connector tests over real HTTP against the sandbox bank, started in-process on a free port
//! for each test. Scenarios common to both standards live in `scenarios` (account information),
//! `payments` and `payment_faults` (payment initiation); each standard's module runs the account
//! scenarios against its bank and adds what only it has, payments included.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "scenario helpers run inside tests and fail loudly"
)]

mod berlin_group;
mod faults;
mod logs;
mod mtls;
mod payment_faults;
mod payments;
mod scenarios;
mod strict;
mod support;
mod uk_open_banking;
