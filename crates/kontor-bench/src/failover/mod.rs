//! `kontor-bench failover`: the hub on a highly available PostgreSQL cell (`ops/ha-lab`:
//! Patroni, etcd, HAProxy) under mixed load while the primary is killed (SIGKILL), switched over
//! (`patronictl switchover`), or every node restarted in turn (`--maintenance`). The cells, the
//! control database and the key stores all go through HAProxy's primary port. The load:
//! payments with Idempotency-Key retries and the user's authorisation at the sandbox bank (the
//! crash test's driver), new users, syncs of linked connections, reads, and webhook deliveries
//! of every event to a receiver in this process. Afterwards every payment is let settle and
//! checked against the sandbox bank's ledger, and every event in the outboxes against what the
//! receiver got.

mod lab;
mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::crash::driver::{Driver, Payer, Target, lock};
use crate::crash::{Settle, settle};
use crate::databases::TempDatabases;
use crate::harness::{self, HubConfigFile};
use crate::hub::{self, Hub};
use crate::journal::{self, Journal, now_ms};
use crate::mixed_load::{self as load, Load};
use crate::sandbox;
use crate::webhooks::receiver::Receiver;
use lab::Lab;
use report::{EventReport, FailoverReport, Payments, Settings, Spread, Webhooks};

/// The target of issue 14: the write outage at most Patroni's leader change plus this.
const TARGET_OVER_LEADER_CHANGE_MS: u64 = 1000;

#[derive(Debug, Clone, Args)]
pub struct FailoverArgs {
    /// The kontor binary [default: `kontor` beside this program, e.g. target/release/kontor].
    #[arg(long, value_name = "PATH")]
    pub kontor: Option<PathBuf>,
    /// The folder of the ha-lab scripts [default: ./ops/ha-lab, else the source tree's].
    #[arg(long, value_name = "DIR")]
    pub ha_lab: Option<PathBuf>,
    /// The lab's directory, passed to every script as `--dir` [default: the scripts' own].
    #[arg(long, value_name = "DIR")]
    pub lab_dir: Option<PathBuf>,
    /// A graceful `patronictl switchover` instead of killing the primary.
    #[arg(long, conflicts_with = "maintenance")]
    pub switchover: bool,
    /// Node-by-node maintenance: restart each replica, switch over, restart the old primary.
    #[arg(long)]
    pub maintenance: bool,
    /// Kills (or switchovers) in turn; a killed node is started again before the next.
    /// Maintenance is always one round.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=20))]
    pub events: u16,
    /// Seconds of load before each event.
    #[arg(long, value_name = "SECS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub before: u64,
    /// Seconds of load after each event (after the new primary is there).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub after: u64,
    /// New payment Idempotency-Keys per second.
    #[arg(long, value_name = "N", default_value_t = 4.0)]
    pub payment_rate: f64,
    /// Payment keys driven at once (at most).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub payment_workers: u16,
    /// Sandbox customers (alice at sonnenbank, bob at thames-bank) linked for syncs and reads;
    /// each link waits for a first sync of 24 months.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=2))]
    pub links: u16,
    /// Workers creating users.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(0..=64))]
    pub user_workers: u16,
    /// Workers reading.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(0..=64))]
    pub read_workers: u16,
    /// Pause of the user, sync and read workers between two requests, ms.
    #[arg(long, value_name = "MS", default_value_t = 25)]
    pub pause_ms: u64,
    /// Exit non-zero when a kill's or switchover's write outage exceeds Patroni's leader change
    /// by more than this (ms). Without it the target (+1 s) is reported, not enforced.
    #[arg(long, value_name = "MS")]
    pub outage_bound_ms: Option<u64>,
    /// How long payments and webhook deliveries may take to finish after the load.
    #[arg(long, value_name = "SECS", default_value_t = 150)]
    pub settle_timeout: u64,
    /// Stop the lab at the end (`ops/ha-lab/down`), also when it was running before.
    #[arg(long)]
    pub down: bool,
    /// Copy the hub's log here.
    #[arg(long, value_name = "FILE")]
    pub hub_log: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub output: crate::report::Output,
}

fn mode(args: &FailoverArgs) -> &'static str {
    if args.maintenance {
        "maintenance"
    } else if args.switchover {
        "switchover"
    } else {
        "kill"
    }
}

