//! `kontor-bench move`: a tenant with a large history moved online from one cell of a region to
//! another (`kontor cells move --tenant T --to de-2 --json`) while it and another tenant are
//! under mixed load. Two cells of region `de` on fresh PostgreSQL databases (`de-2` starts
//! draining, so every user is placed in `de-1`), `kontor serve` with its embedded worker, the
//! sandbox bank in this process and a webhook receiver. The moved tenant's history is made the
//! way a tenant gets one: many users each link alice at Sonnenbank through the hub's connect
//! page and the bank's pages, and the hub's first sync writes her 24 months. The load, on both
//! tenants: payments with Idempotency-Key retries and the user's authorisation at the bank (the
//! crash test's driver), syncs of a linked connection, reads (a user, a page of payments, a
//! page of transactions), and webhook deliveries of every event. Afterwards every payment is let
//! settle and checked against the bank's ledger, every event in the cells' outboxes against
//! what the receiver got, and the rows of the moved tenant counted in both cells.

mod kills;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::task::JoinSet;

use crate::crash::check;
use crate::crash::driver::{Driver, Payer, Target, lock};
use crate::crash::{Settle, settle};
use crate::databases::TempDatabases;
use crate::harness::{self, HubConfigFile, table};
use crate::hub::{self, Hub, kontor_command};
use crate::journal::{self, Journal, now_ms};
use crate::mixed_load::{self as load, Linked, Load};
use crate::sandbox::{self, Customer};
use crate::webhooks::receiver::Receiver;
use report::{MoveBenchReport, Payments, Rows, TenantLoad, Webhooks};

/// Keys prepared per tenant (the workers take them at `--payment-rate`); the other tenant's
/// amounts start above the moved tenant's, so that the bank's ledger tells them apart.
const KEYS_PER_TENANT: usize = 5000;

/// The tables counted per tenant in both cells after the move (each has a `tenant_id`).
const COUNTED: &[&str] = &[
    "users",
    "connections",
    "accounts",
    "transactions",
    "payments",
    "events",
    "webhook_deliveries",
];

#[derive(Debug, Clone, Args)]
pub struct MoveArgs {
    #[command(flatten)]
    pub hub: crate::HubArgs,
    /// Transactions the moved tenant holds before the move (at least): links of alice's 24
    /// months are made until there are this many.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub transactions: u64,
    /// Links made at once while seeding. One by default: first syncs of several users of one
    /// tenant at once conflicted (`apply_sync` gave up after 10 serialization failures) and the
    /// worker's retry then met an expired consent at the sandbox, leaving the link unsynced.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=32))]
    pub link_concurrency: u16,
    /// Skip `ANALYZE` of both cells after seeding. By default the run analyzes them, as
    /// autovacuum would soon after a bulk change: on a server with autovacuum off the planner
    /// knows nothing of the 100,000 new rows, and the move's keyset pages then re-read and sort
    /// the rest of the tenant's transactions for every page (measured: 107 ms a page instead of
    /// 0.26 ms).
    #[arg(long)]
    pub no_analyze: bool,
    /// Seconds of load before the move starts.
    #[arg(long, value_name = "SECS", default_value_t = 8)]
    pub before: u64,
    /// Seconds of load after the move has finished.
    #[arg(long, value_name = "SECS", default_value_t = 8)]
    pub after: u64,
    /// `--grace` of `kontor cells move`: seconds before the source's rows are deleted.
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub grace: u64,
    /// New payment Idempotency-Keys per second, per tenant.
    #[arg(long, value_name = "N", default_value_t = 2.0)]
    pub payment_rate: f64,
    /// Payment keys driven at once per tenant (at most).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub payment_workers: u16,
    /// Read workers per tenant.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(0..=64))]
    pub read_workers: u16,
    /// Pause of the sync and read workers between two requests, ms.
    #[arg(long, value_name = "MS", default_value_t = 25)]
    pub pause_ms: u64,
    /// SIGKILL `kontor cells move` this many times, at moments spread over its phases
    /// (copying, catching_up, frozen, switched, cleaning), each time carrying it on with
    /// `--resume`; then `--resume` until it is done.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u16).range(0..=50))]
    pub kills: u16,
    /// The longest random wait, ms, from seeing a kill's phase in the journal to the kill.
    #[arg(long, value_name = "MS", default_value_t = 400)]
    pub kill_jitter_ms: u64,
    /// How long payments and webhook deliveries may take to finish after the load.
    #[arg(long, value_name = "SECS", default_value_t = 150)]
    pub settle_timeout: u64,
    /// Copy the hub's log here.
    #[arg(long, value_name = "FILE")]
    pub hub_log: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub output: crate::report::Output,
}

