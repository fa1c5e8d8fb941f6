//! `kontor cells move` as an operator runs it, on SQLite and on PostgreSQL (fresh databases on
//! the test server; skipped loudly without one, a failure with `KONTOR_REQUIRE_POSTGRES=1`, as
//! CI sets): a tenant with users and connections moves between the two cells of region de and
//! back, the process killed (SIGKILL) at a random moment each time, then `--resume` ends the
//! move `done`, verified per table, with every row in the target once and none left in the
//! source. The kill moments follow the journal (`cell_moves` in the control database, read
//! directly): round i waits until the move has reached a phase of [`AIMS`] (or a later one),
//! then a random few ms, so that the kills land inside the move on a slow machine too, and
//! spread over its phases. A move across regions is refused with its stable code, exits
//! non-zero and changes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{TEST_KEKS, kontor, run, serve_with, stdout_json};
use kontor_store_sql::moves::MovePhase;
use kontor_test_support::TestDatabase;
use serde_json::{Value, json};

const USERS: usize = 30;
/// There and back, three times.
const ROUNDS: [(&str, &str); 6] = [
    ("de-1", "de-2"),
    ("de-2", "de-1"),
    ("de-1", "de-2"),
    ("de-2", "de-1"),
    ("de-1", "de-2"),
    ("de-2", "de-1"),
];
const REDIRECT: &str = "https://tenant.example/linked";
/// The phase each round's kill waits for, in turn.
const AIMS: [&str; 5] = ["copying", "catching_up", "frozen", "switched", "cleaning"];

/// The deployment under test: its data folder, configuration file and settings, and on
/// PostgreSQL the databases (dropped at the end).
struct Deployment {
    dir: tempfile::TempDir,
    config: String,
    env: Vec<(String, String)>,
    _databases: Vec<TestDatabase>,
}

impl Deployment {
    /// Cells `de` (cell 1), `de-2` (draining: every user is placed in de-1) and `uk`, on SQLite
    /// files in the data folder.
    fn sqlite() -> Self {
        Self::new(&["", "", ""], Vec::new(), Vec::new())
    }

    /// The same cells and the control database on fresh PostgreSQL databases, or `None` after a
    /// loud skip.
    async fn postgres(test: &str) -> Option<Self> {
        let mut databases = Vec::new();
        for _ in 0..7 {
            databases.push(TestDatabase::postgres(test).await?);
        }
        let url = |i: usize| databases[i].url.clone();
        let cells = [
            format!("url = \"{}\"\nkeys_url = \"{}\"\n", url(1), url(2)),
            format!("url = \"{}\"\nkeys_url = \"{}\"\n", url(3), url(4)),
            format!("url = \"{}\"\nkeys_url = \"{}\"\n", url(5), url(6)),
        ];
        // PostgreSQL deployments generate no token-signing key: every process gets the same.
        let env = vec![
            ("KONTOR_DATABASE__CONTROL_URL".to_owned(), url(0)),
            (
                "KONTOR_AUTH__SIGNING_KEYS".to_owned(),
                r#"[{id="t1",secret="Y2VsbC1tb3ZlLXRlc3Qtc2lnbmluZy1rZXktMzItYnk="}]"#.to_owned(),
            ),
        ];
        Some(Self::new(
            &cells.each_ref().map(String::as_str),
            env,
            databases,
        ))
    }

    fn new(cells: &[&str; 3], env: Vec<(String, String)>, databases: Vec<TestDatabase>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kontor.toml");
        std::fs::write(
            &file,
            format!(
                "[cells.de]\n{}[cells.de-2]\nstate = \"draining\"\n{}[cells.uk]\n{}",
                cells[0], cells[1], cells[2]
            ),
        )
        .unwrap();
        Self {
            config: file.to_str().unwrap().to_owned(),
            dir,
            env,
            _databases: databases,
        }
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }

