//! One module per subcommand.

pub mod backup;
pub mod banks;
pub mod cell_move;
pub mod cells;
pub mod clients;
pub mod config;
pub mod demo;
pub mod erasure;
pub mod migrate;
pub mod residency;
pub mod serve;
pub mod tenants;
pub mod worker;
