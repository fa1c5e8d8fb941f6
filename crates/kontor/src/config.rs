//! Configuration, layered: built-in defaults → TOML file (`--config`) → `KONTOR_…` environment
//! (nested keys joined by `__`, e.g. `KONTOR_CELLS__UK__URL`) → command-line flags. Validated once
//! at startup, with messages that name the offending key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use kontor_domain::{CellId, CellState, Region, TenantId};
use kontor_service::CellPolicy;
use serde::{Deserialize, Serialize, Serializer};

use crate::secret::{DatabaseUrl, Secret};

mod rate_limits;
mod retention;
pub mod security;
mod telemetry;
mod webhooks;
pub use rate_limits::RateLimitsConfig;
pub use retention::RetentionConfig;
pub use telemetry::TelemetryConfig;
pub use webhooks::WebhooksConfig;

/// Top-level sections; environment variables outside them (like `KONTOR_CONFIG`) are not config.
const SECTIONS: &[&str] = &[
    "data_dir",
    "development",
    "server",
    "database",
    "cells",
    "auth",
    "log",
    "secrets",
    "link",
    "worker",
    "banks",
    "banks_file",
    "bank_http",
    "webhooks",
    "rate_limits",
    "payments",
    "retention",
    "telemetry",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where SQLite databases and generated keys live when not configured otherwise.
    pub data_dir: PathBuf,
    /// Development mode: allows plain http for `server.public_url` and banks' `base_url`
    /// beyond loopback. Never in production; `kontor demo` sets it.
    pub development: bool,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    /// The cells, by name: `[cells.de-2] url = "postgres://…/kontor_de_2"`. A name is
    /// `<region>-<n>`; a bare region (`[cells.uk]`, as before cells had numbers) names its cell
    /// 1. Defaults to SQLite cells `de-1` and `uk-1` under `data_dir`.
    pub cells: BTreeMap<String, CellConfig>,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub secrets: SecretsConfig,
    pub link: LinkConfig,
    pub worker: WorkerConfig,
    pub bank_http: BankHttpConfig,
    pub payments: PaymentsConfig,
    pub webhooks: WebhooksConfig,
    pub rate_limits: RateLimitsConfig,
    pub retention: RetentionConfig,
    /// OpenTelemetry traces over OTLP; off unless `otlp_endpoint` is set.
    pub telemetry: TelemetryConfig,
    /// The bank directory: `[[banks]]` tables here, and/or in `banks_file`.
    pub banks: Vec<BankConfig>,
    /// A TOML file with more `[[banks]]` tables.
    pub banks_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where users and banks reach this hub (connect pages, the bank callback). Defaults to
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Take client addresses from `X-Forwarded-For`, as written by the proxies in
    /// `trusted_proxies` (which must then be set).
    pub trust_forwarded_for: bool,
    /// The proxies in front of the hub, as addresses or CIDR ranges (`10.0.0.0/8`): the header
    /// counts only on connections from them, and the client is the rightmost entry not theirs.
    pub trusted_proxies: Vec<String>,
    /// Behind an ingress that terminates mutual TLS: the request header in which it forwards
    /// the client's certificate (RFC 9440 `Client-Cert`, or URL-encoded PEM as nginx's
    /// `$ssl_client_escaped_cert`). Believed only on connections from `trusted_proxies`
    /// (which must then be set); from anyone else it is ignored.
    pub client_certificate_header: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// After SIGTERM or Ctrl-C, how long the process goes on serving with `/readyz` failing
    /// (`draining`), so that load balancers take it out of rotation before it stops accepting.
    /// A second signal cuts it short.
    pub drain_seconds: u64,
    /// After the drain, how long in-flight requests may take before the process exits anyway.
    pub shutdown_grace_seconds: u64,
    pub readiness_timeout_ms: u64,
    /// How long a client may take to send a request's head (from connecting, or from the first
    /// byte of the next request on a kept-alive connection).
    pub header_read_timeout_seconds: u64,
    /// How long a kept-alive connection may stay idle; keep it above the idle timeout of the
    /// ingress or load balancer in front.
    pub keep_alive_timeout_seconds: u64,
    /// Connections open at once; beyond it new ones wait to be accepted.
    pub connection_limit: usize,
    /// The longest a request (an API call, a hosted page) waits on banks in all, retries and
    /// pauses included; past it, it answers `bank_unavailable` or `bank_rate_limited`.
    pub bank_deadline_ms: u64,
    /// Terminate TLS in the hub itself (`[server.tls]`); without it the hub speaks plain HTTP
    /// and TLS ends in front of it.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: the certificate files, reloaded when they change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA certificates that tenants' client certificates must chain to. When set, clients
    /// may present a certificate, and API clients bound to one (`kontor clients bind`) are
    /// accepted only with it.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `optional` (default): a client without a certificate is still served (unbound API
    /// clients, probes); `required`: the handshake fails without one. Needs `client_ca`.
    #[serde(default)]
    pub client_auth: kontor_api::server::tls::ClientAuth,
    /// How often the files are read to see whether they changed (SIGHUP reads them at once).
    #[serde(default = "TlsConfig::default_reload_interval")]
    pub reload_interval_seconds: u64,
}

