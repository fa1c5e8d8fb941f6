//! `kontor-bench reads`: the hub's read endpoints on PostgreSQL with real bank data. An account
//! is linked through the sandbox bank (connect page, redirect SCA, first sync of 24 months);
//! then, per endpoint — the transaction page (50 rows), one account, its balances, and
//! `GET /v1/users/{id}` — the peak through the hub with closed-loop workers, the same SQL the
//! store runs sent directly through sqlx with as many workers, and the hub's latency at a fixed
//! offered rate with the open-loop generator. Also the idle memory of `kontor serve`.

mod ops;
mod phases;
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::HubArgs;
use crate::direct::Direct;
use crate::linking::{BankWorld, Tenant};
use crate::load::Plan;
use crate::machine::{load_average, rss_kib};
use crate::open_loop::{OpenMeasured, RatePlan};
use crate::report::{Comparison, PhaseReport, Report, Settings};
use crate::setup::BenchEnv;
use crate::users::{Accumulated, RETRY_COUNTERS, counter_delta, fresh_token, now_rfc3339};
use ops::{Api, Sql};
use phases::{announce, closed_api, closed_sql, open_api};
use report::{Dataset, IdleRss, OpenPhaseReport, ReadsReport, check_targets};

/// The cell alice's data lives in (Sonnenbank is a German bank).
const REGION: &str = "de";
/// How long the hub rests before its idle memory is read.
const REST: Duration = Duration::from_secs(2);
/// Requests still unanswered this long after an open-loop window count as unanswered.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct ReadsArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Closed-loop workers in the peak phases, through the hub and directly alike.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Measured seconds per phase.
    #[arg(long, value_name = "SECS", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Unmeasured seconds before each phase's measurement.
    #[arg(long, value_name = "SECS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup: u64,
    /// Run all phases this many times in turn; each phase's figures merge its rounds.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,
    /// Requests per second offered to the transaction page in the open-loop phase.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub page_rate: u32,
    /// Requests per second offered to `GET /v1/accounts/{id}`.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub account_rate: u32,
    /// Requests per second offered to `GET /v1/accounts/{id}/balances`.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub balances_rate: u32,
    /// Requests per second offered to `GET /v1/users/{id}`.
    #[arg(long, value_name = "N", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub user_rate: u32,
    /// Users created for `GET /v1/users/{id}` (read at random).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub users: u32,
    /// Open-loop requests in flight beyond which the next is not sent (counted as an error):
    /// each one in flight holds a connection to the hub, and at the default rates 512 in flight
    /// means answers take a quarter of a second or more already.
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,
    #[command(flatten)]
    pub output: crate::report::Output,
}

/// The endpoints, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Page,
    Account,
    Balances,
    User,
}

impl Endpoint {
    const ALL: [Self; 4] = [Self::Page, Self::Account, Self::Balances, Self::User];

    fn api(self) -> &'static str {
        match self {
            Self::Page => "API transaction page (50 rows)",
            Self::Account => "API `GET /v1/accounts/{id}`",
            Self::Balances => "API `GET /v1/accounts/{id}/balances`",
            Self::User => "API `GET /v1/users/{id}`",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Page => "sqlx keyset page query (LIMIT 51)",
            Self::Account => "sqlx account SELECT",
            Self::Balances => "sqlx account + balances SELECTs",
            Self::User => "sqlx user SELECT by id",
        }
    }

    fn rate(self, args: &ReadsArgs) -> u32 {
        match self {
            Self::Page => args.page_rate,
            Self::Account => args.account_rate,
            Self::Balances => args.balances_rate,
            Self::User => args.user_rate,
        }
    }
}

/// The ids every phase reads.
#[derive(Debug, Clone)]
struct Data {
    page_account: Arc<String>,
    accounts: Arc<Vec<String>>,
    users: Arc<Vec<String>>,
    dataset: Dataset,
}

