//! Third-party credentials per tenant: a tenant registered at a bank as a third party of its
//! own (with its own OAuth client, and its own certificate) reaches that bank with them instead
//! of the hub's. Tenants sharing the hub's credentials are one third party at the bank, and a
//! Berlin Group bank expires a person's consent when they authorise a newer one for the same
//! third party; a tenant of its own is not affected by other tenants' consents.
//!
//! ```toml
//! [[banks.tenant_credentials]]
//! tenant_id = "ten_…"
//! client_id = "…"                 # UK Open Banking: the tenant's OAuth client
//! client_secret = "…"
//! tls_identity = "/etc/kontor/tpp/acme.pem"   # its certificate and key (Berlin Group: required)
//! tls_key = "/etc/kontor/tpp/acme.key"          # optional: the key in a file of its own
//! ```
//!
//! A tenant's certificate is read, watched and role-checked like the bank's own (see
//! `crate::certificates`); the bank's `ca_bundle` applies to it too.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use kontor_banks::{BankConnector, BankProfile, ClientIdentity, HttpSettings};
use kontor_domain::TenantId;
use kontor_domain::bank::Standard;
use serde::{Deserialize, Serialize};

use crate::config::BankConfig;
use crate::secret::Secret;

/// One tenant's own credentials at one bank.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantCredentials {
    pub tenant_id: String,
    /// The tenant's OAuth2 client at the bank (UK Open Banking).
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// A PEM file with the tenant's certificate chain and private key, presented on every TLS
    /// connection to the bank (a Berlin Group bank knows the third party by it).
    pub tls_identity: Option<PathBuf>,
    /// The private key of `tls_identity`, when it is a file of its own.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

/// Checks a bank's certificates and per-tenant credentials; `key` names the bank's table
/// (`banks[0]`).
pub fn validate(key: &str, bank: &BankConfig) -> anyhow::Result<()> {
    crate::certificates::identity(key, bank, None)?;
    crate::certificates::bank_tls(key, bank, None)?;
    let mut tenants = std::collections::BTreeSet::new();
    for (j, own) in bank.tenant_credentials.iter().enumerate() {
        let key = format!("{key}.tenant_credentials[{j}]");
        let tenant =
            TenantId::parse(&own.tenant_id).map_err(|e| anyhow::anyhow!("{key}.tenant_id: {e}"))?;
        if !tenants.insert(tenant) {
            bail!(
                "{key}.tenant_id {:?} has credentials at this bank already",
                own.tenant_id
            );
        }
        if own.client_id.is_some() != own.client_secret.is_some() {
            bail!("{key}: client_id and client_secret come together");
        }
        match bank.standard {
            Standard::UkOpenBanking if own.client_id.is_none() => {
                bail!(
                    "{key}: a UK Open Banking bank needs the tenant's client_id and client_secret"
                )
            }
            Standard::BerlinGroup if own.tls_identity.is_none() => {
                bail!(
                    "{key}: a Berlin Group bank knows a third party by its certificate: set tls_identity"
                )
            }
            _ => {}
        }
        crate::certificates::identity(&key, bank, Some(own))?;
    }
    Ok(())
}

/// A tenant's connector at a bank, with the identity it presents (to watch and report).
#[derive(Debug)]
pub struct TenantConnector {
    pub tenant: TenantId,
    pub connector: Arc<dyn BankConnector>,
    pub identity: Option<Arc<ClientIdentity>>,
}

