//! What differs per backend: connection setup, how a transaction begins, which driver errors
//! mean "retry", "connection lost" or "unavailable" ([`postgres`], [`sqlite`]), and how each
//! backend's migrations are assembled from the shared folder and its own ([`migrations`]).

pub(crate) mod migrations;
pub mod postgres;
pub mod sqlite;
