//! `kontor-bench webhooks`: webhook delivery on PostgreSQL. The hub serves the API (no embedded
//! worker); events are written into the cells' outbox (`events`) directly, as the hub's own
//! transactions write them; separate `kontor worker` processes deliver them to a receiver in
//! this process. Two measurements: how fast a backlog drains (deliveries per second), and, under
//! a steady event rate, the delay from each event's commit to its arrival at the receiver.
//! Baseline in the same run: the same POSTs sent to the receiver straight from this process.

mod outbox;
pub(crate) mod receiver;
mod report;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use kontor_domain::{EventId, Region, UserId};
use serde::Serialize;

use crate::setup::{BenchEnv, REGIONS};
use outbox::Outbox;
use receiver::Receiver;
use report::{Delay, Drain, WebhookReport, WebhookSettings};
use workers::Workers;

#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub hub: crate::HubArgs,
    /// Events in the backlog the workers drain.
    #[arg(long, value_name = "N", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub events: u32,
    /// Users per cell the events are about (deliveries of one user go one at a time).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub users: u32,
    /// `kontor worker` processes.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub workers: u16,
    /// Attempts in flight per worker (`webhooks.concurrency`).
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_concurrency: u16,
    /// How often an idle worker polls (`webhooks.poll_ms`).
    #[arg(long, value_name = "MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_ms: u64,
    /// Events per second written during the delay measurement.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub rate: u32,
    /// Seconds of the delay measurement.
    #[arg(long, value_name = "SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Seconds between `ANALYZE`s of each cell's `events` and `webhook_deliveries` while the
    /// workers drain, standing in for autovacuum on a database in service (the run's databases
    /// are new: without it the planner has no statistics for them). 0: none.
    #[arg(long, value_name = "SECS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub analyze_every: u64,
    /// Seconds of the baseline (POSTs straight to the receiver).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub baseline_seconds: u64,
    #[command(flatten)]
    pub output: crate::report::Output,
}

#[derive(Debug, Serialize)]
struct KeyConfig {
    id: String,
    secret: String,
}

#[derive(Debug, Serialize)]
struct Secrets {
    keys: Vec<KeyConfig>,
}

#[derive(Debug, Serialize)]
struct Hooks {
    allow_http: bool,
    allow_private_addresses: bool,
    poll_ms: u64,
    concurrency: u16,
}

#[derive(Debug, Serialize)]
struct WorkerSection {
    embedded: bool,
}

/// The configuration the hub and its workers share: the same key-encryption key (the workers
/// open endpoints' secrets), deliveries to this machine over http, no worker inside the hub.
#[derive(Debug, Serialize)]
struct HubConfig {
    secrets: Secrets,
    webhooks: Hooks,
    worker: WorkerSection,
}

