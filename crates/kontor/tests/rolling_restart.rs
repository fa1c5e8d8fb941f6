//! A rolling restart behind HAProxy fails no request: two `kontor serve` processes on the same
//! PostgreSQL databases, HAProxy in front checking `/readyz`, steady load through HAProxy, and
//! each process in turn stopped with SIGTERM (it drains: `/readyz` fails while it still serves),
//! waited for, started again and waited for until HAProxy sends it traffic again.
//!
//! HAProxy retries nothing here (`retries 0`): a request that reached a stopping process and
//! failed would be counted. Needs Debian's `haproxy` (skipped loudly without it, a failure with
//! `KONTOR_REQUIRE_HAPROXY=1`, as CI sets) and PostgreSQL (as every PostgreSQL test).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{kontor, run, stdout_json};
use kontor_test_support::{TestDatabase, loud_skip};
use serde_json::{Value, json};

/// How long a stopping process keeps serving with `/readyz` failing. HAProxy below needs at
/// most `fall` × `inter` (2 × 300 ms) plus a check's own time to take it out of rotation.
const DRAIN_SECONDS: &str = "3";
/// Load generators and the pause between each one's requests.
const CLIENTS: usize = 4;
const PAUSE: Duration = Duration::from_millis(20);

fn haproxy_available(test: &str) -> bool {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        let why = "haproxy is not installed (apt-get install haproxy)";
        if std::env::var("KONTOR_REQUIRE_HAPROXY").is_ok_and(|v| v == "1" || v == "true") {
            panic!("{why} — KONTOR_REQUIRE_HAPROXY=1 makes this a failure");
        }
        loud_skip(test, why);
    }
    found
}

