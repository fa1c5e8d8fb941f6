//! `kontor-bench crash`: payments exactly once while the hub is SIGKILLed at random moments and
//! restarted. The sandbox bank runs in this process (it survives every hub life); the hub runs
//! as a child on SQLite (or fresh PostgreSQL databases) under a temporary data directory. The
//! driver pushes payments through `POST /v1/payments` and the authorisation pages with random
//! retries; at the end the killing stops, simulated time passes at the bank, and every key is
//! checked against the hub's payments and the bank's ledger ([`check`]).

pub(crate) mod check;
pub(crate) mod driver;
pub(crate) mod inspect;
mod killer;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use kontor_sandbox_bank::RunningSandbox;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::databases::TempDatabases;
use crate::harness::{self, HubConfigFile};
use crate::hub::{self, Hub, Tenant};
use crate::sandbox;
use check::{HubPayment, Verdict};
use driver::{Driver, Knobs, Payer, Target, lock};
use killer::{HubRecipe, KillPlan, Killer};
use report::{CrashReport, CrashSettings, Evidence};

#[derive(Debug, Clone, Args)]
pub struct CrashArgs {
    /// The kontor binary [default: `kontor` beside this program, e.g. target/release/kontor].
    #[arg(long, value_name = "PATH")]
    pub kontor: Option<PathBuf>,
    /// Run the hub on fresh PostgreSQL databases created under this administrator URL (dropped
    /// at the end) instead of SQLite files in the temporary data directory.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Idempotency keys to drive (each a payment of its own, with a unique amount).
    #[arg(long, value_name = "N", default_value_t = 300,
          value_parser = clap::value_parser!(u32).range(1..=9000))]
    pub payments: u32,
    /// New keys started per second (0: as fast as the workers go). Spreads the keys over time,
    /// so that the kills fall among them: at 10/s, 300 keys take at least 30 s.
    #[arg(long, value_name = "N", default_value_t = 10.0)]
    pub rate: f64,
    /// Keys driven at the same time (at most).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Seed of every random choice (kill times, retries, abandonments). Timing still differs
    /// between runs, so a seed does not replay a run exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shortest life of the hub between kills, in ms after it is ready.
    #[arg(long, value_name = "MS", default_value_t = 300)]
    pub kill_min_ms: u64,
    /// Longest life of the hub between kills, in ms.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub kill_max_ms: u64,
    /// Stop killing after this many kills.
    #[arg(long, value_name = "N")]
    pub max_kills: Option<u32>,
    /// Chance that a key's first POST is sent twice at once.
    #[arg(long, value_name = "P", default_value_t = 0.15)]
    pub concurrent: f64,
    /// Chance that a key is POSTed again after its 201 (before or during the authorisation).
    #[arg(long, value_name = "P", default_value_t = 0.25)]
    pub replay: f64,
    /// Chance, after each failed POST, that the key is abandoned and never sent again.
    #[arg(long, value_name = "P", default_value_t = 0.5)]
    pub abandon: f64,
    /// The hub's `payments.authorisation_ttl_seconds`: payments nobody authorised are cancelled
    /// after this long (abandoned keys' payments need it to become final).
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub authorisation_ttl: u64,
    /// The hub's `payments.stale_seconds`: a step toward the bank left unfinished this long
    /// is resumed by the worker.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub stale: u64,
    /// The hub's `payments.poll_base_seconds` (first status poll 2× this after submission).
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub poll_base: u64,
    /// The hub's `payments.poll_cap_seconds`.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub poll_cap: u64,
    /// The hub's `worker.lease_seconds`: a killed life's claims on payments hold this long
    /// before the next life's worker may resume them. The hub's bank request timeout is set to
    /// a third of it.
    #[arg(long, value_name = "SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease: u64,
    /// How long to wait, after the killing stopped, for every payment to become final. The
    /// default outlasts the lease several times over.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub settle_timeout: u64,
    /// Copy the hub's log (all lives, level info) here.
    #[arg(long, value_name = "FILE")]
    pub hub_log: Option<PathBuf>,
    #[command(flatten)]
    pub output: crate::report::Output,
}

