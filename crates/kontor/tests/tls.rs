//! `kontor serve` terminating TLS itself (`[server.tls]`): the certificate is rotated the way
//! Kubernetes rotates a mounted Secret (a new directory, the `..data` symlink swapped to it)
//! while clients keep calling; no request fails, new handshakes see the new certificate, and a
//! broken replacement is refused while the one in use stays.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pki::{Leaf, TestCa};
use common::serve_with;
use rustls::pki_types::{CertificateDer, ServerName};

/// A directory laid out as Kubernetes mounts a Secret: `tls.crt` and `tls.key` are symlinks
/// into `..data`, itself a symlink to the current timestamped directory.
struct SecretVolume {
    dir: PathBuf,
    generation: usize,
}

impl SecretVolume {
    fn new(dir: &Path, files: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut volume = Self {
            dir: dir.to_owned(),
            generation: 0,
        };
        volume.publish(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        volume
    }

    /// Writes a new generation and swaps `..data` to it in one rename, as the kubelet does.
    fn publish(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let generation = format!("..2026_12_06_{:04}", self.generation);
        let path = self.dir.join(&generation);
        std::fs::create_dir(&path).unwrap();
        for (name, contents) in files {
            std::fs::write(path.join(name), contents).unwrap();
        }
        let staged = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(&generation, &staged).unwrap();
        std::fs::rename(&staged, self.dir.join("..data")).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A TLS client trusting `ca`.
fn client_config(ca: &TestCa) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der.clone())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = builder.with_no_client_auth();
    Arc::new(config)
}

/// One request on a new TLS connection: the server certificate's serial (hex, as x509-parser
/// prints it without colons) and the whole response.
fn https(
    config: &Arc<rustls::ClientConfig>,
    address: &str,
    request: &str,
) -> Result<(String, String), String> {
    let tcp = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    // A server that closes without close_notify still delivered the response.
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    let leaf = tls
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or("no server certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
    let serial = parsed.raw_serial_as_string().replace(':', "");
    Ok((serial, String::from_utf8_lossy(&response).into_owned()))
}

/// The serial as the client above reads it.
fn serial_of(leaf: &Leaf) -> String {
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf.der).unwrap();
    parsed.raw_serial_as_string().replace(':', "")
}

const HEALTH: &str = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[test]
fn the_server_certificate_rotates_under_load_without_a_failed_request() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Kontor test CA");
    let (first, second) = (ca.server(Some(0x1001)), ca.server(Some(0x2002)));
    let (first_serial, second_serial) = (serial_of(&first), serial_of(&second));
    let mut volume = SecretVolume::new(
        &dir.path().join("tls"),
        &[("tls.crt", &first.cert_pem), ("tls.key", &first.key_pem)],
    );
    let certificate = volume.path("tls.crt");
    let key = volume.path("tls.key");
    let server = serve_with(
        &dir.path().join("data"),
        &[
            ("KONTOR_SERVER__TLS__CERTIFICATE", &certificate),
            ("KONTOR_SERVER__TLS__KEY", &key),
            ("KONTOR_SERVER__TLS__RELOAD_INTERVAL_SECONDS", "1"),
        ],
    );
    let address = server.address.clone();
    let config = client_config(&ca);
    let (serial, response) = https(&config, &address, HEALTH).unwrap();
    assert_eq!(serial, first_serial);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // Load: new connections (new handshakes) back to back from a few threads.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (stop, seen, failures) = (stop.clone(), seen.clone(), failures.clone());
            let (config, address) = (config.clone(), address.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match https(&config, &address, HEALTH) {
                        Ok((serial, response)) if response.starts_with("HTTP/1.1 200") => {
                            seen.lock().unwrap().push((Instant::now(), serial));
                        }
                        Ok((_, response)) => failures.lock().unwrap().push(response),
                        Err(err) => failures.lock().unwrap().push(err),
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    volume.publish(&[("tls.crt", &second.cert_pem), ("tls.key", &second.key_pem)]);
    let rotated = Instant::now();
    let switched = loop {
        let (serial, _) = https(&config, &address, HEALTH).unwrap();
        if serial == second_serial {
            break Instant::now();
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(15),
            "new handshakes never saw the new certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(500));

    // A broken replacement (a key that is not the certificate's): refused, the second stays,
    // also when SIGHUP forces a reload.
    volume.publish(&[("tls.crt", &first.cert_pem), ("tls.key", &second.key_pem)]);
    std::thread::sleep(Duration::from_millis(1500));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    for _ in 0..5 {
        let (serial, _) = https(&config, &address, HEALTH).unwrap();
        assert_eq!(serial, second_serial, "a refused certificate went into use");
    }
    let (_, metrics) = https(
        &config,
        &address,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let count = |result: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("kontor_tls_reloads_total{{result=\"{result}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .map(|n| n.parse::<f64>().unwrap())
            .unwrap_or(0.0)
    };
    assert_eq!(count("reloaded"), 1.0, "{metrics}");
    // Once by the poll, once more when SIGHUP forced a reread.
    assert_eq!(count("refused"), 2.0, "{metrics}");

    let failures = failures.lock().unwrap();
    let seen = seen.lock().unwrap();
    let before = seen.iter().filter(|(_, s)| *s == first_serial).count();
    let after = seen.iter().filter(|(_, s)| *s == second_serial).count();
    eprintln!(
        "rotation under load: {} requests, {} failed, {before} handshakes saw the first certificate, {after} the second; switched {:?} after the swap",
        seen.len() + failures.len(),
        failures.len(),
        switched - rotated
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(
        before > 0 && after > 0,
        "the load did not span the rotation"
    );
    // Once a handshake had seen the new certificate, none saw the old one.
    assert!(
        !seen
            .iter()
            .any(|(at, s)| *at > switched && *s == first_serial),
        "a handshake after the switch saw the old certificate"
    );
}

#[test]
fn bad_certificate_files_stop_the_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&certificate, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    let output = common::kontor(&dir.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KONTOR_SECRETS__KEYS", common::TEST_KEKS)
        .env("KONTOR_SERVER__TLS__CERTIFICATE", &certificate)
        .env("KONTOR_SERVER__TLS__KEY", &key)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.tls"), "{stderr}");
    assert!(stderr.contains("tls.crt"), "{stderr}");
}
