//! `kontor demo` as a child process: started with its JSON first line read, stopped by SIGTERM.

#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly"
)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEMO_START_TIMEOUT: Duration = Duration::from_secs(60);
const DEMO_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The demo process; killed if the test ends early.
pub struct Demo {
    child: Child,
    stderr: PathBuf,
}

impl Demo {
    /// Starts `kontor demo` with its databases in `data_dir`, its stderr in a file in
    /// `log_dir`; returns it with its first line of JSON.
    pub fn start(data_dir: &Path, log_dir: &Path) -> (Self, String) {
        Self::start_with(data_dir, log_dir, &[], &[], DEMO_START_TIMEOUT)
    }

    /// As [`Demo::start`], with more environment variables (`KONTOR_…` or others).
    pub fn start_env(data_dir: &Path, log_dir: &Path, env: &[(&str, &str)]) -> (Self, String) {
        Self::start_with(data_dir, log_dir, &[], env, DEMO_START_TIMEOUT)
    }

    /// As [`Demo::start`], with more arguments and `KONTOR_…` settings, waiting up to
    /// `timeout` for the first line.
    pub fn start_with(
        data_dir: &Path,
        log_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> (Self, String) {
        let stderr = log_dir.join("demo.stderr");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kontor"));
        // Only what this test sets may configure the binary.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KONTOR_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KONTOR_LOG__LEVEL", "warn")
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--json")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("creating the demo's stderr file"));
        let mut child = cmd.spawn().expect("starting kontor demo");
        let stdout = child.stdout.take().expect("the demo's stdout");
        let mut demo = Self { child, stderr };

        // Read the first line on a thread (with a deadline here), then keep draining stdout.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let first = match rx.recv_timeout(timeout) {
            Ok(Some(Ok(line))) => line,
            Ok(other) => panic!(
                "kontor demo printed no first line ({other:?}); exit: {:?}\n{}",
                demo.child.try_wait(),
                demo.log()
            ),
            Err(_) => panic!(
                "kontor demo printed nothing within {timeout:?}\n{}",
                demo.log()
            ),
        };
        let json: serde_json::Value = serde_json::from_str(&first)
            .unwrap_or_else(|err| panic!("the demo's first line is not JSON ({err}): {first}"));
        for key in ["api_base_url", "client_id", "client_secret", "connect_url"] {
            assert!(
                json[key].as_str().is_some_and(|v| !v.is_empty()),
                "the demo's JSON has no {key}: {first}"
            );
        }
        (demo, first)
    }

    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "--- kontor demo stderr (last lines) ---\n{}",
            tail.join("\n")
        )
    }

    /// SIGTERM, then waits for the exit.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid =
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid fits an i32"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .expect("sending SIGTERM to the demo");
        let status = wait_for(&mut self.child, DEMO_STOP_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "kontor demo did not exit within {DEMO_STOP_TIMEOUT:?} of SIGTERM\n{}",
                self.log()
            )
        });
        (status, self.log())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A tenant's access token from the hub at `api`.
pub async fn token(http: &reqwest::Client, api: &str, client_id: &str, secret: &str) -> String {
    let response = http
        .post(format!("{api}/v1/oauth/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child process") {
            return Some(status);
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
