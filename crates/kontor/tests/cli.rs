//! The command-line contract operators and scripts rely on, tested against the built binary:
//! JSON output on stdout, non-zero exit codes with reasons on stderr, layered configuration with
//! secrets masked, and a graceful stop on SIGTERM.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{http_get, kontor, run, serve_with, stdout_json, worker_with};
use serde_json::Value;

#[test]
fn tenants_create_prints_one_json_object_and_stores_only_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let created = stdout_json(&run(kontor(dir.path()).args([
        "tenants",
        "create",
        "Acme Budget",
        "--json",
    ])));
    let object = created.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["client_id", "client_secret", "tenant_id"]);
    let secret = created["client_secret"].as_str().unwrap();
    assert!(created["tenant_id"].as_str().unwrap().starts_with("ten_"));
    assert!(created["client_id"].as_str().unwrap().starts_with("cli_"));

    // The secret appears nowhere in the database files; its hash does.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("control.db") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!stored.is_empty());
    let haystack = String::from_utf8_lossy(&stored);
    assert!(
        !haystack.contains(secret),
        "the client secret is stored in clear"
    );
    assert!(haystack.contains("sha256:"), "no hash stored");

    let listed = stdout_json(&run(kontor(dir.path()).args(["tenants", "list", "--json"])));
    assert_eq!(listed[0]["tenant_id"], created["tenant_id"]);
    assert_eq!(listed[0]["name"], "Acme Budget");
}

#[test]
fn clients_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = stdout_json(&run(
        kontor(dir.path()).args(["tenants", "create", "Acme", "--json"])
    ));
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let client = stdout_json(&run(kontor(dir.path()).args([
        "clients",
        "create",
        "--tenant",
        tenant_id,
        "--scopes",
        "users:read",
        "--json",
    ])));
    assert_eq!(client["scopes"], "users:read");
    assert!(
        client["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("ksec_")
    );
    let client_id = client["client_id"].as_str().unwrap();

    let revoked = stdout_json(&run(
        kontor(dir.path()).args(["clients", "revoke", client_id, "--json"])
    ));
    assert!(revoked["revoked_at"].is_string());
    let listed = stdout_json(&run(
        kontor(dir.path()).args(["clients", "list", "--tenant", tenant_id, "--json"])
    ));
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let missing = run(kontor(dir.path()).args([
        "clients",
        "create",
        "--tenant",
        "ten_00000000000000000000000000",
    ]));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no tenant"));
    let bad_scope = run(kontor(dir.path()).args([
        "clients", "create", "--tenant", tenant_id, "--scopes", "root",
    ]));
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("scope"));
}

#[test]
fn migrate_reports_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let first = stdout_json(&run(kontor(dir.path()).args(["migrate", "--json"])));
    for db in ["control", "cell:de", "cell:uk"] {
        assert!(
            !first[db].as_array().unwrap().is_empty(),
            "{db} got no migrations"
        );
    }
    let second = stdout_json(&run(kontor(dir.path()).args(["migrate", "--json"])));
    for db in ["control", "cell:de", "cell:uk"] {
        assert_eq!(second[db], serde_json::json!([]), "{db}");
    }
}