pub async fn run(args: &FailoverArgs) -> anyhow::Result<()> {
    if !args.payment_rate.is_finite() || args.payment_rate <= 0.0 {
        bail!("--payment-rate must be above 0");
    }
    let kontor = crate::setup::kontor_binary(args.kontor.clone())?;
    let lab = Lab::new(
        args.ha_lab.clone().unwrap_or_else(lab::default_scripts),
        args.lab_dir.clone(),
    )?;
    let started_at = crate::users::now_rfc3339();
    eprintln!("kontor-bench failover: starting the lab (ops/ha-lab/up)…");
    let (primary, already_up) = lab.up().await?;
    eprintln!(
        "kontor-bench failover: lab {}; fresh databases through {primary}",
        if already_up { "was up" } else { "started" }
    );
    let databases =
        TempDatabases::create(&primary, &["control", "de", "uk", "keys_de", "keys_uk"]).await?;
    let outcome = with_databases(args, &kontor, &lab, &databases, started_at).await;
    if let Err(err) = databases.drop_all().await {
        eprintln!("kontor-bench failover: dropping the run's databases: {err:#}");
    }
    if args.down {
        eprintln!("kontor-bench failover: stopping the lab (ops/ha-lab/down)…");
        lab.down().await?;
    }
    let report = outcome?;
    args.output.emit(&report, &report.to_markdown())?;
    if !report.passed {
        bail!("failover check failed: {}", report.problems.join("; "));
    }
    Ok(())
}

async fn with_databases(
    args: &FailoverArgs,
    kontor: &std::path::Path,
    lab: &Lab,
    databases: &TempDatabases,
    started_at: String,
) -> anyhow::Result<FailoverReport> {
    let sandbox = sandbox::start(args.seed).await?;
    let receiver = Receiver::start().await?;
    let data = tempfile::Builder::new()
        .prefix("kontor-failover-")
        .tempdir()
        .context("creating the hub's data directory")?;
    let (_, mut env) =
        HubConfigFile::mixed_load(data.path(), sandbox::hub_banks(&sandbox)).write(data.path())?;
    env.push((
        "KONTOR_DATABASE__CONTROL_URL".to_owned(),
        databases.url("control")?,
    ));
    env.extend(harness::cell_env(
        "de",
        databases.url("de")?,
        databases.url("keys_de")?,
    ));
    env.extend(harness::cell_env(
        "uk",
        databases.url("uk")?,
        databases.url("keys_uk")?,
    ));
    let cells: BTreeMap<String, String> =
        [("de", databases.url("de")?), ("uk", databases.url("uk")?)]
            .into_iter()
            .map(|(r, u)| (r.to_owned(), u))
            .collect();
    let tenant = hub::create_tenant(kontor, &env, "failover").await?;
    let log = data.path().join("hub.log");
    eprintln!("kontor-bench failover: starting the hub…");
    let hub = Hub::start(kontor, &env, &log).await?;
    let kontor_version = harness::kontor_version(kontor).await;
    let world = World {
        args,
        lab,
        sandbox: &sandbox,
        receiver: &receiver,
        cells: &cells,
        tenant_id: tenant.tenant_id.clone(),
        postgres: format!(
            "PostgreSQL {} under Patroni through HAProxy",
            databases.server_version()
        ),
        kontor_version,
        started_at,
    };
    let token = hub.token(&tenant).await?;
    let outcome = drive(&world, &hub, &token.bearer).await;
    let hub_exit = hub.stop().await.ok();
    if let Some(copy) = &args.hub_log
        && let Err(err) = std::fs::copy(&log, copy)
    {
        eprintln!(
            "kontor-bench failover: copying the hub log to {}: {err}",
            copy.display()
        );
    }
    let mut report = outcome?;
    report.hub_log = hub::summarize_log(&log);
    report.hub_exit = hub_exit;
    Ok(report)
}

#[derive(Debug)]
struct World<'a> {
    args: &'a FailoverArgs,
    lab: &'a Lab,
    sandbox: &'a kontor_sandbox_bank::RunningSandbox,
    receiver: &'a Receiver,
    cells: &'a BTreeMap<String, String>,
    tenant_id: String,
    postgres: String,
    kontor_version: String,
    started_at: String,
}

