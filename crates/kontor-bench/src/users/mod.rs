//! `kontor-bench users`: `POST /v1/users` and `GET /v1/users/{id}` through the hub, then the same
//! INSERT (in the same SERIALIZABLE transaction) and SELECT directly through a sqlx `PgPool` on
//! the `uk` cell, as the baseline.

pub(crate) mod ops;

pub(crate) use ops::OpFuture;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::postgres::PgPoolOptions;

use crate::CommonArgs;
use crate::direct::Direct;
use crate::load::{self, Measured, Plan};
use crate::report::{Comparison, PhaseReport, Report, Settings};
use crate::setup::BenchEnv;

const API_CREATE: &str = "API `POST /v1/users`";
const API_GET: &str = "API `GET /v1/users/{id}`";
const SQL_INSERT: &str = "sqlx INSERT (serializable tx)";
const SQL_SELECT: &str = "sqlx SELECT by id";
const PHASES: [&str; 4] = [API_CREATE, API_GET, SQL_INSERT, SQL_SELECT];

/// Keeps a token this far from its expiry.
const TOKEN_MARGIN: Duration = Duration::from_secs(30);
/// The hub counters watched during the API phases: database retries on serialization failures.
pub(crate) const RETRY_COUNTERS: &str = "kontor_db_retries";

pub async fn run(args: &CommonArgs) -> anyhow::Result<()> {
    let started_at = now_rfc3339();
    let plan = Plan {
        concurrency: usize::from(args.concurrency),
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    };
    eprintln!("kontor-bench users: starting the hub on fresh databases…");
    let env = BenchEnv::start(&args.hub).await?;
    let phases = run_rounds(&env, &plan, args.rounds).await;
    let hub_pool = env.hub_pool.clone();
    let machine = env.machine.clone();
    let ending = env.teardown_or_warn().await;
    let [api_create, api_get, sql_insert, sql_select] = phases?;
    let comparisons = vec![
        Comparison::new("create: POST vs INSERT", &api_create, &sql_insert),
        Comparison::new("read: GET vs SELECT", &api_get, &sql_select),
    ];
    let report = Report {
        benchmark: "users".to_owned(),
        started_at,
        settings: Settings {
            concurrency: plan.concurrency,
            warmup_seconds: args.warmup,
            duration_seconds: args.duration,
            rounds: args.rounds,
            hub_pool,
            baseline_pool: format!(
                "{} connections to the uk cell (reads: one statement each at a time and no ping after it, as pgbench)",
                plan.concurrency
            ),
        },
        machine,
        phases: vec![api_create, api_get, sql_insert, sql_select],
        comparisons,
        ending,
    };
    args.output.emit(&report, &report.to_markdown())?;
    Ok(())
}

/// One phase's measurements over all rounds so far.
#[derive(Debug, Default)]
pub(crate) struct Accumulated {
    total: Option<Measured>,
    round_throughput: Vec<f64>,
    hub_counters: BTreeMap<String, f64>,
}

impl Accumulated {
    pub(crate) fn add(
        &mut self,
        measured: Measured,
        counters: BTreeMap<String, f64>,
    ) -> anyhow::Result<()> {
        self.round_throughput.push(measured.throughput());
        for (series, delta) in counters {
            #[expect(clippy::float_arithmetic, reason = "Prometheus counters are floats")]
            let sum = self.hub_counters.get(&series).copied().unwrap_or(0.0) + delta;
            self.hub_counters.insert(series, sum);
        }
        match &mut self.total {
            Some(total) => total.absorb(measured)?,
            None => self.total = Some(measured),
        }
        Ok(())
    }

    pub(crate) fn report(self, name: &str) -> anyhow::Result<PhaseReport> {
        let total = self
            .total
            .with_context(|| format!("the phase {name} never ran"))?;
        Ok(PhaseReport::new(
            name,
            &total,
            self.round_throughput,
            self.hub_counters,
        ))
    }
}

