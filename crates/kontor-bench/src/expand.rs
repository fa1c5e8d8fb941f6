//! `kontor-bench expand-contract`: a schema change while serving, with two releases side by side
//! (issue 14 §3). Not a benchmark of speed: a check, with its figures.
//!
//! The previous release (`--old-kontor`) is started on fresh PostgreSQL databases and given real
//! bank data (users linked through the sandbox bank, 24 months each). Load starts against it:
//! transaction pages, user reads, user creations, and syncs with the user present (the sandbox's
//! clock moves six hours before each, so every sync writes new transactions). Then the new release
//! (`--kontor`) starts on the same databases with `database.migrate_on_start`, so it applies cell
//! migration 0012 (a column on `transactions`, two indexes built concurrently) while the old one
//! serves; once it is ready the load goes to both, round robin, and the new release's embedded
//! worker backfills `transaction_date` on every row the old release wrote — before the change and
//! during it. When nothing is left to fill, the load goes on a little longer, then stops, and the
//! run checks every transaction through the new release.
//!
//! Reported: requests per phase, binary and kind, every failure (target 0), how long the new
//! release took to migrate and become ready, the backfill's rows and time to converge, and that
//! the old release kept answering against the expanded schema. Exits non-zero if a request
//! failed, the backfill did not converge, or a transaction's `transaction_date` is wrong.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Mutex, RwLock};

use crate::HubArgs;
use crate::hub::{Hub, Token};
use crate::linking::{BankWorld, Tenant};
use crate::setup::BenchEnv;
use crate::users::now_rfc3339;

/// The links made before the change: (cell, bank, sandbox login), each pair of bank and login
/// once. A Berlin Group bank expires a person's recurring consent as soon as they authorise a
/// newer one for the same third party (NextGenPSD2 1.3.8, `POST /v1/consents`, side effects), and
/// the hub is that one third party: linking alice at Sonnenbank twice left the first
/// connection's syncs failing, `consent_expired` and then `connection_not_active`.
const LINKS: [(&str, &str, &str); 5] = [
    ("de", "sonnenbank", "alice"),
    ("uk", "thames-bank", "bob"),
    ("de", "sonnenbank", "carol"),
    ("uk", "thames-bank", "carol"),
    ("de", "banque-lumiere", "carol"),
];
/// The cells the linked users live in.
const REGIONS: [&str; 2] = ["de", "uk"];
/// How long the backfill may take before the run gives up.
const BACKFILL_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Args)]
pub struct ExpandArgs {
    /// The new release: the one whose migration is applied [default: as for every benchmark].
    #[command(flatten)]
    pub hub: HubArgs,
    /// The previous release's kontor binary.
    #[arg(long, value_name = "PATH")]
    pub old_kontor: std::path::PathBuf,
    /// Closed-loop workers sending requests throughout.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Users linked before the change, each to a different login at a bank (alice at Sonnenbank,
    /// bob at Thames Bank, carol at Sonnenbank, Thames Bank and Banque Lumière, in this order).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=5))]
    pub links: u16,
    /// Seconds of load on the old release alone before the new one starts, and again on both
    /// after the backfill is done.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub settle: u64,
    #[command(flatten)]
    pub output: crate::report::Output,
}

/// Which binary answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum Release {
    Old,
    New,
}

/// Where the run is, for counting requests by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// The old release alone, before the change.
    Before,
    /// The new release is starting: migrating, then becoming ready. The old one serves.
    Migrating,
    /// Both serve; the backfill runs.
    Backfilling,
    /// Both serve; nothing left to fill.
    After,
}

