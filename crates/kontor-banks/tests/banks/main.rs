//! Connector tests over real HTTP against the sandbox bank, started in-process on a free port
//! for each test. Scenarios common to both standards live in `scenarios`; each standard's module
//! runs them against its bank and adds what only it has.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "scenario helpers run inside tests and fail loudly"
)]

mod berlin_group;
mod faults;
mod logs;
mod scenarios;
mod support;
mod uk_open_banking;
