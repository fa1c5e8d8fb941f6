//! The sandbox's test PKI: a server CA (HTTPS), a TPP CA (the "competent authority" whose
//! certificates the sandbox accepts), the sandbox's own signing key (`id_token`s, response
//! signatures) and a demo TPP with both PSD2 roles whose certificates the hub can use. Kept in
//! a directory as PEM files: files that exist are used, missing ones are generated and written,
//! nothing is overwritten.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use super::certs::{CertProblem, TppCertificate, TrustStore};
use super::issue::{self, IssueError, Issued, TppSubject};
use super::jose::SigningKey;
use super::qc::{PspRole, QcType};

/// File names inside the PKI directory.
pub mod files {
    /// The server CA certificate: trust it to reach the sandbox over HTTPS.
    pub const SERVER_CA: &str = "server-ca.pem";
    pub const SERVER_CA_KEY: &str = "server-ca.key.pem";
    /// The TPP CA certificate: client and seal certificates must chain to it.
    pub const TPP_CA: &str = "tpp-ca.pem";
    /// Its key, to issue more TPP certificates (optional when the CA is given).
    pub const TPP_CA_KEY: &str = "tpp-ca.key.pem";
    /// The sandbox's RSA key for `id_token`s and response signatures.
    pub const SIGNING_KEY: &str = "sandbox-signing.key.pem";
    /// The demo TPP's TLS client certificate (QWAC/OBWAC) and key.
    pub const DEMO_QWAC: &str = "demo-tpp-qwac.pem";
    pub const DEMO_QWAC_KEY: &str = "demo-tpp-qwac.key.pem";
    /// The demo TPP's seal certificate (QSealC/OBSeal) and RSA key.
    pub const DEMO_QSEAL: &str = "demo-tpp-qseal.pem";
    pub const DEMO_QSEAL_KEY: &str = "demo-tpp-qseal.key.pem";
    /// What a client needs to know about the demo TPP (identifiers, `kid`, `keyId`).
    pub const DEMO_INFO: &str = "demo-tpp.json";
}

/// The UK trust anchor named in `http://openbanking.org.uk/tan`.
pub const TRUST_ANCHOR: &str = "openbanking.org.uk";

/// Why the PKI could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("TPP CA: {0}")]
    TrustAnchor(CertProblem),
    #[error("{0}")]
    Key(String),
}

/// Facts about a TPP's certificates (the demo TPP's are written as `demo-tpp.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TppInfo {
    pub organization: String,
    /// `organizationIdentifier` of both certificates.
    pub organization_identifier: String,
    pub roles: Vec<PspRole>,
    pub nca_name: String,
    pub nca_id: String,
    /// UK directory identifiers: `http://openbanking.org.uk/iss` is `{org_id}/{software_statement_id}`.
    pub org_id: String,
    pub software_statement_id: String,
    /// UK `x-jws-signature`, request objects and client assertions: the `kid` of the seal key.
    pub jws_kid: String,
    pub jws_iss: String,
    pub jws_tan: String,
    /// Berlin Group `Signature` `keyId` of the seal certificate.
    pub berlin_group_key_id: String,
    /// RFC 4514 subject of the QWAC (what `tls_client_auth` compares).
    pub qwac_subject_dn: String,
    /// The demo TPP's registration at each UK bank (filled in when the sandbox starts).
    #[serde(default)]
    pub uk_clients: Vec<UkClientInfo>,
}

/// A TPP's OAuth2 client at one UK bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UkClientInfo {
    pub bank_id: String,
    pub client_id: String,
    /// `private_key_jwt` or `tls_client_auth`.
    pub token_endpoint_auth_method: String,
    pub issuer: String,
    pub token_url: String,
    pub jwks_url: String,
}

/// A TPP's certificates and keys: the QWAC (TLS client, P-256) and the QSealC (signatures,
/// RSA 2048), both with the PSD2 QC statement.
#[derive(Debug, Clone)]
pub struct TppIdentity {
    pub qwac: Issued,
    pub qseal: Issued,
    pub info: TppInfo,
}

/// Everything strict mode needs to know about certificates and keys.
#[derive(Clone)]
pub struct SandboxPki {
    pub(super) server_ca: Issued,
    pub(super) tpp_ca: Vec<u8>,
    pub(super) tpp_ca_key: Option<Vec<u8>>,
    pub(super) extra_tpp_cas: Vec<Vec<u8>>,
    pub(super) signing_key: Vec<u8>,
    pub(super) demo_tpp: Option<TppIdentity>,
    pub(super) dir: Option<PathBuf>,
}

/// Private keys never print.
impl std::fmt::Debug for SandboxPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxPki")
            .field("dir", &self.dir)
            .field("extra_tpp_cas", &self.extra_tpp_cas.len())
            .field(
                "demo_tpp",
                &self.demo_tpp.as_ref().map(|d| &d.info.organization),
            )
            .finish_non_exhaustive()
    }
}

/// PEM text of one DER object.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(super) fn demo_subject() -> TppSubject {
    TppSubject {
        organization: "Kontor Demo TPP".into(),
        organization_identifier: "PSDDE-BAFIN-123456".into(),
        org_id: "kontor-demo-tpp".into(),
        software_statement_id: "kontor-hub".into(),
        country: "DE".into(),
        roles: vec![PspRole::Pi, PspRole::Ai],
        nca_name: "Federal Financial Supervisory Authority".into(),
        nca_id: "DE-BAFIN".into(),
    }
}

pub(super) fn demo_tpp(tpp_ca: &Issued) -> Result<TppIdentity, PkiError> {
    identity(tpp_ca, &demo_subject())
}

