//! What the binary refuses and how it protects what it writes: plain http beyond loopback
//! outside development, generated keys on a PostgreSQL deployment, a key-encryption key
//! generated into the data folder outside development, world-readable files, bad
//! trusted-proxy lists; and the operator's per-tenant redirect URI list.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{kontor, run, serve_with, stdout_json};
use serde_json::json;

/// Runs a command expected to stop at once; one that keeps running (serving, say, when it
/// should have refused) is killed after a minute instead of hanging the suite.
fn run_to_end(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after a minute: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The command failed with exit code 1, nothing on stdout, and `expected` on stderr.
fn refused(output: &Output, expected: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in {stderr}"
    );
    stderr
}

fn write_config(dir: &Path, toml: &str) -> String {
    let file = dir.join("kontor.toml");
    std::fs::write(&file, toml).unwrap();
    file.display().to_string()
}

const HTTP_BANK: &str = r#"
[[banks]]
id = "sonnenbank"
name = "Sonnenbank"
country = "DE"
standard = "berlin-group"
base_url = "http://bank.example/sonnenbank"
"#;

#[test]
fn plain_http_beyond_loopback_is_refused_outside_development() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_end(
        kontor(dir.path())
            .arg("serve")
            .env("KONTOR_SERVER__PUBLIC_URL", "http://hub.example/"),
    );
    let stderr = refused(&output, "server.public_url");
    assert!(stderr.contains("development"), "{stderr}");
    // Listening on every interface without a public URL means an http one.
    let output = run_to_end(kontor(dir.path()).args(["serve", "--listen", "0.0.0.0:0"]));
    refused(&output, "server.public_url is not set");

    let config = write_config(dir.path(), HTTP_BANK);
    let output = run_to_end(kontor(dir.path()).args(["--config", &config, "serve"]));
    refused(&output, "banks[0].base_url (sonnenbank)");
    let output = run_to_end(kontor(dir.path()).args(["--config", &config, "worker"]));
    refused(&output, "banks[0].base_url");
    assert!(
        !dir.path().join("control.db").exists(),
        "nothing was opened"
    );

    // The development switch lets both through, and the hub serves.
    let server = serve_with(
        dir.path(),
        &[
            ("KONTOR_CONFIG", &config),
            ("KONTOR_DEVELOPMENT", "true"),
            ("KONTOR_SERVER__PUBLIC_URL", "http://hub.example/"),
        ],
    );
    assert!(!server.address.is_empty());
}

#[test]
fn https_and_loopback_urls_need_no_switch() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &HTTP_BANK.replace("http://bank.example", "http://127.0.0.1:8090"),
    );
    let printed = run(kontor(dir.path())
        .args(["--config", &config, "config", "print"])
        .env("KONTOR_SERVER__PUBLIC_URL", "https://hub.example/"));
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
}

#[test]
fn keys_are_not_generated_for_a_postgresql_deployment() {
    let dir = tempfile::tempdir().unwrap();
    // Refused before any connection: the server need not exist.
    let postgres = "postgres://kontor@127.0.0.1:1/kontor";
    for command in ["serve", "worker"] {
        let output = run_to_end(
            kontor(dir.path())
                .arg(command)
                .env("KONTOR_DATABASE__CONTROL_URL", postgres),
        );
        refused(
            &output,
            "auth.signing_keys and secrets.keys must be configured",
        );
    }
    let output = run_to_end(
        kontor(dir.path())
            .arg("serve")
            .env("KONTOR_CELLS__UK__URL", postgres)
            .env(
                "KONTOR_CELLS__UK__KEYS_URL",
                "postgres://kontor@127.0.0.1:1/kontor_uk_keys",
            )
            .env(
                "KONTOR_AUTH__SIGNING_KEYS",
                r#"[{id="k1",secret="c2VjcmV0LXNpZ25pbmcta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVz"}]"#,
            ),
    );
    let stderr = refused(&output, "secrets.keys must be configured");
    assert!(!stderr.contains("auth.signing_keys"), "{stderr}");
    assert!(!dir.path().join("secrets").exists(), "no key was generated");
}

