//! What the benchmarks that run the hub as an operator would (`crash`, `failover`, `move`)
//! share around it: the hub's configuration file and settings, its version, the HTTP client,
//! a user, the webhook endpoint pointed at the receiver, the payment driver of mixed load, the
//! payments checked against the bank's ledger, and the wait for every event in the cells'
//! outboxes to reach the receiver. Each benchmark keeps only its own logic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::crash::check::{self, HubPayment, Violation};
use crate::crash::driver::{KeyRecord, Knobs};
use crate::sandbox::HubBank;
use crate::webhooks::receiver::Receiver;
use kontor_sandbox_bank::PaymentRecord;

/// The hub's configuration file for a run (`KONTOR_CONFIG`).
#[derive(Debug, Serialize)]
pub struct HubConfigFile {
    pub data_dir: String,
    pub auth: toml::Table,
    pub log: toml::Table,
    pub worker: toml::Table,
    pub bank_http: toml::Table,
    pub payments: toml::Table,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<toml::Table>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<toml::Table>,
    pub banks: Vec<HubBank>,
}

/// A TOML table of `entries`.
pub fn table<const N: usize>(entries: [(&str, toml::Value); N]) -> toml::Table {
    entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// A count (seconds, ms) as a TOML integer.
pub fn secs(value: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The hub's `payments` section: a step toward the bank left unfinished `stale` seconds is
/// resumed, unauthorised payments are cancelled after `ttl`, status polls every
/// `poll_base`..`poll_cap` seconds.
pub fn payments_section(stale: u64, ttl: u64, poll_base: u64, poll_cap: u64) -> toml::Table {
    table([
        ("stale_seconds", secs(stale)),
        ("authorisation_ttl_seconds", secs(ttl)),
        ("poll_base_seconds", secs(poll_base)),
        ("poll_cap_seconds", secs(poll_cap)),
    ])
}

impl HubConfigFile {
    /// Level-info logs, day-long tokens, 200 ms worker ticks, a `lease`-second worker lease
    /// and a bank timeout of a third of it, the data folder `data` under `dir`.
    pub fn new(dir: &Path, lease: u64, payments: toml::Table, banks: Vec<HubBank>) -> Self {
        Self {
            data_dir: dir.join("data").display().to_string(),
            auth: table([("token_ttl_seconds", secs(86_400))]),
            log: table([("level", toml::Value::String("info".to_owned()))]),
            worker: table([("tick_ms", secs(200)), ("lease_seconds", secs(lease))]),
            bank_http: table([("request_timeout_ms", secs(lease * 1000 / 3))]),
            payments,
            webhooks: None,
            cells: None,
            banks,
        }
    }

    /// The configuration of mixed load (`failover`, `move`): as in the crash test, short polls
    /// and a short stale time, so that payments become final soon after the load; a 15 s lease;
    /// webhooks to the receiver on this machine, polled every 200 ms.
    pub fn mixed_load(dir: &Path, banks: Vec<HubBank>) -> Self {
        Self {
            webhooks: Some(table([
                ("allow_http", toml::Value::Boolean(true)),
                ("allow_private_addresses", toml::Value::Boolean(true)),
                ("poll_ms", secs(200)),
            ])),
            ..Self::new(dir, 15, payments_section(3, 20, 1, 2), banks)
        }
    }

    /// Writes it to `dir/kontor.toml`; the settings that point the hub at it, with rate limits
    /// off (every page of the load comes from one address) and fresh shared keys (configured
    /// on SQLite too: the hub generates none into its data folder outside development).
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, Vec<(String, String)>)> {
        let path = dir.join("kontor.toml");
        std::fs::write(
            &path,
            toml::to_string(self).context("rendering the hub configuration")?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        let mut env = vec![
            ("KONTOR_CONFIG".to_owned(), path.display().to_string()),
            ("KONTOR_RATE_LIMITS__ENABLED".to_owned(), "false".to_owned()),
        ];
        env.extend(crate::hub::shared_keys_env());
        Ok((path, env))
    }
}

/// The settings of a region's cell 1 and its key store on PostgreSQL (`de` → `KONTOR_CELLS__DE__…`).
pub fn cell_env(region: &str, url: String, keys_url: String) -> [(String, String); 2] {
    let upper = region.to_uppercase();
    [
        (format!("KONTOR_CELLS__{upper}__URL"), url),
        (format!("KONTOR_CELLS__{upper}__KEYS_URL"), keys_url),
    ]
}

/// `kontor --version`, or a placeholder.
pub async fn kontor_version(kontor: &Path) -> String {
    tokio::process::Command::new(kontor)
        .arg("--version")
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "kontor (version unknown)".to_owned())
}

/// The load's HTTP client: redirects not followed (the pages are walked by hand).
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .context("building the HTTP client")
}

/// `POST /v1/users`: the new user's id.
pub async fn create_user(
    http: &reqwest::Client,
    base: &str,
    bearer: &str,
    external_id: &str,
    region: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/v1/users"))
        .bearer_auth(bearer)
        .json(&json!({"external_id": external_id, "region": region}))
        .send()
        .await
        .context("creating a user")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the new user")?;
    match body["id"].as_str() {
        Some(id) if status == reqwest::StatusCode::CREATED => Ok(id.to_owned()),
        _ => bail!("POST /v1/users answered {status}: {body}"),
    }
}

