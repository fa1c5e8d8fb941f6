//! The account-linking flow in a real browser: `kontor demo` serves the hub and the sandbox bank,
//! and `tests/browser/link.mjs` drives Debian's headless Chromium through Playwright from the
//! connect page through the bank's login, code and account pages back to the redirect URI, for
//! both standards, then checks the accounts over the API; and the demo's own pages: the landing
//! page, a link made from it, the result page (see the script's header).
//!
//! Needs `node` (20 or later), `/usr/bin/chromium` (`apt-get install -y chromium`; another path
//! through `KONTOR_CHROMIUM`) and `tests/browser/node_modules` (`npm ci` there). Without them the
//! test prints a `*** SKIPPED … ***` banner to stderr and returns; with `KONTOR_REQUIRE_BROWSER=1`
//! (as CI sets) it fails instead. Screenshots (the landing page, connect pages, the banks' pages,
//! result pages) go to `KONTOR_BROWSER_ARTIFACTS`, by default `target/browser-artifacts` in the
//! workspace, emptied of earlier screenshots first; CI keeps that folder. The script prints their
//! paths (`--nocapture` shows them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::demo::{Demo, wait_for};
use kontor_test_support::loud_skip;

const TEST: &str = "links_accounts_in_headless_chromium_for_both_standards";
/// Longer than the script's own global timeout, so that one normally reports first.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(200);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("KONTOR_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What is missing for the test to run, in words; empty when all is there.
fn missing_prerequisites(node: Option<&Path>) -> Vec<String> {
    let mut missing = Vec::new();
    match node {
        None => missing.push("no `node` on PATH (Node.js 20 or later)".to_owned()),
        Some(node) => {
            let version = Command::new(node)
                .arg("--version")
                .output()
                .ok()
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                .unwrap_or_default();
            let major = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            if major.is_none_or(|m| m < 20) {
                missing.push(format!(
                    "`{}` is version {version:?}; Playwright needs 20 or later",
                    node.display()
                ));
            }
        }
    }
    let chromium = chromium();
    if !chromium.is_file() {
        missing.push(format!(
            "no browser at {} (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    if !browser_dir()
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push(
            "no tests/browser/node_modules/playwright-core (npm ci in tests/browser)".to_owned(),
        );
    }
    missing
}

/// Where the screenshots go: `KONTOR_BROWSER_ARTIFACTS`, else `target/browser-artifacts` in the
/// workspace (beside the sources, whatever `CARGO_TARGET_DIR` is), without last run's pictures.
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("KONTOR_BROWSER_ARTIFACTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-artifacts"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).expect("creating the screenshots folder");
    for entry in std::fs::read_dir(&dir)
        .expect("reading the screenshots folder")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    dir
}

#[test]
fn links_accounts_in_headless_chromium_for_both_standards() {
    let node = find_on_path("node");
    let missing = missing_prerequisites(node.as_deref());
    if !missing.is_empty() {
        let why = format!("the browser test did not run: {}", missing.join("; "));
        assert!(
            std::env::var("KONTOR_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "KONTOR_REQUIRE_BROWSER=1 but {why}"
        );
        loud_skip(
            TEST,
            &format!("{why} (set KONTOR_REQUIRE_BROWSER=1 to fail instead)"),
        );
        return;
    }
    let node = node.expect("checked above");

    let dir = tempfile::tempdir().expect("a temporary folder");
    let started = Instant::now();
    let (demo, json) = Demo::start(&dir.path().join("data"), dir.path());

    let artifacts = artifacts_dir();
    let out = dir.path().join("link.stdout");
    let err = dir.path().join("link.stderr");
    let mut script = Command::new(&node)
        .arg("link.mjs")
        .current_dir(browser_dir())
        .env("KONTOR_DEMO_JSON", &json)
        .env("KONTOR_CHROMIUM", chromium())
        .env("KONTOR_BROWSER_ARTIFACTS", &artifacts)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("creating the script's stdout file"))
        .stderr(File::create(&err).expect("creating the script's stderr file"))
        .spawn()
        .expect("starting node");
    let status = wait_for(&mut script, SCRIPT_TIMEOUT);
    if status.is_none() {
        let _ = script.kill();
        let _ = script.wait();
    }
    let output = format!(
        "--- link.mjs stdout ---\n{}\n--- link.mjs stderr ---\n{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    match status {
        Some(status) if status.success() => println!("{output}"),
        Some(status) => panic!("link.mjs failed ({status})\n{output}\n{}", demo.log()),
        None => panic!(
            "link.mjs did not finish within {SCRIPT_TIMEOUT:?}\n{output}\n{}",
            demo.log()
        ),
    }

    let (status, log) = demo.stop();
    assert!(
        status.success(),
        "kontor demo exited with {status} after SIGTERM\n{log}"
    );
    println!("browser test took {:.1?}", started.elapsed());
}
