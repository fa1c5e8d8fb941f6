//! The PKI directory of strict mode (`--pki-dir`): PEM files that exist are used, missing ones
//! are generated and written (keys readable by the owner only), nothing is overwritten except
//! `demo-tpp.json`, which describes this run's UK clients.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::issue::{self, IssueError, Issued};
use super::jose::SigningKey;
use super::pki::{
    PkiError, SandboxPki, TppIdentity, demo_info, demo_subject, demo_tpp, files, pem,
};

fn file_error(path: &Path, reason: impl std::fmt::Display) -> PkiError {
    PkiError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn read_cert(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    if !path.exists() {
        return Ok(None);
    }
    CertificateDer::from_pem_file(path)
        .map(|c| Some(c.to_vec()))
        .map_err(|e| file_error(path, format!("not a PEM certificate ({e})")))
}

fn read_key(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    if !path.exists() {
        return Ok(None);
    }
    PrivatePkcs8KeyDer::from_pem_file(path)
        .map(|k| Some(k.secret_pkcs8_der().to_vec()))
        .map_err(|e| file_error(path, format!("not a PKCS#8 PEM private key ({e})")))
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), PkiError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| file_error(path, e))?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| file_error(path, e))
}

impl SandboxPki {
    /// Uses the files in `dir` and generates (and writes) the missing ones. A given TPP CA
    /// without its key gets no demo TPP unless the demo files are there too.
    pub fn load_or_generate(dir: &Path) -> Result<Self, PkiError> {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        let path = |name: &str| dir.join(name);
        let server_ca = match (
            read_cert(&path(files::SERVER_CA))?,
            read_key(&path(files::SERVER_CA_KEY))?,
        ) {
            (Some(cert_der), Some(key_pkcs8)) => Issued {
                cert_der,
                key_pkcs8,
            },
            (None, None) => {
                let ca = issue::ca("Kontor Sandbox Server CA")?;
                write(
                    &path(files::SERVER_CA),
                    &pem("CERTIFICATE", &ca.cert_der),
                    false,
                )?;
                write(
                    &path(files::SERVER_CA_KEY),
                    &pem("PRIVATE KEY", &ca.key_pkcs8),
                    true,
                )?;
                ca
            }
            _ => {
                return Err(file_error(
                    dir,
                    format!(
                        "{} and {} go together",
                        files::SERVER_CA,
                        files::SERVER_CA_KEY
                    ),
                ));
            }
        };
        let (tpp_ca, tpp_ca_key) = match (
            read_cert(&path(files::TPP_CA))?,
            read_key(&path(files::TPP_CA_KEY))?,
        ) {
            (Some(cert), key) => (cert, key),
            (None, None) => {
                let ca = issue::ca("Kontor Sandbox TPP CA")?;
                write(
                    &path(files::TPP_CA),
                    &pem("CERTIFICATE", &ca.cert_der),
                    false,
                )?;
                write(
                    &path(files::TPP_CA_KEY),
                    &pem("PRIVATE KEY", &ca.key_pkcs8),
                    true,
                )?;
                (ca.cert_der, Some(ca.key_pkcs8))
            }
            (None, Some(_)) => {
                return Err(file_error(
                    &path(files::TPP_CA_KEY),
                    format!("there is a key but no {}", files::TPP_CA),
                ));
            }
        };
        let signing_key = match read_key(&path(files::SIGNING_KEY))? {
            Some(key) => key,
            None => {
                let key = super::rsa_keygen::generate_rsa_pkcs8(2048).map_err(IssueError::from)?;
                write(&path(files::SIGNING_KEY), &pem("PRIVATE KEY", &key), true)?;
                key
            }
        };
        SigningKey::from_pkcs8(&signing_key)
            .map_err(|e| file_error(&path(files::SIGNING_KEY), format!("not an RSA key: {e}")))?;
        let demo_tpp = Self::load_or_issue_demo(dir, &tpp_ca, tpp_ca_key.as_deref())?;
        let pki = Self {
            server_ca,
            tpp_ca,
            tpp_ca_key,
            extra_tpp_cas: Vec::new(),
            signing_key,
            demo_tpp,
            dir: Some(dir.to_path_buf()),
        };
        pki.trust_store()?;
        Ok(pki)
    }

    fn load_or_issue_demo(
        dir: &Path,
        tpp_ca: &[u8],
        tpp_ca_key: Option<&[u8]>,
    ) -> Result<Option<TppIdentity>, PkiError> {
        let path = |name: &str| dir.join(name);
        let loaded = (
            read_cert(&path(files::DEMO_QWAC))?,
            read_key(&path(files::DEMO_QWAC_KEY))?,
            read_cert(&path(files::DEMO_QSEAL))?,
            read_key(&path(files::DEMO_QSEAL_KEY))?,
        );
        if let (Some(qwac_cert), Some(qwac_key), Some(qseal_cert), Some(qseal_key)) = loaded {
            let qwac = Issued {
                cert_der: qwac_cert,
                key_pkcs8: qwac_key,
            };
            let qseal = Issued {
                cert_der: qseal_cert,
                key_pkcs8: qseal_key,
            };
            let info = demo_info(&demo_subject(), &qwac, &qseal)?;
            return Ok(Some(TppIdentity { qwac, qseal, info }));
        }
        let Some(key) = tpp_ca_key else {
            tracing::warn!(
                dir = %dir.display(),
                "the TPP CA has no key here: no demo TPP certificates are issued"
            );
            return Ok(None);
        };
        let ca = Issued {
            cert_der: tpp_ca.to_vec(),
            key_pkcs8: key.to_vec(),
        };
        let demo = demo_tpp(&ca)?;
        for (name, label, der, secret) in [
            (files::DEMO_QWAC, "CERTIFICATE", &demo.qwac.cert_der, false),
            (
                files::DEMO_QWAC_KEY,
                "PRIVATE KEY",
                &demo.qwac.key_pkcs8,
                true,
            ),
            (
                files::DEMO_QSEAL,
                "CERTIFICATE",
                &demo.qseal.cert_der,
                false,
            ),
            (
                files::DEMO_QSEAL_KEY,
                "PRIVATE KEY",
                &demo.qseal.key_pkcs8,
                true,
            ),
        ] {
            // A half-written set from an earlier run is replaced as a whole.
            let target = path(name);
            if target.exists() {
                std::fs::remove_file(&target).map_err(|e| file_error(&target, e))?;
            }
            write(&target, &pem(label, der), secret)?;
        }
        Ok(Some(demo))
    }

    /// Writes `demo-tpp.json` into the directory, replacing an older one: it names the UK
    /// clients, which come from the bank configuration of this run.
    pub fn write_demo_info(&self) -> Result<(), PkiError> {
        let (Some(dir), Some(demo)) = (&self.dir, &self.demo_tpp) else {
            return Ok(());
        };
        let target = dir.join(files::DEMO_INFO);
        let text = serde_json::to_string_pretty(&demo.info).map_err(|e| file_error(&target, e))?;
        if target.exists() {
            std::fs::remove_file(&target).map_err(|e| file_error(&target, e))?;
        }
        write(&target, &format!("{text}\n"), false)
    }
}