/// One database event as it happened.
#[derive(Debug)]
struct Event {
    kind: String,
    node: String,
    new_leader: Option<String>,
    at_ms: u64,
    leader_change_ms: Option<u64>,
    script: Value,
    /// Kills and switchovers count toward the target; restarts of maintenance do not.
    measured: bool,
}

async fn drive(world: &World<'_>, hub: &Hub, bearer: &str) -> anyhow::Result<FailoverReport> {
    let args = world.args;
    let http = harness::http_client(Duration::from_secs(30))?;
    let base = hub.url("");
    harness::webhook_endpoint(&http, &base, bearer, world.receiver).await?;
    let mut payers = Vec::new();
    let mut linked = Vec::new();
    for customer in sandbox::customers(world.sandbox)? {
        let external_id = format!("crash-{}", customer.username);
        let user_id =
            harness::create_user(&http, &base, bearer, &external_id, &customer.region).await?;
        if linked.len() >= usize::from(args.links) {
            payers.push(Payer { customer, user_id });
            continue;
        }
        eprintln!(
            "kontor-bench failover: linking {} at {}…",
            customer.username, customer.bank_id
        );
        linked.push(
            load::link(
                &http,
                &base,
                bearer,
                world.sandbox.url(),
                (&user_id, &customer.bank_id, &customer.username),
            )
            .await?,
        );
        payers.push(Payer { customer, user_id });
    }

    let journal = Arc::new(Journal::default());
    // Enough keys for an hour at the rate; the workers stop taking them when the load ends.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::float_arithmetic,
        reason = "a bounded count"
    )]
    let keys = ((args.payment_rate * 3600.0).ceil() as usize).clamp(1, 50_000);
    let mut driver = Driver::new(
        http.clone(),
        Target {
            hub_base: base.clone(),
            sandbox_url: world.sandbox.url().to_owned(),
            bearer: bearer.to_owned(),
        },
        payers.clone(),
        harness::mixed_load_knobs(args.payment_rate),
        args.seed,
        keys,
    );
    driver.journal = Some(Arc::clone(&journal));
    let driver = Arc::new(driver);
    let load = Load::new(
        http.clone(),
        (&base, bearer),
        Arc::clone(&journal),
        format!("failover-{}", now_ms()),
        Duration::from_millis(args.pause_ms),
    );
    eprintln!("kontor-bench failover: load on");
    let run_start = now_ms();
    let mut workers = JoinSet::new();
    for worker in 0..u64::from(args.payment_workers) {
        workers.spawn(Arc::clone(&driver).work(worker));
    }
    for i in 0..args.user_workers {
        let region = if i % 2 == 0 { "de" } else { "uk" };
        workers.spawn(Arc::clone(&load).users(region));
    }
    for l in &linked {
        workers.spawn(Arc::clone(&load).syncs(l.clone()));
    }
    for _ in 0..args.read_workers {
        workers.spawn(Arc::clone(&load).reads(linked.clone()));
    }

    let events = run_events(world).await;
    let load_end = now_ms();
    driver.stop.store(true, Ordering::Relaxed);
    load.stop.store(true, Ordering::Relaxed);
    eprintln!("kontor-bench failover: load off; finishing the payments in flight…");
    while let Some(joined) = workers.join_next().await {
        joined.context("a load worker failed")?;
    }
    let events = events?;

    eprintln!("kontor-bench failover: letting every payment settle…");
    let (hub_payments, settled) = settle(
        &Settle {
            sandbox: world.sandbox,
            http: &http,
            base: &base,
            bearer,
            payers: &payers,
            cells: world.cells,
        },
        Duration::from_secs(60),
        Duration::from_secs(args.settle_timeout),
        "failover",
    )
    .await?;
    let taken = driver.taken();
    let keys: Vec<_> = driver.keys[..taken]
        .iter()
        .map(|k| lock(k).clone())
        .collect();
    let payments = Payments::check(&keys, &hub_payments, &world.sandbox.payments(), settled);

    eprintln!("kontor-bench failover: waiting for every webhook event to arrive…");
    let webhooks = webhooks(world).await?;
    let entries = journal.entries();
    Ok(assemble(
        world,
        &events,
        &entries,
        (run_start, load_end),
        payments,
        webhooks,
        linked.len(),
        driver.counters.snapshot(),
    ))
}

