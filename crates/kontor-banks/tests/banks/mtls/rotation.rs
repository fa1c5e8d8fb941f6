//! Replacing the hub's certificate files while requests run, as an operator (an atomic rename)
//! or Kubernetes (a secret volume's `..data` symlink swap) does: no request fails, and the bank
//! sees the new certificate on new connections. A rustls server stands in for the bank: it
//! records the client certificate of every connection and closes each after one answer, so
//! that every request is a new handshake.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kontor_banks::{
    BankTls, CertificateInfo, ClientIdentity, HttpSettings, IdentityFiles, IdentityLabel,
    build_client_with_tls,
};
use rcgen::{CertificateParams, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Spec, TestCa, TestCert};

/// A bank that wants a client certificate from `client_ca` and remembers whose it got.
struct Bank {
    url: String,
    server_ca: Vec<u8>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Bank {
    async fn start(client_ca: &TestCa) -> Self {
        let server_ca = TestCa::new("Rotation Server CA");
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, server_ca.issuer())
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(client_ca.cert_der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let record = record.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let serial = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|leaf| CertificateInfo::parse(leaf).unwrap().serial);
                    record.lock().unwrap().push(serial.unwrap_or_default());
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer =
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            url,
            server_ca: server_ca.cert_der.clone(),
            seen,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (up to a generous bound, so that a broken reload fails the test rather than
    /// hanging it) until a connection presented `serial`.
    async fn wait_for(&self, serial: &str) {
        for _ in 0..400 {
            if self.seen().iter().any(|s| s == serial) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the bank never saw {serial}: {:?}", self.seen());
    }
}

/// Requests in a loop from several tasks until told to stop: (answered, failed).
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &reqwest::Client, url: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let tasks = (0..4)
            .map(|_| {
                let (client, url) = (client.clone(), url.to_owned());
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let answered = match client.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                r.text().await.map(|_| ()).map_err(|e| format!("{e:?}"))
                            }
                            Ok(r) => Err(format!("status {}", r.status())),
                            Err(e) => Err(format!("{e:?}")),
                        };
                        match answered {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                eprintln!("request failed: {e}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failed,
            tasks,
        }
    }

    async fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// How the files are replaced.
trait Layout {
    fn files(&self) -> IdentityFiles;
    /// Puts `cert` (with `key`'s private key) in place in one atomic step.
    fn install(&self, cert: &TestCert, key: &TestCert);
}

/// One PEM file with certificate and key, replaced by writing a new file and renaming it.
struct Renamed(PathBuf);

impl Layout for Renamed {
    fn files(&self) -> IdentityFiles {
        IdentityFiles {
            certificate: self.0.join("hub.pem"),
            key: None,
        }
    }

    fn install(&self, cert: &TestCert, key: &TestCert) {
        let tmp = self.0.join(".hub.pem.tmp");
        std::fs::write(&tmp, format!("{}{}", cert.cert_pem, key.key_pem)).unwrap();
        std::fs::rename(&tmp, self.0.join("hub.pem")).unwrap();
    }
}

/// A Kubernetes secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>`, and an
/// update writes a new timestamped folder and swaps `..data` by renaming a new symlink over it.
struct SecretVolume(PathBuf);

impl SecretVolume {
    fn new(dir: &Path) -> Self {
        let volume = Self(dir.to_path_buf());
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), dir.join(name)).unwrap();
        }
        volume
    }
}

impl Layout for SecretVolume {
    fn files(&self) -> IdentityFiles {
        IdentityFiles {
            certificate: self.0.join("tls.crt"),
            key: Some(self.0.join("tls.key")),
        }
    }

    fn install(&self, cert: &TestCert, key: &TestCert) {
        let name = format!("..{}_{}", cert.serial, key.serial);
        let folder = self.0.join(&name);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("tls.crt"), &cert.cert_pem).unwrap();
        std::fs::write(folder.join("tls.key"), &key.key_pem).unwrap();
        let tmp = self.0.join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).unwrap();
        std::fs::rename(&tmp, self.0.join("..data")).unwrap();
    }
}

async fn rotate_under_load(layout: &dyn Layout) {
    let ca = TestCa::new("Rotation TPP CA");
    let [a, b, broken, c] = std::array::from_fn(|_| ca.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"])));
    let bank = Bank::start(&ca).await;
    layout.install(&a, &a);
    let identity = ClientIdentity::load(
        IdentityLabel {
            bank: "rotation-bank".into(),
            tenant: None,
            kind: "tls",
        },
        layout.files(),
    )
    .unwrap();
    identity.watch(Duration::from_millis(50));
    let client = build_client_with_tls(
        &HttpSettings::default(),
        &BankTls {
            identity: Some(identity.clone()),
            ca_bundle: vec![CertificateDer::from(bank.server_ca.clone())],
        },
    )
    .unwrap();
    let load = Load::start(&client, &bank.url);
    bank.wait_for(&a.serial).await;

    layout.install(&b, &b);
    bank.wait_for(&b.serial).await;

    // A certificate with another certificate's key: refused, and B stays in use.
    layout.install(&broken, &a);
    let before = bank.seen().len();
    while bank.seen().len() < before + 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(identity.info().serial, b.serial);

    layout.install(&c, &c);
    bank.wait_for(&c.serial).await;
    let settled = bank.seen().len();
    while bank.seen().len() < settled + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ok, failed) = load.stop().await;

    let seen = bank.seen();
    assert_eq!(failed, 0, "{ok} answered, {failed} failed");
    assert!(
        ok >= seen.len().saturating_sub(4),
        "{ok} answered, {} connections",
        seen.len()
    );
    assert!(
        !seen.contains(&broken.serial),
        "the refused certificate was presented"
    );
    let first_b = seen.iter().position(|s| *s == b.serial).unwrap();
    let first_c = seen.iter().position(|s| *s == c.serial).unwrap();
    assert!(first_b < first_c);
    // Every connection made after the last rotation settled presents C.
    assert!(
        seen[settled..].iter().all(|s| *s == c.serial),
        "{:?}",
        &seen[settled..]
    );
    assert_eq!(identity.info().serial, c.serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_by_atomic_rename_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    rotate_under_load(&Renamed(dir.path().to_path_buf())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_a_kubernetes_secret_volume_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    rotate_under_load(&SecretVolume::new(dir.path())).await;
}