pub async fn run(args: &MoveArgs) -> anyhow::Result<()> {
    if !args.payment_rate.is_finite() || args.payment_rate <= 0.0 {
        bail!("--payment-rate must be above 0");
    }
    let kontor = crate::setup::kontor_binary(args.hub.kontor.clone())?;
    let started_at = crate::users::now_rfc3339();
    let databases = TempDatabases::create(
        &args.hub.postgres,
        &["control", "de1", "de2", "keys_de1", "keys_de2"],
    )
    .await?;
    let outcome = with_databases(args, &kontor, &databases, started_at).await;
    if let Err(err) = databases.drop_all().await {
        eprintln!("kontor-bench move: {err:#}");
    }
    let report = outcome?;
    args.output.emit(&report, &report.to_markdown())?;
    if !report.passed {
        bail!("move check failed: {}", report.problems.join("; "));
    }
    Ok(())
}

/// What the phases of the run share.
struct World<'a> {
    args: &'a MoveArgs,
    kontor: &'a Path,
    env: Vec<(String, String)>,
    sandbox: &'a kontor_sandbox_bank::RunningSandbox,
    receiver: &'a Receiver,
    /// `de-1` and `de-2` → URL.
    cells: BTreeMap<String, String>,
    /// The control database, where the journal of moves is.
    control: String,
    http: reqwest::Client,
    base: String,
}

/// One tenant of the run and its load.
struct Side {
    name: &'static str,
    tenant_id: String,
    bearer: String,
    payer: Payer,
    linked: Linked,
    journal: Arc<Journal>,
    driver: Arc<Driver>,
    load: Arc<Load>,
}

async fn with_databases(
    args: &MoveArgs,
    kontor: &Path,
    databases: &TempDatabases,
    started_at: String,
) -> anyhow::Result<MoveBenchReport> {
    let sandbox = sandbox::start(args.seed).await?;
    let receiver = Receiver::start().await?;
    let data = tempfile::Builder::new()
        .prefix("kontor-move-")
        .tempdir()
        .context("creating the hub's data directory")?;
    let text = toml::Value::String;
    let mut cells = toml::Table::new();
    cells.insert(
        "de".to_owned(),
        toml::Value::Table(table([
            ("url", text(databases.url("de1")?)),
            ("keys_url", text(databases.url("keys_de1")?)),
        ])),
    );
    // Draining: no new user is placed there, so the whole history starts in de-1.
    cells.insert(
        "de-2".to_owned(),
        toml::Value::Table(table([
            ("url", text(databases.url("de2")?)),
            ("keys_url", text(databases.url("keys_de2")?)),
            ("state", text("draining".to_owned())),
        ])),
    );
    let config = HubConfigFile {
        cells: Some(cells),
        ..HubConfigFile::mixed_load(data.path(), sandbox::hub_banks(&sandbox))
    };
    let (_, mut env) = config.write(data.path())?;
    env.push((
        "KONTOR_DATABASE__CONTROL_URL".to_owned(),
        databases.url("control")?,
    ));
    env.extend(args.hub.settings.iter().cloned());
    let cell_urls: BTreeMap<String, String> = [
        ("de-1".to_owned(), databases.url("de1")?),
        ("de-2".to_owned(), databases.url("de2")?),
    ]
    .into_iter()
    .collect();
    let moved = hub::create_tenant(kontor, &env, "moved").await?;
    let other = hub::create_tenant(kontor, &env, "other").await?;
    let log = data.path().join("hub.log");
    eprintln!("kontor-bench move: starting the hub…");
    let hub = Hub::start(kontor, &env, &log).await?;
    let kontor_version = harness::kontor_version(kontor).await;
    let http = harness::http_client(Duration::from_secs(60))?;
    let world = World {
        args,
        kontor,
        env,
        sandbox: &sandbox,
        receiver: &receiver,
        cells: cell_urls,
        control: databases.url("control")?,
        http,
        base: hub.url(""),
    };
    let tokens = (hub.token(&moved).await?, hub.token(&other).await?);
    let outcome = drive(
        &world,
        (moved.tenant_id.clone(), tokens.0.bearer),
        (other.tenant_id.clone(), tokens.1.bearer),
    )
    .await;
    let hub_exit = hub.stop().await.ok();
    if let Some(copy) = &args.hub_log
        && let Err(err) = std::fs::copy(&log, copy)
    {
        eprintln!(
            "kontor-bench move: copying the hub log to {}: {err}",
            copy.display()
        );
    }
    let mut report = outcome?;
    report.started_at = started_at;
    report.kontor_version = kontor_version;
    report.postgres = format!("PostgreSQL {}", databases.server_version());
    report.hub_log = hub::summarize_log(&log);
    report.hub_exit = hub_exit;
    Ok(report)
}

