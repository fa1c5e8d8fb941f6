//! Processes that start at once on fresh databases: several `kontor migrate`, a `kontor serve`
//! and a `kontor worker`, all launched together, on a fresh SQLite data folder and on fresh
//! PostgreSQL databases, several rounds each. Every one must come up: one of them migrates
//! while the others wait on the migration lease, and a key generated into the data folder is
//! generated once and read by the others.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kontor;
use kontor_test_support::TestDatabase;
use serde_json::Value;

const ROUNDS: usize = 4;
const MIGRATE_PROCESSES: usize = 4;

/// A started process and what its log has said so far.
struct Watched {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn watch(name: &str, mut cmd: Command) -> Watched {
    let mut child = cmd
        .env("KONTOR_LOG__LEVEL", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let err_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Watched {
        name: name.to_owned(),
        child,
        lines: rx,
        log: Vec::new(),
    }
}

fn message(line: &str) -> Option<String> {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
}

impl Watched {
    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    fn said(&self, wanted: &str) -> bool {
        self.log
            .iter()
            .any(|line| message(line).as_deref() == Some(wanted))
    }

    fn transcript(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.log.join("\n"))
    }

    /// Waits for a process that runs to its end: it must exit with success.
    fn finishes(&mut self, deadline: Instant) -> Result<(), String> {
        loop {
            self.drain();
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                self.drain();
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("exited with {status}\n{}", self.transcript()))
                };
            }
            if Instant::now() > deadline {
                return Err(format!("still running\n{}", self.transcript()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a long-running process to say every one of `wanted` while staying up.
    fn comes_up(&mut self, wanted: &[&str], deadline: Instant) -> Result<(), String> {
        loop {
            self.drain();
            if wanted.iter().all(|w| self.said(w)) {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(50));
                self.drain();
                return Err(format!("exited with {status}\n{}", self.transcript()));
            }
            if Instant::now() > deadline {
                return Err(format!("did not come up\n{}", self.transcript()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn still_running(&mut self) -> Result<(), String> {
        match self.child.try_wait().unwrap() {
            None => Ok(()),
            Some(status) => {
                self.drain();
                Err(format!("exited with {status}\n{}", self.transcript()))
            }
        }
    }
}

const CANARY_OK: &str = "key-encryption keys open the key canary";

/// Starts everything at once with `configure` applied to each command; returns the failures.
fn start_together(dir: &Path, configure: &dyn Fn(&mut Command)) -> Vec<String> {
    let mut commands: Vec<(String, Command)> = Vec::new();
    for i in 0..MIGRATE_PROCESSES {
        let mut cmd = kontor(dir);
        cmd.args(["migrate", "--json"]);
        commands.push((format!("migrate #{i}"), cmd));
    }
    let mut serve = kontor(dir);
    serve.args(["serve", "--listen", "127.0.0.1:0"]);
    commands.push(("serve".to_owned(), serve));
    let mut worker = kontor(dir);
    worker.arg("worker");
    commands.push(("worker".to_owned(), worker));
    let mut started: Vec<Watched> = commands
        .into_iter()
        .map(|(name, mut cmd)| {
            configure(&mut cmd);
            watch(&name, cmd)
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut failures = Vec::new();
    for process in &mut started {
        let outcome = match process.name.as_str() {
            "serve" => process.comes_up(&["serving", CANARY_OK], deadline),
            "worker" => process.comes_up(&["worker started", CANARY_OK], deadline),
            _ => process.finishes(deadline),
        };
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", process.name));
        }
    }
    if !failures.is_empty() {
        return failures;
    }
    // Still up a moment later: nothing failed after saying it had started.
    std::thread::sleep(Duration::from_millis(500));
    for process in started
        .iter_mut()
        .filter(|p| !p.name.starts_with("migrate"))
    {
        if let Err(why) = process.still_running() {
            failures.push(format!("{}: {why}", process.name));
        }
    }
    failures
}

#[test]
fn processes_started_together_on_a_fresh_sqlite_folder_all_come_up() {
    for round in 0..ROUNDS {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        // In development the key-encryption key is generated into the data folder: the race
        // for that file is part of what this checks.
        let failures = start_together(&dir, &|cmd: &mut Command| {
            cmd.env("KONTOR_DEVELOPMENT", "true");
        });
        assert!(
            failures.is_empty(),
            "round {round}: {} process(es) failed:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
        let key = std::fs::read_to_string(dir.join("secrets/data-encryption.key")).unwrap();
        assert_eq!(key.trim().len(), 44, "one whole base64 key: {key:?}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("secrets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".key"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_started_together_on_fresh_postgresql_databases_all_come_up() {
    for round in 0..ROUNDS {
        let Some(control) = TestDatabase::postgres("simultaneous_starts").await else {
            return;
        };
        let Some(uk) = TestDatabase::postgres("simultaneous_starts").await else {
            return;
        };
        let Some(de) = TestDatabase::postgres("simultaneous_starts").await else {
            return;
        };
        let Some(uk_keys) = TestDatabase::postgres("simultaneous_starts").await else {
            return;
        };
        let Some(de_keys) = TestDatabase::postgres("simultaneous_starts").await else {
            return;
        };
        let keys = (uk_keys.url.clone(), de_keys.url.clone());
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        let urls = (control.url.clone(), uk.url.clone(), de.url.clone());
        let failures = tokio::task::spawn_blocking(move || {
            start_together(&dir, &|cmd: &mut Command| {
                cmd.env("KONTOR_DATABASE__CONTROL_URL", &urls.0)
                    .env("KONTOR_CELLS__UK__URL", &urls.1)
                    .env("KONTOR_CELLS__DE__URL", &urls.2)
                    .env("KONTOR_CELLS__UK__KEYS_URL", &keys.0)
                    .env("KONTOR_CELLS__DE__KEYS_URL", &keys.1)
                    .env(
                        "KONTOR_AUTH__SIGNING_KEYS",
                        r#"[{id="k1",secret="c2VjcmV0LXNpZ25pbmcta2V5LW9mLWF0LWxlYXN0LTMyLWJ5dGVz"}]"#,
                    )
                    .env(
                        "KONTOR_SECRETS__KEYS",
                        r#"[{id="kek1",secret="MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]"#,
                    );
            })
        })
        .await
        .unwrap();
        assert!(
            failures.is_empty(),
            "round {round}: {} process(es) failed:\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}
