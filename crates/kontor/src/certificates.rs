//! The hub's certificates at banks, from configuration: each bank's (and each tenant
//! registration's) TLS client identity and CA bundle, the PSD2 role check made at startup, and
//! the report `kontor banks check` and `kontor config print` show.
//!
//! ```toml
//! [[banks]]
//! tls_identity = "/etc/kontor/tls/sonnenbank/tls.crt"  # chain, leaf first (with the key, or:)
//! tls_key = "/etc/kontor/tls/sonnenbank/tls.key"
//! ca_bundle = "/etc/kontor/tls/sonnenbank-ca.pem"      # besides the system's roots
//! payments = true                                      # then the certificate needs PSP_PI
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use kontor_banks::{
    BankTls, CertificateInfo, ClientIdentity, IdentityFiles, IdentityLabel, PspRole,
};
use kontor_domain::bank::Standard;
use serde::Serialize;

use crate::config::BankConfig;
use crate::tpp::TenantCredentials;

pub use kontor_banks::EXPIRY_WARNING_DAYS;

/// Where one registration's certificate files are: the bank's own, or a tenant's there.
fn files(certificate: Option<&Path>, key: Option<&Path>) -> anyhow::Result<Option<IdentityFiles>> {
    match (certificate, key) {
        (Some(certificate), key) => Ok(Some(IdentityFiles {
            certificate: certificate.to_path_buf(),
            key: key.map(Path::to_path_buf),
        })),
        (None, Some(_)) => bail!("tls_key is set without tls_identity"),
        (None, None) => Ok(None),
    }
}

/// Loads one registration's identity, if it has one, and checks its PSD2 roles against what
/// the bank is used for.
pub fn identity(
    key: &str,
    bank: &BankConfig,
    tenant: Option<&TenantCredentials>,
) -> anyhow::Result<Option<Arc<ClientIdentity>>> {
    let (certificate, private) = match tenant {
        Some(own) => (own.tls_identity.as_deref(), own.tls_key.as_deref()),
        None => (bank.tls_identity.as_deref(), bank.tls_key.as_deref()),
    };
    let Some(files) = files(certificate, private).with_context(|| key.to_owned())? else {
        return Ok(None);
    };
    let label = IdentityLabel {
        bank: bank.id.clone(),
        tenant: tenant.map(|t| t.tenant_id.clone()),
        kind: "tls",
    };
    let identity =
        ClientIdentity::load(label, files).with_context(|| format!("{key}.tls_identity"))?;
    let info = identity.info();
    check_roles(key, bank, &info)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let status = expiry_status(info.not_after, now);
    if status != "ok" {
        tracing::warn!(
            bank = %bank.id,
            tenant = tenant.map(|t| t.tenant_id.as_str()),
            serial = %info.serial,
            not_after = info.not_after,
            status,
            "{key}: the bank's TLS client certificate expires within {EXPIRY_WARNING_DAYS} days or has expired"
        );
    }
    Ok(Some(identity))
}

/// A bank used for payments needs a certificate with `PSP_PI`. A certificate carrying a PSD2
/// statement must hold the role; one without any (a UK OBWAC) is accepted at a UK bank, while a
/// Berlin Group bank (PSD2, eIDAS) always needs the statement.
pub fn check_roles(key: &str, bank: &BankConfig, info: &CertificateInfo) -> anyhow::Result<()> {
    if !bank.payments || info.has_role(PspRole::PaymentInitiation) {
        return Ok(());
    }
    if info.psd2.is_none() && bank.standard == Standard::UkOpenBanking {
        return Ok(());
    }
    bail!(
        "{key}: bank {:?} is configured for payments, but its TLS certificate (serial {}, {}) \
         lacks the PSD2 role PSP_PI (it has: {}). Configure a certificate issued with PSP_PI, \
         or set payments = false for this bank",
        bank.id,
        info.serial,
        info.subject,
        info.roles_text()
    )
}

/// The CA bundle trusted for `bank`'s server certificate.
pub fn bank_tls(
    key: &str,
    bank: &BankConfig,
    identity: Option<Arc<ClientIdentity>>,
) -> anyhow::Result<BankTls> {
    let ca_bundle = match &bank.ca_bundle {
        Some(path) => {
            kontor_banks::read_ca_bundle(path).with_context(|| format!("{key}.ca_bundle"))?
        }
        None => Vec::new(),
    };
    Ok(BankTls {
        identity,
        ca_bundle,
    })
}

/// One certificate as `kontor banks check` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    pub bank: String,
    pub tenant: Option<String>,
    pub kind: &'static str,
    pub file: String,
    #[serde(flatten)]
    pub info: CertificateInfo,
    /// `ok`, `expiring` (within [`EXPIRY_WARNING_DAYS`]) or `expired`.
    pub status: &'static str,
}

/// How a certificate's validity stands at `now` (Unix seconds).
pub fn expiry_status(not_after: i64, now: i64) -> &'static str {
    kontor_banks::ExpiryStatus::at(not_after, now).as_str()
}