const PHASES: [Phase; 4] = [
    Phase::Before,
    Phase::Migrating,
    Phase::Backfilling,
    Phase::After,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    TransactionPage,
    UserRead,
    UserCreate,
    Sync,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Tally {
    ok: u64,
    failed: u64,
}

/// Counts per (phase, release, op), and the failures' labels.
#[derive(Debug, Default)]
struct Counts {
    tallies: BTreeMap<(Phase, Release, Op), Tally>,
    failures: BTreeMap<String, u64>,
}

struct Shared {
    hubs: RwLock<Vec<(Release, String)>>,
    phase: RwLock<Phase>,
    counts: Mutex<Counts>,
    stop: AtomicBool,
    next: AtomicUsize,
    http: reqwest::Client,
    bearer: String,
    accounts: Vec<String>,
    users: Vec<String>,
}

impl Shared {
    async fn pick(&self) -> (Release, String) {
        let hubs = self.hubs.read().await;
        let at = self.next.fetch_add(1, Ordering::Relaxed) % hubs.len().max(1);
        hubs[at].clone()
    }

    async fn record(&self, phase: Phase, release: Release, op: Op, outcome: Result<(), String>) {
        let mut counts = self.counts.lock().await;
        let tally = counts.tallies.entry((phase, release, op)).or_default();
        match outcome {
            Ok(()) => tally.ok += 1,
            Err(label) => {
                tally.failed += 1;
                let key = format!("{release:?} {op:?} in {phase:?}: {label}");
                *counts.failures.entry(key).or_default() += 1;
            }
        }
    }
}

async fn call(request: reqwest::RequestBuilder, expected: u16) -> Result<(), String> {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            if status == expected {
                Ok(())
            } else {
                let code = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                Err(format!("HTTP {status} {code}"))
            }
        }
        Err(err) => Err(format!("transport: {}", short(&err))),
    }
}

fn short(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "other"
    }
}

/// One closed-loop worker: page, user read, page, user create, over and over.
async fn worker(shared: Arc<Shared>, id: usize) {
    let ops = [
        Op::TransactionPage,
        Op::UserRead,
        Op::TransactionPage,
        Op::UserCreate,
    ];
    let mut n = id;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let op = ops[n % ops.len()];
        let (release, base) = shared.pick().await;
        let phase = *shared.phase.read().await;
        let request = match op {
            Op::TransactionPage => {
                let account = &shared.accounts[n % shared.accounts.len()];
                shared.http.get(format!(
                    "{base}/v1/accounts/{account}/transactions?limit=50"
                ))
            }
            Op::UserRead => {
                let user = &shared.users[n % shared.users.len()];
                shared.http.get(format!("{base}/v1/users/{user}"))
            }
            _ => shared.http.post(format!("{base}/v1/users")).json(&json!({
                "external_id": format!("expand-{id}-{n}-{}", rand::random::<u32>()),
                "region": if n.is_multiple_of(2) { "de" } else { "uk" },
            })),
        };
        let expected = if op == Op::UserCreate { 201 } else { 200 };
        let outcome = call(request.bearer_auth(&shared.bearer), expected).await;
        shared.record(phase, release, op, outcome).await;
    }
}

/// Syncs with the user present, one at a time, alternating between the releases; the bank's
/// clock moves six hours before each, so that syncs find new and newly booked transactions
/// (consents are valid for 90 days at Thames Bank, 180 at the Berlin Group banks: a run of
/// minutes moves the clock a few days).
async fn syncer(shared: Arc<Shared>, world: Arc<BankWorld>, connections: Vec<String>) {
    let mut n = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        if let Err(err) = world.sandbox.advance_clock(time::Duration::hours(6)) {
            eprintln!("kontor-bench expand-contract: moving the bank's clock: {err}");
        }
        let (release, base) = shared.pick().await;
        let phase = *shared.phase.read().await;
        let connection = &connections[n % connections.len()];
        let request = shared
            .http
            .post(format!("{base}/v1/connections/{connection}/refresh"))
            .bearer_auth(&shared.bearer)
            .json(&json!({"psu_ip_address": "203.0.113.7"}));
        let outcome = call(request, 200).await;
        shared.record(phase, release, Op::Sync, outcome).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Debug, Serialize)]
