//! What the binary's tests share: running `kontor` with only the configuration a test gives it,
//! reading its one line of JSON, and a `kontor serve` on an ephemeral port.

#![allow(dead_code, reason = "each test binary uses a part")]

pub mod demo;
pub mod link;
pub mod pki;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub fn kontor(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kontor"));
    cmd.arg("--data-dir").arg(dir);
    // Only what a test sets explicitly may configure the binary.
    for (key, _) in std::env::vars() {
        if key.starts_with("KONTOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("KONTOR_LOG__LEVEL", "warn");
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one line on stdout: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

pub struct Server {
    pub child: Child,
    pub address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kontor serve` on an ephemeral port and reads the bound address from its log.
pub fn serve(dir: &Path) -> Server {
    serve_with(dir, &[])
}

/// A key-encryption key for tests, configured as an operator would (outside the data folder).
pub const TEST_KEKS: &str = r#"[{id="t1",secret="dGVzdC1rZXktZW5jcnlwdGlvbi1rZXktMzItYnl0ZXM="}]"#;

/// The same, with more `KONTOR_…` settings (which may replace [`TEST_KEKS`]).
pub fn serve_with(dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = kontor(dir);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
        .envs(env.iter().copied());
    start(cmd, "serving")
}

/// Starts `kontor worker` with its operations listener on an ephemeral port.
pub fn worker_with(dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut cmd = kontor(dir);
    cmd.arg("worker")
        .env("KONTOR_WORKER__LISTEN", "127.0.0.1:0")
        .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
        .envs(env.iter().copied());
    start(cmd, "serving /healthz, /readyz and /metrics")
}

/// Spawns `cmd` and waits for the log line `message`, whose `address` is where it listens.
fn start(mut cmd: Command, message: &'static str) -> Server {
    let mut child = cmd
        .env("KONTOR_LOG__LEVEL", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["message"] == message
            {
                let _ = tx.send(entry["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the process did not start listening");
    Server { child, address }
}

/// `GET path` over a fresh connection: the status and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