/// Every configured certificate, read now.
pub fn report(banks: &[BankConfig]) -> anyhow::Result<Vec<CertificateReport>> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out = Vec::new();
    for (i, bank) in banks.iter().enumerate() {
        let registrations = std::iter::once(None).chain(bank.tenant_credentials.iter().map(Some));
        for (j, tenant) in registrations.enumerate() {
            let key = match tenant {
                None => format!("banks[{i}]"),
                Some(_) => format!("banks[{i}].tenant_credentials[{}]", j - 1),
            };
            if let Some(identity) = identity(&key, bank, tenant)? {
                let info = identity.info();
                out.push(CertificateReport {
                    bank: bank.id.clone(),
                    tenant: tenant.map(|t| t.tenant_id.clone()),
                    kind: "tls",
                    file: identity.files().certificate.display().to_string(),
                    status: expiry_status(info.not_after, now),
                    info,
                });
            }
        }
    }
    Ok(out)
}

/// The report as lines of text (TOML comments for `config print`, plain for `banks check`).
pub fn describe(report: &CertificateReport) -> String {
    let expires = time::OffsetDateTime::from_unix_timestamp(report.info.not_after)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| report.info.not_after.to_string());
    let authority = report.info.psd2.as_ref().map_or_else(
        || "no PSD2 statement".to_owned(),
        |p| format!("{} ({})", p.nca_name, p.nca_id),
    );
    format!(
        "{bank}{tenant} {kind}: {subject}; organizationIdentifier {org}; roles {roles}; \
         authority {authority}; serial {serial}; expires {expires} [{status}]",
        bank = report.bank,
        tenant = report
            .tenant
            .as_deref()
            .map(|t| format!(" (tenant {t})"))
            .unwrap_or_default(),
        kind = report.kind,
        subject = report.info.subject,
        org = report
            .info
            .organization_identifier
            .as_deref()
            .unwrap_or("none"),
        roles = report.info.roles_text(),
        serial = report.info.serial,
        status = report.status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed P-256 certificate with a PSD2 QC statement holding `roles` (none at all
    /// for `None`), written with its key to `dir/name.pem`.
    fn certificate(dir: &Path, name: &str, roles: Option<&[u8]>) -> std::path::PathBuf {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag, u8::try_from(content.len()).unwrap()];
            out.extend_from_slice(content);
            out
        }
        // 0.4.0.19495 …; role n is 0.4.0.19495.1.n (2 PSP_PI, 3 PSP_AI).
        let arc = [0x04, 0x00, 0x81, 0x98, 0x27];
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if let Some(roles) = roles {
            let roles: Vec<u8> = roles
                .iter()
                .flat_map(|n| {
                    let oid = tlv(0x06, &[&arc[..], &[0x01, *n]].concat());
                    tlv(0x30, &[oid, tlv(0x0c, b"role")].concat())
                })
                .collect();
            let info = [
                tlv(0x30, &roles),
                tlv(0x0c, b"Authority"),
                tlv(0x0c, b"XX-NCA"),
            ];
            let statement = tlv(
                0x30,
                &[
                    tlv(0x06, &[&arc[..], &[0x02]].concat()),
                    tlv(0x30, &info.concat()),
                ]
                .concat(),
            );
            params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 3],
                tlv(0x30, &statement),
            )];
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        path
    }

    fn bank(standard: Standard, payments: bool, identity: &Path) -> BankConfig {
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
            tls_identity: Some(identity.to_path_buf()),
            tls_key: None,
            ca_bundle: None,
            payments,
            tenant_credentials: Vec::new(),
            signing: None,
            token_auth: None,
        }
    }

    #[test]
    fn a_payments_bank_needs_psp_pi() {
        let dir = tempfile::tempdir().unwrap();
        let both = certificate(dir.path(), "both", Some(&[3, 2]));
        let ai = certificate(dir.path(), "ai", Some(&[3]));
        let plain = certificate(dir.path(), "plain", None);
        let refused = |b: BankConfig| {
            identity("banks[0]", &b, None)
                .err()
                .map(|e| format!("{e:#}"))
        };

        assert_eq!(refused(bank(Standard::BerlinGroup, true, &both)), None);
        let message = refused(bank(Standard::BerlinGroup, true, &ai)).expect("refused");
        assert!(
            message.contains("banks[0]")
                && message.contains("lacks the PSD2 role PSP_PI")
                && message.contains("it has: PSP_AI"),
            "{message}"
        );
        let message = refused(bank(Standard::BerlinGroup, true, &plain)).expect("refused");
        assert!(message.contains("it has: none"), "{message}");
        // A UK OBWAC carries no PSD2 statement; one that does must hold the role.
        assert_eq!(refused(bank(Standard::UkOpenBanking, true, &plain)), None);
        assert!(refused(bank(Standard::UkOpenBanking, true, &ai)).is_some());
        // Account information only: any certificate.
        assert_eq!(refused(bank(Standard::BerlinGroup, false, &ai)), None);

        let shown = report(&[bank(Standard::BerlinGroup, true, &both)]).unwrap();
        let line = describe(&shown[0]);
        assert!(
            line.contains("roles PSP_PI, PSP_AI") && line.contains("Authority (XX-NCA)"),
            "{line}"
        );
        assert_eq!(shown[0].status, "ok");
    }

    #[test]
    fn expiry_turns_to_a_warning_fourteen_days_ahead() {
        let day = 86_400;
        assert_eq!(expiry_status(100 * day, 0), "ok");
        assert_eq!(expiry_status(15 * day, 0), "ok");
        assert_eq!(expiry_status(14 * day, 0), "expiring");
        assert_eq!(expiry_status(1, 0), "expiring");
        assert_eq!(expiry_status(0, 0), "expired");
        assert_eq!(expiry_status(-5, 0), "expired");
    }
}
