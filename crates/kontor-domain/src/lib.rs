//! Kontor's domain: the vocabulary of the hub as plain types, parsed at the boundary so that
//! invalid states cannot be represented further in. Nothing here does I/O.

pub mod id;
pub mod region;
pub mod tenant;
pub mod time;
pub mod user;

pub use id::{ApiClientId, IdError, TenantId, UserId};
pub use region::{Region, RegionError};
