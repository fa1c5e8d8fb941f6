//! Signed requests for banks that require them: the third party's seal certificate and key
//! (QSealC for Berlin Group, OBSeal for UK Open Banking), and how the hub authenticates at a UK
//! bank's token endpoint.
//!
//! ```toml
//! [[banks]]
//! # …
//! token_auth = "private_key_jwt"     # UK: or "tls_client_auth"; "client_secret_basic" (sandboxes)
//! [banks.signing]
//! qseal_cert = "/etc/kontor/tpp/qseal.pem"
//! qseal_key = "/etc/kontor/tpp/qseal.key.pem"   # RSA, PKCS #8 or PKCS #1
//! kid = "…"             # UK: the key's id in the directory (default: its RFC 7638 thumbprint)
//! jws_issuer = "…"      # UK: `{org id}/{software statement id}` (default: OU/CN of the certificate)
//! ```
//!
//! With `signing`, a Berlin Group bank gets `Digest`, `Signature` and `TPP-Signature-Certificate`
//! on every request, and a UK bank the FAPI client: PS256 request objects, client assertions and
//! `x-jws-signature`, `id_token`s checked against its JWKS, `private_key_jwt` unless `token_auth`
//! says otherwise. Without it a bank is spoken to as before (unsigned; UK: the client secret).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use kontor_banks::seal::SealKey;
use kontor_banks::uk_open_banking::TokenAuth;
use kontor_banks::{CertificateInfo, IdentityLabel, Signing};
use kontor_domain::bank::Standard;
use serde::{Deserialize, Serialize};

use crate::config::BankConfig;

/// `[banks.signing]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// PEM: the seal certificate (first), optionally followed by its chain.
    pub qseal_cert: PathBuf,
    /// PEM: its RSA private key.
    pub qseal_key: PathBuf,
    pub kid: Option<String>,
    pub jws_issuer: Option<String>,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Reads the seal; fails with what is wrong with the files.
pub fn load(config: &SigningConfig) -> anyhow::Result<Signing> {
    let seal = SealKey::from_pem(&read(&config.qseal_cert)?, &read(&config.qseal_key)?)
        .with_context(|| {
            format!(
                "{} and {}",
                config.qseal_cert.display(),
                config.qseal_key.display()
            )
        })?;
    Ok(Signing {
        seal: Arc::new(seal),
        kid: config.kid.clone(),
        jws_issuer: config.jws_issuer.clone(),
    })
}

/// The seal's certificate, for the expiry metric and `/readyz`: its gauge set (labelled `bank`,
/// `tenant`, `kind = "seal"`), and the label and certificate to list.
pub fn watch_expiry(
    bank: &str,
    tenant: Option<&str>,
    signing: &Signing,
) -> anyhow::Result<(IdentityLabel, CertificateInfo)> {
    let info = CertificateInfo::parse(signing.seal.cert_der())
        .map_err(|e| anyhow::anyhow!("the seal certificate: {e}"))?;
    let label = IdentityLabel {
        bank: bank.to_owned(),
        tenant: tenant.map(str::to_owned),
        kind: "seal",
    };
    kontor_banks::record_expiry(&label, info.not_after);
    Ok((label, info))
}