/// The four phases in turn, `rounds` times: API create, API read, SQL insert, SQL select. The
/// reads go over every user the API created so far.
async fn run_rounds(env: &BenchEnv, plan: &Plan, rounds: u16) -> anyhow::Result<[PhaseReport; 4]> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(plan.concurrency)
        .build()
        .context("building the HTTP client")?;
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(plan.concurrency).context("concurrency too large")?)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&env.databases.url(ops::REGION)?)
        .await
        .context("connecting the baseline pool to the uk cell")?;
    let direct = Direct::connect(&env.databases.url(ops::REGION)?, plan.concurrency)
        .await
        .context("connecting the baseline's read connections to the uk cell")?;
    let tenant = Arc::new(env.tenant.tenant_id.clone());
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    // External ids stay unique across rounds: each round builds its operations anew.
    let api_sequence = Arc::new(AtomicU64::new(0));
    let sql_sequence = Arc::new(AtomicU64::new(0));
    let region = kontor_domain::Region::parse(ops::REGION).context("the benchmark's region")?;
    let mut phases: [Accumulated; 4] = Default::default();

    for round in 1..=rounds {
        let bearer = fresh_token(env, plan).await?;
        announce(API_CREATE, plan, round, rounds);
        let before = env.hub.counters(RETRY_COUNTERS).await;
        let op = ops::api_create(&env.hub, &http, &bearer, &created, &api_sequence);
        let measured = load::run(plan, &env.probe, op).await?;
        let after = env.hub.counters(RETRY_COUNTERS).await;
        phases[0].add(measured, counter_delta(&before, &after))?;

        let ids: Arc<Vec<String>> = Arc::new(
            created
                .lock()
                .map_err(|_| anyhow::anyhow!("a worker panicked while holding the id list"))?
                .clone(),
        );
        if ids.is_empty() {
            bail!("no user was created, so there is nothing to read; see the errors above");
        }

        let bearer = fresh_token(env, plan).await?;
        announce(API_GET, plan, round, rounds);
        let before = env.hub.counters(RETRY_COUNTERS).await;
        let op = ops::api_get(&env.hub, &http, &bearer, &ids);
        let measured = load::run(plan, &env.probe, op).await?;
        let after = env.hub.counters(RETRY_COUNTERS).await;
        phases[1].add(measured, counter_delta(&before, &after))?;

        announce(SQL_INSERT, plan, round, rounds);
        let op = ops::sql_insert(&region, &pool, &tenant, &sql_sequence);
        let measured = load::run(plan, &env.probe, op).await?;
        phases[2].add(measured, BTreeMap::new())?;

        announce(SQL_SELECT, plan, round, rounds);
        let op = ops::sql_select(&direct, &tenant, &ids);
        let measured = load::run(plan, &env.probe, op).await?;
        phases[3].add(measured, BTreeMap::new())?;
    }
    pool.close().await;

    let [a, b, c, d] = phases;
    Ok([
        a.report(PHASES[0])?,
        b.report(PHASES[1])?,
        c.report(PHASES[2])?,
        d.report(PHASES[3])?,
    ])
}

fn announce(phase: &str, plan: &Plan, round: u16, rounds: u16) {
    eprintln!(
        "kontor-bench users: round {round}/{rounds}, {phase}: {} workers, {} s warm-up, {} s measured",
        plan.concurrency,
        plan.warmup.as_secs(),
        plan.duration.as_secs()
    );
}

/// A token that outlives the phase: tokens are short-lived, so each API phase gets its own.
pub(crate) async fn fresh_token(env: &BenchEnv, plan: &Plan) -> anyhow::Result<Arc<String>> {
    let token = env.hub.token(&env.tenant).await?;
    if token.expires_in < plan.warmup + plan.duration + TOKEN_MARGIN {
        bail!(
            "a token lasts {} s, shorter than a phase ({} s warm-up + {} s): shorten --duration",
            token.expires_in.as_secs(),
            plan.warmup.as_secs(),
            plan.duration.as_secs()
        );
    }
    Ok(Arc::new(token.bearer))
}

pub(crate) fn counter_delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(series, value)| {
            let old = before.get(series).copied().unwrap_or(0.0);
            #[expect(clippy::float_arithmetic, reason = "Prometheus counters are floats")]
            let delta = value - old;
            (delta != 0.0).then(|| (series.clone(), delta))
        })
        .collect()
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
