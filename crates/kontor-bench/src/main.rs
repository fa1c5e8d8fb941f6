//! `kontor-bench`: load benchmarks of the Kontor hub on PostgreSQL, and the payments crash test.
//! Each benchmark starts a real `kontor serve` on fresh databases, loads it with closed-loop
//! workers (or, for latency at a fixed rate, the open-loop generator), and in the same run
//! measures a baseline (the SQL the hub runs, sent directly through sqlx, the bank call it makes,
//! or a raw batched INSERT of the rows it wrote). `crash` kills and restarts the hub under payment traffic
//! and checks exactly-once against the sandbox bank's ledger.

mod bank_proxy;
mod cellmove;
mod crash;
mod databases;
mod direct;
mod expand;
mod failover;
mod harness;
mod hub;
mod ingest;
mod journal;
mod linking;
mod load;
mod machine;
mod mixed_load;
mod open_loop;
mod payments;
mod reads;
mod report;
mod sandbox;
mod setup;
mod targets;
mod users;
mod webhooks;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kontor-bench",
    version,
    about = "Load benchmarks of the Kontor hub on PostgreSQL, with a baseline in the same run; and the payments crash test"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// `POST /v1/users` and `GET /v1/users/{id}`, against the same INSERT and SELECT run directly
    /// through sqlx.
    Users(CommonArgs),
    /// Payment initiation: `POST /v1/payments` alone and the whole initiation including the
    /// bank call (sandbox, latency zero), against the POST's write transactions run directly
    /// through sqlx and the bank's initiation endpoint called directly.
    Payments(CommonArgs),
    /// The payments crash test (not a benchmark): payments with random Idempotency-Key retries
    /// while the hub is SIGKILLed at random moments and restarted, checked at the end against
    /// the sandbox bank's ledger; exits non-zero on any violation of exactly-once.
    Crash(crash::CrashArgs),
    /// Webhook delivery: deliveries per second draining a backlog with several `kontor worker`
    /// processes, and the delay from event commit to delivery under a steady rate.
    Webhooks(webhooks::WebhookArgs),
    /// Reads of a linked account (transaction page, account, balances) and `GET /v1/users/{id}`:
    /// peak throughput against the same SQL run directly, latency at a fixed offered rate (open
    /// loop), and the idle memory of `kontor serve`.
    Reads(reads::ReadsArgs),
    /// Sync ingest: first syncs of 24 months and daily re-syncs from the sandbox bank, rows per
    /// second through the hub against a raw batched INSERT of the same rows.
    Ingest(ingest::IngestArgs),
    /// The hub on a highly available PostgreSQL cell (ops/ha-lab: Patroni, etcd, HAProxy) under
    /// mixed load while the primary is killed (or `--switchover`, or every node restarted in turn
    /// with `--maintenance`): Patroni's leader change beside the write outage the clients saw,
    /// the failed requests, and afterwards payments lost or executed twice and webhook events
    /// lost; exits non-zero on any loss.
    Failover(failover::FailoverArgs),
    /// A schema change while serving (not a speed benchmark): the previous release serves under
    /// load, the new one starts beside it and applies its migration, both serve while the new
    /// one backfills; reports failed requests (target 0) and that the old release kept working.
    ExpandContract(expand::ExpandArgs),
    /// An online move of a tenant with a large history from cell de-1 to de-2
    /// (`kontor cells move`) while it and another tenant are under mixed load: the write pause
    /// (as the engine reports it and as clients saw it), failed requests per tenant, rows
    /// verified, payments and webhook events lost; exits non-zero on any loss.
    Move(cellmove::MoveArgs),
}

/// The hub a benchmark runs: which binary, on fresh databases of which PostgreSQL server.
#[derive(Debug, Clone, Args)]
pub struct HubArgs {
    /// The kontor binary [default: `kontor` beside this program, else target/release/kontor].
    #[arg(long, value_name = "PATH")]
    pub kontor: Option<PathBuf>,
    /// An administrator URL of the PostgreSQL server. Fresh databases are created there for the
    /// run and dropped at its end.
    #[arg(
        long,
        value_name = "URL",
        env = "KONTOR_TEST_POSTGRES_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
    /// A setting of the hub's configuration for the run, as `section.key=value` (repeatable),
    /// passed as its `KONTOR_…` variable: e.g. `--hub-setting database.max_connections=20`.
    #[arg(long = "hub-setting", value_name = "KEY=VALUE", value_parser = parse_hub_setting)]
    pub settings: Vec<(String, String)>,
}

/// `database.max_connections=20` → (`KONTOR_DATABASE__MAX_CONNECTIONS`, `20`).
fn parse_hub_setting(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))?;
    let valid = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
    if !valid {
        return Err(format!(
            "{key:?} is not a setting name like database.max_connections"
        ));
    }
    Ok((
        format!("KONTOR_{}", key.to_uppercase().replace('.', "__")),
        value.to_owned(),
    ))
}

/// Options the closed-loop benchmarks share.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Closed-loop workers per phase (each waits for its answer before sending again).
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Measured seconds per phase.
    #[arg(long, value_name = "SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: u64,
    /// Unmeasured seconds before each phase's measurement.
    #[arg(long, value_name = "SECS", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup: u64,
    /// Run all phases this many times in turn, so that a burst of other work on the machine falls
    /// on API and baseline phases alike; each phase's figures merge its rounds.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,
    #[command(flatten)]
    pub output: crate::report::Output,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // reqwest is built without a TLS crypto provider of its own (`rustls-no-provider`) and
    // refuses to build a client until one is installed, even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let run = async {
        match cli.command {
            Command::Users(args) => users::run(&args).await,
            Command::Payments(args) => payments::run(&args).await,
            Command::Crash(args) => crash::run(&args).await,
            Command::Webhooks(args) => webhooks::run(&args).await,
            Command::Reads(args) => reads::run(&args).await,
            Command::Ingest(args) => ingest::run(&args).await,
            Command::Failover(args) => failover::run(&args).await,
            Command::ExpandContract(args) => expand::run(&args).await,
            Command::Move(args) => cellmove::run(&args).await,
        }
    };
    // On Ctrl-C the run is dropped, and with it the guards: the hub is killed and the databases
    // are dropped before the process exits.
    tokio::select! {
        result = run => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hub_setting;

    #[test]
    fn hub_settings_become_kontor_variables() {
        assert_eq!(
            parse_hub_setting("database.max_connections=20"),
            Ok((
                "KONTOR_DATABASE__MAX_CONNECTIONS".to_owned(),
                "20".to_owned()
            ))
        );
        assert_eq!(
            parse_hub_setting("log.level=a=b"),
            Ok(("KONTOR_LOG__LEVEL".to_owned(), "a=b".to_owned()))
        );
        for bad in ["novalue", "=1", "Database.x=1", "a..b=1", "a b=1"] {
            assert!(parse_hub_setting(bad).is_err(), "{bad}");
        }
    }
}
