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
//! [banks.tenant_credentials.signing]          # the tenant's seal (QSealC / OBSeal)
//! qseal_cert = "/etc/kontor/tpp/acme-qseal.pem"
//! qseal_key = "/etc/kontor/tpp/acme-qseal.key.pem"
//! kid = "…"                                   # UK: as for the bank's own `signing`
//! ```
//!
//! A tenant's certificate is read, watched and role-checked like the bank's own (see
//! `crate::certificates`); the bank's `ca_bundle` applies to it too. Its connector is made like
//! the bank's (`kontor_banks::connector_with`): it signs with the tenant's seal and
//! authenticates at a UK token endpoint as the bank's `token_auth` says, with the tenant's
//! credentials. A bank that requires signed requests (it has `signing`) needs the tenant's own
//! seal: a seal is the third party's, and the bank refuses another organisation's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use kontor_banks::uk_open_banking::TokenAuth;
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
    /// The tenant's seal, for a bank that requires signed requests (see `crate::signing`).
    #[serde(default)]
    pub signing: Option<crate::signing::SigningConfig>,
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
        if own.client_secret.is_some() && own.client_id.is_none() {
            bail!("{key}: client_secret needs the client_id it belongs to");
        }
        match bank.standard {
            Standard::UkOpenBanking if own.client_id.is_none() => {
                bail!("{key}: a UK Open Banking bank needs the tenant's client_id")
            }
            Standard::BerlinGroup if own.tls_identity.is_none() => {
                bail!(
                    "{key}: a Berlin Group bank knows a third party by its certificate: set tls_identity"
                )
            }
            _ => {}
        }
        crate::certificates::identity(&key, bank, Some(own))?;
        validate_signing(&key, bank, own)?;
    }
    Ok(())
}

/// A tenant's seal and token endpoint authentication: its own seal where the bank requires
/// signing, and what the bank's `token_auth` (or its default) needs of the tenant.
fn validate_signing(key: &str, bank: &BankConfig, own: &TenantCredentials) -> anyhow::Result<()> {
    if let Some(signing) = &own.signing {
        crate::signing::load(signing).with_context(|| format!("{key}.signing"))?;
    } else if bank.signing.is_some() {
        bail!(
            "{key}: the bank requires signed requests and a tenant signs with its own seal: \
             set {key}.signing"
        );
    }
    if bank.standard != Standard::UkOpenBanking {
        return Ok(());
    }
    match effective_token_auth(bank, own) {
        TokenAuth::TlsClientAuth if own.tls_identity.is_none() => bail!(
            "{key}: token_auth = \"tls_client_auth\" needs the tenant's certificate: set {key}.tls_identity"
        ),
        TokenAuth::ClientSecretBasic if own.client_secret.is_none() => {
            bail!("{key}: token_auth = \"client_secret_basic\" needs the tenant's client_secret")
        }
        TokenAuth::PrivateKeyJwt if own.signing.is_none() => bail!(
            "{key}: token_auth = \"private_key_jwt\" signs with the tenant's seal: set {key}.signing"
        ),
        _ => Ok(()),
    }
}

/// How the tenant's connector authenticates at a UK token endpoint: the bank's `token_auth`,
/// else `private_key_jwt` with a seal and the client secret without (as `connector_with` does).
fn effective_token_auth(bank: &BankConfig, own: &TenantCredentials) -> TokenAuth {
    bank.token_auth.unwrap_or(if own.signing.is_some() {
        TokenAuth::PrivateKeyJwt
    } else {
        TokenAuth::ClientSecretBasic
    })
}

/// A tenant's connector at a bank, with the identity it presents and the seal it signs with
/// (to watch and report).
#[derive(Debug)]
pub struct TenantConnector {
    pub tenant: TenantId,
    pub connector: Arc<dyn BankConnector>,
    pub identity: Option<Arc<ClientIdentity>>,
    pub seal: Option<(kontor_banks::IdentityLabel, kontor_banks::CertificateInfo)>,
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
        let signing = own
            .signing
            .as_ref()
            .map(crate::signing::load)
            .transpose()
            .with_context(|| format!("{key}.signing"))?;
        let http = match &identity {
            Some(identity) => {
                let tls = crate::certificates::bank_tls(&key, bank, Some(identity.clone()))?;
                kontor_banks::build_client_with_tls(settings, &tls)
                    .with_context(|| format!("{key}: the bank's HTTP client"))?
            }
            None => shared.clone(),
        };
        let seal = signing
            .as_ref()
            .map(|s| crate::signing::watch_expiry(&bank.id, Some(tenant.as_str()), s))
            .transpose()
            .with_context(|| format!("{key}.signing"))?;
        out.push(TenantConnector {
            seal,
            tenant,
            connector: kontor_banks::connector_with(
                profile,
                http,
                settings.clone(),
                signing.as_ref(),
                bank.token_auth,
            ),
            identity,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const IDENTITY: &str = include_str!("../../tests/fixtures/tpp-identity.pem");

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
            signing: None,
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
                {
                    let mut b = bank(Standard::UkOpenBanking, vec![own(&tenant, Some("c"), None)]);
                    b.tenant_credentials[0].client_secret = None;
                    b
                },
                "needs the tenant's client_secret",
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
            (
                {
                    let mut b = bank(Standard::BerlinGroup, vec![own(&tenant, None, Some(&good))]);
                    b.signing = Some(crate::signing::SigningConfig {
                        qseal_cert: dir.path().join("hub-qseal.pem"),
                        qseal_key: dir.path().join("hub-qseal.key"),
                        kid: None,
                        jws_issuer: None,
                    });
                    b
                },
                "set banks[0].tenant_credentials[0].signing",
            ),
            (
                {
                    let mut b = bank(Standard::UkOpenBanking, vec![own(&tenant, Some("c"), None)]);
                    b.token_auth = Some(TokenAuth::TlsClientAuth);
                    b
                },
                "needs the tenant's certificate",
            ),
            (
                {
                    let mut b = bank(Standard::UkOpenBanking, vec![own(&tenant, Some("c"), None)]);
                    b.token_auth = Some(TokenAuth::PrivateKeyJwt);
                    b
                },
                "signs with the tenant's seal",
            ),
        ];
        for (config, expected) in cases {
            let message = check(config).expect("refused");
            assert!(message.contains(expected), "{message}");
        }
        let mut half = bank(Standard::UkOpenBanking, vec![own(&tenant, Some("c"), None)]);
        half.tenant_credentials[0].client_id = None;
        assert!(
            check(half)
                .unwrap()
                .contains("client_secret needs the client_id")
        );
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

#[cfg(test)]
mod strict_tests;
