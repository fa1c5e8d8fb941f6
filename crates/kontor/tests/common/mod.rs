//! What the binary's tests share: running `kontor` with only the configuration a test gives it,
//! reading its one line of JSON, and a `kontor serve` on an ephemeral port.

#![allow(dead_code, reason = "each test binary uses a part")]

pub mod demo;

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
    let mut child = kontor(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
        .envs(env.iter().copied())
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
                && entry["message"] == "serving"
            {
                let _ = tx.send(entry["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server did not start");
    Server { child, address }
}