/// Everything measured, before it becomes the report.
struct Measurements {
    closed: Vec<PhaseReport>,
    open: Vec<OpenPhaseReport>,
    dataset: Dataset,
    rss: IdleRss,
}

pub async fn run(args: &ReadsArgs) -> anyhow::Result<()> {
    let started_at = now_rfc3339();
    eprintln!("kontor-bench reads: starting the sandbox bank and the hub on fresh databases…");
    let world = BankWorld::start(true).await?;
    let env = BenchEnv::start_with(&args.hub, "bench-reads", world.hub_env()).await?;
    let measured = measure(args, &env, &world).await;
    let hub_pool = env.hub_pool.clone();
    let machine = env.machine.clone();
    let ending = env.teardown_or_warn().await;
    let m = measured?;
    let comparisons: Vec<Comparison> = m
        .closed
        .chunks(2)
        .filter_map(|pair| match pair {
            [api, sql] => Some(Comparison::new(
                &format!("{} vs {}", api.name, sql.name),
                api,
                sql,
            )),
            _ => None,
        })
        .collect();
    let targets = check_targets(args, &comparisons, &m.open, &m.rss);
    let report = ReadsReport {
        base: Report {
            benchmark: "reads".to_owned(),
            started_at,
            settings: Settings {
                concurrency: usize::from(args.concurrency),
                warmup_seconds: args.warmup,
                duration_seconds: args.duration,
                rounds: args.rounds,
                hub_pool,
                baseline_pool: format!(
                    "{} connections to the {REGION} cell, one statement each at a time and no ping after it (as pgbench)",
                    args.concurrency
                ),
            },
            machine,
            phases: m.closed,
            comparisons,
            ending,
        },
        dataset: m.dataset,
        open_loop: m.open,
        idle_rss: m.rss,
        targets,
        load_average_at_end: load_average(),
    };
    args.output.emit(&report, &report.to_markdown())
}