/// The events of the mode, each with its load before and after.
async fn run_events(world: &World<'_>) -> anyhow::Result<Vec<Event>> {
    let (args, lab) = (world.args, world.lab);
    let pause = |secs: u64| tokio::time::sleep(Duration::from_secs(secs));
    let mut events = Vec::new();
    if args.maintenance {
        let (leader, replicas) = lab.members().await?;
        for node in &replicas {
            pause(args.before).await;
            eprintln!("kontor-bench failover: restarting replica {node}…");
            let at_ms = now_ms();
            let script = lab.run("restart-node", &[node]).await?;
            events.push(Event {
                kind: "restart replica".to_owned(),
                node: node.clone(),
                new_leader: lab::text(&script, "leader_now"),
                at_ms,
                leader_change_ms: None,
                script,
                measured: false,
            });
        }
        pause(args.before).await;
        events.push(switchover(lab).await?);
        pause(args.before).await;
        eprintln!("kontor-bench failover: restarting the old leader {leader}…");
        let at_ms = now_ms();
        let script = lab.run("restart-node", &[&leader]).await?;
        events.push(Event {
            kind: "restart old leader".to_owned(),
            node: leader.clone(),
            new_leader: lab::text(&script, "leader_now"),
            at_ms,
            leader_change_ms: None,
            script,
            measured: false,
        });
        pause(args.after).await;
        return Ok(events);
    }
    for round in 0..args.events {
        pause(args.before).await;
        if args.switchover {
            events.push(switchover(lab).await?);
            pause(args.after).await;
            continue;
        }
        eprintln!(
            "kontor-bench failover: killing the primary ({} of {})…",
            round + 1,
            args.events
        );
        let mut script = lab.run("kill-primary", &["--wait"]).await?;
        let node = lab::text(&script, "killed").unwrap_or_default();
        let at_ms = lab::number(&script, "killed_at_ms").unwrap_or_else(now_ms);
        let leader_change_ms = lab::number(&script, "leader_change_ms");
        let new_leader = lab::text(&script, "new_leader");
        eprintln!(
            "kontor-bench failover: {node} killed, {} leads after {} ms",
            new_leader.as_deref().unwrap_or("?"),
            leader_change_ms.unwrap_or(0)
        );
        pause(args.after).await;
        eprintln!("kontor-bench failover: starting {node} again…");
        let rejoin = lab.run("start-node", &[&node]).await?;
        if let Value::Object(map) = &mut script {
            map.insert("rejoin".to_owned(), rejoin);
        }
        events.push(Event {
            kind: "kill".to_owned(),
            node,
            new_leader,
            at_ms,
            leader_change_ms,
            script,
            measured: true,
        });
    }
    pause(args.after).await;
    Ok(events)
}

async fn switchover(lab: &Lab) -> anyhow::Result<Event> {
    eprintln!("kontor-bench failover: switching over…");
    let before = now_ms();
    let script = lab.run("switchover", &[]).await?;
    let event = Event {
        kind: "switchover".to_owned(),
        node: lab::text(&script, "old_leader").unwrap_or_default(),
        new_leader: lab::text(&script, "new_leader"),
        at_ms: lab::number(&script, "started_at_ms").unwrap_or(before),
        leader_change_ms: lab::number(&script, "leader_change_ms"),
        script,
        measured: true,
    };
    eprintln!(
        "kontor-bench failover: switched over {} → {} (leader change {} ms)",
        event.node,
        event.new_leader.as_deref().unwrap_or("?"),
        event.leader_change_ms.unwrap_or(0)
    );
    Ok(event)
}

/// Waits until every event in the cells' outboxes for the tenant has reached the receiver, or
/// the settle timeout passes.
async fn webhooks(world: &World<'_>) -> anyhow::Result<Webhooks> {
    let outbox = harness::await_deliveries(
        world.cells.values(),
        &world.tenant_id,
        world.receiver,
        Duration::from_secs(world.args.settle_timeout),
    )
    .await?;
    let requests = world.receiver.requests();
    let delivered = world.receiver.arrivals().len();
    Ok(Webhooks {
        events: outbox.events.len(),
        delivered,
        lost: outbox.lost.len(),
        lost_examples: outbox.lost.into_iter().take(10).collect(),
        requests,
        duplicated_deliveries: requests
            .saturating_sub(u64::try_from(delivered).unwrap_or(u64::MAX)),
    })
}

