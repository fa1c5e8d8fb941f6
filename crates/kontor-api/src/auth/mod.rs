//! Tenant authentication: OAuth2 client credentials exchanged for short-lived bearer tokens.

pub(crate) mod bearer;
pub(crate) mod certificate;
pub mod scoped;
mod secret;
mod token;

pub use bearer::Authenticated;
pub use scoped::Scoped;
pub use secret::{ClientSecret, hash_secret, verify_secret};
pub use token::{Claims, KeyError, SigningKey, TokenError, TokenService};