async fn measure(
    args: &ReadsArgs,
    env: &BenchEnv,
    world: &BankWorld,
) -> anyhow::Result<Measurements> {
    let pid = env.hub.pid().context("the hub has no pid")?;
    let after_start_kib = rss_kib(pid);
    // No ping before each use, as `pgbench` and a hub that keeps its connections busy: the
    // baseline is the statements alone.
    let pool = PgPoolOptions::new()
        .max_connections(u32::from(args.concurrency))
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&env.databases.url(REGION)?)
        .await
        .context("connecting the baseline pool to the de cell")?;
    let data = setup(args, env, world, &pool).await?;
    tokio::time::sleep(REST).await;
    let before_load_kib = rss_kib(pid);

    let plan = Plan {
        concurrency: usize::from(args.concurrency),
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration),
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(usize::try_from(args.max_in_flight).unwrap_or(usize::MAX))
        .build()
        .context("building the HTTP client")?;
    let direct = Direct::connect(&env.databases.url(REGION)?, usize::from(args.concurrency))
        .await
        .context("connecting the baseline's connections to the de cell")?;
    let sql = Sql {
        direct: direct.clone(),
        tenant: Arc::new(env.tenant.tenant_id.clone()),
    };
    let mut closed: [Accumulated; 8] = Default::default();
    let mut open: [Option<OpenMeasured>; 4] = Default::default();
    for round in 1..=args.rounds {
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            let bearer = fresh_token(env, &plan).await?;
            let api = Api::new(&env.hub, &http, &bearer);
            announce(
                endpoint.api(),
                &format!("{} workers", plan.concurrency),
                &plan,
                round,
                args.rounds,
            );
            let before = env.hub.counters(RETRY_COUNTERS).await;
            let measured = closed_api(endpoint, &plan, env, &api, &data).await?;
            let after = env.hub.counters(RETRY_COUNTERS).await;
            closed[2 * i].add(measured, counter_delta(&before, &after))?;

            announce(
                endpoint.sql(),
                &format!("{} workers", plan.concurrency),
                &plan,
                round,
                args.rounds,
            );
            let measured = closed_sql(endpoint, &plan, env, &sql, &data).await?;
            closed[2 * i + 1].add(measured, Default::default())?;

            let rate = RatePlan {
                rate: endpoint.rate(args),
                warmup: plan.warmup,
                duration: plan.duration,
                max_in_flight: usize::try_from(args.max_in_flight).unwrap_or(usize::MAX),
                drain: DRAIN,
            };
            let bearer = fresh_token(
                env,
                &Plan {
                    duration: plan.duration + DRAIN,
                    ..plan
                },
            )
            .await?;
            let api = Api::new(&env.hub, &http, &bearer);
            announce(
                endpoint.api(),
                &format!("{} req/s offered", rate.rate),
                &plan,
                round,
                args.rounds,
            );
            let measured = open_api(endpoint, &rate, env, &api, &data).await?;
            match &mut open[i] {
                Some(total) => total.absorb(measured)?,
                slot @ None => *slot = Some(measured),
            }
        }
    }
    pool.close().await;
    direct.close().await;
    tokio::time::sleep(REST).await;
    let after_load_kib = rss_kib(pid);

    let mut closed_reports = Vec::new();
    for (n, phase) in closed.into_iter().enumerate() {
        let endpoint = Endpoint::ALL[n / 2];
        let name = if n % 2 == 0 {
            endpoint.api()
        } else {
            endpoint.sql()
        };
        closed_reports.push(phase.report(name)?);
    }
    let mut open_reports = Vec::new();
    for (endpoint, measured) in Endpoint::ALL.into_iter().zip(open) {
        let measured = measured.context("an open-loop phase never ran")?;
        let name = format!("{}, {} req/s offered", endpoint.api(), measured.rate);
        open_reports.push(OpenPhaseReport::new(&name, &measured));
    }
    Ok(Measurements {
        closed: closed_reports,
        open: open_reports,
        dataset: data.dataset,
        rss: IdleRss {
            after_start_kib,
            before_load_kib,
            after_load_kib,
            rest_seconds: REST.as_secs(),
        },
    })
}

/// Links alice at Sonnenbank, creates the users to read, and finds the busiest account.
async fn setup(
    args: &ReadsArgs,
    env: &BenchEnv,
    world: &BankWorld,
    pool: &PgPool,
) -> anyhow::Result<Data> {
    let mut tenant = Tenant::new(env).await?;
    eprintln!("kontor-bench reads: linking alice at sonnenbank and waiting for the first sync…");
    let linked = tenant
        .linked_user("bench-reads-alice", REGION, "sonnenbank", "alice", world)
        .await?;
    eprintln!("kontor-bench reads: creating {} users…", args.users);
    let mut users = vec![linked.user_id.clone()];
    for n in 1..args.users {
        users.push(
            tenant
                .create_user(&format!("bench-reads-{n}"), REGION)
                .await?,
        );
    }
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT account_id, COUNT(*) FROM transactions WHERE tenant_id = $1 \
         GROUP BY account_id ORDER BY COUNT(*) DESC, account_id",
    )
    .bind(env.tenant.tenant_id.as_str())
    .fetch_all(pool)
    .await
    .context("counting the synced transactions")?;
    let Some((page_account, page_rows)) = counts.first().cloned() else {
        bail!("the first sync stored no transactions");
    };
    if usize::try_from(page_rows).unwrap_or(0) <= ops::PAGE_ROWS {
        bail!("the busiest account has only {page_rows} transactions, not a full page");
    }
    Ok(Data {
        page_account: Arc::new(page_account),
        dataset: Dataset {
            accounts: linked.account_ids.len(),
            page_account_transactions: page_rows,
            transactions: counts.iter().map(|(_, n)| n).sum(),
            users: users.len(),
        },
        accounts: Arc::new(linked.account_ids),
        users: Arc::new(users),
    })
}
