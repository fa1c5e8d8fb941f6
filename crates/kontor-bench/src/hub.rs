//! The hub under test: `kontor serve` as a child process, killed when the guard drops, and what
//! the benchmark asks of it besides load (readiness, tokens, metrics, its log).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};

/// How long `kontor serve` may take to migrate and answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the hub may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A tenant's API client, as `kontor tenants create --json` prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct Tenant {
    pub tenant_id: String,
    pub client_id: String,
    client_secret: String,
}

/// Fresh token-signing and key-encryption keys as `KONTOR_…` settings. A hub on PostgreSQL
/// generates none, and every process of one deployment (the hub, its workers) needs the same.
pub fn shared_keys_env() -> Vec<(String, String)> {
    use base64::Engine;
    let key = || {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    vec![
        (
            "KONTOR_AUTH__SIGNING_KEYS".to_owned(),
            format!(r#"[{{id="bench",secret="{}"}}]"#, key()),
        ),
        (
            "KONTOR_SECRETS__KEYS".to_owned(),
            format!(r#"[{{id="bench",secret="{}"}}]"#, key()),
        ),
    ]
}

/// `kontor` with exactly the benchmark's configuration: the caller's own `KONTOR_…` settings
/// (a config file, other databases) and `RUST_LOG` are not passed on.
pub fn kontor_command(kontor: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(kontor);
    for (key, _) in std::env::vars_os() {
        let inherited = key.to_string_lossy();
        if inherited.starts_with("KONTOR_") || inherited == "RUST_LOG" {
            command.env_remove(&key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// The hub's pool size per database, read from `kontor config print` under `env`.
pub async fn pool_size(kontor: &Path, env: &[(String, String)]) -> anyhow::Result<String> {
    let output = kontor_command(kontor, env)
        .args(["config", "print"])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} config print", kontor.display()))?;
    if !output.status.success() {
        bail!(
            "kontor config print failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let config = String::from_utf8_lossy(&output.stdout);
    let size = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("max_connections = "))
        .unwrap_or("unknown");
    Ok(format!(
        "{size} connections per database (`database.max_connections`)"
    ))
}

/// Runs `kontor tenants create NAME --json` with `env` and parses its one line of JSON.
pub async fn create_tenant(
    kontor: &Path,
    env: &[(String, String)],
    name: &str,
) -> anyhow::Result<Tenant> {
    let output = kontor_command(kontor, env)
        .args(["tenants", "create", name, "--json"])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {} tenants create", kontor.display()))?;
    if !output.status.success() {
        bail!(
            "kontor tenants create failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .context("kontor tenants create --json printed no JSON")?;
    serde_json::from_str(line).context("parsing the output of kontor tenants create --json")
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub bearer: String,
    pub expires_in: Duration,
}

/// The running hub. Killed (SIGKILL) if dropped without [`Hub::stop`].
#[derive(Debug)]
pub struct Hub {
    child: Child,
    base: String,
    http: reqwest::Client,
    log: PathBuf,
}

/// How the hub ended.
#[derive(Debug, Clone, Serialize)]
pub struct HubExit {
    pub status: String,
    pub stop_ms: u128,
    pub killed: bool,
}

impl Hub {
    /// Starts `kontor serve --listen 127.0.0.1:<free port>` with `env`, its output going to
    /// `log`, and waits until `/readyz` answers 200.
    pub async fn start(
        kontor: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> anyhow::Result<Self> {
        Self::start_on(kontor, env, log, free_port()?).await
    }

    /// The same on a given port. The log is appended to, so that the lives of a hub restarted
    /// on the same log follow one another.
    pub async fn start_on(
        kontor: &Path,
        env: &[(String, String)],
        log: &Path,
        port: u16,
    ) -> anyhow::Result<Self> {
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening the hub log {}", log.display()))?;
        let stderr = stdout.try_clone().context("sharing the hub log")?;
        let child = kontor_command(kontor, env)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} serve", kontor.display()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        let mut hub = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
            log: log.to_owned(),
        };
        hub.wait_ready().await?;
        Ok(hub)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = self.url("/readyz");
        loop {
            if let Some(status) = self.child.try_wait().context("watching the hub")? {
                bail!(
                    "kontor serve exited ({status}) before it was ready:\n{}",
                    tail(&self.log, 20)
                );
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status() == reqwest::StatusCode::OK
            {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "kontor serve was not ready after {} s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    tail(&self.log, 20)
                );
            }
            // Short: the crash test counts how long each restart takes.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A bearer token for the tenant's client (client credentials grant, HTTP Basic).
    pub async fn token(&self, tenant: &Tenant) -> anyhow::Result<Token> {
        let response = self
            .http
            .post(self.url("/v1/oauth/token"))
            .basic_auth(&tenant.client_id, Some(&tenant.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .context("requesting a token")?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            bail!("the token request answered {status}: {body}");
        }
        let token: TokenResponse = response.json().await.context("reading the token")?;
        Ok(Token {
            bearer: token.access_token,
            expires_in: Duration::from_secs(token.expires_in),
        })
    }

    /// The hub's Prometheus counters whose name starts with `prefix`, summed per name and labels
    /// (`name{labels}` → value). Empty when `/metrics` is unavailable.
    pub async fn counters(&self, prefix: &str) -> BTreeMap<String, f64> {
        let Ok(response) = self.http.get(self.url("/metrics")).send().await else {
            return BTreeMap::new();
        };
        let Ok(text) = response.text().await else {
            return BTreeMap::new();
        };
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse::<f64>().ok()?))
            })
            .collect()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the process has exited on its own, and how.
    pub fn exited(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait().context("watching the hub")
    }

    /// SIGKILL, as a crash would, and waits until the process is gone.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the hub")
    }

    /// Stops the hub as an orchestrator would: SIGTERM, then SIGKILL after [`STOP_TIMEOUT`].
    pub async fn stop(mut self) -> anyhow::Result<HubExit> {
        let started = Instant::now();
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("the hub's pid does not fit an i32")?;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            )
            .context("sending SIGTERM to the hub")?;
        }
        let (status, killed) = match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => (status.context("waiting for the hub")?, false),
            Err(_) => {
                self.child.kill().await.context("killing the hub")?;
                (
                    self.child.wait().await.context("waiting for the hub")?,
                    true,
                )
            }
        };
        Ok(HubExit {
            status: status.to_string(),
            stop_ms: started.elapsed().as_millis(),
            killed,
        })
    }
}

/// A port nobody listens on right now (the hub binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("finding a free local port")?;
    Ok(listener
        .local_addr()
        .context("finding a free local port")?
        .port())
}

/// The last `lines` lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the hub logged at WARN and above: counts per level, and each distinct message with how
/// often it came. Lines that are not the hub's JSON log (a panic, say) are kept as they are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogSummary {
    pub lines: u64,
    pub levels: BTreeMap<String, u64>,
    pub messages: BTreeMap<String, u64>,
}

pub fn summarize_log(path: &Path) -> LogSummary {
    let mut summary = LogSummary::default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        summary.lines += 1;
        let parsed: Option<serde_json::Value> = serde_json::from_str(line).ok();
        let (level, message) = match &parsed {
            Some(value) => {
                let level = value["level"].as_str().unwrap_or("?").to_owned();
                let message = value["fields"]["message"]
                    .as_str()
                    .or_else(|| value["message"].as_str())
                    .unwrap_or("");
                let message = match value["fields"]["error"].as_str() {
                    Some(error) => format!("{level}: {message} (error: {})", truncate(error, 200)),
                    None => format!("{level}: {message}"),
                };
                (level, message)
            }
            None => ("raw".to_owned(), format!("raw: {}", truncate(line, 160))),
        };
        *summary.levels.entry(level.clone()).or_default() += 1;
        if level != "INFO" && level != "DEBUG" && level != "TRACE" {
            *summary.messages.entry(message).or_default() += 1;
        }
    }
    summary
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_summary_counts_levels_and_keeps_warnings_and_stray_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let lines = [
            r#"{"level":"WARN","fields":{"message":"generated a token signing key"}}"#,
            r#"{"level":"ERROR","fields":{"message":"request failed","error":"pool timed out"}}"#,
            r#"{"level":"ERROR","fields":{"message":"request failed","error":"pool timed out"}}"#,
            r#"{"level":"INFO","fields":{"message":"serving"}}"#,
            "thread 'main' panicked at src/main.rs:1:1",
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let summary = summarize_log(&path);
        assert_eq!(summary.lines, 5);
        assert_eq!(summary.levels["ERROR"], 2);
        assert_eq!(summary.levels["raw"], 1);
        assert_eq!(
            summary.messages["ERROR: request failed (error: pool timed out)"],
            2
        );
        assert!(
            summary
                .messages
                .contains_key("WARN: generated a token signing key")
        );
        assert!(!summary.messages.keys().any(|m| m.contains("serving")));
        assert_eq!(summary.messages.len(), 3);
    }
}