pub async fn run(args: &CrashArgs) -> anyhow::Result<()> {
    for (name, p) in [
        ("--concurrent", args.concurrent),
        ("--replay", args.replay),
        ("--abandon", args.abandon),
    ] {
        if !(0.0..=1.0).contains(&p) {
            bail!("{name} is a probability between 0 and 1");
        }
    }
    if !args.rate.is_finite() || args.rate < 0.0 {
        bail!("--rate must be 0 or more");
    }
    if args.kill_min_ms > args.kill_max_ms || args.kill_min_ms == 0 {
        bail!("--kill-min-ms must be at least 1 and not above --kill-max-ms");
    }
    let kontor = crate::setup::kontor_binary(args.kontor.clone())?;
    let started_at = crate::users::now_rfc3339();
    let kontor_version = harness::kontor_version(&kontor).await;

    let sandbox = sandbox::start(args.seed).await?;
    let data = tempfile::Builder::new()
        .prefix("kontor-crash-")
        .tempdir()
        .context("creating the hub's data directory")?;
    let databases = match &args.postgres {
        Some(url) => {
            Some(TempDatabases::create(url, &["control", "de", "uk", "keys_de", "keys_uk"]).await?)
        }
        None => None,
    };
    let backend = databases.as_ref().map_or_else(
        || "SQLite".to_owned(),
        |d| format!("PostgreSQL {}", d.server_version()),
    );
    let payments_config = harness::payments_section(
        args.stale,
        args.authorisation_ttl,
        args.poll_base,
        args.poll_cap,
    );
    let config = HubConfigFile::new(
        data.path(),
        args.lease,
        payments_config.clone(),
        sandbox::hub_banks(&sandbox),
    );
    let (_, mut env) = config.write(data.path())?;
    if let Some(d) = &databases {
        env.push(("KONTOR_DATABASE__CONTROL_URL".to_owned(), d.url("control")?));
        env.extend(harness::cell_env("de", d.url("de")?, d.url("keys_de")?));
        env.extend(harness::cell_env("uk", d.url("uk")?, d.url("keys_uk")?));
    }

    // Where the evidence for unexplained payments is read from (read-only).
    let cells: BTreeMap<String, String> = match &databases {
        Some(d) => [("de", d.url("de")?), ("uk", d.url("uk")?)]
            .into_iter()
            .map(|(r, u)| (r.to_owned(), u))
            .collect(),
        None => ["de", "uk"]
            .into_iter()
            .map(|r| {
                let file = data.path().join("data").join(format!("cell-{r}.db"));
                (r.to_owned(), format!("sqlite://{}?mode=ro", file.display()))
            })
            .collect(),
    };
    let tenant = hub::create_tenant(&kontor, &env, "crash-test").await?;
    let recipe = Arc::new(HubRecipe {
        kontor: kontor.clone(),
        env,
        log: data.path().join("hub.log"),
        port: hub::free_port()?,
    });
    eprintln!(
        "kontor-bench crash: starting the hub ({backend}) on port {}…",
        recipe.port
    );
    let hub = recipe.start().await?;
    let settings = CrashSettings {
        backend,
        payments: usize::try_from(args.payments).unwrap_or(usize::MAX),
        concurrency: usize::from(args.concurrency),
        rate: (args.rate > 0.0).then_some(args.rate),
        seed: args.seed,
        kill_every_ms: (args.kill_min_ms, args.kill_max_ms),
        max_kills: args.max_kills,
        concurrent_first_post: args.concurrent,
        replay_after_201: args.replay,
        abandon_after_error: args.abandon,
        hub_payments_config: payments_config
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .chain([format!("worker lease {} s", args.lease)])
            .collect::<Vec<_>>()
            .join(", "),
        kontor_version,
    };
    let world = World {
        sandbox: &sandbox,
        recipe: &recipe,
        tenant: &tenant,
        cells: &cells,
    };
    let outcome = drive_and_check(args, &world, hub, settings, started_at).await;
    if let Some(copy) = &args.hub_log
        && let Err(err) = std::fs::copy(&recipe.log, copy)
    {
        eprintln!(
            "kontor-bench: copying the hub log to {}: {err}",
            copy.display()
        );
    }
    let dropped = match databases {
        Some(d) => d.drop_all().await,
        None => Ok(()),
    };
    drop(data);
    let report = outcome?;
    dropped?;
    args.output.emit(&report, &report.to_markdown())?;
    if !report.passed {
        bail!(
            "{} violation(s) of exactly-once; see the report",
            report.verdict.violations.len()
        );
    }
    Ok(())
}

/// From a running hub to the report. The hub is stopped (SIGTERM) before returning; on an
/// error it is killed when dropped.
/// What the run set up around the hub.
#[derive(Debug)]
struct World<'a> {
    sandbox: &'a RunningSandbox,
    recipe: &'a Arc<HubRecipe>,
    tenant: &'a Tenant,
    /// Region → cell database URL, for the evidence.
    cells: &'a BTreeMap<String, String>,
}