#[test]
fn no_key_encryption_key_is_generated_into_the_data_folder_outside_development() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["serve", "worker"] {
        let output = run_to_end(kontor(dir.path()).arg(command));
        let stderr = refused(&output, "secrets.keys is not configured");
        assert!(stderr.contains("kontor demo"), "{stderr}");
        assert!(
            !dir.path().join("secrets/data-encryption.key").exists(),
            "no key was generated"
        );
    }
    // Configured keys (from outside the data folder) are what it asks for.
    let server = serve_with(dir.path(), &[]);
    assert!(!server.address.is_empty());
    assert!(!dir.path().join("secrets/data-encryption.key").exists());
    drop(server);
    // `kontor migrate` still runs without keys; the key canary waits for the first start.
    let output = run_to_end(kontor(dir.path()).arg("migrate"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(unix)]
#[test]
fn databases_and_generated_keys_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // While the hub runs, SQLite's -wal and -shm files exist too. Keys are generated into the
    // data folder in development only.
    let server = serve_with(
        &data,
        &[
            ("KONTOR_DEVELOPMENT", "true"),
            ("KONTOR_SECRETS__KEYS", "[]"),
        ],
    );
    assert_eq!(mode(&data), 0o700, "the data folder");
    let mut checked = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".db") {
            assert_eq!(mode(&path), 0o600, "{name}");
            checked += 1;
        }
    }
    assert!(
        checked >= 3 * 3,
        "db, -wal and -shm of control, de, uk: {checked}"
    );
    assert_eq!(mode(&data.join("secrets")), 0o700);
    for key in ["token-signing.key", "data-encryption.key"] {
        assert_eq!(mode(&data.join("secrets").join(key)), 0o600, "{key}");
    }
    drop(server);
}

#[test]
fn trusted_proxies_are_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(kontor(dir.path())
        .args(["config", "print"])
        .env("KONTOR_SERVER__TRUST_FORWARDED_FOR", "true"));
    refused(&output, "server.trusted_proxies");
    let output = run(kontor(dir.path())
        .args(["config", "print"])
        .env("KONTOR_SERVER__TRUST_FORWARDED_FOR", "true")
        .env(
            "KONTOR_SERVER__TRUSTED_PROXIES",
            r#"["10.0.0.0/8","ingress.internal"]"#,
        ));
    refused(&output, "server.trusted_proxies[1]");
    let output = run(kontor(dir.path())
        .args(["config", "print"])
        .env("KONTOR_SERVER__TRUST_FORWARDED_FOR", "true")
        .env(
            "KONTOR_SERVER__TRUSTED_PROXIES",
            r#"["10.0.0.0/8","192.0.2.7"]"#,
        ));
    assert!(output.status.success());
}

#[test]
fn tenants_update_registers_normalised_redirect_uris() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = stdout_json(&run(
        kontor(dir.path()).args(["tenants", "create", "Acme", "--json"])
    ));
    let id = tenant["tenant_id"].as_str().unwrap();
    let updated = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "update",
        id,
        "--redirect-uri",
        "HTTPS://App.Example:443/linked",
        "--redirect-uri",
        "https://app.example",
        "--json",
    ])));
    assert_eq!(
        updated,
        json!({
            "tenant_id": id,
            "redirect_uris": ["https://app.example/linked", "https://app.example/"],
            "branding": {"display_name": null, "logo_url": null, "accent_color": null},
        })
    );
    let listed = stdout_json(&run(kontor(dir.path()).args(["tenants", "list", "--json"])));
    assert_eq!(listed[0]["redirect_uris"], updated["redirect_uris"]);

    for (args, expected) in [
        (
            vec!["--redirect-uri", "https://user:pw@app.example/"],
            "user information",
        ),
        (vec!["--redirect-uri", "http://app.example/"], "https"),
        (vec![], "nothing to change"),
    ] {
        let output = run(kontor(dir.path())
            .args(["tenants", "update", id])
            .args(&args));
        refused(&output, expected);
    }
    let output = run(kontor(dir.path()).args([
        "tenants",
        "update",
        "ten_00000000000000000000000000",
        "--clear-redirect-uris",
    ]));
    refused(&output, "no tenant");
    // A refused change changed nothing; clearing allows any again.
    let listed = stdout_json(&run(kontor(dir.path()).args(["tenants", "list", "--json"])));
    assert_eq!(listed[0]["redirect_uris"], updated["redirect_uris"]);
    let cleared = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "update",
        id,
        "--clear-redirect-uris",
        "--json",
    ])));
    assert_eq!(cleared["redirect_uris"], json!([]));
}