struct Row {
    phase: Phase,
    release: Release,
    op: Op,
    ok: u64,
    failed: u64,
}

#[derive(Debug, Serialize)]
struct ExpandReport {
    benchmark: &'static str,
    started_at: String,
    old_version: String,
    new_version: String,
    concurrency: u16,
    /// Transactions in both cells before the change.
    transactions_before: i64,
    /// From starting the new release to its `/readyz` answering 200: the migration is most of it.
    new_release_ready_ms: u128,
    migrations_applied: Vec<String>,
    /// Rows without `transaction_date` when the new release became ready (all of them, and
    /// those the old release wrote meanwhile).
    backfill_rows_at_start: i64,
    /// From the new release being ready to no row left without `transaction_date`.
    backfill_converged_ms: u128,
    /// Transactions checked through the new release at the end.
    transactions_checked: usize,
    transaction_date_mismatches: usize,
    requests: Vec<Row>,
    failed_requests: u64,
    failures: BTreeMap<String, u64>,
    old_release_ok_after_change: u64,
    passed: bool,
}

async fn version(kontor: &std::path::Path) -> String {
    tokio::process::Command::new(kontor)
        .arg("--version")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

async fn undated(cells: &[PgPool]) -> anyhow::Result<i64> {
    let mut total = 0;
    for pool in cells {
        // The column exists only after the migration.
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_name = 'transactions' AND column_name = 'transaction_date'",
        )
        .fetch_one(pool)
        .await?;
        if exists == 0 {
            bail!(
                "the cell has no transactions.transaction_date column: the new release did not \
                 apply cell migration 0012 (a binary built before the migration files were \
                 added embeds none; touch them and build again)"
            );
        }
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE transaction_date IS NULL")
                .fetch_one(pool)
                .await?;
        total += n;
    }
    Ok(total)
}

pub async fn run(args: &ExpandArgs) -> anyhow::Result<()> {
    let started_at = now_rfc3339();
    let new_kontor = args
        .hub
        .kontor
        .clone()
        .unwrap_or_else(crate::setup::default_kontor);
    eprintln!("expand-contract: the previous release on fresh databases, with bank data…");
    let world = Arc::new(BankWorld::start(true).await?);
    let old_args = HubArgs {
        kontor: Some(args.old_kontor.clone()),
        postgres: args.hub.postgres.clone(),
        settings: args.hub.settings.clone(),
    };
    let env = BenchEnv::start_with(&old_args, "expand-contract", world.hub_env()).await?;
    let outcome = check(args, &env, &world, &new_kontor, started_at).await;
    let ending = env.teardown_or_warn().await;
    if ending.is_none() {
        eprintln!("expand-contract: the teardown failed (see above)");
    }
    let report = outcome?;
    args.output.emit(&report, &to_markdown(&report))?;
    if !report.passed {
        bail!("expand-contract: FAILED (see the report)");
    }
    Ok(())
}