async fn drive_and_check(
    args: &CrashArgs,
    world: &World<'_>,
    hub: Hub,
    settings: CrashSettings,
    started_at: String,
) -> anyhow::Result<CrashReport> {
    let (sandbox, recipe, tenant) = (world.sandbox, world.recipe, world.tenant);
    let token = hub.token(tenant).await?;
    let http = harness::http_client(Duration::from_secs(10))?;
    let base = hub.url("");
    let mut payers = Vec::new();
    for customer in sandbox::customers(sandbox)? {
        let user_id = harness::create_user(
            &http,
            &base,
            &token.bearer,
            &format!("crash-{}", customer.username),
            &customer.region,
        )
        .await?;
        payers.push(Payer { customer, user_id });
    }
    let knobs = Knobs {
        concurrent: args.concurrent,
        replay: args.replay,
        abandon: args.abandon,
        post_deadline: Duration::from_secs(120),
        auth_deadline: Duration::from_secs(120),
        rate: (args.rate > 0.0).then_some(args.rate),
    };
    let target = Target {
        hub_base: base.clone(),
        sandbox_url: sandbox.url().to_owned(),
        bearer: token.bearer.clone(),
    };
    let driver = Arc::new(Driver::new(
        http.clone(),
        target,
        payers.clone(),
        knobs,
        args.seed,
        settings.payments,
    ));
    let plan = KillPlan {
        min: Duration::from_millis(args.kill_min_ms),
        max: Duration::from_millis(args.kill_max_ms),
        max_kills: args.max_kills,
        seed: args.seed,
    };
    eprintln!(
        "kontor-bench crash: driving {} payments with {} workers while killing the hub…",
        settings.payments, settings.concurrency
    );
    let killer = Killer::spawn(hub, Arc::clone(recipe), plan, driver.t0);
    let mut workers = JoinSet::new();
    for worker in 0..u64::from(args.concurrency) {
        workers.spawn(Arc::clone(&driver).work(worker));
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a driver worker failed")?;
    }
    let drive_seconds = driver.t0.elapsed().as_secs_f64();
    let (hub, killer_stats) = killer.finish().await?;

    eprintln!(
        "kontor-bench crash: {} kills; letting every payment settle…",
        killer_stats.kills
    );
    let settle_started = Instant::now();
    let (hub_payments, settled) = settle(
        &Settle {
            sandbox,
            http: &http,
            base: &base,
            bearer: &token.bearer,
            payers: &payers,
            cells: world.cells,
        },
        Duration::from_secs(args.lease + args.stale + 30),
        Duration::from_secs(args.settle_timeout),
        "crash",
    )
    .await?;
    let settle_seconds = settle_started.elapsed().as_secs_f64();
    let ledger = sandbox.payments();
    let keys: Vec<_> = driver.keys.iter().map(|k| lock(k).clone()).collect();
    let verdict = check::check(&keys, &hub_payments, &ledger);
    let sources = Sources {
        http: &http,
        base: &base,
        bearer: &token.bearer,
        log: &recipe.log,
        cells: world.cells,
    };
    let evidence = gather_evidence(&verdict, &keys, &killer_stats, &sources).await;

    let log = hub.log_path().to_owned();
    let hub_exit = hub.stop().await.ok();
    let mut restarts = killer_stats.restart_ms.clone();
    restarts.sort_unstable();
    Ok(CrashReport {
        started_at,
        passed: verdict.violations.is_empty() && settled,
        drive_seconds,
        settle_seconds,
        settled,
        restart_p50_ms: restarts.get(restarts.len() / 2).copied().unwrap_or(0),
        restart_max_ms: restarts.last().copied().unwrap_or(0),
        killer: killer_stats,
        counters: driver.counters.snapshot(),
        keys_abandoned: keys.iter().filter(|k| k.abandoned).count(),
        keys_given_up: keys.iter().filter(|k| k.gave_up).count(),
        verdict,
        evidence,
        hub_log: hub::summarize_log(&log),
        hub_exit,
        settings,
    })
}

/// What [`settle`] needs: the bank, the hub's API, whose payments, and the cells to look into.
#[derive(Debug)]
pub(crate) struct Settle<'a> {
    pub sandbox: &'a RunningSandbox,
    pub http: &'a reqwest::Client,
    pub base: &'a str,
    pub bearer: &'a str,
    pub payers: &'a [Payer],
    pub cells: &'a BTreeMap<String, String>,
}