/// A new user of the tenant who links the customer at their bank; after the first sync.
async fn linked_user(
    world: &World<'_>,
    bearer: &str,
    customer: &Customer,
    external_id: &str,
) -> anyhow::Result<Linked> {
    let user_id = harness::create_user(&world.http, &world.base, bearer, external_id, "de").await?;
    load::link(
        &world.http,
        &world.base,
        bearer,
        world.sandbox.url(),
        (&user_id, &customer.bank_id, &customer.username),
    )
    .await
}

/// `SELECT count(*) FROM <table> WHERE tenant_id = $1` in the cell at `url`.
async fn count(url: &str, table: &str, tenant: &str) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to a cell")?;
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table} WHERE tenant_id = $1");
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(tenant)
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("counting {table}"))?;
    let _ = conn.close().await;
    Ok(n)
}

/// Links alice for the moved tenant until it holds `--transactions` transactions in de-1.
async fn seed(
    world: &World<'_>,
    bearer: &str,
    tenant: &str,
    customer: &Customer,
) -> anyhow::Result<report::Seeding> {
    let started = Instant::now();
    let de1 = world.cells["de-1"].clone();
    eprintln!("kontor-bench move: seeding the moved tenant (first link)…");
    linked_user(world, bearer, customer, "moved-0").await?;
    let per_link = count(&de1, "transactions", tenant).await?.max(1);
    let target = i64::try_from(world.args.transactions).unwrap_or(i64::MAX);
    let links = usize::try_from((target + per_link - 1) / per_link).unwrap_or(1);
    eprintln!(
        "kontor-bench move: {per_link} transactions per link; {links} links in all, {} at once…",
        world.args.link_concurrency
    );
    let next = AtomicU64::new(1);
    let done = AtomicU64::new(1);
    let (next, done) = (&next, &done);
    let worker = move || async move {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= u64::try_from(links).unwrap_or(0) {
                return Ok::<(), anyhow::Error>(());
            }
            linked_user(world, bearer, customer, &format!("moved-{n}")).await?;
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d % 10 == 0 {
                eprintln!("kontor-bench move: {d} of {links} links");
            }
        }
    };
    let workers: Vec<_> = (0..world.args.link_concurrency).map(|_| worker()).collect();
    for result in futures_join_all(workers).await {
        result?;
    }
    let transactions = count(&de1, "transactions", tenant).await?;
    let seconds = started.elapsed().as_secs_f64();
    if !world.args.no_analyze {
        for url in world.cells.values() {
            let mut conn = PgConnection::connect(url)
                .await
                .context("connecting to a cell")?;
            sqlx::query("ANALYZE")
                .execute(&mut conn)
                .await
                .context("analyzing a cell")?;
            let _ = conn.close().await;
        }
    }
    eprintln!("kontor-bench move: seeded {transactions} transactions in {seconds:.1} s");
    Ok(report::Seeding {
        links: u64::try_from(links).unwrap_or(u64::MAX),
        transactions_per_link: per_link,
        transactions,
        seconds,
        analyzed: !world.args.no_analyze,
    })
}

/// Awaits every future (they run concurrently on this task).
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

