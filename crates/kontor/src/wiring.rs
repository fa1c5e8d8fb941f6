//! Turning configuration into running parts: the stores, the token service, the API state.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kontor_api::auth::{SigningKey, TokenService};
use kontor_api::{ApiSettings, AppState};
use kontor_store::{Cells, RetryPolicy, Schema};
use kontor_store_sql::{PoolSettings, SqlCell, SqlControl};
use rand::RngCore;

use crate::config::{Config, SigningKeyConfig};

/// The control database and every cell, opened (lazily: nothing connects yet).
#[derive(Debug)]
pub struct Stores {
    pub control: Arc<SqlControl>,
    pub cells: Cells,
    pub cell_list: Vec<Arc<SqlCell>>,
}

fn pool_settings(config: &Config) -> PoolSettings {
    let db = &config.database;
    PoolSettings {
        max_connections: db.max_connections,
        acquire_timeout: Duration::from_millis(db.acquire_timeout_ms),
        sqlite_busy_timeout: Duration::from_millis(db.sqlite_busy_timeout_ms),
        retry: RetryPolicy {
            max_attempts: db.retry_max_attempts,
            ..RetryPolicy::default()
        },
    }
}

impl Stores {
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let databases = config.databases()?;
        let settings = pool_settings(config);
        let control = SqlControl::open(databases.control.expose(), &settings)
            .with_context(|| format!("opening the control database {}", databases.control))?;
        let mut cells = Cells::new();
        let mut cell_list = Vec::new();
        for (region, url) in &databases.cells {
            let cell = SqlCell::open(region.clone(), url.expose(), &settings)
                .with_context(|| format!("opening the {region} cell {url}"))?;
            let cell = Arc::new(cell);
            cells.insert(cell.clone());
            cell_list.push(cell);
        }
        Ok(Self {
            control: Arc::new(control),
            cells,
            cell_list,
        })
    }

    /// Every database, named as `/readyz` names them.
    pub fn all(&self) -> Vec<(String, &dyn Schema)> {
        let mut all: Vec<(String, &dyn Schema)> =
            vec![("control".to_owned(), self.control.as_ref())];
        for cell in &self.cell_list {
            let region = kontor_store::CellStore::region(cell.as_ref());
            all.push((format!("cell:{region}"), cell.as_ref()));
        }
        all
    }

    /// Applies pending migrations everywhere; returns what was applied where.
    pub async fn migrate(&self) -> anyhow::Result<Vec<(String, Vec<i64>)>> {
        let mut applied = Vec::new();
        for (name, db) in self.all() {
            let versions = db
                .migrate()
                .await
                .with_context(|| format!("migrating the {name} database"))?;
            if !versions.is_empty() {
                tracing::info!(database = %name, ?versions, "migrations applied");
            }
            applied.push((name, versions));
        }
        Ok(applied)
    }

    /// For commands that only touch the control database: migrates it if so configured.
    pub async fn open_for_control(config: &Config) -> anyhow::Result<Self> {
        let stores = Self::open(config)?;
        if config.database.migrate_on_start {
            stores
                .control
                .migrate()
                .await
                .context("migrating the control database")?;
        }
        Ok(stores)
    }

    pub async fn close(&self) {
        self.control.database().close().await;
        for cell in &self.cell_list {
            cell.database().close().await;
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
    let dir = config.data_dir.join("secrets");
    let path = dir.join("token-signing.key");
    let secret = if path.exists() {
        let raw = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        STANDARD
            .decode(raw.trim())
            .with_context(|| format!("{} is not valid base64", path.display()))?
    } else {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut bytes = vec![0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        write_private(&path, STANDARD.encode(&bytes).as_bytes())?;
        tracing::warn!(
            path = %path.display(),
            "generated a token signing key; configure auth.signing_keys when running several nodes"
        );
        bytes
    };
    if secret.len() < 32 {
        bail!("{} holds fewer than 32 bytes", path.display());
    }
    Ok(vec![SigningKey::new("local", &secret)?])
}

/// Writes a file only its owner can read.
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

pub fn app_state(config: &Config, stores: &Stores) -> anyhow::Result<AppState> {
    let keys = signing_keys(config)?;
    let tokens = TokenService::new(keys, config.auth.token_ttl_seconds)
        .context("auth: no signing key or a non-positive token TTL")?;
    let settings = ApiSettings {
        body_limit_bytes: config.server.body_limit_bytes,
        client_cache_ttl: Duration::from_secs(config.auth.client_cache_seconds),
        readiness_timeout: Duration::from_millis(config.server.readiness_timeout_ms),
    };
    Ok(AppState::new(
        stores.control.clone(),
        stores.cells.clone(),
        tokens,
        settings,
    ))
}