/// Lets every payment of `payers` become final: first the hub finishes (or resumes, once a lease
/// lapses) every step it had started toward the bank, within `steps_within`, with the bank's
/// clock still; then simulated time passes at the bank until the list shows no open payment or
/// `timeout` (from the start) passes. Returns the payments listed last and whether all were
/// final.
pub(crate) async fn settle(
    s: &Settle<'_>,
    steps_within: Duration,
    timeout: Duration,
    tool: &str,
) -> anyhow::Result<(Vec<HubPayment>, bool)> {
    let settle_started = Instant::now();
    let deadline = settle_started + timeout;
    // Moving the bank's clock first would let a resumed submission find the user's token lapsed
    // (the sandbox's live one simulated hour), which tests the clock, not a crash.
    let steps_due = Instant::now() + steps_within;
    while Instant::now() < steps_due.min(deadline) {
        match inspect::mid_step(s.cells).await {
            Some(0) | None => break,
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    // SEPA credit transfers settle 4 simulated hours after acceptance, UK FPS 5 s.
    s.sandbox
        .advance_clock(time::Duration::hours(5))
        .context("advancing the sandbox clock")?;
    let mut told = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let listed = list_payments(s.http, s.base, s.bearer, s.payers).await?;
        let open = listed
            .iter()
            .filter(|p| !["completed", "rejected", "cancelled"].contains(&p.status.as_str()))
            .count();
        if open == 0 {
            return Ok((listed, true));
        }
        if Instant::now() > deadline {
            return Ok((listed, false));
        }
        if told.elapsed() > Duration::from_secs(30) {
            told = Instant::now();
            eprintln!(
                "kontor-bench {tool}: {open} payment(s) not final after {} s…",
                settle_started.elapsed().as_secs()
            );
        }
        s.sandbox
            .advance_clock(time::Duration::hours(1))
            .context("advancing the sandbox clock")?;
    }
}

/// Every payment of the run's users, through the list's pages.
pub(crate) async fn list_payments(
    http: &reqwest::Client,
    base: &str,
    bearer: &str,
    payers: &[Payer],
) -> anyhow::Result<Vec<HubPayment>> {
    let mut out = Vec::new();
    for payer in payers {
        let mut cursor: Option<String> = None;
        loop {
            let mut request = http
                .get(format!("{base}/v1/payments"))
                .bearer_auth(bearer)
                .query(&[("user_id", payer.user_id.as_str()), ("limit", "200")]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c.as_str())]);
            }
            let response = request.send().await.context("listing payments")?;
            let status = response.status();
            let page: Value = response
                .json()
                .await
                .context("reading a page of payments")?;
            if status != reqwest::StatusCode::OK {
                bail!("GET /v1/payments answered {status}: {page}");
            }
            for p in page["data"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                out.push(HubPayment {
                    id: text(&p["id"]),
                    status: text(&p["status"]),
                    bank_id: text(&p["bank_id"]),
                    amount: text(&p["amount"]["value"]),
                    currency: text(&p["amount"]["currency"]),
                    bank_payment_id: p["bank_payment_id"].as_str().map(str::to_owned),
                });
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(out)
}

/// For each violation: the key's timeline, the kills around it, the payment as the hub shows
/// it, and what the hub logged about it.
/// Where evidence comes from.
#[derive(Debug)]
struct Sources<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    bearer: &'a str,
    log: &'a Path,
    cells: &'a BTreeMap<String, String>,
}

async fn gather_evidence(
    verdict: &Verdict,
    keys: &[driver::KeyRecord],
    killer: &killer::KillerStats,
    sources: &Sources<'_>,
) -> Vec<Evidence> {
    let Sources {
        http,
        base,
        bearer,
        log,
        cells,
    } = sources;
    let log_text = std::fs::read_to_string(log).unwrap_or_default();
    let ids: Vec<String> = verdict
        .violations
        .iter()
        .filter_map(|v| v.payment_id.clone())
        .collect();
    let rows = inspect::store_rows(cells, &ids).await;
    let mut out = Vec::new();
    for (i, violation) in verdict.violations.iter().enumerate().take(20) {
        let key = violation
            .key
            .as_ref()
            .and_then(|k| keys.iter().find(|r| &r.key == k));
        let timeline = key.map(|k| k.events.clone()).unwrap_or_default();
        let kills = match (timeline.first(), timeline.last()) {
            (Some((from, _)), Some((to, _))) => killer
                .kill_at_ms
                .iter()
                .copied()
                .filter(|t| *t + 2000 >= *from && *t <= to + 2000)
                .collect(),
            _ => Vec::new(),
        };
        let id = violation
            .payment_id
            .clone()
            .or_else(|| key.and_then(|k| k.payment_ids.iter().next().cloned()));
        let mut hub_payment = None;
        let mut hub_log = Vec::new();
        if let Some(id) = &id {
            if let Ok(response) = http
                .get(format!("{base}/v1/payments/{id}"))
                .bearer_auth(bearer)
                .send()
                .await
            {
                hub_payment = response.json::<Value>().await.ok();
            }
            hub_log = log_text
                .lines()
                .filter(|l| l.contains(id.as_str()))
                .take(40)
                .map(|l| l.chars().take(400).collect())
                .collect();
        }
        out.push(Evidence {
            violation: i,
            key_timeline: timeline,
            kills_nearby_ms: kills,
            hub_payment,
            store: id.as_ref().and_then(|id| rows.get(id).cloned()),
            hub_log,
        });
    }
    out
}