/// The connectors of the tenants with their own credentials at `bank` (whose profile with the
/// hub's credentials is `hub`), made with `shared` unless they bring a certificate.
pub fn tenant_connectors(
    key: &str,
    bank: &BankConfig,
    hub: &BankProfile,
    shared: &reqwest::Client,
    settings: &HttpSettings,
) -> anyhow::Result<Vec<TenantConnector>> {
    let mut out = Vec::new();
    for (j, own) in bank.tenant_credentials.iter().enumerate() {
        let key = format!("{key}.tenant_credentials[{j}]");
        let tenant = TenantId::parse(&own.tenant_id)?;
        let profile = BankProfile {
            client_id: own.client_id.clone().or_else(|| hub.client_id.clone()),
            client_secret: own
                .client_secret
                .as_ref()
                .map(|s| s.expose().to_owned())
                .or_else(|| hub.client_secret.clone()),
            ..hub.clone()
        };
        let identity = crate::certificates::identity(&key, bank, Some(own))?;
        let http = match &identity {
            Some(identity) => {
                let tls = crate::certificates::bank_tls(&key, bank, Some(identity.clone()))?;
                kontor_banks::build_client_with_tls(settings, &tls)
                    .with_context(|| format!("{key}: the bank's HTTP client"))?
            }
            None => shared.clone(),
        };
        out.push(TenantConnector {
            tenant,
            connector: kontor_banks::connector(profile, http, settings.clone()),
            identity,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const IDENTITY: &str = include_str!("../tests/fixtures/tpp-identity.pem");

    fn bank(standard: Standard, credentials: Vec<TenantCredentials>) -> BankConfig {
        BankConfig {
            id: "b".into(),
            name: "B".into(),
            country: "DE".into(),
            standard,
            base_url: "https://bank.example".into(),
            client_id: None,
            client_secret: None,
            decoupled_sca: false,
            logo_url: None,
            tls_identity: None,
            tls_key: None,
            ca_bundle: None,
            // Roles are `crate::certificates`'s tests; this fixture carries none.
            payments: false,
            tenant_credentials: credentials,
            signing: None,
            token_auth: None,
        }
    }

    fn own(tenant: &str, client: Option<&str>, identity: Option<&Path>) -> TenantCredentials {
        TenantCredentials {
            tenant_id: tenant.into(),
            client_id: client.map(str::to_owned),
            client_secret: client.map(|_| Secret::new("s")),
            tls_identity: identity.map(Path::to_path_buf),
            tls_key: None,
        }
    }

    #[test]
    fn credentials_are_checked_per_standard_and_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("tpp.pem");
        std::fs::write(&good, IDENTITY).unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nnope\n").unwrap();
        let tenant = TenantId::generate().to_string();
        let check = |b: BankConfig| validate("banks[0]", &b).map_err(|e| format!("{e:#}")).err();

        assert_eq!(
            check(bank(
                Standard::UkOpenBanking,
                vec![own(&tenant, Some("c"), None)]
            )),
            None
        );
        assert_eq!(
            check(bank(
                Standard::BerlinGroup,
                vec![own(&tenant, None, Some(&good))]
            )),
            None
        );
        let cases = [
            (
                bank(Standard::UkOpenBanking, vec![own("acme", Some("c"), None)]),
                "banks[0].tenant_credentials[0].tenant_id",
            ),
            (
                bank(Standard::UkOpenBanking, vec![own(&tenant, None, None)]),
                "needs the tenant's client_id",
            ),
            (
                bank(Standard::BerlinGroup, vec![own(&tenant, Some("c"), None)]),
                "set tls_identity",
            ),
            (
                bank(Standard::BerlinGroup, vec![own(&tenant, None, Some(&bad))]),
                "banks[0].tenant_credentials[0].tls_identity",
            ),
            (
                bank(
                    Standard::BerlinGroup,
                    vec![own(&tenant, None, Some(&dir.path().join("missing.pem")))],
                ),
                "tls_identity: reading",
            ),
            (
                bank(
                    Standard::UkOpenBanking,
                    vec![own(&tenant, Some("c"), None), own(&tenant, Some("d"), None)],
                ),
                "tenant_credentials[1].tenant_id",
            ),
        ];
        for (config, expected) in cases {
            let message = check(config).expect("refused");
            assert!(message.contains(expected), "{message}");
        }
        let mut half = bank(Standard::UkOpenBanking, vec![own(&tenant, Some("c"), None)]);
        half.tenant_credentials[0].client_secret = None;
        assert!(check(half).unwrap().contains("come together"));
    }

    #[test]
    fn each_tenant_gets_a_connector_with_its_own_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("tpp.pem");
        std::fs::write(&pem, IDENTITY).unwrap();
        let tenant = TenantId::generate();
        let settings = HttpSettings::default();
        let config = bank(
            Standard::UkOpenBanking,
            vec![own(tenant.as_str(), Some("tenant-client"), Some(&pem))],
        );
        let hub = BankProfile {
            id: kontor_domain::bank::BankId::parse("test-bank").unwrap(),
            name: "B".into(),
            country: "GB".into(),
            standard: Standard::UkOpenBanking,
            base_url: url::Url::parse("https://bank.example").unwrap(),
            client_id: Some("hub-client".into()),
            client_secret: Some("hub-secret".into()),
            decoupled_sca: false,
        };
        let shared = kontor_banks::build_client(&settings).unwrap();
        let made = tenant_connectors("banks[0]", &config, &hub, &shared, &settings).unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].tenant, tenant);
        let identity = made[0].identity.as_ref().expect("the tenant's certificate");
        assert_eq!(identity.label().tenant.as_deref(), Some(tenant.as_str()));
        // The profile's Debug shows the client id (never the secret).
        let shown = format!("{:?}", made[0].connector);
        assert!(shown.contains("tenant-client"), "{shown}");
        assert!(!shown.contains("hub-client"), "{shown}");
    }
}
