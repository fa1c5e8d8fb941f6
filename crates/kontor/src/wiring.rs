//! Turning configuration into running parts: the stores, the token service, the API state.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kontor_api::auth::{SigningKey, TokenService};
use kontor_api::{ApiSettings, AppState};
use kontor_banks::BankProfile;
use kontor_crypto::Keyring;
use kontor_domain::bank::BankId;
use kontor_domain::{CellId, Clock};
use kontor_service::{BankDirectory, BankEntry, Hub, HubParts, HubSettings, KeyStatus};
use kontor_store::{Cells, KeyStores, RetryPolicy, Schema};
use kontor_store_sql::{PoolSettings, SqlCell, SqlControl, SqlKeyStore};
use kontor_worker::WorkerSettings;
use rand::RngCore;

use crate::config::{Config, SigningKeyConfig};
use crate::database_errors::DatabaseSite;

/// The control database, every cell and every key store, opened (lazily: nothing connects yet).
#[derive(Debug)]
pub struct Stores {
    pub control: Arc<SqlControl>,
    pub cells: Cells,
    pub cell_list: Vec<(CellId, Arc<SqlCell>)>,
    pub key_stores: KeyStores,
    pub key_list: Vec<(CellId, Arc<SqlKeyStore>)>,
    /// Each database described for error messages, by its `/readyz` name.
    pub sites: Vec<DatabaseSite>,
}

pub(crate) fn pool_settings(config: &Config) -> PoolSettings {
    let db = &config.database;
    PoolSettings {
        max_connections: db.max_connections,
        acquire_timeout: Duration::from_millis(db.acquire_timeout_ms),
        sqlite_busy_timeout: Duration::from_millis(db.sqlite_busy_timeout_ms),
        retry: RetryPolicy {
            max_attempts: db.retry_max_attempts,
            ..RetryPolicy::default()
        },
        max_lifetime: (db.max_lifetime_seconds > 0)
            .then(|| Duration::from_secs(db.max_lifetime_seconds)),
        ping_after_idle: Duration::from_millis(db.ping_after_idle_ms),
    }
}