fn identity(tpp_ca: &Issued, subject: &TppSubject) -> Result<TppIdentity, PkiError> {
    let qwac = issue::tpp(tpp_ca, subject, QcType::Web)?;
    let qseal = issue::tpp(tpp_ca, subject, QcType::Seal)?;
    let info = demo_info(subject, &qwac, &qseal)?;
    Ok(TppIdentity { qwac, qseal, info })
}

pub(super) fn demo_info(
    subject: &TppSubject,
    qwac: &Issued,
    qseal: &Issued,
) -> Result<TppInfo, PkiError> {
    let parse = |der: &[u8]| TppCertificate::parse(der).map_err(PkiError::TrustAnchor);
    let seal = parse(&qseal.cert_der)?;
    let wac = parse(&qwac.cert_der)?;
    let kid = SigningKey::from_pkcs8(&qseal.key_pkcs8)
        .map_err(|e| PkiError::Key(format!("the seal key is not an RSA key: {e}")))?
        .kid;
    Ok(TppInfo {
        organization: subject.organization.clone(),
        organization_identifier: subject.organization_identifier.clone(),
        roles: subject.roles.clone(),
        nca_name: subject.nca_name.clone(),
        nca_id: subject.nca_id.clone(),
        org_id: subject.org_id.clone(),
        software_statement_id: subject.software_statement_id.clone(),
        jws_kid: kid,
        jws_iss: format!("{}/{}", subject.org_id, subject.software_statement_id),
        jws_tan: TRUST_ANCHOR.into(),
        berlin_group_key_id: format!("SN={},CA={}", seal.serial_hex(), seal.issuer.to_rfc4514()),
        qwac_subject_dn: wac.subject.to_rfc4514(),
        uk_clients: Vec::new(),
    })
}

impl SandboxPki {
    /// A new PKI in memory: both CAs, the signing key and the demo TPP.
    pub fn generate() -> Result<Self, PkiError> {
        let server_ca = issue::ca("Kontor Sandbox Server CA")?;
        let tpp_ca = issue::ca("Kontor Sandbox TPP CA")?;
        let signing_key = super::rsa_keygen::generate_rsa_pkcs8(2048).map_err(IssueError::from)?;
        let demo = demo_tpp(&tpp_ca)?;
        Ok(Self {
            server_ca,
            tpp_ca: tpp_ca.cert_der,
            tpp_ca_key: Some(tpp_ca.key_pkcs8),
            extra_tpp_cas: Vec::new(),
            signing_key,
            demo_tpp: Some(demo),
            dir: None,
        })
    }

    /// Also accepts TPP certificates issued by this CA (DER), besides the sandbox's own.
    pub fn trust_tpp_ca(mut self, ca_der: impl Into<Vec<u8>>) -> Self {
        self.extra_tpp_cas.push(ca_der.into());
        self
    }

    /// The directory the files are in, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn server_ca_der(&self) -> &[u8] {
        &self.server_ca.cert_der
    }

    pub fn server_ca_pem(&self) -> String {
        pem("CERTIFICATE", &self.server_ca.cert_der)
    }

    pub fn tpp_ca_der(&self) -> &[u8] {
        &self.tpp_ca
    }

    /// The TPP CA's key (PKCS#8), when the sandbox has it: to issue more TPP certificates.
    pub fn tpp_ca_key_pkcs8(&self) -> Option<&[u8]> {
        self.tpp_ca_key.as_deref()
    }

    pub fn demo_tpp(&self) -> Option<&TppIdentity> {
        self.demo_tpp.as_ref()
    }

    /// Issues another TPP's QWAC and QSealC from the TPP CA (for tests with several TPPs, such
    /// as one per tenant); needs the CA's key.
    pub fn issue_tpp(&self, subject: &TppSubject) -> Result<TppIdentity, PkiError> {
        let key = self
            .tpp_ca_key
            .clone()
            .ok_or_else(|| PkiError::Key("the TPP CA's key is not available here".into()))?;
        let ca = Issued {
            cert_der: self.tpp_ca.clone(),
            key_pkcs8: key,
        };
        identity(&ca, subject)
    }

    /// The TPP CAs as a trust store.
    pub fn trust_store(&self) -> Result<TrustStore, PkiError> {
        let ders: Vec<CertificateDer<'_>> = std::iter::once(&self.tpp_ca)
            .chain(&self.extra_tpp_cas)
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        TrustStore::new(&ders).map_err(PkiError::TrustAnchor)
    }

    /// Subjects of the TPP CAs (the TLS server's hint of acceptable issuers).
    pub fn tpp_ca_ders(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.tpp_ca.clone())
            .chain(self.extra_tpp_cas.iter().cloned())
            .collect()
    }

    pub fn signing_key(&self) -> Result<SigningKey, PkiError> {
        SigningKey::from_pkcs8(&self.signing_key).map_err(|e| PkiError::File {
            path: files::SIGNING_KEY.into(),
            reason: e.to_string(),
        })
    }

    /// A server certificate for `names`, issued now by the server CA: (chain, key).
    pub fn server_identity(&self, names: &[String]) -> Result<(Vec<Vec<u8>>, Vec<u8>), PkiError> {
        let issued = issue::server(&self.server_ca, names)?;
        Ok((
            vec![issued.cert_der, self.server_ca.cert_der.clone()],
            issued.key_pkcs8,
        ))
    }

    /// Records the demo TPP's UK clients (known once the banks are).
    pub(crate) fn set_demo_uk_clients(&mut self, clients: Vec<UkClientInfo>) {
        if let Some(demo) = &mut self.demo_tpp {
            demo.info.uk_clients = clients;
        }
    }
}