fn write_config(dir: &Path, args: &WebhookArgs) -> anyhow::Result<PathBuf> {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let config = HubConfig {
        secrets: Secrets {
            keys: vec![KeyConfig {
                id: "bench".to_owned(),
                secret: base64::engine::general_purpose::STANDARD.encode(key),
            }],
        },
        webhooks: Hooks {
            allow_http: true,
            allow_private_addresses: true,
            poll_ms: args.poll_ms,
            concurrency: args.worker_concurrency,
        },
        worker: WorkerSection { embedded: false },
    };
    let path = dir.join("kontor.toml");
    std::fs::write(
        &path,
        toml::to_string(&config).context("rendering the hub configuration")?,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub async fn run(args: &WebhookArgs) -> anyhow::Result<()> {
    let started_at = crate::users::now_rfc3339();
    let dir = tempfile::Builder::new()
        .prefix("kontor-bench-webhooks-")
        .tempdir()
        .context("creating a folder for the run")?;
    let config = write_config(dir.path(), args)?;
    eprintln!("kontor-bench webhooks: starting the hub on fresh databases…");
    let env = BenchEnv::start_with(
        &args.hub,
        "bench-webhooks",
        vec![("KONTOR_CONFIG".to_owned(), config.display().to_string())],
    )
    .await?;
    let kontor = args
        .hub
        .kontor
        .clone()
        .unwrap_or_else(crate::setup::default_kontor);
    let mut worker_env = vec![
        ("KONTOR_CONFIG".to_owned(), config.display().to_string()),
        (
            "KONTOR_DATABASE__CONTROL_URL".to_owned(),
            env.databases.url("control")?,
        ),
        (
            "KONTOR_DATA_DIR".to_owned(),
            dir.path().join("worker-data").display().to_string(),
        ),
        ("KONTOR_LOG__LEVEL".to_owned(), "warn".to_owned()),
    ];
    // The workers open the webhook secrets the hub sealed: they need its keys.
    worker_env.extend(env.keys_env.iter().cloned());
    let mut cells = Vec::new();
    for region in REGIONS {
        let url = env.databases.url(region)?;
        worker_env.push((
            format!("KONTOR_CELLS__{}__URL", region.to_uppercase()),
            url.clone(),
        ));
        worker_env.push((
            format!("KONTOR_CELLS__{}__KEYS_URL", region.to_uppercase()),
            env.databases.url(&format!("keys_{region}"))?,
        ));
        cells.push(((*region).to_owned(), url));
    }
    let measured = measure(args, &env, &kontor, &worker_env, &cells, dir.path()).await;
    let machine = env.machine.clone();
    let ending = env.teardown().await;
    let (drain, delay, tally, duplicates, workers_log, baseline) = measured?;
    let report = WebhookReport {
        benchmark: "webhooks".to_owned(),
        started_at,
        settings: WebhookSettings {
            backlog_events: drain.events,
            users_per_cell: usize::try_from(args.users).unwrap_or(usize::MAX),
            workers: usize::from(args.workers),
            worker_concurrency: usize::from(args.worker_concurrency),
            poll_ms: args.poll_ms,
            rate_per_second: args.rate,
            steady_seconds: args.duration,
            analyze_every_seconds: args.analyze_every,
        },
        machine,
        drain,
        delay,
        duplicates,
        deliveries_by_state: WebhookReport::states(tally.0),
        attempts: tally.1,
        baseline_per_second: baseline,
        baseline_connections: usize::from(args.workers) * usize::from(args.worker_concurrency),
        workers_log,
        hub_exit: ending.ok().and_then(|e| e.hub_exit),
    };
    args.output.emit(&report, &report.to_markdown())?;
    Ok(())
}

type Measured = (
    Drain,
    Delay,
    (std::collections::HashMap<String, i64>, i64),
    u64,
    crate::hub::LogSummary,
    f64,
);

async fn measure(
    args: &WebhookArgs,
    env: &BenchEnv,
    kontor: &Path,
    worker_env: &[(String, String)],
    cells: &[(String, String)],
    dir: &Path,
) -> anyhow::Result<Measured> {
    let receiver = Receiver::start().await?;
    let token = env.hub.token(&env.tenant).await?;
    let http = reqwest::Client::new();
    crate::harness::webhook_endpoint(&http, &env.hub.url(""), &token.bearer, &receiver).await?;
    let outbox = Outbox::connect(
        &env.tenant.tenant_id,
        cells,
        usize::try_from(args.users).unwrap_or(1),
    )
    .await?;

    eprintln!(
        "kontor-bench webhooks: writing a backlog of {} events…",
        args.events
    );
    let backlog = outbox
        .backlog(usize::try_from(args.events).unwrap_or(0))
        .await?;
    eprintln!(
        "kontor-bench webhooks: starting {} workers and draining…",
        args.workers
    );
    let analyzer = (args.analyze_every > 0)
        .then(|| outbox.analyze_every(Duration::from_secs(args.analyze_every)));
    let started = SystemTime::now();
    let mut workers = Workers::start(kontor, worker_env, usize::from(args.workers), dir)?;
    wait_for(&receiver, &mut workers, backlog, Duration::from_secs(900)).await?;
    let drain = drain_figures(backlog, started, &receiver);

    eprintln!(
        "kontor-bench webhooks: {} events/s for {} s…",
        args.rate, args.duration
    );
    let committed = outbox
        .steady(args.rate, Duration::from_secs(args.duration))
        .await?;
    wait_for(
        &receiver,
        &mut workers,
        backlog + committed.len(),
        Duration::from_secs(120),
    )
    .await?;
    drop(analyzer);
    let delay = delay_figures(&committed, &receiver, args)?;
    let duplicates = receiver
        .requests()
        .saturating_sub(u64::try_from(receiver.distinct()).unwrap_or(0));
    // The receiver has everything; the workers may still be recording the last answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    let tally = loop {
        let tally = outbox.tally().await?;
        if !tally.0.contains_key("pending") || Instant::now() > deadline {
            break tally;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let workers_log = workers.stop().await?;
    outbox.close().await;

    eprintln!("kontor-bench webhooks: baseline…");
    let baseline = baseline(
        &receiver,
        usize::from(args.workers) * usize::from(args.worker_concurrency),
        Duration::from_secs(args.baseline_seconds),
    )
    .await?;
    Ok((drain, delay, tally, duplicates, workers_log, baseline))
}

async fn wait_for(
    receiver: &Receiver,
    workers: &mut Workers,
    count: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while receiver.distinct() < count {
        workers.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} events arrived within {} s",
                receiver.distinct(),
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[expect(clippy::float_arithmetic, reason = "rates are reported as floats")]
fn drain_figures(events: usize, started: SystemTime, receiver: &Receiver) -> Drain {
    let mut times: Vec<SystemTime> = receiver.arrivals().into_values().collect();
    times.sort();
    let seconds =
        |from: SystemTime, to: SystemTime| to.duration_since(from).map_or(0.0, |d| d.as_secs_f64());
    let total = times.last().map_or(0.0, |last| seconds(started, *last));
    let (lo, hi) = (times.len() / 10, times.len() * 9 / 10);
    let steady = match (times.get(lo), times.get(hi)) {
        (Some(a), Some(b)) if hi > lo => (hi - lo) as f64 / seconds(*a, *b).max(1e-6),
        _ => 0.0,
    };
    Drain {
        events,
        total_seconds: total,
        total_per_second: events as f64 / total.max(1e-6),
        steady_per_second: steady,
    }
}

#[expect(
    clippy::float_arithmetic,
    reason = "delays are reported in fractional ms"
)]
fn delay_figures(
    committed: &std::collections::HashMap<String, SystemTime>,
    receiver: &Receiver,
    args: &WebhookArgs,
) -> anyhow::Result<Delay> {
    let arrivals = receiver.arrivals();
    let mut histogram = crate::load::histogram()?;
    let mut delivered = 0;
    for (id, at) in committed {
        if let Some(arrived) = arrivals.get(id) {
            delivered += 1;
            let micros = arrived
                .duration_since(*at)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
            histogram
                .record(micros.max(1))
                .context("recording a delay")?;
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok(Delay {
        events: committed.len(),
        delivered,
        offered_per_second: committed.len() as f64 / args.duration as f64,
        p50_ms: ms(0.50),
        p90_ms: ms(0.90),
        p99_ms: ms(0.99),
        max_ms: histogram.max() as f64 / 1000.0,
    })
}

/// The receiver's capacity for the same requests without the hub: closed-loop POSTs of a body
/// like a delivery's, with the three webhook headers, over `connections` connections.
#[expect(clippy::float_arithmetic, reason = "rates are reported as floats")]
async fn baseline(
    receiver: &Receiver,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .context("building the baseline client")?;
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + duration;
    let url = receiver.url();
    let uk = Region::parse("uk").context("region uk")?;
    let body = serde_json::json!({
        "id": EventId::generate(&uk),
        "type": "transactions.updated",
        "user_id": UserId::generate(&uk),
        "data": { "accounts": [] },
        "created_at": crate::users::now_rfc3339(),
    })
    .to_string();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (http, done, url, body) = (http.clone(), done.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let sent = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("webhook-id", "evt_baseline")
                        .header("webhook-timestamp", "0")
                        .header(
                            "webhook-signature",
                            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                        )
                        .body(body.clone())
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("a baseline task failed")?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
