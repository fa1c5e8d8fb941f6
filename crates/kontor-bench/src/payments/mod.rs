//! `kontor-bench payments`: payment initiation through the hub on PostgreSQL, with the bank
//! call included (the sandbox bank in this process, latency zero): `POST /v1/payments` alone,
//! and the whole initiation up to the redirect to the bank's SCA page, for a Berlin Group and a
//! UK bank. Baselines in the same run: the write transactions of a POST sent directly through
//! sqlx, and the bank's initiation endpoint called directly.

mod ops;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::postgres::PgPoolOptions;

use crate::CommonArgs;
use crate::load::{self, Plan};
use crate::report::{Comparison, Report, Settings};
use crate::sandbox::{self, HubBank};
use crate::setup::BenchEnv;
use crate::users::{Accumulated, RETRY_COUNTERS, counter_delta, fresh_token, now_rfc3339};
use ops::{Api, SqlTarget};

const API_CREATE: &str = "API `POST /v1/payments`";
const API_INITIATE_BG: &str = "API initiation incl. bank, sonnenbank (BG)";
const API_INITIATE_UK: &str = "API initiation incl. bank, thames-bank (UK)";
const SQL_ACCEPT: &str = "sqlx: the POST's 3 write transactions";
const BANK_INITIATE: &str = "sandbox BG initiation, called directly";
const PHASES: [&str; 5] = [
    API_CREATE,
    API_INITIATE_BG,
    API_INITIATE_UK,
    SQL_ACCEPT,
    BANK_INITIATE,
];

#[derive(Debug, Serialize)]
struct HubConfigFile {
    banks: Vec<HubBank>,
}

pub async fn run(args: &CommonArgs) -> anyhow::Result<()> {
    let started_at = now_rfc3339();
    let plan = Plan {
        concurrency: usize::from(args.concurrency),
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    };
    let sandbox = sandbox::start(42).await?;
    let dir = tempfile::Builder::new()
        .prefix("kontor-bench-payments-")
        .tempdir()
        .context("creating a folder for the hub's configuration")?;
    let config = dir.path().join("kontor.toml");
    std::fs::write(
        &config,
        toml::to_string(&HubConfigFile {
            banks: sandbox::hub_banks(&sandbox),
        })
        .context("writing the hub configuration")?,
    )
    .with_context(|| format!("writing {}", config.display()))?;
    eprintln!("kontor-bench payments: starting the hub on fresh databases…");
    let env = BenchEnv::start_with(
        &args.hub,
        "bench-payments",
        vec![("KONTOR_CONFIG".to_owned(), config.display().to_string())],
    )
    .await?;
    let phases = run_rounds(&env, &sandbox, &plan, args.rounds).await;
    let hub_pool = env.hub_pool.clone();
    let machine = env.machine.clone();
    let ending = env.teardown_or_warn().await;
    drop(dir);
    let [create, initiate_bg, initiate_uk, sql, bank] = phases?;
    let comparisons = vec![
        Comparison::new("POST vs its write transactions", &create, &sql),
        Comparison::new("initiation (BG) vs POST", &initiate_bg, &create),
        Comparison::new("initiation (BG) vs the bank call", &initiate_bg, &bank),
        Comparison::new(
            "initiation (UK) vs initiation (BG)",
            &initiate_uk,
            &initiate_bg,
        ),
    ];
    let report = Report {
        benchmark: "payments".to_owned(),
        started_at,
        settings: Settings {
            concurrency: plan.concurrency,
            warmup_seconds: args.warmup,
            duration_seconds: args.duration,
            rounds: args.rounds,
            hub_pool,
            baseline_pool: format!(
                "{} connections each to the control database and the de cell; the sandbox bank runs \
                 inside the load generator (its CPU counts as the loader's), latency zero",
                plan.concurrency
            ),
        },
        machine,
        phases: vec![create, initiate_bg, initiate_uk, sql, bank],
        comparisons,
        ending,
    };
    args.output.emit(&report, &report.to_markdown())?;
    Ok(())
}

fn announce(phase: &str, plan: &Plan, round: u16, rounds: u16) {
    eprintln!(
        "kontor-bench payments: round {round}/{rounds}, {phase}: {} workers, {} s warm-up, {} s measured",
        plan.concurrency,
        plan.warmup.as_secs(),
        plan.duration.as_secs()
    );
}