async fn check(
    args: &ExpandArgs,
    env: &BenchEnv,
    world: &Arc<BankWorld>,
    new_kontor: &std::path::Path,
    started_at: String,
) -> anyhow::Result<ExpandReport> {
    let mut tenant = Tenant::new(env).await?;
    let mut users = Vec::new();
    let mut accounts = Vec::new();
    let mut connections = Vec::new();
    for (region, bank, username) in LINKS.into_iter().take(usize::from(args.links)) {
        let linked = tenant
            .linked_user(
                &format!("expand-{username}-{bank}"),
                region,
                bank,
                username,
                world,
            )
            .await?;
        users.push(linked.user_id.clone());
        accounts.extend(linked.account_ids);
        connections.push(linked.connection_id);
    }
    let mut cells = Vec::new();
    for region in REGIONS {
        cells.push(
            PgPoolOptions::new()
                .max_connections(2)
                .connect(&env.databases.url(region)?)
                .await
                .with_context(|| format!("connecting to the {region} cell"))?,
        );
    }
    let mut transactions_before = 0;
    for pool in &cells {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions")
            .fetch_one(pool)
            .await?;
        transactions_before += n;
    }
    eprintln!(
        "expand-contract: {} users, {} accounts, {transactions_before} transactions; load on the old release…",
        users.len(),
        accounts.len()
    );

    let Token { bearer, .. } = env.hub.token(&env.tenant).await?;
    let shared = Arc::new(Shared {
        hubs: RwLock::new(vec![(Release::Old, env.hub.url(""))]),
        phase: RwLock::new(Phase::Before),
        counts: Mutex::new(Counts::default()),
        stop: AtomicBool::new(false),
        next: AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?,
        bearer,
        accounts,
        users,
    });
    let mut tasks = Vec::new();
    for id in 0..usize::from(args.concurrency) {
        tasks.push(tokio::spawn(worker(shared.clone(), id)));
    }
    tasks.push(tokio::spawn(syncer(
        shared.clone(),
        world.clone(),
        connections,
    )));
    let settle = Duration::from_secs(args.settle);
    tokio::time::sleep(settle).await;

    // The new release starts beside the old one and migrates while the old one serves.
    *shared.phase.write().await = Phase::Migrating;
    eprintln!("expand-contract: starting the new release (it migrates on start)…");
    let log = std::env::temp_dir().join(format!("kontor-expand-new-{}.log", std::process::id()));
    let started = Instant::now();
    let new_hub = Hub::start(new_kontor, &env.hub_env, &log).await;
    let new_release_ready_ms = started.elapsed().as_millis();
    let new_hub = match new_hub {
        Ok(hub) => hub,
        Err(err) => {
            shared.stop.store(true, Ordering::Relaxed);
            return Err(err.context("starting the new release"));
        }
    };
    let mut migrations_applied = Vec::new();
    for (region, pool) in REGIONS.iter().zip(&cells) {
        let applied: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, description, execution_time FROM _sqlx_migrations \
             WHERE version >= 12 ORDER BY version",
        )
        .fetch_all(pool)
        .await?;
        for (version, description, nanos) in applied {
            migrations_applied.push(format!(
                "{region} cell {version:04} {description}: {} ms",
                nanos / 1_000_000
            ));
        }
    }
    let backfill_rows_at_start = undated(&cells).await?;
    shared
        .hubs
        .write()
        .await
        .push((Release::New, new_hub.url("")));
    *shared.phase.write().await = Phase::Backfilling;
    eprintln!(
        "expand-contract: new release ready after {new_release_ready_ms} ms; {backfill_rows_at_start} rows to backfill, load on both…"
    );
    let backfill_started = Instant::now();
    let converged = loop {
        if undated(&cells).await? == 0 {
            break Some(backfill_started.elapsed().as_millis());
        }
        if backfill_started.elapsed() > BACKFILL_TIMEOUT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    *shared.phase.write().await = Phase::After;
    tokio::time::sleep(settle).await;
    shared.stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    // What the old release wrote last is filled by the next worker round.
    let drained = Instant::now();
    while undated(&cells).await? > 0 && drained.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = undated(&cells).await?;

    // Every transaction through the new release: its date by the precedence rule.
    let (checked, mismatches) = check_dates(&shared, &new_hub).await?;
    let stopped = new_hub.stop().await;
    if let Err(err) = stopped {
        eprintln!("expand-contract: stopping the new release: {err:#}");
    }

    let counts = shared.counts.lock().await;
    let requests: Vec<Row> = counts
        .tallies
        .iter()
        .map(|((phase, release, op), t)| Row {
            phase: *phase,
            release: *release,
            op: *op,
            ok: t.ok,
            failed: t.failed,
        })
        .collect();
    let failed_requests = requests.iter().map(|r| r.failed).sum();
    let old_release_ok_after_change = requests
        .iter()
        .filter(|r| r.release == Release::Old && r.phase >= Phase::Backfilling)
        .map(|r| r.ok)
        .sum();
    let passed = failed_requests == 0
        && converged.is_some()
        && left == 0
        && mismatches == 0
        && checked > 0
        && old_release_ok_after_change > 0;
    Ok(ExpandReport {
        benchmark: "expand-contract",
        started_at,
        old_version: version(&args.old_kontor).await,
        new_version: version(new_kontor).await,
        concurrency: args.concurrency,
        transactions_before,
        new_release_ready_ms,
        migrations_applied,
        backfill_rows_at_start,
        backfill_converged_ms: converged.unwrap_or(0),
        transactions_checked: checked,
        transaction_date_mismatches: mismatches,
        requests,
        failed_requests,
        failures: counts.failures.clone(),
        old_release_ok_after_change,
        passed,
    })
}