#[expect(
    clippy::too_many_arguments,
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "the report's parts; seconds for people"
)]
fn assemble(
    world: &World<'_>,
    events: &[Event],
    entries: &[journal::Entry],
    (run_start, load_end): (u64, u64),
    payments: Payments,
    webhooks: Webhooks,
    sync_connections: usize,
    payment_driver: BTreeMap<String, u64>,
) -> FailoverReport {
    let args = world.args;
    let mut reports = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let until = events.get(i + 1).map_or(load_end, |next| next.at_ms);
        let outage = journal::outage(entries, e.at_ms, until);
        let over = match (outage.write_outage_ms, e.leader_change_ms) {
            (Some(o), Some(l)) if e.measured => {
                Some(i64::try_from(o).unwrap_or(i64::MAX) - i64::try_from(l).unwrap_or(0))
            }
            _ => None,
        };
        let (requests, failed) = journal::failures(entries, e.at_ms, until);
        reports.push(EventReport {
            kind: e.kind.clone(),
            node: e.node.clone(),
            new_leader: e.new_leader.clone(),
            at_seconds: e.at_ms.saturating_sub(run_start) as f64 / 1000.0,
            leader_change_ms: e.leader_change_ms,
            script: e.script.clone(),
            within_target: over.map(|o| o <= TARGET_OVER_LEADER_CHANGE_MS as i64),
            outage_over_leader_change_ms: over,
            outage,
            requests,
            failed,
        });
    }
    let measured: Vec<&EventReport> = reports
        .iter()
        .filter(|r| r.outage_over_leader_change_ms.is_some())
        .collect();
    let figure = |f: &dyn Fn(&EventReport) -> Option<f64>| {
        Spread::of(&measured.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let (requests, failed) = journal::failures(entries, 0, u64::MAX);
    let mut problems = Vec::new();
    if payments.accepted_lost > 0 {
        problems.push(format!(
            "{} accepted payment(s) lost",
            payments.accepted_lost
        ));
    }
    if payments.executed_twice > 0 {
        problems.push(format!(
            "{} payment(s) executed twice at the bank",
            payments.executed_twice
        ));
    }
    if !payments.violations.is_empty() {
        problems.push(format!(
            "{} violation(s) of exactly-once",
            payments.violations.len()
        ));
    }
    if !payments.settled {
        problems.push("payments not final at the end".to_owned());
    }
    if webhooks.lost > 0 {
        problems.push(format!(
            "{} webhook event(s) never delivered",
            webhooks.lost
        ));
    }
    for r in &reports {
        if r.outage.write_outage_ms.is_none() {
            problems.push(format!(
                "no write succeeded after the {} of {}",
                r.kind, r.node
            ));
        }
        if let (Some(bound), Some(over)) = (args.outage_bound_ms, r.outage_over_leader_change_ms)
            && over > i64::try_from(bound).unwrap_or(i64::MAX)
        {
            problems.push(format!(
                "the {} of {}: write outage {} ms beyond the leader change, bound {bound} ms",
                r.kind, r.node, over
            ));
        }
    }
    FailoverReport {
        benchmark: "failover",
        mode: mode(args),
        started_at: world.started_at.clone(),
        kontor_version: world.kontor_version.clone(),
        postgres: world.postgres.clone(),
        settings: Settings {
            before_seconds: args.before,
            after_seconds: args.after,
            payment_rate: args.payment_rate,
            payment_workers: args.payment_workers,
            user_workers: args.user_workers,
            read_workers: args.read_workers,
            sync_connections,
            pause_ms: args.pause_ms,
            outage_bound_ms: args.outage_bound_ms,
        },
        leader_change_ms: figure(&|r| r.leader_change_ms.map(|v| v as f64)),
        write_outage_ms: figure(&|r| r.outage.write_outage_ms.map(|v| v as f64)),
        outage_over_leader_change_ms: figure(&|r| r.outage_over_leader_change_ms.map(|v| v as f64)),
        target_over_leader_change_ms: TARGET_OVER_LEADER_CHANGE_MS,
        events_within_target: measured
            .iter()
            .filter(|r| r.within_target == Some(true))
            .count(),
        events: reports,
        requests,
        failed,
        passed: problems.is_empty(),
        problems,
        payments,
        webhooks,
        payment_driver,
        hub_log: crate::hub::LogSummary::default(),
        hub_exit: None,
    }
}
