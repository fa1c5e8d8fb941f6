//! `kontor-bench ingest`: how fast the hub takes in a bank's transactions. The sandbox bank
//! runs in this process behind a timing proxy; the hub (no embedded worker, so only the syncs
//! measured run) syncs alice's accounts at Sonnenbank: first syncs of 24 months, each right
//! after a new link, then daily re-syncs of the last connection after the bank's clock moved on
//! a day. Each sync's rows per second (the hub's own sync duration, split into waiting for the
//! bank and everything else) are set against a raw batched INSERT of the same rows into a
//! scratch table of the same shape, in the same database, right after; and, as a second
//! measure, against the same INSERT followed by the change-log rows the sync recorded.

mod baseline;
mod report;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use crate::HubArgs;
use crate::linking::{BankWorld, Tenant};
use crate::machine::load_average;
use crate::setup::BenchEnv;
use crate::users::now_rfc3339;
use baseline::Baseline;
use report::{IngestReport, IngestSettings, Summary, SyncKind, SyncRun};

/// alice's bank and the cell her data lives in.
const BANK: &str = "sonnenbank";
const PSU: &str = "alice";
const REGION: &str = "de";
/// The bank's account endpoints (list, details, balances, transactions): what a sync reads.
/// The SCA pages the link goes through (`/sca/{id}/accounts`) do not match.
const BANK_READS: &str = "/v1/accounts";
const SYNC_SUM: &str = "kontor_sync_duration_seconds_sum";
const SYNC_COUNT: &str = "kontor_sync_duration_seconds_count";
/// How long the hub may take to count a sync that has finished.
const METRICS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// First syncs (24 months each), each of a new link.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub first_syncs: u16,
    /// Daily re-syncs of the last connection, one simulated day apart. The hub's own clock
    /// does not move, so re-sync N reads the 7 days of overlap plus N days from the bank.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(0..=100))]
    pub daily_syncs: u16,
    /// Rows per multi-row INSERT in the baseline (13 parameters each; PostgreSQL takes 65535).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(1..=5000))]
    pub batch_rows: u16,
    #[command(flatten)]
    pub output: crate::report::Output,
}

pub async fn run(args: &IngestArgs) -> anyhow::Result<()> {
    let started_at = now_rfc3339();
    eprintln!("kontor-bench ingest: starting the sandbox bank and the hub on fresh databases…");
    let world = BankWorld::start(false).await?;
    let env = BenchEnv::start_with(&args.hub, "bench-ingest", world.hub_env()).await?;
    let measured = measure(args, &env, &world).await;
    let hub_pool = env.hub_pool.clone();
    let machine = env.machine.clone();
    let ending = env.teardown_or_warn().await;
    let runs = measured?;
    let summaries: Vec<Summary> = [SyncKind::First, SyncKind::Daily]
        .into_iter()
        .filter_map(|kind| Summary::of(kind, &runs))
        .collect();
    let targets = summaries.iter().flat_map(Summary::targets).collect();
    let report = IngestReport {
        benchmark: "ingest".to_owned(),
        started_at,
        settings: IngestSettings {
            first_syncs: args.first_syncs,
            daily_syncs: args.daily_syncs,
            batch_rows: usize::from(args.batch_rows),
            hub_pool,
        },
        machine,
        runs,
        summaries,
        targets,
        ending,
        load_average_at_end: load_average(),
    };
    args.output.emit(&report, &report.to_markdown())
}

/// The hub's sync clock: total seconds and number of syncs so far.
async fn sync_clock(env: &BenchEnv) -> anyhow::Result<(f64, f64)> {
    let metrics = env.hub.counters("kontor_sync_duration_seconds").await;
    match (metrics.get(SYNC_SUM), metrics.get(SYNC_COUNT)) {
        (Some(sum), Some(count)) => Ok((*sum, *count)),
        // Before the first sync the histogram does not exist yet.
        (None, None) => Ok((0.0, 0.0)),
        _ => bail!("the hub's /metrics has a partial kontor_sync_duration_seconds"),
    }
}

/// Rows inserted or updated, rows removed, and accounts, from a sync report.
fn changes(report: &Value) -> anyhow::Result<(u64, u64, usize)> {
    let accounts = report["accounts"]
        .as_array()
        .context("a sync report without accounts")?;
    let field = |a: &Value, name: &str| a[name].as_u64().unwrap_or(0);
    let rows = accounts
        .iter()
        .map(|a| field(a, "added") + field(a, "updated"))
        .sum();
    let removed = accounts.iter().map(|a| field(a, "removed")).sum();
    Ok((rows, removed, accounts.len()))
}

/// What a sync measured before its baseline runs.
struct Observed {
    kind: SyncKind,
    report: Value,
    clock_before: (f64, f64),
    mark: usize,
    cpu_before: Option<crate::machine::CpuSample>,
    request_seconds: Option<f64>,
}