/// Checks a bank's `signing` and `token_auth`; `key` names the bank's table (`banks[0]`).
pub fn validate(key: &str, bank: &BankConfig) -> anyhow::Result<()> {
    if let Some(signing) = &bank.signing {
        load(signing).with_context(|| format!("{key}.signing"))?;
    }
    let Some(auth) = bank.token_auth else {
        return Ok(());
    };
    if bank.standard != Standard::UkOpenBanking {
        bail!("{key}.token_auth: only UK Open Banking banks have a token endpoint");
    }
    match auth {
        TokenAuth::PrivateKeyJwt if bank.signing.is_none() => {
            bail!("{key}.token_auth = \"private_key_jwt\" signs with the seal: set {key}.signing")
        }
        TokenAuth::TlsClientAuth if bank.tls_identity.is_none() => {
            bail!(
                "{key}.token_auth = \"tls_client_auth\" needs the client certificate: set {key}.tls_identity"
            )
        }
        TokenAuth::ClientSecretBasic if bank.client_secret.is_none() => {
            bail!("{key}.token_auth = \"client_secret_basic\" needs {key}.client_secret")
        }
        _ => {}
    }
    if bank.client_id.is_none() {
        bail!("{key}.token_auth needs {key}.client_id");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kontor_sandbox_bank::SandboxPki;

    use super::*;

    fn bank(standard: Standard) -> BankConfig {
        BankConfig {
            id: "b".into(),
            name: "B".into(),
            country: "GB".into(),
            standard,
            base_url: "https://bank.example".into(),
            client_id: Some("hub".into()),
            client_secret: None,
            decoupled_sca: false,
            logo_url: None,
            tls_identity: None,
            tls_key: None,
            ca_bundle: None,
            payments: true,
            tenant_credentials: Vec::new(),
            signing: None,
            token_auth: None,
        }
    }

    #[test]
    fn seals_and_token_auth_are_checked_and_name_their_key() {
        let pki = SandboxPki::generate().unwrap();
        let demo = pki.demo_tpp().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cert = write("qseal.pem", &demo.qseal.cert_pem());
        let key = write("qseal.key.pem", &demo.qseal.key_pem());
        let wrong_key = write("qwac.key.pem", &demo.qwac.key_pem());
        let signing = |cert: &Path, key: &Path| SigningConfig {
            qseal_cert: cert.to_path_buf(),
            qseal_key: key.to_path_buf(),
            kid: None,
            jws_issuer: None,
        };
        let check = |b: BankConfig| validate("banks[0]", &b).map_err(|e| format!("{e:#}")).err();

        let mut good = bank(Standard::UkOpenBanking);
        good.signing = Some(signing(&cert, &key));
        good.token_auth = Some(TokenAuth::PrivateKeyJwt);
        assert_eq!(check(good.clone()), None);
        let loaded = load(good.signing.as_ref().unwrap()).unwrap();
        assert_eq!(loaded.seal.jwk_thumbprint(), demo.info.jws_kid);

        let mut cases = Vec::new();
        let mut b = good.clone();
        b.signing = Some(signing(&cert, &wrong_key));
        cases.push((b, "banks[0].signing"));
        let mut b = good.clone();
        b.signing = Some(signing(&dir.path().join("missing.pem"), &key));
        cases.push((b, "reading"));
        let mut b = good.clone();
        b.signing = None;
        cases.push((b, "set banks[0].signing"));
        let mut b = good.clone();
        b.token_auth = Some(TokenAuth::TlsClientAuth);
        cases.push((b, "set banks[0].tls_identity"));
        let mut b = good.clone();
        b.token_auth = Some(TokenAuth::ClientSecretBasic);
        cases.push((b, "needs banks[0].client_secret"));
        let mut b = good;
        b.standard = Standard::BerlinGroup;
        cases.push((b, "only UK Open Banking"));
        for (config, expected) in cases {
            let message = check(config).expect("refused");
            assert!(message.contains(expected), "{expected}: {message}");
        }
        // A Berlin Group bank with a seal and nothing else is fine.
        let mut bg = bank(Standard::BerlinGroup);
        bg.signing = Some(signing(&cert, &key));
        assert_eq!(check(bg.clone()), None);

        // The directory lists the seal, for `/readyz`'s expiry warning.
        bg.id = "seal-bank".into();
        let config = crate::config::Config {
            banks: vec![bg],
            ..crate::config::Config::default()
        };
        let directory = crate::wiring::directory(&config).unwrap();
        let listed: Vec<_> = directory
            .certificates()
            .iter()
            .map(|c| (c.label().bank.clone(), c.label().kind, c.info().serial))
            .collect();
        let serial = CertificateInfo::parse(&demo.qseal.cert_der).unwrap().serial;
        assert_eq!(listed, [("seal-bank".to_owned(), "seal", serial)]);
    }
}