impl Stores {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let databases = config.databases()?;
        let settings = pool_settings(config);
        let control = SqlControl::open(databases.control.expose(), &settings)
            .with_context(|| format!("opening the control database {}", databases.control))?;
        let mut sites = vec![DatabaseSite::new(
            "control".to_owned(),
            "database.control_url".to_owned(),
            &databases.control,
        )];
        let mut cells = Cells::new();
        let mut cell_list = Vec::new();
        for (id, url) in &databases.cells {
            sites.push(DatabaseSite::new(
                format!("cell:{}", id.segment()),
                format!("cells.{}.url", databases.config_key(id)),
                url,
            ));
            let cell = SqlCell::open(id.region().clone(), url.expose(), &settings)
                .with_context(|| format!("opening the cell {id} {url}"))?;
            let cell = Arc::new(cell);
            cells.insert_as(id.clone(), cell.clone())?;
            cell_list.push((id.clone(), cell));
        }
        let mut key_stores = KeyStores::new();
        let mut key_list = Vec::new();
        for (id, url) in &databases.keys {
            sites.push(DatabaseSite::new(
                format!("keys:{}", id.segment()),
                format!("cells.{}.keys_url", databases.config_key(id)),
                url,
            ));
            let store = SqlKeyStore::open(id.region().clone(), url.expose(), &settings)
                .with_context(|| format!("opening the key store of cell {id} {url}"))?;
            let store = Arc::new(store);
            key_stores.insert_as(id.clone(), store.clone())?;
            key_list.push((id.clone(), store));
        }
        Ok(Self {
            control: Arc::new(control),
            cells,
            cell_list,
            key_stores,
            key_list,
            sites,
        })
    }

    /// The description of the database `/readyz` calls `name`.
    pub fn site(&self, name: &str) -> DatabaseSite {
        self.sites
            .iter()
            .find(|site| site.name == name)
            .cloned()
            .unwrap_or_else(|| DatabaseSite {
                name: name.to_owned(),
                key: "its URL".to_owned(),
                location: "?".to_owned(),
            })
    }

    /// Every database, named as `/readyz` names them.
    pub fn all(&self) -> Vec<(String, &dyn Schema)> {
        let mut all: Vec<(String, &dyn Schema)> =
            vec![("control".to_owned(), self.control.as_ref())];
        for (id, cell) in &self.cell_list {
            all.push((format!("cell:{}", id.segment()), cell.as_ref()));
        }
        for (id, store) in &self.key_list {
            all.push((format!("keys:{}", id.segment()), store.as_ref()));
        }
        all
    }

    /// Applies pending migrations everywhere; returns what was applied where.
    pub async fn migrate(&self) -> anyhow::Result<Vec<(String, Vec<i64>)>> {
        let mut applied = Vec::new();
        for (name, db) in self.all() {
            let versions = db.migrate().await.map_err(|err| {
                self.site(&name)
                    .explain(&err)
                    .context(format!("migrating the {name} database"))
            })?;
            if !versions.is_empty() {
                tracing::info!(database = %name, ?versions, "migrations applied");
            }
            applied.push((name, versions));
        }
        self.settle_erasures().await?;
        Ok(applied)
    }

    /// Run with the migrations: moves the data keys an earlier release kept in the cells into
    /// the key stores, then replays the erasure ledger, which finishes an erasure a crash
    /// interrupted and erases again whatever a restored backup brought back. Both are idempotent
    /// and cost a couple of reads per ledger entry when there is nothing to do.
    pub async fn settle_erasures(&self) -> anyhow::Result<kontor_service::ReplayReport> {
        kontor_service::move_keys_out_of_cells(&self.cells, &self.key_stores)
            .await
            .context("moving data keys from the cells into the key stores")?;
        kontor_service::replay_erasures(self.control.as_ref(), &self.cells, &self.key_stores)
            .await
            .context("replaying the erasure ledger")
    }

    /// For commands that only touch the control database: migrates it if so configured.
    pub async fn open_for_control(config: &Config) -> anyhow::Result<Self> {
        let stores = Self::open(config)?;
        if config.database.migrate_on_start
            && let Err(err) = stores.control.migrate().await
        {
            let explained = stores.site("control").explain(&err);
            return Err(explained.context("migrating the control database"));
        }
        Ok(stores)
    }

    pub async fn close(&self) {
        self.control.database().close().await;
        for (_, cell) in &self.cell_list {
            cell.database().close().await;
        }
        for (_, store) in &self.key_list {
            store.database().close().await;
        }
    }
}

pub fn signing_key(config: &SigningKeyConfig) -> anyhow::Result<SigningKey> {
    let bytes = STANDARD
        .decode(config.secret.expose().trim())
        .context("the secret is not valid base64")?;
    SigningKey::new(&config.id, &bytes).map_err(anyhow::Error::from)
}

/// The configured signing keys, or else one generated on first use and kept in the data folder.
pub fn signing_keys(config: &Config) -> anyhow::Result<Vec<SigningKey>> {
    if !config.auth.signing_keys.is_empty() {
        return config.auth.signing_keys.iter().map(signing_key).collect();
    }
    let secret = local_key(config, "token-signing.key", "auth.signing_keys")?;
    Ok(vec![SigningKey::new("local", &secret)?])
}

/// A configured key-encryption key: its id and 32 bytes.
pub fn data_key(config: &SigningKeyConfig) -> anyhow::Result<(String, Vec<u8>)> {
    let bytes = STANDARD
        .decode(config.secret.expose().trim())
        .context("the secret is not valid base64")?;
    if bytes.len() != 32 {
        bail!("a key-encryption key must be exactly 32 bytes");
    }
    Ok((config.id.clone(), bytes))
}

/// The keyring that wraps users' data keys: configured keys, or a local one kept in the data
/// folder.
pub fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    let keys = if config.secrets.keys.is_empty() {
        vec![(
            "local".to_owned(),
            local_key(config, "data-encryption.key", "secrets.keys")?,
        )]
    } else {
        config
            .secrets
            .keys
            .iter()
            .map(data_key)
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    Keyring::new(&keys).map_err(|e| anyhow::anyhow!("secrets.keys: {e}"))
}

