//! End users (PSUs) of a tenant. A user's home region is fixed at creation and is part of the id.

use std::fmt;

use serde::Serialize;

use crate::id::{TenantId, UserId};
use crate::region::Region;
use crate::time::Timestamp;

/// The tenant's own reference for a user: 1–255 characters, no control characters. Tenants may
/// put personal data here (an email, say), so it is treated as personal data: never logged.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExternalId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("external_id must be 1-255 characters without control characters or surrounding spaces")]
pub struct ExternalIdError;

impl ExternalId {
    pub const MAX_LEN: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, ExternalIdError> {
        let len = raw.chars().count();
        let ok = (1..=Self::MAX_LEN).contains(&len)
            && raw.trim() == raw
            && !raw.chars().any(char::is_control);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ExternalIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Personal data stays out of debug output and therefore out of logs.
impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub external_id: ExternalId,
    pub created_at: Timestamp,
}

impl NewUser {
    /// A new user in `region`, with a fresh id that routes to that region's cell.
    pub fn new(tenant_id: TenantId, external_id: ExternalId, region: &Region) -> Self {
        Self {
            id: UserId::generate(region),
            tenant_id,
            external_id,
            created_at: Timestamp::now(),
        }
    }

    pub fn region(&self) -> &Region {
        self.id.region()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub external_id: ExternalId,
    pub created_at: Timestamp,
}

impl User {
    pub fn region(&self) -> &Region {
        self.id.region()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids_are_bounded_and_clean() {
        assert!(ExternalId::parse("customer-42").is_ok());
        assert!(ExternalId::parse("a@b.example").is_ok());
        for bad in ["", " padded", "padded ", "tab\there", "nl\n"] {
            assert!(ExternalId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ExternalId::parse(&"x".repeat(255)).is_ok());
        assert!(ExternalId::parse(&"x".repeat(256)).is_err());
    }

    #[test]
    fn debug_output_hides_the_value() {
        let id = ExternalId::parse("jane@example.com").unwrap();
        assert!(!format!("{id:?}").contains("jane"));
    }
}