    /// `kontor --config … ARGS` with the deployment's settings, not yet run.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = kontor(self.data());
        command
            .env("KONTOR_SECRETS__KEYS", TEST_KEKS)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["--config", &self.config])
            .args(args);
        command
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        run(&mut self.command(args))
    }

    /// A connection to the control database, for the journal.
    async fn control(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = self
            .env
            .iter()
            .find(|(k, _)| k == "KONTOR_DATABASE__CONTROL_URL")
            .map_or_else(
                || format!("sqlite://{}/control.db", self.data().display()),
                |(_, url)| url.clone(),
            );
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }

    /// Starts `kontor cells move ARGS` and SIGKILLs it once the journal shows an unfinished
    /// move in `aim` or a later phase, a random 0–19 ms after; or lets it end, if it does first.
    /// The phase the journal shows once the process is gone, and whether it was still running.
    async fn kill_in(&self, args: &[&str], aim: &str) -> (Option<String>, bool) {
        let mut journal = self.control().await;
        let mut child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The engine's phases are listed in the order a move goes through them.
        let rank = |phase: &str| {
            MovePhase::parse(phase).and_then(|p| MovePhase::ALL.iter().position(|q| *q == p))
        };
        let started = std::time::Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if let Some(phase) = open_phase(&mut journal).await
                && rank(&phase) >= rank(aim)
            {
                tokio::time::sleep(Duration::from_millis(random_below(20))).await;
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the move never reached {aim}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        (open_phase(&mut journal).await, running)
    }
}

/// The phase of the unfinished move in the journal, if there is one.
async fn open_phase(journal: &mut sqlx::AnyConnection) -> Option<String> {
    sqlx::query_scalar("SELECT phase FROM cell_moves WHERE finished_at IS NULL")
        .fetch_optional(journal)
        .await
        .unwrap()
}