async fn run_rounds(
    env: &BenchEnv,
    sandbox: &kontor_sandbox_bank::RunningSandbox,
    plan: &Plan,
    rounds: u16,
) -> anyhow::Result<[crate::report::PhaseReport; 5]> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(plan.concurrency)
        .build()
        .context("building the HTTP client")?;
    let connections = u32::try_from(plan.concurrency).context("concurrency too large")?;
    let pool = |url: String| async move {
        PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .context("connecting a baseline pool")
    };
    let control = pool(env.databases.url("control")?).await?;
    let cell = pool(env.databases.url("de")?).await?;

    let customers = sandbox::customers(sandbox)?;
    let setup_token = env.hub.token(&env.tenant).await?;
    let mut users = Vec::new();
    for customer in &customers {
        let external_id = format!("bench-{}", customer.username);
        users.push(
            crate::harness::create_user(
                &http,
                &env.hub.url(""),
                &setup_token.bearer,
                &external_id,
                &customer.region,
            )
            .await?,
        );
    }
    let (Some(alice), Some(bob)) = (customers.first(), customers.get(1)) else {
        bail!("the sandbox lacks alice or bob");
    };
    let debtor_iban = alice.debtor["iban"]
        .as_str()
        .context("alice's account has no IBAN")?
        .to_owned();
    let bank_base = sandbox
        .base_url(&alice.bank_id)
        .with_context(|| format!("no bank {}", alice.bank_id))?;
    let sql_target = SqlTarget {
        region: kontor_domain::Region::parse("de").context("region de")?,
        control: control.clone(),
        cell: cell.clone(),
        tenant_id: Arc::new(env.tenant.tenant_id.clone()),
        user_id: Arc::new(users[0].clone()),
        bank_id: Arc::new(alice.bank_id.clone()),
        currency: Arc::new(alice.currency.clone()),
        retries: Arc::new(Default::default()),
    };
    let run_id = Arc::new(now_rfc3339().replace([':', '-'], ""));
    let sequence = Arc::new(AtomicU64::new(0));
    let mut phases: [Accumulated; 5] = Default::default();

    for round in 1..=rounds {
        for (i, name) in PHASES.iter().enumerate() {
            announce(name, plan, round, rounds);
            let is_api = i < 3;
            let before = if is_api {
                env.hub.counters(RETRY_COUNTERS).await
            } else {
                BTreeMap::new()
            };
            let measured = if is_api {
                let bearer = fresh_token(env, plan).await?;
                let (customer, user) = if i == 2 {
                    (bob, &users[1])
                } else {
                    (alice, &users[0])
                };
                let api = Api {
                    http: http.clone(),
                    hub_base: Arc::new(env.hub.url("")),
                    bearer,
                    customer: Arc::new(customer.clone()),
                    user_id: Arc::new(user.clone()),
                    bank_root: Arc::new(sandbox.url().to_owned()),
                };
                if i == 0 {
                    load::run(plan, &env.probe, ops::api_create(&api, &sequence, &run_id)).await?
                } else {
                    load::run(
                        plan,
                        &env.probe,
                        ops::api_initiate(&api, &sequence, &run_id),
                    )
                    .await?
                }
            } else if i == 3 {
                load::run(
                    plan,
                    &env.probe,
                    ops::sql_accept(&sql_target, &sequence, &run_id),
                )
                .await?
            } else {
                load::run(
                    plan,
                    &env.probe,
                    ops::bank_initiate(&http, &bank_base, &debtor_iban),
                )
                .await?
            };
            let after = if is_api {
                env.hub.counters(RETRY_COUNTERS).await
            } else {
                BTreeMap::new()
            };
            let mut moved = counter_delta(&before, &after);
            if i == 3 {
                // The baseline's own retries, named like the hub's counters.
                for (n, tx) in ["claim", "insert", "complete"].iter().enumerate() {
                    let count = sql_target.retries[n].swap(0, std::sync::atomic::Ordering::Relaxed);
                    if count > 0 {
                        #[expect(clippy::cast_precision_loss, reason = "counts are small")]
                        moved.insert(format!("baseline_retries{{tx=\"{tx}\"}}"), count as f64);
                    }
                }
            }
            phases[i].add(measured, moved)?;
        }
    }
    control.close().await;
    cell.close().await;
    let [a, b, c, d, e] = phases;
    Ok([
        a.report(PHASES[0])?,
        b.report(PHASES[1])?,
        c.report(PHASES[2])?,
        d.report(PHASES[3])?,
        e.report(PHASES[4])?,
    ])
}
