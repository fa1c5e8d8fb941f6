//! Kontor in a real browser, against `kontor demo` (the hub and the sandbox bank), one test at a
//! time, each driving Debian's headless Chromium through Playwright (see each script's header):
//!
//! - the account-linking flow: `tests/browser/link.mjs` from the connect page through the bank's
//!   login, code and account pages back to the redirect URI, for both standards, then the
//!   accounts over the API; and the demo's own pages: the landing page, a link made from it, the
//!   result page;
//! - the sample tenant app (`examples/tenant-app`): its client generated from the demo's live
//!   `/openapi.json`, a check that the types hold every operation of the document proven to fail
//!   on types that lack one, the app type-checked and built (`tsc`), its webhook verifier's unit
//!   tests, then `tests/browser/tenant-app.mjs`: a user created, linked at the sandbox bank, their
//!   transactions shown, a payment made and followed to `completed` with its verified webhook.
//!
//! Needs `node` (20 or later), `/usr/bin/chromium` (`apt-get install -y chromium`; another path
//! through `KONTOR_CHROMIUM`), `tests/browser/node_modules` and `examples/tenant-app/node_modules`
//! (`npm ci` in each). Without them a test prints a `*** SKIPPED … ***` banner to stderr and
//! returns; with `KONTOR_REQUIRE_BROWSER=1` (as CI sets) it fails instead. Screenshots (the
//! landing page, connect pages, the banks' pages, result pages) go to `KONTOR_BROWSER_ARTIFACTS`,
//! by default `target/browser-artifacts` in the workspace, emptied of earlier screenshots by the
//! link test; CI keeps that folder. The scripts print their paths (`--nocapture` shows them).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::demo::{Demo, wait_for};
use kontor_test_support::loud_skip;

/// Longer than the scripts' own global timeouts, so that one normally reports first.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(200);
/// Generating the client, or one `tsc` run, on a busy two-core machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(180);
/// One browser and one demo at a time: two at once on a two-core CI machine only makes both slow.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn repo_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn browser_dir() -> PathBuf {
    repo_dir("tests/browser")
}