/// Users and rows of the big tables per cell, from `kontor cells list --json`.
fn cells(deployment: &Deployment) -> Vec<(String, u64, u64)> {
    let listed = stdout_json(&deployment.cli(&["cells", "list", "--json"]));
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cell"].as_str().unwrap().to_owned(),
                c["users"].as_u64().unwrap(),
                c["rows"]["connections"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn moves(deployment: &Deployment) -> Vec<Value> {
    stdout_json(&deployment.cli(&["cells", "moves", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

/// A pseudo-random number below `n` (the clock's nanoseconds; no seed to keep).
fn random_below(n: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(nanos.wrapping_mul(2_654_435_761)) % n
}

async fn populate(deployment: &Deployment) -> String {
    let tenant = stdout_json(&deployment.cli(&["tenants", "create", "Acme", "--json"]));
    let tenant_id = tenant["tenant_id"].as_str().unwrap().to_owned();
    let (id, secret) = (
        tenant["client_id"].as_str().unwrap().to_owned(),
        tenant["client_secret"].as_str().unwrap().to_owned(),
    );
    let mut env = vec![
        ("KONTOR_SECRETS__KEYS", TEST_KEKS),
        ("KONTOR_CONFIG", deployment.config.as_str()),
    ];
    env.extend(deployment.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let server = serve_with(deployment.data(), &env);
    let api = format!("http://{}", server.address);
    kontor_test_support::install_crypto_provider();
    let http = reqwest::Client::new();
    let token = common::demo::token(&http, &api, &id, &secret).await;
    for n in 0..USERS {
        let (status, user) = common::link::call(
            &http,
            reqwest::Method::POST,
            format!("{api}/v1/users"),
            &token,
            Some(json!({"external_id": format!("u-{n}"), "region": "de"})),
        )
        .await;
        assert_eq!(status, 201, "{user}");
        let (status, created) = common::link::call(
            &http,
            reqwest::Method::POST,
            format!("{api}/v1/connections"),
            &token,
            Some(json!({"user_id": user["id"], "redirect_uri": REDIRECT})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
    }
    drop(server);
    tenant_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_at_random_moments_resumes_to_done() {
    killed_moves_resume_to_done(&Deployment::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_at_random_moments_resumes_to_done_on_postgres() {
    const TEST: &str = "a_move_killed_at_random_moments_resumes_to_done_on_postgres";
    let Some(deployment) = Deployment::postgres(TEST).await else {
        return;
    };
    killed_moves_resume_to_done(&deployment).await;
}

async fn killed_moves_resume_to_done(deployment: &Deployment) {
    let cli = |args: &[&str]| deployment.cli(args);
    stdout_json(&cli(&["migrate", "--json"]));
    let tenant = populate(deployment).await;
    let counted = |cell: &str| {
        let found = cells(deployment);
        let row = found.iter().find(|(c, _, _)| c == cell).unwrap().clone();
        (row.1, row.2)
    };
    assert_eq!(counted("de-1"), (USERS as u64, USERS as u64));

    // Across regions: refused with the engine's code, non-zero, nothing changed.
    let refused = cli(&[
        "cells", "move", "--tenant", &tenant, "--to", "uk-1", "--json",
    ]);
    assert!(!refused.status.success());
    let answer: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(answer["error"]["code"], "move_across_regions", "{answer}");
    assert!(moves(deployment).is_empty());
    assert_eq!(counted("de-1"), (USERS as u64, USERS as u64));

    let mut killed = 0;
    for (round, (from, to)) in ROUNDS.into_iter().enumerate() {
        let aim = AIMS[round % AIMS.len()];
        let (phase, running) = deployment
            .kill_in(
                &[
                    "cells", "move", "--tenant", &tenant, "--to", to, "--grace", "0", "--json",
                ],
                aim,
            )
            .await;
        let wait = format!("the kill aimed at {aim} (running: {running})");
        if running && phase.is_some() {
            killed += 1;
        }
        let unfinished: Vec<Value> = moves(deployment)
            .into_iter()
            .filter(|m| m["phase"] != "done")
            .collect();
        match unfinished.as_slice() {
            // Killed before it planned, or it had finished: run it (again) to the end.
            [] => {
                eprintln!("round {round}: after {wait} no unfinished move");
                if counted(from).0 > 0 {
                    let done = stdout_json(&cli(&[
                        "cells", "move", "--tenant", &tenant, "--to", to, "--grace", "0", "--json",
                    ]));
                    assert_eq!(done["phase"], "done", "{done}");
                }
            }
            [open] => {
                eprintln!("round {round}: {wait} hit phase {}", open["phase"]);
                assert_eq!(Some(open["phase"].as_str().unwrap()), phase.as_deref());
                let id = open["move_id"].as_str().unwrap();
                let done = stdout_json(&cli(&["cells", "move", "--resume", id, "--json"]));
                assert_eq!(done["phase"], "done", "round {round} after {wait}: {done}");
                assert_eq!(done["from"], from);
                assert_eq!(done["to"], to);
                let verification = done["verification"].as_array().unwrap();
                assert!(!verification.is_empty(), "{done}");
            }
            more => panic!("several unfinished moves: {more:?}"),
        }
        // Everything in the target once, nothing in the source.
        assert_eq!(counted(to), (USERS as u64, USERS as u64), "round {round}");
        assert_eq!(counted(from), (0, 0), "round {round}");
    }
    let journal = moves(deployment);
    assert!(journal.iter().all(|m| m["phase"] == "done"), "{journal:?}");

    // A finished move cannot be aborted: refused with its code, non-zero.
    let done_id = journal[0]["move_id"].as_str().unwrap().to_owned();
    let refused = cli(&["cells", "move", "--abort", &done_id, "--json"]);
    assert!(!refused.status.success());
    let answer: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(answer["error"]["code"], "move_finished", "{answer}");

    // A move killed early and aborted leaves everything where it was; one killed after its
    // switch cannot be aborted and is finished instead.
    let (from, to) = ("de-1", "de-2");
    deployment
        .kill_in(
            &[
                "cells", "move", "--tenant", &tenant, "--to", to, "--grace", "0",
            ],
            "copying",
        )
        .await;
    let open: Vec<Value> = moves(deployment)
        .into_iter()
        .filter(|m| m["phase"] != "done")
        .collect();
    if let [open] = open.as_slice() {
        let id = open["move_id"].as_str().unwrap();
        let aborted = cli(&["cells", "move", "--abort", id, "--json"]);
        let answer: Value = serde_json::from_slice(&aborted.stdout).unwrap();
        if aborted.status.success() {
            eprintln!("aborted in phase {}", open["phase"]);
            assert_eq!(answer["phase"], "aborted", "{answer}");
            assert_eq!(counted(from), (USERS as u64, USERS as u64));
            assert_eq!(counted(to), (0, 0));
        } else {
            eprintln!("not aborted in phase {}: {answer}", open["phase"]);
            assert_eq!(answer["error"]["code"], "move_already_switched", "{answer}");
            let done = stdout_json(&cli(&["cells", "move", "--resume", id, "--json"]));
            assert_eq!(done["phase"], "done");
        }
    } else {
        eprintln!("the move to abort was not caught unfinished: {open:?}");
    }
    eprintln!("{killed} of {} runs killed inside the move", ROUNDS.len());
    assert!(killed > 0, "no run was killed inside the move");
}