/// The tenant's webhook endpoint: every event to the receiver.
pub async fn webhook_endpoint(
    http: &reqwest::Client,
    base: &str,
    bearer: &str,
    receiver: &Receiver,
) -> anyhow::Result<()> {
    let created = http
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(bearer)
        .json(&json!({ "url": receiver.url(), "events": ["*"] }))
        .send()
        .await
        .context("creating the webhook endpoint")?;
    if created.status() != reqwest::StatusCode::CREATED {
        let body = created.text().await.unwrap_or_default();
        bail!("creating the webhook endpoint failed: {body}");
    }
    Ok(())
}

/// The payment driver's knobs under mixed load: a first POST sent twice at once 15 % of the
/// time, a replay after the 201 25 %, and every key retried until it gets its 201 (a client
/// with an Idempotency-Key), at `rate` new keys a second.
pub fn mixed_load_knobs(rate: f64) -> Knobs {
    Knobs {
        concurrent: 0.15,
        replay: 0.25,
        abandon: 0.0,
        post_deadline: Duration::from_secs(120),
        auth_deadline: Duration::from_secs(120),
        rate: Some(rate),
    }
}

/// Payments of a run checked against the bank's ledger.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Payments {
    pub keys_sent: usize,
    pub keys_with_201: usize,
    pub keys_given_up: usize,
    /// Keys that got a 201 whose payment is missing (at the hub or the bank).
    pub accepted_lost: usize,
    /// Amounts (per bank) executed more than once at the bank.
    pub executed_twice: usize,
    pub ledger_executed: usize,
    pub hub_status: BTreeMap<String, u64>,
    pub settled: bool,
    pub violations: Vec<Violation>,
}

impl Payments {
    /// The keys sent, the hub's payments and the ledger's (those of these keys' amounts).
    pub fn check(
        keys: &[KeyRecord],
        hub: &[HubPayment],
        ledger: &[PaymentRecord],
        settled: bool,
    ) -> Self {
        let verdict = check::check(keys, hub, ledger);
        let mut executed: BTreeMap<(String, String), usize> = BTreeMap::new();
        for p in ledger.iter().filter(|p| p.executed) {
            let amount = check::minor_units(&p.amount).unwrap_or(-1).to_string();
            *executed.entry((p.bank_id.clone(), amount)).or_default() += 1;
        }
        Self {
            keys_sent: keys.len(),
            keys_with_201: verdict.keys_with_201,
            keys_given_up: keys.iter().filter(|k| k.gave_up).count(),
            accepted_lost: verdict
                .violations
                .iter()
                .filter(|v| v.kind == "lost")
                .count(),
            executed_twice: executed.values().filter(|n| **n > 1).count(),
            ledger_executed: verdict.ledger_executed,
            hub_status: verdict.hub_status_with_201,
            settled,
            violations: verdict.violations,
        }
    }
}

/// The events of `tenant` in the cells' outboxes, and those the receiver has not got.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    pub events: BTreeSet<String>,
    pub lost: Vec<String>,
}

/// Waits until every event of `tenant` in the outboxes of the cells at `cells` has reached the
/// receiver, or `timeout` passes.
pub async fn await_deliveries(
    cells: impl IntoIterator<Item = &String> + Clone,
    tenant: &str,
    receiver: &Receiver,
    timeout: Duration,
) -> anyhow::Result<Outbox> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut events = BTreeSet::new();
        for url in cells.clone() {
            let mut conn = PgConnection::connect(url)
                .await
                .context("connecting to a cell to read its outbox")?;
            let found: Vec<String> =
                sqlx::query_scalar("SELECT id FROM events WHERE tenant_id = $1")
                    .bind(tenant)
                    .fetch_all(&mut conn)
                    .await
                    .context("reading the events of the run")?;
            events.extend(found);
            let _ = conn.close().await;
        }
        let arrived = receiver.arrivals();
        let lost: Vec<String> = events
            .iter()
            .filter(|id| !arrived.contains_key(*id))
            .cloned()
            .collect();
        if lost.is_empty() || tokio::time::Instant::now() > deadline {
            return Ok(Outbox { events, lost });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{HubConfigFile, table};

    #[test]
    fn the_configuration_renders_its_sections_and_only_those_set() {
        let dir = std::path::Path::new("/tmp/run");
        let crash = toml::to_string(&HubConfigFile::new(
            dir,
            15,
            super::payments_section(3, 20, 1, 2),
            Vec::new(),
        ))
        .expect("renders");
        let crash: toml::Table = crash.parse().expect("parses");
        assert_eq!(crash["data_dir"].as_str(), Some("/tmp/run/data"));
        assert_eq!(
            crash["bank_http"]["request_timeout_ms"].as_integer(),
            Some(5000)
        );
        assert_eq!(
            crash["payments"]["authorisation_ttl_seconds"].as_integer(),
            Some(20)
        );
        assert!(!crash.contains_key("webhooks") && !crash.contains_key("cells"));

        let mut cells = toml::Table::new();
        cells.insert(
            "de-2".to_owned(),
            toml::Value::Table(table([("state", toml::Value::String("draining".into()))])),
        );
        let moved = toml::to_string(&HubConfigFile {
            cells: Some(cells),
            ..HubConfigFile::mixed_load(dir, Vec::new())
        })
        .expect("renders");
        let moved: toml::Table = moved.parse().expect("parses");
        assert_eq!(moved["webhooks"]["poll_ms"].as_integer(), Some(200));
        assert_eq!(moved["worker"]["lease_seconds"].as_integer(), Some(15));
        assert_eq!(moved["cells"]["de-2"]["state"].as_str(), Some("draining"));
    }
}
