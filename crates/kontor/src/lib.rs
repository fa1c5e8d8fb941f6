//! The `kontor` binary's parts, as a library so that tests can drive them: configuration,
//! wiring, and one module per subcommand.

pub mod certificates;
pub mod cli;
pub mod commands;
pub mod config;
pub mod database_errors;
pub mod secret;
pub mod signing;
pub mod telemetry;
pub mod tpp;
pub mod wiring;