impl TlsConfig {
    fn default_reload_interval() -> u64 {
        10
    }

    pub fn files(&self) -> kontor_api::server::tls::TlsFiles {
        kontor_api::server::tls::TlsFiles {
            certificate: self.certificate.clone(),
            key: self.key.clone(),
            client_ca: self.client_ca.clone(),
            client_auth: self.client_auth,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Tenants, API clients and the bank directory. Defaults to `sqlite://<data_dir>/control.db`.
    pub control_url: Option<DatabaseUrl>,
    /// Apply pending migrations when a command starts.
    pub migrate_on_start: bool,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
    pub sqlite_busy_timeout_ms: u64,
    /// Attempts per write transaction before giving up on serialization conflicts.
    pub retry_max_attempts: u32,
    /// Connections older than this are closed rather than reused (0: never), so that a rotated
    /// TLS client certificate (`sslcert`/`sslkey` in the URL) is used by new connections.
    pub max_lifetime_seconds: u64,
    /// A pooled connection that rested this long is pinged before use (0: before every use).
    pub ping_after_idle_ms: u64,
    /// How long a user's unwrapped data key is kept in memory after it was read from the key
    /// store (0: not at all). Another node may open an erased user's data for this long.
    pub data_key_cache_ms: u64,
    /// How often the routes of moved tenants and users are re-read from the control database
    /// (a move's grace period must be longer).
    pub routes_refresh_ms: u64,
    /// How long a write of a tenant or user frozen by a move is held and retried before it is
    /// answered `503 subject_moving`.
    pub moving_write_wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    /// The cell's database. Defaults to SQLite in `data_dir`: `cell-<region>.db` for cell 1
    /// (the name it always had), `cell-<region>-<n>.db` for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<DatabaseUrl>,
    /// The cell's key store (users' wrapped data keys), a database apart from the cell so
    /// that no copy of the cell holds a key. Defaults, for a SQLite cell, to
    /// `sqlite://<data_dir>/keys/<region>.db` (cell 1) or `keys/<region>-<n>.db`; a PostgreSQL
    /// cell needs one set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_url: Option<DatabaseUrl>,
    /// The region, when written out: it must be the one the name says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `open` (the default), `draining` or `closed`: only an open cell takes new users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// A dedicated cell: only these tenants' new users go here, and no one else's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

/// One configured cell, resolved and validated.
#[derive(Debug, Clone)]
pub struct ResolvedCell {
    pub id: CellId,
    /// The key it was configured under (`de` or `de-1`), for messages.
    pub key: String,
    pub url: DatabaseUrl,
    pub keys_url: DatabaseUrl,
    pub policy: CellPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub token_ttl_seconds: i64,
    /// How long a client's revocation may take to reach tokens it already holds.
    pub client_cache_seconds: u64,
    /// Token signing keys; the first signs, all verify. When empty, a key is generated once and
    /// kept in `<data_dir>/secrets/` — fine for one node, not for several.
    pub signing_keys: Vec<SigningKeyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    pub id: String,
    /// Base64 (standard alphabet) of at least 32 random bytes.
    pub secret: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `kontor=debug,info`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./kontor-data"),
            development: false,
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            cells: BTreeMap::new(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            secrets: SecretsConfig::default(),
            link: LinkConfig::default(),
            worker: WorkerConfig::default(),
            bank_http: BankHttpConfig::default(),
            payments: PaymentsConfig::default(),
            webhooks: WebhooksConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            retention: RetentionConfig::default(),
            telemetry: TelemetryConfig::default(),
            banks: Vec::new(),
            banks_file: None,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let http = kontor_api::server::ServerSettings::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            drain_seconds: 5,
            shutdown_grace_seconds: 30,
            readiness_timeout_ms: 2000,
            bank_deadline_ms: 15_000,
            public_url: None,
            trust_forwarded_for: false,
            header_read_timeout_seconds: http.header_read_timeout.as_secs(),
            keep_alive_timeout_seconds: http.keep_alive_timeout.as_secs(),
            connection_limit: http.connection_limit,
            trusted_proxies: Vec::new(),
            client_certificate_header: None,
            tls: None,
        }
    }
}

impl ServerConfig {
    /// The accept loop's timeouts and connection limit.
    pub fn http(&self) -> kontor_api::server::ServerSettings {
        kontor_api::server::ServerSettings {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_seconds),
            keep_alive_timeout: std::time::Duration::from_secs(self.keep_alive_timeout_seconds),
            connection_limit: self.connection_limit,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(1024..=10 * 1024 * 1024).contains(&self.body_limit_bytes) {
            bail!("server.body_limit_bytes must be between 1024 and 10485760");
        }
        if !(1..=300).contains(&self.header_read_timeout_seconds) {
            bail!("server.header_read_timeout_seconds must be between 1 and 300");
        }
        if !(1..=3600).contains(&self.keep_alive_timeout_seconds) {
            bail!("server.keep_alive_timeout_seconds must be between 1 and 3600");
        }
        if !(1..=1_000_000).contains(&self.connection_limit) {
            bail!("server.connection_limit must be between 1 and 1000000");
        }
        if self.drain_seconds > 300 {
            bail!("server.drain_seconds must be between 0 and 300");
        }
        if let Some(tls) = &self.tls {
            if !(1..=3600).contains(&tls.reload_interval_seconds) {
                bail!("server.tls.reload_interval_seconds must be between 1 and 3600");
            }
            if tls.client_auth == kontor_api::server::tls::ClientAuth::Required
                && tls.client_ca.is_none()
            {
                bail!(
                    "server.tls.client_auth = \"required\" needs server.tls.client_ca: the CA \
                     certificates that clients' certificates must chain to"
                );
            }
        }
        if !(1_000..=300_000).contains(&self.bank_deadline_ms) {
            bail!("server.bank_deadline_ms must be between 1000 and 300000");
        }
        Ok(())
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            control_url: None,
            migrate_on_start: true,
            max_connections: 10,
            acquire_timeout_ms: 5000,
            sqlite_busy_timeout_ms: 5000,
            retry_max_attempts: 10,
            max_lifetime_seconds: 1800,
            ping_after_idle_ms: 1000,
            data_key_cache_ms: 2000,
            routes_refresh_ms: 1000,
            moving_write_wait_ms: 5000,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_ttl_seconds: 900,
            client_cache_seconds: 5,
            signing_keys: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".to_owned(),
        }
    }
}

/// Key-encryption keys for the per-user data keys that seal bank tokens and account data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// The first wraps new data keys; all unwrap. When empty, one is generated once and kept in
    /// `<data_dir>/secrets/` — fine for one node, not for several.
    pub keys: Vec<SigningKeyConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// How long the user may take at the bank before the callback state lapses.
    pub state_ttl_seconds: i64,
    /// How long a connect link stays usable.
    pub link_ttl_seconds: i64,
    /// Unattended syncs a day asked of banks (1-4).
    pub frequency_per_day: u8,
    /// Days before a consent lapses that tenants get `connection.expiring`.
    pub expiry_notice_days: i64,
    /// Accept `http` redirect URIs from tenants (development only).
    pub allow_http_redirects: bool,
    /// Days each incremental sync re-reads before the previous one.
    pub overlap_days: i64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            state_ttl_seconds: 1800,
            link_ttl_seconds: 86_400,
            frequency_per_day: 4,
            expiry_notice_days: 7,
            allow_http_redirects: false,
            overlap_days: 7,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Run the worker inside `kontor serve` as well (one process does everything).
    pub embedded: bool,
    pub tick_ms: u64,
    pub concurrency: usize,
    /// How long a claim on a connection or payment (a sync, a payment step) lasts unless its
    /// holder renews it; a live holder renews it every third of this while it works, however
    /// long the bank takes. A process that dies holds its claims at most this long; another
    /// worker (or the same one restarted) resumes the work after it.
    pub lease_seconds: i64,
    /// Where `kontor worker` serves `/healthz`, `/readyz` and `/metrics` (e.g. `0.0.0.0:9091`);
    /// unset, it opens no port. `kontor serve` serves them on its own listener.
    pub listen: Option<std::net::SocketAddr>,
    /// How often the worker reads the gauges that need the database (payments per phase,
    /// webhook backlog, overdue syncs, expiring consents) from every cell.
    pub gauges_interval_seconds: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            embedded: true,
            tick_ms: 5000,
            concurrency: 4,
            lease_seconds: 15,
            listen: None,
            gauges_interval_seconds: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// A step toward the bank left unfinished this long (a crash) is resumed by the worker.
    pub stale_seconds: i64,
    /// A payment the user has not authorised within this time is cancelled.
    pub authorisation_ttl_seconds: i64,
    /// First status poll after submission; doubling up to `poll_cap_seconds`.
    pub poll_base_seconds: i64,
    pub poll_cap_seconds: i64,
    /// Without a final status this long after creation, a payment's status becomes `unknown`.
    pub unknown_after_seconds: i64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        let d = kontor_service::PaymentSettings::default();
        Self {
            stale_seconds: d.stale_seconds,
            authorisation_ttl_seconds: d.authorisation_ttl_seconds,
            poll_base_seconds: d.poll_base_seconds,
            poll_cap_seconds: d.poll_cap_seconds,
            unknown_after_seconds: d.unknown_after_seconds,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BankHttpConfig {
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// How often the banks' certificate and key files are checked for changes.
    pub certificate_reload_seconds: u64,
}

impl BankHttpConfig {
    /// The connectors' HTTP settings.
    pub fn settings(&self) -> kontor_banks::HttpSettings {
        kontor_banks::HttpSettings {
            connect_timeout: std::time::Duration::from_millis(self.connect_timeout_ms),
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms),
            ..kontor_banks::HttpSettings::default()
        }
    }
}

impl Default for BankHttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5000,
            request_timeout_ms: 20_000,
            certificate_reload_seconds: 10,
        }
    }
}

