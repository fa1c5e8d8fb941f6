//! Tenants and their API clients: who may call the hub, and with which scopes.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::id::{ApiClientId, TenantId};

/// A tenant's display name: 1–200 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant name must be 1-200 characters without control characters")]
pub struct TenantNameError;

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self, TenantNameError> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if (1..=200).contains(&len) && !trimmed.chars().any(char::is_control) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(TenantNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an access token allows. Kept small and explicit; each route names the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    /// List banks, read connections.
    #[serde(rename = "connections:read")]
    ConnectionsRead,
    /// Create, revoke, refresh and reconfirm connections.
    #[serde(rename = "connections:write")]
    ConnectionsWrite,
    /// Read accounts, balances and transactions.
    #[serde(rename = "accounts:read")]
    AccountsRead,
    #[serde(rename = "events:read")]
    EventsRead,
    #[serde(rename = "payments:read")]
    PaymentsRead,
    /// Initiate payments.
    #[serde(rename = "payments:write")]
    PaymentsWrite,
    /// Manage webhook endpoints, read their deliveries, redeliver events.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::ConnectionsRead,
        Scope::ConnectionsWrite,
        Scope::AccountsRead,
        Scope::EventsRead,
        Scope::PaymentsRead,
        Scope::PaymentsWrite,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::ConnectionsRead => "connections:read",
            Scope::ConnectionsWrite => "connections:write",
            Scope::AccountsRead => "accounts:read",
            Scope::EventsRead => "events:read",
            Scope::PaymentsRead => "payments:read",
            Scope::PaymentsWrite => "payments:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(crate::region::truncate_for_error(s)))
    }
}

/// A set of scopes, written as OAuth2 writes them: space-separated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    pub fn all() -> Self {
        Self(Scope::ALL.into_iter().collect())
    }

    pub fn parse(raw: &str) -> Result<Self, UnknownScope> {
        raw.split_ascii_whitespace()
            .map(Scope::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: TenantName,
    pub created_at: crate::time::Timestamp,
}

/// An API client as stored; the secret itself is never kept, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClient {
    pub id: ApiClientId,
    pub tenant_id: TenantId,
    pub scopes: Scopes,
    pub created_at: crate::time::Timestamp,
    pub revoked_at: Option<crate::time::Timestamp>,
}

impl ApiClient {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A stored one-way hash of a client secret, in the `algorithm:hex` form the API layer writes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(pub String);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_trimmed_and_bounded() {
        assert_eq!(
            TenantName::parse("  Acme Budget ").unwrap().as_str(),
            "Acme Budget"
        );
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse("a\u{7}b").is_err());
        assert!(TenantName::parse(&"x".repeat(201)).is_err());
        assert!(TenantName::parse(&"x".repeat(200)).is_ok());
    }

    #[test]
    fn scopes_parse_and_print_like_oauth2() {
        let scopes = Scopes::parse("users:write  users:read").unwrap();
        assert_eq!(scopes.to_string(), "users:read users:write");
        assert_eq!(
            Scopes::all().to_string(),
            "users:read users:write connections:read connections:write accounts:read events:read \
             payments:read payments:write webhooks:manage"
        );
        assert_eq!(
            Scopes::parse("users:read admin"),
            Err(UnknownScope("admin".into()))
        );
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(
            Scopes::parse("users:read")
                .unwrap()
                .is_subset(&Scopes::all())
        );
    }
}