fn side(
    world: &World<'_>,
    (name, tenant_id, bearer): (&'static str, String, String),
    payer: Payer,
    linked: Linked,
    first_cent: usize,
) -> Side {
    let args = world.args;
    let journal = Arc::new(Journal::default());
    let mut driver = Driver::new(
        world.http.clone(),
        Target {
            hub_base: world.base.clone(),
            sandbox_url: world.sandbox.url().to_owned(),
            bearer: bearer.clone(),
        },
        vec![payer.clone()],
        harness::mixed_load_knobs(args.payment_rate),
        args.seed
            .wrapping_add(u64::try_from(first_cent).unwrap_or(0)),
        KEYS_PER_TENANT,
    );
    // Amounts unique over both tenants: the ledger is matched by (bank, amount).
    for (i, key) in driver.keys.iter().enumerate() {
        let mut key = lock(key);
        let cents = 100 + first_cent + i;
        key.amount = format!("{}.{:02}", cents / 100, cents % 100);
        key.body["amount"]["value"] = Value::String(key.amount.clone());
    }
    driver.journal = Some(Arc::clone(&journal));
    let load = Load::new(
        world.http.clone(),
        (&world.base, &bearer),
        Arc::clone(&journal),
        format!("move-{name}-{}", now_ms()),
        Duration::from_millis(args.pause_ms),
    );
    Side {
        name,
        tenant_id,
        bearer,
        payer,
        linked,
        journal,
        driver: Arc::new(driver),
        load,
    }
}

/// The output of `kontor cells move --json`, and when it ran.
#[derive(Debug)]
struct MoveRun {
    start_ms: u64,
    end_ms: u64,
    status: String,
    body: Value,
    stderr: String,
}

async fn run_move(world: &World<'_>, tenant: &str) -> anyhow::Result<MoveRun> {
    let grace = world.args.grace.to_string();
    run_move_with(
        world,
        &["--tenant", tenant, "--to", "de-2", "--grace", &grace],
    )
    .await
}

/// `kontor cells move ARGS… --json` to its end.
async fn run_move_with(world: &World<'_>, args: &[&str]) -> anyhow::Result<MoveRun> {
    let start_ms = now_ms();
    let output = kontor_command(world.kontor, &world.env)
        .args(["cells", "move"])
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .await
        .context("running kontor cells move")?;
    let end_ms = now_ms();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let body = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .unwrap_or(Value::Null);
    Ok(MoveRun {
        start_ms,
        end_ms,
        status: output.status.to_string(),
        body,
        stderr: String::from_utf8_lossy(&output.stderr)
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | "),
    })
}

async fn drive(
    world: &World<'_>,
    (moved_id, moved_bearer): (String, String),
    (other_id, other_bearer): (String, String),
) -> anyhow::Result<MoveBenchReport> {
    let args = world.args;
    let alice = sandbox::customers(world.sandbox)?
        .into_iter()
        .find(|c| c.username == "alice")
        .context("the sandbox has no alice")?;
    for bearer in [&moved_bearer, &other_bearer] {
        harness::webhook_endpoint(&world.http, &world.base, bearer, world.receiver).await?;
    }
    let seeding = seed(world, &moved_bearer, &moved_id, &alice).await?;
    // The sandbox, as the standard says, expires a PSU's recurring consent once a newer one is
    // authorised: of alice's links only the newest syncs. So the moved tenant's load runs on a
    // link made after the seeding, and the other tenant's on carol's (her side account at the
    // same bank), which leaves alice's consent alone.
    eprintln!("kontor-bench move: linking alice for the moved tenant's load…");
    let moved_linked = linked_user(world, &moved_bearer, &alice, "moved-load").await?;
    let carol = sandbox::customer(world.sandbox, "carol", &alice.bank_id, &alice.region)?;
    eprintln!("kontor-bench move: linking carol for the other tenant…");
    let other_linked = linked_user(world, &other_bearer, &carol, "other-0").await?;
    let payer = |customer: &Customer, linked: &Linked| Payer {
        customer: customer.clone(),
        user_id: linked.user_id.clone(),
    };
    let sides = [
        side(
            world,
            ("moved", moved_id.clone(), moved_bearer.clone()),
            payer(&alice, &moved_linked),
            moved_linked.clone(),
            0,
        ),
        side(
            world,
            ("other", other_id.clone(), other_bearer.clone()),
            payer(&carol, &other_linked),
            other_linked.clone(),
            KEYS_PER_TENANT,
        ),
    ];

    eprintln!("kontor-bench move: load on");
    let run_start = now_ms();
    let mut workers = JoinSet::new();
    for s in &sides {
        for worker in 0..u64::from(args.payment_workers) {
            workers.spawn(Arc::clone(&s.driver).work(worker));
        }
        workers.spawn(Arc::clone(&s.load).syncs(s.linked.clone()));
        for _ in 0..args.read_workers {
            workers.spawn(Arc::clone(&s.load).reads(vec![s.linked.clone()]));
        }
    }
    tokio::time::sleep(Duration::from_secs(args.before)).await;
    eprintln!("kontor-bench move: kontor cells move --tenant {moved_id} --to de-2 --json…");
    let (moved, killed) = if args.kills == 0 {
        (run_move(world, &moved_id).await?, None)
    } else {
        let kills::KilledMove {
            last,
            kills: list,
            runs,
            failed_resumes,
        } = kills::killed_move(world, &moved_id, &kills::aims(args.kills)).await?;
        let id = last.body["move_id"].as_str().unwrap_or_default().to_owned();
        let killed = report::Killed {
            asked: args.kills,
            kills: list,
            runs,
            failed_resumes,
            journal_write_pause_ms: kills::journal_pause_ms(world, &id).await?,
        };
        (last, Some(killed))
    };
    eprintln!(
        "kontor-bench move: the move ended ({}) after {} ms",
        moved.status,
        moved.end_ms - moved.start_ms
    );
    tokio::time::sleep(Duration::from_secs(args.after)).await;
    let load_end = now_ms();
    for s in &sides {
        s.driver.stop.store(true, Ordering::Relaxed);
        s.load.stop.store(true, Ordering::Relaxed);
    }
    eprintln!("kontor-bench move: load off; finishing the payments in flight…");
    while let Some(joined) = workers.join_next().await {
        joined.context("a load worker failed")?;
    }

    let ledger = world.sandbox.payments();
    let mut tenants = Vec::new();
    for s in &sides {
        eprintln!(
            "kontor-bench move: letting the {} tenant's payments settle…",
            s.name
        );
        let (hub_payments, settled) = settle(
            &Settle {
                sandbox: world.sandbox,
                http: &world.http,
                base: &world.base,
                bearer: &s.bearer,
                payers: std::slice::from_ref(&s.payer),
                cells: &world.cells,
            },
            Duration::from_secs(60),
            Duration::from_secs(args.settle_timeout),
            "move",
        )
        .await?;
        let keys: Vec<_> = s.driver.keys[..s.driver.taken()]
            .iter()
            .map(|k| lock(k).clone())
            .collect();
        let amounts: BTreeSet<i64> = s
            .driver
            .keys
            .iter()
            .filter_map(|k| check::minor_units(&lock(k).amount))
            .collect();
        let mine: Vec<_> = ledger
            .iter()
            .filter(|p| check::minor_units(&p.amount).is_some_and(|a| amounts.contains(&a)))
            .cloned()
            .collect();
        let entries = s.journal.entries();
        let (requests, failed) = journal::failures(&entries, 0, u64::MAX);
        let outage = journal::outage(&entries, moved.start_ms, load_end);
        tenants.push(TenantLoad {
            tenant: s.name,
            tenant_id: s.tenant_id.clone(),
            requests: requests
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            failed: failed.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            write_gap_ms: outage.write_outage_ms,
            write_gap_from_ms: outage.gap_from_ms,
            payments: Payments::check(&keys, &hub_payments, &mine, settled),
            webhooks: Webhooks::default(),
        });
    }

    eprintln!("kontor-bench move: waiting for every webhook event to arrive…");
    for t in &mut tenants {
        t.webhooks = webhooks(world, &t.tenant_id).await?;
    }
    let mut rows = Vec::new();
    for table in COUNTED {
        rows.push(Rows {
            table: (*table).to_owned(),
            de_1: count(&world.cells["de-1"], table, &moved_id).await?,
            de_2: count(&world.cells["de-2"], table, &moved_id).await?,
        });
    }
    Ok(report::assemble(
        args,
        seeding,
        (run_start, load_end),
        (moved.start_ms, moved.end_ms),
        moved.status,
        moved.body,
        moved.stderr,
        tenants,
        rows,
        killed,
        world
            .receiver
            .requests()
            .saturating_sub(u64::try_from(world.receiver.distinct()).unwrap_or(u64::MAX)),
    ))
}

/// Waits until every event of `tenant` in both cells' outboxes has reached the receiver, or
/// the settle timeout passes.
async fn webhooks(world: &World<'_>, tenant: &str) -> anyhow::Result<Webhooks> {
    let outbox = harness::await_deliveries(
        world.cells.values(),
        tenant,
        world.receiver,
        Duration::from_secs(world.args.settle_timeout),
    )
    .await?;
    Ok(Webhooks {
        events: outbox.events.len(),
        delivered: outbox.events.len() - outbox.lost.len(),
        lost: outbox.lost.len(),
        lost_examples: outbox.lost.into_iter().take(10).collect(),
    })
}