fn tenant_app_dir() -> PathBuf {
    repo_dir("examples/tenant-app")
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

/// What is missing for a test to run, in words; empty when all is there. `packages` are the
/// npm packages it needs, each as (folder, package).
fn missing_prerequisites(node: Option<&Path>, packages: &[(PathBuf, &str)]) -> Vec<String> {
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
    for (dir, package) in packages {
        if !dir
            .join("node_modules")
            .join(package)
            .join("package.json")
            .is_file()
        {
            missing.push(format!(
                "no {package} in {}/node_modules (npm ci there)",
                dir.display()
            ));
        }
    }
    missing
}

/// Where the screenshots go: `KONTOR_BROWSER_ARTIFACTS`, else `target/browser-artifacts` in the
/// workspace (beside the sources, whatever `CARGO_TARGET_DIR` is).
fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("KONTOR_BROWSER_ARTIFACTS")
        .map_or_else(|| repo_dir("target/browser-artifacts"), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("creating the screenshots folder");
    dir
}

/// Removes last run's screenshots from the artifacts folder.
fn clear_screenshots(dir: &Path) {
    for entry in std::fs::read_dir(dir)
        .expect("reading the screenshots folder")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `node`, or `None` after a loud skip; a failure instead under `KONTOR_REQUIRE_BROWSER=1`.
fn node_or_skip(test: &str, packages: &[(PathBuf, &str)]) -> Option<PathBuf> {
    let node = find_on_path("node");
    let missing = missing_prerequisites(node.as_deref(), packages);
    if missing.is_empty() {
        return node;
    }
    let why = format!("the browser test did not run: {}", missing.join("; "));
    assert!(
        std::env::var("KONTOR_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "KONTOR_REQUIRE_BROWSER=1 but {why}"
    );
    loud_skip(
        test,
        &format!("{why} (set KONTOR_REQUIRE_BROWSER=1 to fail instead)"),
    );
    None
}

/// Runs `cmd` with its output in files under `dir`, for at most `limit`: its exit status
/// (`None` when it was killed at the limit) and what it printed.
fn run(cmd: &mut Command, dir: &Path, name: &str, limit: Duration) -> (Option<ExitStatus>, String) {
    let out = dir.join(format!("{name}.stdout"));
    let err = dir.join(format!("{name}.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("creating a stdout file"))
        .stderr(File::create(&err).expect("creating a stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    let status = wait_for(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = format!(
        "--- {name} stdout ---\n{}\n--- {name} stderr ---\n{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    (status, output)
}

/// As [`run`], failing the test (with the demo's log) unless the command succeeds.
fn succeed(cmd: &mut Command, dir: &Path, name: &str, limit: Duration, demo: &Demo) -> String {
    match run(cmd, dir, name, limit) {
        (Some(status), output) if status.success() => output,
        (Some(status), output) => panic!("{name} failed ({status})\n{output}\n{}", demo.log()),
        (None, output) => panic!(
            "{name} did not finish within {limit:?}\n{output}\n{}",
            demo.log()
        ),
    }
}

fn stop(demo: Demo) {
    let (status, log) = demo.stop();
    assert!(
        status.success(),
        "kontor demo exited with {status} after SIGTERM\n{log}"
    );
}

#[test]
fn links_accounts_in_headless_chromium_for_both_standards() {
    let Some(node) = node_or_skip(
        "links_accounts_in_headless_chromium_for_both_standards",
        &[(browser_dir(), "playwright-core")],
    ) else {
        return;
    };
    let _browser = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let started = Instant::now();
    let (demo, json) = Demo::start(&dir.path().join("data"), dir.path());
    let artifacts = artifacts_dir();
    clear_screenshots(&artifacts);

    let output = succeed(
        Command::new(&node)
            .arg("link.mjs")
            .current_dir(browser_dir())
            .env("KONTOR_DEMO_JSON", &json)
            .env("KONTOR_CHROMIUM", chromium())
            .env("KONTOR_BROWSER_ARTIFACTS", &artifacts),
        dir.path(),
        "link.mjs",
        SCRIPT_TIMEOUT,
        &demo,
    );
    println!("{output}");
    stop(demo);
    println!("the link test took {:.1?}", started.elapsed());
}

/// The operation whose loss the client check must catch: a method of a path that keeps another
/// (`GET /v1/users` stays), so that only the check, not a missing path, can tell.
const DROPPED: &str = "createUser";

#[test]
fn the_sample_tenant_app_links_pays_and_verifies_webhooks_in_headless_chromium() {
    let app = tenant_app_dir();
    let Some(node) = node_or_skip(
        "the_sample_tenant_app_links_pays_and_verifies_webhooks_in_headless_chromium",
        &[
            (browser_dir(), "playwright-core"),
            (app.clone(), "openapi-fetch"),
            (app.clone(), "openapi-typescript"),
            (app.clone(), "typescript"),
        ],
    ) else {
        return;
    };
    let _browser = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a temporary folder");
    let started = Instant::now();
    // Payments polled soon and often, so that an instant payment is final within seconds.
    let (demo, json) = Demo::start_env(
        &dir.path().join("data"),
        dir.path(),
        &[
            ("KONTOR_PAYMENTS__POLL_BASE_SECONDS", "1"),
            ("KONTOR_PAYMENTS__POLL_CAP_SECONDS", "2"),
            ("KONTOR_WORKER__TICK_MS", "500"),
        ],
    );
    let demo_json: serde_json::Value = serde_json::from_str(&json).expect("the demo's JSON");
    let api = demo_json["api_base_url"].as_str().expect("api_base_url");
    let tsc = app.join("node_modules/typescript/bin/tsc");
    let generate = |extra: &[&str], name: &str| {
        succeed(
            Command::new(&node)
                .arg("scripts/generate.mjs")
                .arg(api)
                .args(extra)
                .current_dir(&app),
            dir.path(),
            name,
            TOOL_TIMEOUT,
            &demo,
        )
    };

    // The check proves itself: types generated as if the document lacked one operation fail it,
    // naming the operation (tsconfig.operations.json: the generated types and the check alone,
    // so that the app's own use of the operation cannot be what fails).
    generate(&["--drop-operation", DROPPED], "generate-without");
    let (status, output) = run(
        Command::new(&node)
            .arg(&tsc)
            .args(["-p", "tsconfig.operations.json"])
            .current_dir(&app),
        dir.path(),
        "tsc-without",
        TOOL_TIMEOUT,
    );
    assert!(
        status.is_some_and(|s| !s.success()),
        "tsc passed on a client without {DROPPED}: the check would not catch a lost endpoint\n{output}"
    );
    let named = output
        .lines()
        .find(|l| l.contains("src/generated/operations.ts") && l.contains(DROPPED))
        .unwrap_or_else(|| {
            panic!("the check's failure does not name {DROPPED} in src/generated/operations.ts\n{output}")
        });
    println!("a client without {DROPPED} fails the check, as it must: {named}");

    // The real client, from the live document: every operation present, the app type-checked
    // (tsc emits nothing on an error) and built, the webhook verifier's unit tests.
    println!("{}", generate(&[], "generate"));
    succeed(
        Command::new(&node).arg(&tsc).current_dir(&app),
        dir.path(),
        "tsc",
        TOOL_TIMEOUT,
        &demo,
    );
    println!(
        "{}",
        succeed(
            Command::new(&node)
                .args(["--test", "dist/webhooks.test.js"])
                .current_dir(&app),
            dir.path(),
            "node-test",
            TOOL_TIMEOUT,
            &demo,
        )
    );
    println!(
        "client generated, checked and built in {:.1?}",
        started.elapsed()
    );

    let output = succeed(
        Command::new(&node)
            .arg("tenant-app.mjs")
            .current_dir(browser_dir())
            .env("KONTOR_DEMO_JSON", &json)
            .env("KONTOR_TENANT_APP", &app)
            .env("KONTOR_CHROMIUM", chromium())
            .env("KONTOR_BROWSER_ARTIFACTS", artifacts_dir()),
        dir.path(),
        "tenant-app.mjs",
        SCRIPT_TIMEOUT,
        &demo,
    );
    println!("{output}");
    stop(demo);
    println!("the tenant app test took {:.1?}", started.elapsed());
}