/// A bank in the directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankConfig {
    pub id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `berlin-group` or `uk-open-banking`.
    pub standard: kontor_domain::bank::Standard,
    pub base_url: String,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub decoupled_sca: bool,
    pub logo_url: Option<String>,
    /// A PEM file with the hub's certificate chain (leaf first) and, unless `tls_key` is
    /// set, its private key, presented on every TLS connection to the bank (the third party's
    /// eIDAS QWAC, or a UK OBWAC). Read again when it changes (see `crate::certificates`).
    pub tls_identity: Option<PathBuf>,
    /// The private key of `tls_identity`, when it is a file of its own (`tls.key`).
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates trusted for this bank's server certificate besides the system's.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Whether the hub initiates payments here: then its certificate needs the PSD2 role
    /// `PSP_PI`, checked at startup.
    #[serde(default = "yes")]
    pub payments: bool,
    /// Tenants registered at this bank as third parties of their own (see `crate::tpp`).
    #[serde(default)]
    pub tenant_credentials: Vec<crate::tpp::TenantCredentials>,
    /// The seal the hub signs requests to this bank with, for banks that require signed
    /// requests (see `crate::signing`).
    #[serde(default)]
    pub signing: Option<crate::signing::SigningConfig>,
    /// UK Open Banking: how the hub authenticates at the token endpoint (`private_key_jwt`,
    /// `tls_client_auth`, `client_secret_basic`); default `private_key_jwt` with `signing`,
    /// else `client_secret_basic`.
    #[serde(default)]
    pub token_auth: Option<kontor_banks::uk_open_banking::TokenAuth>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BanksFile {
    #[serde(default)]
    banks: Vec<BankConfig>,
}