/// Pages through every account's transactions on the new release and checks `transaction_date`
/// against the rule over the dates shown (the sandbox sends no separate transaction date).
async fn check_dates(shared: &Shared, hub: &Hub) -> anyhow::Result<(usize, usize)> {
    let (mut checked, mut mismatches) = (0, 0);
    for account in &shared.accounts {
        let mut cursor: Option<String> = None;
        loop {
            let mut url = hub.url(&format!("/v1/accounts/{account}/transactions?limit=200"));
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let page: Value = shared
                .http
                .get(&url)
                .bearer_auth(&shared.bearer)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            for t in page["data"].as_array().into_iter().flatten() {
                checked += 1;
                let expected = t["booking_date"]
                    .as_str()
                    .or_else(|| t["value_date"].as_str());
                let shown = t["transaction_date"].as_str();
                if shown.is_none() || (expected.is_some() && shown != expected) {
                    mismatches += 1;
                    if mismatches <= 5 {
                        eprintln!("expand-contract: wrong transaction_date: {t}");
                    }
                }
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok((checked, mismatches))
}

fn to_markdown(r: &ExpandReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let o = &mut out;
    writeln!(o, "## expand-contract ({})", r.started_at).ok();
    writeln!(o).ok();
    writeln!(
        o,
        "- old release: {}; new release: {}",
        r.old_version, r.new_version
    )
    .ok();
    writeln!(
        o,
        "- {} closed-loop workers plus one syncing; {} transactions before the change",
        r.concurrency, r.transactions_before
    )
    .ok();
    writeln!(
        o,
        "- new release migrated and ready in {} ms, while the old one served",
        r.new_release_ready_ms
    )
    .ok();
    for line in &r.migrations_applied {
        writeln!(o, "  - {line}").ok();
    }
    writeln!(o,
        "- backfill: {} rows without transaction_date when the new release was ready; none left after {} ms",
        r.backfill_rows_at_start, r.backfill_converged_ms
    ).ok();
    writeln!(
        o,
        "- transaction_date checked on {} transactions through the new release: {} wrong",
        r.transactions_checked, r.transaction_date_mismatches
    )
    .ok();
    writeln!(
        o,
        "- old release: {} requests answered after the schema was expanded",
        r.old_release_ok_after_change
    )
    .ok();
    writeln!(o).ok();
    writeln!(o, "| phase | release | request | ok | failed |").ok();
    writeln!(o, "|---|---|---|---:|---:|").ok();
    for phase in PHASES {
        for row in r.requests.iter().filter(|row| row.phase == phase) {
            writeln!(
                o,
                "| {:?} | {:?} | {:?} | {} | {} |",
                row.phase, row.release, row.op, row.ok, row.failed
            )
            .ok();
        }
    }
    writeln!(o).ok();
    writeln!(o, "failed requests: {}", r.failed_requests).ok();
    for (label, n) in &r.failures {
        writeln!(o, "  {n} × {label}").ok();
    }
    writeln!(o, "{}", if r.passed { "PASSED" } else { "FAILED" }).ok();
    out
}
