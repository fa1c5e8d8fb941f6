//! A benchmark's world: fresh databases, a tenant, and a running hub pointed at them. Built by
//! [`BenchEnv::start`] and torn down by [`BenchEnv::teardown`]; if a run fails before that, the
//! guards inside still kill the hub and drop the databases.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use tempfile::TempDir;

use crate::HubArgs;
use crate::databases::TempDatabases;
use crate::hub::{self, Hub, HubExit, LogSummary, Tenant};
use crate::machine::{CpuProbe, Machine};

/// The cells every run configures; benchmarks write to the first.
pub const REGIONS: &[&str] = &["uk", "de"];

/// Field order matters: the hub is dropped (killed) before its databases are dropped.
#[derive(Debug)]
pub struct BenchEnv {
    pub hub: Hub,
    pub tenant: Tenant,
    pub databases: TempDatabases,
    pub machine: Machine,
    pub probe: CpuProbe,
    /// The hub's pool size per database, as its effective configuration says, and the settings
    /// given with `--hub-setting`.
    pub hub_pool: String,
    /// The hub's keys as `KONTOR_…` settings, for other processes of the deployment.
    pub keys_env: Vec<(String, String)>,
    /// Every `KONTOR_…` setting the hub was started with, for another `kontor serve` of the
    /// same deployment.
    pub hub_env: Vec<(String, String)>,
    _data_dir: TempDir,
}

/// What the teardown saw.
#[derive(Debug, Clone, Serialize)]
pub struct Ending {
    pub hub_exit: Option<HubExit>,
    pub hub_log: LogSummary,
}

/// The kontor binary beside this program (both built into the same target folder), else the
/// workspace's release build.
pub fn default_kontor() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("kontor"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/kontor")
        })
}

/// `--kontor`, else [`default_kontor`]; an error when there is no such file.
pub fn kontor_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let kontor = given.unwrap_or_else(default_kontor);
    if !kontor.is_file() {
        anyhow::bail!(
            "no kontor binary at {} (build it, or pass --kontor)",
            kontor.display()
        );
    }
    Ok(kontor)
}

impl BenchEnv {
    pub async fn start(args: &HubArgs) -> anyhow::Result<Self> {
        Self::start_with(args, "bench", Vec::new()).await
    }

    /// The same, with a tenant of another name and more settings for the hub (`KONTOR_…`).
    pub async fn start_with(
        args: &HubArgs,
        tenant_name: &str,
        extra_env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        let kontor = args.kontor.clone().unwrap_or_else(default_kontor);
        if !kontor.is_file() {
            bail!(
                "no kontor binary at {} (build it with `cargo build --release -p kontor`, or pass --kontor)",
                kontor.display()
            );
        }
        let kontor_version = kontor_version(&kontor).await?;

        let mut roles = vec!["control"];
        roles.extend_from_slice(REGIONS);
        let key_roles: Vec<String> = REGIONS.iter().map(|r| format!("keys_{r}")).collect();
        roles.extend(key_roles.iter().map(String::as_str));
        let databases = TempDatabases::create(&args.postgres, &roles).await?;
        let data_dir = tempfile::Builder::new()
            .prefix("kontor-bench-")
            .tempdir()
            .context("creating a data directory for the hub")?;

        let mut env = vec![
            (
                "KONTOR_DATABASE__CONTROL_URL".to_owned(),
                databases.url("control")?,
            ),
            (
                "KONTOR_DATA_DIR".to_owned(),
                data_dir.path().join("data").display().to_string(),
            ),
            ("KONTOR_LOG__LEVEL".to_owned(), "warn".to_owned()),
            // One tenant and one address offer the whole load: the hub's rate limits would
            // measure themselves.
            ("KONTOR_RATE_LIMITS__ENABLED".to_owned(), "false".to_owned()),
        ];
        for region in REGIONS {
            env.push((
                format!("KONTOR_CELLS__{}__URL", region.to_uppercase()),
                databases.url(region)?,
            ));
            env.push((
                format!("KONTOR_CELLS__{}__KEYS_URL", region.to_uppercase()),
                databases.url(&format!("keys_{region}"))?,
            ));
        }

        let keys_env = hub::shared_keys_env();
        env.extend(keys_env.iter().cloned());
        env.extend(extra_env);
        env.extend(args.settings.iter().cloned());
        let mut hub_pool = hub::pool_size(&kontor, &env).await?;
        if !args.settings.is_empty() {
            let given: Vec<String> = args
                .settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            hub_pool = format!("{hub_pool}; set for the run: {}", given.join(", "));
        }
        let tenant = hub::create_tenant(&kontor, &env, tenant_name).await?;
        let log = data_dir.path().join("hub.log");
        let hub = Hub::start(&kontor, &env, &log).await?;
        let probe = CpuProbe::new(hub.pid(), "kontor_bench_");
        let machine = Machine::describe(databases.server_version(), &kontor_version);
        Ok(Self {
            hub,
            tenant,
            databases,
            machine,
            probe,
            hub_pool,
            keys_env,
            hub_env: env,
            _data_dir: data_dir,
        })
    }

    /// [`BenchEnv::teardown`] for a run whose figures matter more than a clean ending: a
    /// failure is printed, and the report goes without the ending.
    pub async fn teardown_or_warn(self) -> Option<Ending> {
        match self.teardown().await {
            Ok(ending) => Some(ending),
            Err(err) => {
                eprintln!("kontor-bench: teardown: {err:#}");
                None
            }
        }
    }

    /// Stops the hub (SIGTERM), reads its log, and drops the databases.
    pub async fn teardown(self) -> anyhow::Result<Ending> {
        let Self {
            hub,
            databases,
            _data_dir: data_dir,
            ..
        } = self;
        let log = hub.log_path().to_owned();
        let hub_exit = hub.stop().await;
        let hub_log = hub::summarize_log(&log);
        let dropped = databases.drop_all().await;
        drop(data_dir);
        let hub_exit = hub_exit?;
        dropped?;
        Ok(Ending {
            hub_exit: Some(hub_exit),
            hub_log,
        })
    }
}

async fn kontor_version(kontor: &Path) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(kontor)
        .arg("--version")
        .output()
        .await
        .with_context(|| format!("running {} --version", kontor.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