/// Values given on the command line, which win over every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

/// The cells and their key stores and the control database, resolved and validated.
#[derive(Debug, Clone)]
pub struct Databases {
    pub control: DatabaseUrl,
    pub cells: BTreeMap<CellId, DatabaseUrl>,
    /// Each cell's key store.
    pub keys: BTreeMap<CellId, DatabaseUrl>,
    /// Each cell's state and dedicated tenants.
    pub policies: BTreeMap<CellId, CellPolicy>,
    /// The key each cell is configured under (`de` or `de-1` for cell 1): messages name the
    /// setting as the operator wrote it.
    pub config_keys: BTreeMap<CellId, String>,
}

impl Databases {
    /// The key cell `id` is configured under, as the operator wrote it.
    pub fn config_key(&self, id: &CellId) -> String {
        self.config_keys
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }
}

impl Config {
    /// Loads every layer. `file` must exist when given.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Keys keep their case until figment lowercases them at the end of the chain.
        let env = Env::prefixed("KONTOR_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|section| {
                key.strip_prefix(section)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            })
        });
        figment = figment.merge(env);
        let mut config: Config = figment.extract().map_err(|err| {
            let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
        })?;
        if let Some(dir) = &overrides.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(path) = &config.banks_file {
            let raw = std::fs::read_to_string(path)
                .with_context(|| format!("banks_file {}", path.display()))?;
            let file: BanksFile =
                toml::from_str(&raw).with_context(|| format!("banks_file {}", path.display()))?;
            config.banks.extend(file.banks);
        }
        config.fill_in_defaults();
        config.validate()?;
        Ok(config)
    }

    /// The URL users and banks reach this hub at.
    pub fn public_url(&self) -> anyhow::Result<url::Url> {
        let raw = self.server.public_url.clone().unwrap_or_else(|| {
            let scheme = if self.server.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{}/", self.server.listen)
        });
        let mut url =
            url::Url::parse(&raw).with_context(|| format!("server.public_url {raw:?}"))?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    fn sqlite_url(&self, file: &str) -> DatabaseUrl {
        DatabaseUrl::new(format!("sqlite://{}", self.data_dir.join(file).display()))
    }

    /// Defaults that depend on `data_dir`: SQLite for the control database and cells `de`, `uk`.
    fn fill_in_defaults(&mut self) {
        if self.database.control_url.is_none() {
            self.database.control_url = Some(self.sqlite_url("control.db"));
        }
        if self.cells.is_empty() {
            for region in ["de", "uk"] {
                let url = self.sqlite_url(&format!("cell-{region}.db"));
                self.cells.insert(
                    region.to_owned(),
                    CellConfig {
                        url: Some(url),
                        keys_url: None,
                        region: None,
                        state: None,
                        tenants: Vec::new(),
                    },
                );
            }
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        let databases = self.databases()?;
        let mut seen = vec![databases.control.expose().to_owned()];
        for (cell, url) in &databases.cells {
            if seen.iter().any(|u| u == url.expose()) {
                bail!(
                    "cells.{}.url: every cell needs its own database, distinct from the control database and the other cells",
                    databases.config_key(cell)
                );
            }
            seen.push(url.expose().to_owned());
        }
        for (cell, url) in &databases.keys {
            if seen.iter().any(|u| u == url.expose()) {
                bail!(
                    "cells.{}.keys_url: every key store needs its own database, distinct from the control database, the cells and the other key stores",
                    databases.config_key(cell)
                );
            }
            seen.push(url.expose().to_owned());
        }
        if !(60..=86_400).contains(&self.auth.token_ttl_seconds) {
            bail!("auth.token_ttl_seconds must be between 60 and 86400");
        }
        self.server.validate()?;
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        if self.database.retry_max_attempts == 0 {
            bail!("database.retry_max_attempts must be at least 1");
        }
        self.public_url()?;
        if !(1..=4).contains(&self.link.frequency_per_day) {
            bail!("link.frequency_per_day must be between 1 and 4 (RTS Art. 36(5)(b))");
        }
        self.webhooks.validate()?;
        self.rate_limits.validate()?;
        self.retention.validate()?;
        self.telemetry.validate()?;
        security::validate(self)?;
        // Renewed every third of it: a renewal that a slow database delays must not let a live
        // holder's claim lapse, and a dead one's should lapse soon.
        if !(3..=600).contains(&self.worker.lease_seconds) {
            bail!("worker.lease_seconds must be between 3 and 600");
        }
        let mut bank_ids = std::collections::BTreeSet::new();
        for (i, bank) in self.banks.iter().enumerate() {
            kontor_domain::bank::BankId::parse(&bank.id)
                .with_context(|| format!("banks[{i}].id"))?;
            url::Url::parse(&bank.base_url).with_context(|| format!("banks[{i}].base_url"))?;
            if bank.country.len() != 2 || !bank.country.bytes().all(|b| b.is_ascii_uppercase()) {
                bail!("banks[{i}].country must be an upper-case ISO 3166 code such as DE");
            }
            if !bank_ids.insert(bank.id.clone()) {
                bail!("banks[{i}].id {:?} appears twice", bank.id);
            }
            crate::tpp::validate(&format!("banks[{i}]"), bank)?;
            crate::signing::validate(&format!("banks[{i}]"), bank)?;
        }
        for (i, key) in self.secrets.keys.iter().enumerate() {
            crate::wiring::data_key(key)
                .with_context(|| format!("secrets.keys[{i}] (id {:?})", key.id))?;
        }
        for (i, key) in self.auth.signing_keys.iter().enumerate() {
            crate::wiring::signing_key(key)
                .with_context(|| format!("auth.signing_keys[{i}] (id {:?})", key.id))?;
        }
        Ok(())
    }

    pub fn databases(&self) -> anyhow::Result<Databases> {
        let control = self
            .database
            .control_url
            .clone()
            .context("database.control_url is not set")?;
        check_url("database.control_url", &control)?;
        let mut cells = BTreeMap::new();
        let mut keys = BTreeMap::new();
        let mut policies = BTreeMap::new();
        let mut config_keys = BTreeMap::new();
        for cell in self.resolved_cells()? {
            config_keys.insert(cell.id.clone(), cell.key);
            cells.insert(cell.id.clone(), cell.url);
            keys.insert(cell.id.clone(), cell.keys_url);
            policies.insert(cell.id, cell.policy);
        }
        if cells.is_empty() {
            bail!("at least one cell must be configured");
        }
        Ok(Databases {
            control,
            cells,
            keys,
            policies,
            config_keys,
        })
    }

    /// Every configured cell, its name parsed (a bare region is its cell 1), its databases
    /// defaulted and its policy checked.
    pub fn resolved_cells(&self) -> anyhow::Result<Vec<ResolvedCell>> {
        let mut resolved: Vec<ResolvedCell> = Vec::new();
        for (name, cell) in &self.cells {
            let id = match Region::parse(name) {
                Ok(region) => CellId::first(region),
                Err(_) => CellId::parse(name).map_err(|err| {
                    anyhow::anyhow!(
                        "cells.{name}: {err}; a bare region (such as de) names its cell 1"
                    )
                })?,
            };
            if let Some(other) = resolved.iter().find(|c| c.id == id) {
                bail!(
                    "cells.{name} and cells.{} both name cell {id} (a bare region is its cell 1): configure it once",
                    other.key
                );
            }
            if let Some(region) = &cell.region
                && region != id.region().as_str()
            {
                bail!(
                    "cells.{name}.region is {region:?}, but the cell's name says region {}: a cell is named <region>-<n>",
                    id.region()
                );
            }
            let state = match &cell.state {
                None => CellState::Open,
                Some(raw) => CellState::parse(raw).with_context(|| {
                    format!(
                        "cells.{name}.state {raw:?} is not a cell state: expected open, draining or closed"
                    )
                })?,
            };
            let mut tenants = Vec::with_capacity(cell.tenants.len());
            for raw in &cell.tenants {
                let tenant = TenantId::parse(raw)
                    .map_err(|err| anyhow::anyhow!("cells.{name}.tenants: {err}"))?;
                if tenants.contains(&tenant) {
                    bail!("cells.{name}.tenants names {tenant} twice");
                }
                tenants.push(tenant);
            }
            let file = id.segment();
            let url = match &cell.url {
                Some(url) => url.clone(),
                None => self.sqlite_url(&format!("cell-{file}.db")),
            };
            check_url(&format!("cells.{name}.url"), &url)?;
            let keys_url = match &cell.keys_url {
                Some(url) => url.clone(),
                None if url.expose().starts_with("sqlite:") => {
                    self.sqlite_url(&format!("keys/{file}.db"))
                }
                None => bail!(
                    "cells.{name}.keys_url is not set: a PostgreSQL cell keeps its users' data keys in a key store, a database of its own (e.g. postgres://…/kontor_{}_keys), so that no backup of the cell holds a key",
                    file.replace('-', "_")
                ),
            };
            check_url(&format!("cells.{name}.keys_url"), &keys_url)?;
            resolved.push(ResolvedCell {
                id,
                key: name.clone(),
                url,
                keys_url,
                policy: CellPolicy { state, tenants },
            });
        }
        resolved.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(resolved)
    }

    /// The effective configuration as TOML, secrets and database passwords masked.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        toml::to_string_pretty(self).context("rendering the configuration")
    }
}