#[test]
fn a_new_cell_is_migrated_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kontor.toml");
    std::fs::write(
        &file,
        "[cells.de]\n[cells.uk]\n[cells.de-2]\nstate = \"draining\"\n\
         tenants = [\"ten_0000000000000000000000000p\"]\n",
    )
    .unwrap();
    let config = file.to_str().unwrap();
    let applied = stdout_json(&run(
        kontor(dir.path()).args(["--config", config, "migrate", "--json"])
    ));
    for db in ["cell:de", "cell:de-2", "cell:uk", "keys:de-2"] {
        assert!(
            !applied[db].as_array().unwrap().is_empty(),
            "{db} got no migrations: {applied}"
        );
    }
    assert!(dir.path().join("cell-de-2.db").is_file());
    assert!(dir.path().join("keys/de-2.db").is_file());
    let listed = stdout_json(&run(
        kontor(dir.path()).args(["--config", config, "cells", "list", "--json"])
    ));
    let cells = listed.as_array().unwrap();
    let names: Vec<&str> = cells.iter().map(|c| c["cell"].as_str().unwrap()).collect();
    assert_eq!(names, ["de-1", "de-2", "uk-1"]);
    let second = &cells[1];
    assert_eq!(second["region"], "de");
    assert_eq!(second["state"], "draining");
    assert_eq!(
        second["tenants"],
        serde_json::json!(["ten_0000000000000000000000000p"])
    );
    assert_eq!(second["users"], 0);
    assert_eq!(second["rows"]["transactions"], 0);
    assert!(second["bytes"].as_u64().unwrap() > 0, "{second}");
    assert_eq!(cells[0]["state"], "open");
    let text = run(kontor(dir.path()).args(["--config", config, "cells", "list"]));
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("de-2") && text.contains("draining"), "{text}");
}

#[test]
fn config_print_applies_every_layer_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kontor.toml");
    std::fs::write(
        &file,
        r#"
[server]
listen = "127.0.0.1:9000"
body_limit_bytes = 2048

[cells.uk]
url = "postgres://kontor:file-password@db.uk.internal/kontor_uk"
keys_url = "postgres://kontor:file-password@db.uk.internal/kontor_uk_keys"

[[auth.signing_keys]]
id = "k2026"
secret = "c2VjcmV0LXNpZ25pbmcta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVz"
"#,
    )
    .unwrap();
    let output = run(kontor(dir.path())
        .args(["--config", file.to_str().unwrap(), "config", "print"])
        .env("KONTOR_SERVER__BODY_LIMIT_BYTES", "4096")
        .env(
            "KONTOR_CELLS__DE__URL",
            "postgres://kontor:env-password@db.de.internal/kontor_de",
        )
        .env(
            "KONTOR_CELLS__DE__KEYS_URL",
            "postgres://kontor:env-password@db.de.internal/kontor_de_keys",
        ));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let printed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        printed["server"]["listen"].as_str(),
        Some("127.0.0.1:9000"),
        "from the file"
    );
    assert_eq!(
        printed["server"]["body_limit_bytes"].as_integer(),
        Some(4096),
        "env beats file"
    );
    assert!(
        printed["cells"]["de"]["url"]
            .as_str()
            .unwrap()
            .contains("db.de.internal")
    );
    for secret in ["file-password", "env-password", "c2VjcmV0LXNpZ25pbmcta2V5"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("********"));
}