/// A free loopback port: bound, read and released (the processes below bind it again).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Instance {
    child: Child,
    port: u16,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kontor serve` on `port` and waits for its "serving" line.
fn start(dir: &std::path::Path, env: &[(String, String)], port: u16) -> Instance {
    let mut child = kontor(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("KONTOR_LOG__LEVEL", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end: a full pipe would stop the process.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["message"] == "serving"
            {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("kontor serve did not start");
    Instance { child, port }
}

fn haproxy_config(front: u16, backends: &[u16]) -> String {
    let mut config = format!(
        "global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # /readyz asks every database: on a busy machine it takes more than `inter`.
    timeout check 3s
    retries 0

frontend api
    bind 127.0.0.1:{front}
    default_backend kontor

backend kontor
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
"
    );
    for (i, port) in backends.iter().enumerate() {
        config.push_str(&format!("    server kontor{i} 127.0.0.1:{port} check\n"));
    }
    config
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: BTreeMap<String, u64>,
    slowest: Duration,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        for (reason, n) in other.failed {
            *self.failed.entry(reason).or_default() += n;
        }
        self.slowest = self.slowest.max(other.slowest);
    }

    fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// One client: creates users and reads them back through HAProxy until told to stop.
async fn load(
    http: reqwest::Client,
    base: String,
    token: String,
    client: usize,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut n = 0u64;
    let mut last_user: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let started = Instant::now();
        let request = match (&last_user, n % 2) {
            (Some(id), 0) => http.get(format!("{base}/v1/users/{id}")),
            _ => http.post(format!("{base}/v1/users")).json(&json!({
                "external_id": format!("rolling-{client}-{n}"),
                "region": "uk",
            })),
        };
        match request.bearer_auth(&token).send().await {
            Ok(response) if response.status().is_success() => {
                if let Ok(body) = response.json::<Value>().await
                    && let Some(id) = body["id"].as_str()
                {
                    last_user = Some(id.to_owned());
                }
                tally.ok += 1;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                eprintln!("request failed: {status} {body}");
                *tally.failed.entry(format!("http_{status}")).or_default() += 1;
            }
            Err(err) => {
                eprintln!("request failed: {err:?}");
                *tally.failed.entry("transport".to_owned()).or_default() += 1;
            }
        }
        tally.slowest = tally.slowest.max(started.elapsed());
        tokio::time::sleep(PAUSE).await;
    }
    tally
}

/// True once `/readyz` answers 200 directly on `port`.
async fn ready(http: &reqwest::Client, port: u16) -> bool {
    http.get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_haproxy_fails_no_request() {
    const TEST: &str = "a_rolling_restart_behind_haproxy_fails_no_request";
    if !haproxy_available(TEST) {
        return;
    }
    let Some(control) = TestDatabase::postgres(TEST).await else {
        return;
    };
    let Some(cell) = TestDatabase::postgres(TEST).await else {
        return;
    };
    let Some(keys) = TestDatabase::postgres(TEST).await else {
        return;
    };
    kontor_test_support::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = vec![
        ("KONTOR_DATABASE__CONTROL_URL".into(), control.url.clone()),
        ("KONTOR_CELLS__UK__URL".into(), cell.url.clone()),
        ("KONTOR_CELLS__UK__KEYS_URL".into(), keys.url.clone()),
        ("KONTOR_SERVER__DRAIN_SECONDS".into(), DRAIN_SECONDS.into()),
        ("KONTOR_WORKER__EMBEDDED".into(), "false".into()),
        ("KONTOR_RATE_LIMITS__ENABLED".into(), "false".into()),
    ];
    let key = |seed: u8| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([seed; 32])
    };
    env.push((
        "KONTOR_AUTH__SIGNING_KEYS".into(),
        format!(r#"[{{id="rolling",secret="{}"}}]"#, key(7)),
    ));
    env.push((
        "KONTOR_SECRETS__KEYS".into(),
        format!(r#"[{{id="rolling",secret="{}"}}]"#, key(9)),
    ));

    // One migration first; then the processes start on a migrated schema.
    let migrated = run(kontor(dir.path())
        .args(["migrate"])
        .envs(env.iter().map(|(k, v)| (k, v))));
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    env.push(("KONTOR_DATABASE__MIGRATE_ON_START".into(), "false".into()));
    let tenant = stdout_json(&run(kontor(dir.path())
        .args(["tenants", "create", "Rolling", "--json"])
        .envs(env.iter().map(|(k, v)| (k, v)))));

    let ports = [free_port(), free_port()];
    let mut instances: Vec<Instance> = ports
        .iter()
        .map(|&port| start(dir.path(), &env, port))
        .collect();

    let front = free_port();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(&config, haproxy_config(front, &ports)).unwrap();
    let check = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut haproxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{front}");
    // Through HAProxy once both are up.
    let started = Instant::now();
    loop {
        let up = http.get(format!("{base}/readyz")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "HAProxy never reached a ready hub"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token: Value = http
        .post(format!("{base}/v1/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", tenant["client_id"].as_str().unwrap()),
            ("client_secret", tenant["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let load_started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(load(
                http.clone(),
                base.clone(),
                token.clone(),
                i,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Each in turn: SIGTERM, wait for the exit, start again, wait until HAProxy uses it again
    // (its `/readyz` answers, and two of HAProxy's checks have passed).
    let mut restarts = Vec::new();
    for instance in &mut instances {
        let began = Instant::now();
        let port = instance.port;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(instance.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = loop {
            if let Some(status) = instance.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "kontor serve did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(status.success(), "exit after SIGTERM: {status:?}");
        let exited = began.elapsed();
        let env = env.clone();
        let path = dir.path().to_owned();
        *instance = tokio::task::spawn_blocking(move || start(&path, &env, port))
            .await
            .unwrap();
        while !ready(&http, port).await {
            assert!(
                began.elapsed() < Duration::from_secs(90),
                "the restarted process never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ready_after = began.elapsed();
        // rise 2 × inter 300 ms, and a margin, before the other one may go.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        restarts.push((exited, ready_after));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for client in clients {
        tally.add(client.await.unwrap());
    }
    let elapsed = load_started.elapsed();
    let _ = haproxy.kill();
    let _ = haproxy.wait();

    let figures = json!({
        "requests": tally.ok + tally.failures(),
        "failed": tally.failed,
        "seconds": elapsed.as_secs_f64(),
        "requests_per_second": (tally.ok + tally.failures()) as f64 / elapsed.as_secs_f64(),
        "slowest_ms": tally.slowest.as_millis(),
        "restarts": restarts.iter().map(|(exited, ready)| json!({
            "exited_after_ms": exited.as_millis(),
            "ready_again_after_ms": ready.as_millis(),
        })).collect::<Vec<_>>(),
    });
    eprintln!("rolling restart: {figures}");
    assert!(
        tally.ok > 100,
        "too little load to mean anything: {figures}"
    );
    assert_eq!(tally.failures(), 0, "requests failed: {figures}");
}