async fn measure(
    args: &IngestArgs,
    env: &BenchEnv,
    world: &BankWorld,
) -> anyhow::Result<Vec<SyncRun>> {
    let mut tenant = Tenant::new(env).await?;
    let baseline =
        Baseline::create(&env.databases.url(REGION)?, usize::from(args.batch_rows)).await?;
    let mut runs = Vec::new();
    let mut last = None;
    for n in 1..=args.first_syncs {
        eprintln!(
            "kontor-bench ingest: first sync {n}/{}: linking {PSU} at {BANK}…",
            args.first_syncs
        );
        let user = tenant
            .create_user(&format!("bench-ingest-{n}"), REGION)
            .await?;
        let clock_before = sync_clock(env).await?;
        let mark = world.proxy.mark();
        let connection = tenant.link(&user, BANK, PSU, world).await?;
        let cpu_before = env.probe.sample();
        tenant.wait_synced(&connection).await?;
        let events = tenant.sync_events(&user).await?;
        let initial = events
            .iter()
            .find(|e| e["data"]["initial"] == true)
            .context("the first sync left no transactions.updated event")?;
        let observed = Observed {
            kind: SyncKind::First,
            report: initial["data"].clone(),
            clock_before,
            mark,
            cpu_before,
            request_seconds: None,
        };
        runs.push(finish(env, world, &baseline, &connection, observed).await?);
        last = Some(connection);
    }
    let connection = last.context("no first sync ran")?;
    for n in 1..=args.daily_syncs {
        eprintln!(
            "kontor-bench ingest: daily re-sync {n}/{}: the bank's clock moves on a day…",
            args.daily_syncs
        );
        world
            .sandbox
            .advance_clock(time::Duration::days(1))
            .context("advancing the sandbox clock")?;
        let clock_before = sync_clock(env).await?;
        let mark = world.proxy.mark();
        let cpu_before = env.probe.sample();
        let sent = Instant::now();
        let report = tenant.refresh(&connection).await?;
        let observed = Observed {
            kind: SyncKind::Daily,
            report,
            clock_before,
            mark,
            cpu_before,
            request_seconds: Some(sent.elapsed().as_secs_f64()),
        };
        runs.push(finish(env, world, &baseline, &connection, observed).await?);
    }
    baseline.close().await;
    Ok(runs)
}

/// Reads the hub's figures for a finished sync, then runs its baseline.
#[expect(
    clippy::float_arithmetic,
    reason = "differences of the hub's sync clock"
)]
async fn finish(
    env: &BenchEnv,
    world: &BankWorld,
    baseline: &Baseline,
    connection: &str,
    observed: Observed,
) -> anyhow::Result<SyncRun> {
    let cpu_after = env.probe.sample();
    // The hub records a sync's duration just after it released the connection, a moment after
    // the sync's result became visible: wait for the count to move.
    let deadline = Instant::now() + METRICS_TIMEOUT;
    let clock_after = loop {
        let clock = sync_clock(env).await?;
        if clock.1 > observed.clock_before.1 {
            break clock;
        }
        if Instant::now() > deadline {
            bail!(
                "the hub counted no sync in kontor_sync_duration_seconds within {} s",
                METRICS_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let bank = world.proxy.bank_time(observed.mark, BANK_READS);
    let (rows, removed, accounts) = changes(&observed.report)?;
    let syncs_counted = clock_after.1 - observed.clock_before.1;
    let limit = match observed.kind {
        SyncKind::First => None,
        SyncKind::Daily => Some(rows),
    };
    let (baseline_rows, baseline_seconds, logged, whole_seconds) = if rows == 0 {
        (0, None, 0, None)
    } else {
        let copied = baseline.rows_of(connection, limit).await?;
        let took = baseline.insert(&copied, &[]).await?;
        let log = baseline.changes_of(connection).await?;
        let whole = baseline.insert(&copied, &log).await?;
        (
            copied.len(),
            Some(took.as_secs_f64()),
            log.len(),
            Some(whole.as_secs_f64()),
        )
    };
    if observed.kind == SyncKind::First && u64::try_from(baseline_rows).ok() != Some(rows) {
        eprintln!(
            "kontor-bench ingest: the first sync reported {rows} rows, the cell holds {baseline_rows}"
        );
    }
    Ok(SyncRun {
        kind: observed.kind,
        rows,
        removed,
        accounts,
        sync_seconds: clock_after.0 - observed.clock_before.0,
        syncs_counted,
        request_seconds: observed.request_seconds,
        bank,
        baseline_rows,
        baseline_seconds,
        logged,
        whole_seconds,
        cpu: observed
            .cpu_before
            .zip(cpu_after)
            .map(|(before, after)| after.since(&before)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_report_counts_inserted_and_updated_rows() {
        let report = serde_json::json!({
            "connection_id": "con_de_x",
            "initial": false,
            "accounts": [
                {"account_id": "a", "added": 3, "updated": 2, "booked": 2, "removed": 0},
                {"account_id": "b", "added": 1, "updated": 0, "booked": 0, "removed": 1},
            ]
        });
        assert_eq!(changes(&report).unwrap(), (6, 1, 2));
        assert!(changes(&serde_json::json!({})).is_err());
    }
}