#[test]
fn bad_configuration_fails_with_the_reason_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["config", "print"],
            vec![("KONTOR_CELLS__U_K__URL", "sqlite://x.db")],
            "cells",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_SERVER__LISTEN", "not-an-address")],
            "listen",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_AUTH__TOKEN_TTL_SECONDS", "5")],
            "token_ttl_seconds",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_CELLS__UK__URL", "mysql://db/x")],
            "cells.uk.url",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_WORKER__LEASE_SECONDS", "2")],
            "worker.lease_seconds",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_SERVER__BANK_DEADLINE_MS", "10")],
            "server.bank_deadline_ms",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_WEBHOOKS__LEASE_SECONDS", "15")],
            "webhooks.lease_seconds",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_SERVER__HEADER_READ_TIMEOUT_SECONDS", "0")],
            "server.header_read_timeout_seconds",
        ),
        (
            vec!["config", "print"],
            vec![("KONTOR_RATE_LIMITS__MAX_TRACKED_KEYS", "5")],
            "rate_limits.max_tracked_keys",
        ),
        (
            vec!["--config", "/nonexistent/kontor.toml", "config", "print"],
            vec![],
            "does not exist",
        ),
    ];
    for (args, env, expected) in cases {
        let mut cmd = kontor(dir.path());
        cmd.args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let output = run(&mut cmd);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?} {env:?}: {stderr}");
        assert!(
            stderr.to_lowercase().contains(expected),
            "{args:?} {env:?}: expected {expected:?} in {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    let unknown = dir.path().join("typo.toml");
    std::fs::write(&unknown, "[server]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap();
    let output =
        run(kontor(dir.path()).args(["--config", unknown.to_str().unwrap(), "config", "print"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_addr"));

    // A tenant's own credentials at a Berlin Group bank need its certificate.
    let banks = dir.path().join("banks.toml");
    std::fs::write(
        &banks,
        "[[banks]]\nid = \"sonnenbank\"\nname = \"Sonnenbank\"\ncountry = \"DE\"\n\
         standard = \"berlin-group\"\nbase_url = \"https://bank.example\"\n\
         [[banks.tenant_credentials]]\ntenant_id = \"ten_01h8x3k4q9c2m7v5t6r8w0y1z2\"\n",
    )
    .unwrap();
    let output =
        run(kontor(dir.path()).args(["--config", banks.to_str().unwrap(), "config", "print"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("banks[0].tenant_credentials[0]") && stderr.contains("tls_identity"),
        "{stderr}"
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = stdout_json(&run(
        kontor(dir.path()).args(["tenants", "create", "Acme", "--json"])
    ));
    // No drain: this is about the stop that follows it.
    let mut server = serve_with(dir.path(), &[("KONTOR_SERVER__DRAIN_SECONDS", "0")]);
    let token = token(&server.address, &tenant);

    // Start a request and send only half of its body.
    let body = r#"{"external_id":"in-flight","region":"uk"}"#;
    let (head, tail) = body.split_at(10);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /v1/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    stream.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        TcpStream::connect(&server.address).is_err(),
        "still accepting connections"
    );
}

#[test]
fn migrate_plan_shows_what_would_run_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plan = stdout_json(&run(
        kontor(dir.path()).args(["migrate", "--plan", "--json"])
    ));
    let databases: Vec<&String> = plan.as_object().unwrap().keys().collect();
    assert_eq!(
        databases,
        ["cell:de", "cell:uk", "control", "keys:de", "keys:uk"]
    );
    for (name, pending) in plan.as_object().unwrap() {
        let pending = pending.as_array().unwrap();
        assert!(
            !pending.is_empty(),
            "{name}: a fresh database lacks every migration"
        );
        assert_eq!(pending[0]["version"], 1, "{name}");
        assert!(
            !pending[0]["description"].as_str().unwrap().is_empty(),
            "{name}"
        );
    }
    // Asking twice gives the same answer: the first changed nothing.
    let again = stdout_json(&run(
        kontor(dir.path()).args(["migrate", "--plan", "--json"])
    ));
    assert_eq!(again, plan);
    let text = run(kontor(dir.path()).args(["migrate", "--plan"]));
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("control: would apply\n  1 "), "{text}");

    // Migrating applies exactly the plan; afterwards nothing is left to plan.
    let applied = stdout_json(&run(kontor(dir.path()).args(["migrate", "--json"])));
    for (name, pending) in plan.as_object().unwrap() {
        let planned: Vec<&Value> = pending
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["version"])
            .collect();
        let done: Vec<&Value> = applied[name].as_array().unwrap().iter().collect();
        assert_eq!(planned, done, "{name}");
    }
    let after = stdout_json(&run(
        kontor(dir.path()).args(["migrate", "--plan", "--json"])
    ));
    for (name, pending) in after.as_object().unwrap() {
        assert_eq!(pending.as_array().unwrap().len(), 0, "{name}");
    }
    let text = run(kontor(dir.path()).args(["migrate", "--plan"]));
    assert!(
        String::from_utf8(text.stdout)
            .unwrap()
            .contains("control: up to date")
    );
}

/// One request on a connection of its own (`Connection: close`): the whole response as text.
fn exchange(address: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    // A response that does not close its connection fails here rather than hanging.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn token(address: &str, tenant: &Value) -> String {
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        tenant["client_id"].as_str().unwrap(),
        tenant["client_secret"].as_str().unwrap()
    );
    let response = exchange(
        address,
        &format!(
            "POST /v1/oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str::<Value>(body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn body_of(response: &str) -> Value {
    serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap()
}

/// SIGTERM first drains: `/readyz` fails with `draining` while requests, new connections and a
/// slow request begun before the signal all still succeed, kept-alive connections are told to
/// close; after `server.drain_seconds` the process stops accepting and exits 0.
#[test]
fn sigterm_drains_before_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = stdout_json(&run(
        kontor(dir.path()).args(["tenants", "create", "Acme", "--json"])
    ));
    let drain = Duration::from_secs(4);
    let mut server = serve_with(dir.path(), &[("KONTOR_SERVER__DRAIN_SECONDS", "4")]);
    let address = server.address.clone();
    let token = token(&address, &tenant);
    let ready = exchange(
        &address,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // A slow request, begun before the signal: half its body now, the rest during the drain.
    let body = r#"{"external_id":"slow","region":"uk"}"#;
    let (head, tail) = body.split_at(10);
    let mut slow = TcpStream::connect(&address).unwrap();
    write!(
        slow,
        "POST /v1/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let signalled = Instant::now();

    // Readiness turns to 503 `draining` soon after the signal.
    let readiness = loop {
        let response = exchange(
            &address,
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if response.starts_with("HTTP/1.1 503") {
            break response;
        }
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            signalled.elapsed() < drain,
            "readiness never failed during the drain"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(body_of(&readiness)["status"], "draining", "{readiness}");

    // Meanwhile new connections are accepted and API requests succeed, on a kept-alive
    // connection too, which the response asks to close.
    let user = r#"{"external_id":"during-the-drain","region":"uk"}"#;
    let response = exchange(
        &address,
        &format!(
            "POST /v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{user}",
            user.len()
        ),
    );
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "a response during the drain must close its connection: {response}"
    );
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited during the drain"
    );

    // The slow request completes.
    slow.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < drain + Duration::from_secs(15),
            "did not exit after the drain"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        signalled.elapsed() >= drain,
        "exited after {:?}, before the drain of {drain:?} was over",
        signalled.elapsed()
    );
    assert!(status.success(), "{status:?}");
    assert!(
        TcpStream::connect(&address).is_err(),
        "still accepting connections"
    );
}

#[test]
fn the_worker_serves_probes_and_its_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut worker = worker_with(
        dir.path(),
        &[("KONTOR_WORKER__GAUGES_INTERVAL_SECONDS", "1")],
    );

    let (status, body) = http_get(&worker.address, "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&worker.address, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "ready", "{body}");
    assert_eq!(ready["keys"]["status"], "ok", "{body}");
    // Nothing but the operations endpoints.
    assert_eq!(http_get(&worker.address, "/v1/banks").0, 404);

    // The gauge loop's first round runs at start; its series appear per region.
    let started = Instant::now();
    let metrics = loop {
        let (status, body) = http_get(&worker.address, "/metrics");
        assert_eq!(status, 200);
        if body.contains("kontor_worker_gauges_timestamp_seconds") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no gauges in:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for series in [
        r#"kontor_webhook_backlog{region="uk",cell="uk-1"} 0"#,
        r#"kontor_webhook_backlog_oldest_due_seconds{region="de",cell="de-1"} 0"#,
        r#"kontor_sync_oldest_overdue_seconds{region="uk",cell="uk-1"} 0"#,
        r#"kontor_consents_expiring{region="de",cell="de-1"} 0"#,
        r#"kontor_payments{region="uk",cell="uk-1",phase="submitted"} 0"#,
        r#"kontor_payments_oldest_in_phase_seconds{region="de",cell="de-1",phase="initiating"} 0"#,
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
    assert!(
        metrics
            .contains(r#"kontor_http_requests_total{method="GET",route="/readyz",status="200"}"#),
        "{metrics}"
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(worker.child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
