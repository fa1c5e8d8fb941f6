//! One module per subcommand.

pub mod clients;
pub mod config;
pub mod demo;
pub mod migrate;
pub mod residency;
pub mod serve;
pub mod tenants;
pub mod worker;