/// A 32-byte key kept in `<data_dir>/secrets/<file>`, created on first use. For one node only:
/// several nodes must share configured keys (`setting` names where), so with a PostgreSQL
/// database this refuses.
fn local_key(config: &Config, file: &str, setting: &str) -> anyhow::Result<Vec<u8>> {
    crate::config::security::require_shared_keys(config)?;
    let dir = config.data_dir.join("secrets");
    let path = dir.join(file);
    let secret = match read_local_key(&path)? {
        Some(secret) => secret,
        None => {
            create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut bytes = vec![0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            if publish_private(&path, STANDARD.encode(&bytes).as_bytes())? {
                tracing::warn!(
                    path = %path.display(),
                    "generated a key; configure {setting} when running several nodes"
                );
                bytes
            } else {
                // Another process starting at the same time generated it first: use that one.
                read_local_key(&path)?
                    .with_context(|| format!("{} vanished while reading it", path.display()))?
            }
        }
    };
    if secret.len() != 32 {
        bail!("{} must hold exactly 32 bytes", path.display());
    }
    Ok(secret)
}

/// The bank directory, each bank with the connector for its standard, and the connectors of
/// tenants with their own credentials there.
pub fn directory(config: &Config) -> anyhow::Result<BankDirectory> {
    let settings = config.bank_http.settings();
    let http = kontor_banks::build_client(&settings).context("building the bank HTTP client")?;
    let reload = Duration::from_secs(config.bank_http.certificate_reload_seconds.max(1));
    let mut directory = BankDirectory::new();
    for (i, bank) in config.banks.iter().enumerate() {
        let profile = BankProfile {
            id: BankId::parse(&bank.id)?,
            name: bank.name.clone(),
            country: bank.country.clone(),
            standard: bank.standard,
            base_url: url::Url::parse(&bank.base_url)?,
            client_id: bank.client_id.clone(),
            client_secret: bank.client_secret.as_ref().map(|s| s.expose().to_owned()),
            decoupled_sca: bank.decoupled_sca,
        };
        let key = format!("banks[{i}]");
        let identity = crate::certificates::identity(&key, bank, None)?;
        let client = if identity.is_some() || bank.ca_bundle.is_some() {
            let tls = crate::certificates::bank_tls(&key, bank, identity.clone())?;
            kontor_banks::build_client_with_tls(&settings, &tls)
                .with_context(|| format!("{key}: the bank's HTTP client"))?
        } else {
            http.clone()
        };
        let signing = bank
            .signing
            .as_ref()
            .map(crate::signing::load)
            .transpose()
            .with_context(|| format!("banks[{i}].signing"))?;
        let connector = kontor_banks::connector_with(
            profile.clone(),
            client.clone(),
            settings.clone(),
            signing.as_ref(),
            bank.token_auth,
        );
        if let Some(signing) = &signing {
            let (label, info) = crate::signing::watch_expiry(&bank.id, None, signing)
                .with_context(|| format!("banks[{i}].signing"))?;
            directory.add_seal(label, info);
        }
        let mut own = crate::tpp::tenant_connectors(&key, bank, &profile, &client, &settings)?;
        for (label, info) in own.iter_mut().filter_map(|o| o.seal.take()) {
            directory.add_seal(label, info);
        }
        for identity in identity
            .iter()
            .chain(own.iter().filter_map(|o| o.identity.as_ref()))
        {
            identity.watch(reload);
            directory.add_certificate(identity.clone());
        }
        directory.insert(
            BankEntry {
                profile: profile.clone(),
                logo_url: bank.logo_url.clone(),
            },
            connector,
        );
        for own in own {
            directory.insert_for_tenant(&profile.id, own.tenant, own.connector);
        }
    }
    Ok(directory)
}

/// The services' context from configuration, reading the system's clock.
pub fn hub(config: &Config, stores: &Stores) -> anyhow::Result<Hub> {
    hub_with_clock(config, stores, Clock::system())
}

/// The services' context from configuration, reading `clock` (a test's, to move time): its parts
/// read from `config`, put together the one way every process and the API tests do
/// ([`Hub::assemble`]).
pub fn hub_with_clock(config: &Config, stores: &Stores, clock: Clock) -> anyhow::Result<Hub> {
    Ok(Hub::assemble(hub_parts(config, stores, clock)?))
}

/// What the hub is made of, as configured.
pub fn hub_parts(config: &Config, stores: &Stores, clock: Clock) -> anyhow::Result<HubParts> {
    let mut settings = HubSettings::new(config.public_url()?);
    settings.state_ttl_seconds = config.link.state_ttl_seconds;
    settings.link_ttl_seconds = config.link.link_ttl_seconds;
    settings.frequency_per_day = config.link.frequency_per_day;
    settings.expiry_notice_days = config.link.expiry_notice_days;
    settings.allow_http_redirects = config.link.allow_http_redirects;
    settings.overlap_days = config.link.overlap_days;
    settings.lease_seconds = config.worker.lease_seconds;
    settings.webhooks = config.webhooks.settings();
    settings.retention = config.retention.settings();
    settings.placement.cells = config.databases()?.policies;
    settings.routes = kontor_service::RouteSettings {
        refresh: Duration::from_millis(config.database.routes_refresh_ms.max(10)),
        write_wait: Duration::from_millis(config.database.moving_write_wait_ms),
    };
    let p = &config.payments;
    settings.payments = kontor_service::PaymentSettings {
        stale_seconds: p.stale_seconds,
        authorisation_ttl_seconds: p.authorisation_ttl_seconds,
        poll_base_seconds: p.poll_base_seconds,
        poll_cap_seconds: p.poll_cap_seconds,
        unknown_after_seconds: p.unknown_after_seconds,
    };
    Ok(HubParts {
        cells: stores.cells.clone(),
        control: stores.control.clone(),
        key_stores: stores.key_stores.clone(),
        keyring: keyring(config)?,
        data_key_cache: Duration::from_millis(config.database.data_key_cache_ms),
        directory: directory(config)?,
        settings,
        clock,
    })
}

/// Seals the key canary (or seals it again after a rotation), saying how this node's keys
/// relate to the data. `Err` only when the control database could not be asked.
pub async fn seal_key_canary(hub: &Hub) -> anyhow::Result<KeyStatus> {
    let status = hub
        .seal_key_canary()
        .await
        .map_err(|e| anyhow::anyhow!("checking the key canary: {e}"))?;
    if status.is_ok() {
        tracing::info!(
            key_id = status.key_id(),
            "key-encryption keys open the key canary"
        );
    } else {
        tracing::error!(
            status = status.code(),
            key_id = status.key_id(),
            "{}",
            status.explain()
        );
    }
    Ok(status)
}

pub fn worker_settings(config: &Config) -> WorkerSettings {
    WorkerSettings {
        tick: Duration::from_millis(config.worker.tick_ms.max(100)),
        concurrency: config.worker.concurrency.max(1),
        gauges_every: Duration::from_secs(config.worker.gauges_interval_seconds.max(1)),
        ..WorkerSettings::default()
    }
}

/// Creates a folder and its missing parents, readable by the owner only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Reads a key file written by [`publish_private`], if there is one.
fn read_local_key(path: &std::path::Path) -> anyhow::Result<Option<Vec<u8>>> {
    let raw = match std::fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let secret = STANDARD
        .decode(raw.trim())
        .with_context(|| format!("{} is not valid base64", path.display()))?;
    Ok(Some(secret))
}

/// Creates `path` with `contents`, readable by its owner only, unless it exists already: the
/// contents go to a temporary file first, which is then hard-linked to `path` (a link never
/// replaces an existing file). So a reader never sees a half-written file, and of processes
/// starting at once exactly one creates it. Returns whether this call created it.
fn publish_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<bool> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::rng().next_u32()
    ));
    write_private(&temporary, contents)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err).with_context(|| format!("creating {}", path.display())),
    }
}

/// Writes a new file only its owner can read.
fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

pub fn app_state(config: &Config, hub: Hub) -> anyhow::Result<AppState> {
    let keys = signing_keys(config)?;
    let tokens = TokenService::new(keys, config.auth.token_ttl_seconds)
        .context("auth: no signing key or a non-positive token TTL")?;
    let settings = ApiSettings {
        body_limit_bytes: config.server.body_limit_bytes,
        client_cache_ttl: Duration::from_secs(config.auth.client_cache_seconds),
        readiness_timeout: Duration::from_millis(config.server.readiness_timeout_ms),
        trust_forwarded_for: config.server.trust_forwarded_for,
        rate_limits: config.rate_limits.settings(),
        bank_deadline: Duration::from_millis(config.server.bank_deadline_ms),
        trusted_proxies: crate::config::security::trusted_proxies(&config.server)?,
        client_certificate_header: crate::config::security::client_certificate_header(
            &config.server,
        )?,
    };
    Ok(AppState::new(hub, tokens, settings))
}