fn check_url(key: &str, url: &DatabaseUrl) -> anyhow::Result<()> {
    let raw = url.expose();
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        url::Url::parse(raw).with_context(|| format!("{key}: not a valid URL ({url})"))?;
        Ok(())
    } else if raw.starts_with("sqlite:") {
        Ok(())
    } else {
        bail!("{key}: expected a postgres:// or sqlite: URL, got {url}")
    }
}

/// Serializes a value as a fixed mask: used for every secret in `config print`.
pub(crate) fn masked<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("********")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every top-level key of the configuration can be set from the environment: a section
    /// missing from `SECTIONS` would make its `KONTOR_…` variables be ignored without a word.
    #[test]
    fn every_section_is_reachable_from_the_environment() {
        let rendered = toml::to_string(&Config::default()).expect("the defaults render");
        let table: toml::Table = toml::from_str(&rendered).expect("and parse back");
        for key in table.keys() {
            assert!(SECTIONS.contains(&key.as_str()), "{key} is not in SECTIONS");
        }
    }
}

#[cfg(test)]
mod cell_tests {
    use super::*;

    fn load(toml: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kontor.toml");
        std::fs::write(&file, format!("development = true\n{toml}")).unwrap();
        let overrides = Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: None,
        };
        Config::load(Some(&file), &overrides)
    }

    fn refused(toml: &str, expected: &str) {
        let err = load(toml).expect_err(toml);
        let message = format!("{err:#}");
        assert!(message.contains(expected), "{expected:?} not in: {message}");
    }

    #[test]
    fn cells_are_named_and_a_bare_region_is_cell_one() {
        let config = load(
            "[cells.de]\n\
             [cells.de-2]\nstate = \"draining\"\ntenants = [\"ten_0000000000000000000000000p\"]\n\
             [cells.uk-1]\nregion = \"uk\"\n",
        )
        .unwrap();
        let dbs = config.databases().unwrap();
        let names: Vec<String> = dbs.cells.keys().map(ToString::to_string).collect();
        assert_eq!(names, ["de-1", "de-2", "uk-1"]);
        let url = |id: &str| dbs.cells[&CellId::parse(id).unwrap()].expose().to_owned();
        let keys = |id: &str| dbs.keys[&CellId::parse(id).unwrap()].expose().to_owned();
        // Cell 1's files keep the names they always had.
        assert!(url("de-1").ends_with("/cell-de.db"), "{}", url("de-1"));
        assert!(keys("de-1").ends_with("/keys/de.db"), "{}", keys("de-1"));
        assert!(url("de-2").ends_with("/cell-de-2.db"), "{}", url("de-2"));
        assert!(keys("de-2").ends_with("/keys/de-2.db"), "{}", keys("de-2"));
        assert!(url("uk-1").ends_with("/cell-uk.db"), "{}", url("uk-1"));
        let policy = &dbs.policies[&CellId::parse("de-2").unwrap()];
        assert_eq!(policy.state, CellState::Draining);
        assert_eq!(policy.tenants.len(), 1);
        assert_eq!(
            dbs.policies[&CellId::parse("de-1").unwrap()],
            CellPolicy::default()
        );
    }

    #[test]
    fn a_cell_configured_wrongly_is_refused_at_start() {
        refused(
            "[cells.de]\nurl = \"sqlite:///tmp/kontor-same.db\"\n\
             [cells.de-2]\nurl = \"sqlite:///tmp/kontor-same.db\"\n",
            "cells.de-2.url: every cell needs its own database",
        );
        refused(
            "[cells.de]\n[cells.de-2]\nkeys_url = \"sqlite:///tmp/kontor-keys.db\"\n\
             [cells.uk]\nkeys_url = \"sqlite:///tmp/kontor-keys.db\"\n",
            "keys_url: every key store needs its own database",
        );
        refused(
            "[cells.de-2]\nstate = \"paused\"\n",
            "cells.de-2.state \"paused\" is not a cell state",
        );
        refused(
            "[cells.de-2]\nregion = \"uk\"\n",
            "cells.de-2.region is \"uk\", but the cell's name says region de",
        );
        refused(
            "[cells.de-2]\ntenants = [\"ten_nope\"]\n",
            "cells.de-2.tenants",
        );
        refused(
            "[cells.de-2]\ntenants = [\"ten_0000000000000000000000000p\", \"ten_0000000000000000000000000p\"]\n",
            "names ten_0000000000000000000000000p twice",
        );
        refused("[cells.de]\n[cells.de-1]\n", "both name cell de-1");
        for name in ["de-0", "de-x", "de-99999999999", "de-01", "DE-2"] {
            refused(&format!("[cells.{name}]\n"), &format!("cells.{name}"));
        }
    }
}
