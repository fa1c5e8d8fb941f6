//! Fresh PostgreSQL databases for one run, created under random names and dropped at its end —
//! also when the run fails, panics or is interrupted (the guard's `Drop`).

use std::fmt;

use anyhow::{Context, bail};
use rand::Rng;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use url::Url;

/// The databases of one run. Drop them with [`TempDatabases::drop_all`]; if that never happens,
/// `Drop` does it on a helper thread.
pub struct TempDatabases {
    admin: Url,
    /// (role, database name), in creation order.
    created: Vec<(String, String)>,
    server_version: String,
}

impl fmt::Debug for TempDatabases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempDatabases")
            .field("server", &redacted(&self.admin))
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for messages.
pub fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("********"));
    }
    shown.to_string()
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl TempDatabases {
    /// Creates one database per role (e.g. `control`, `uk`, `de`), named `kontor_bench_<run>_<role>`.
    pub async fn create(admin_url: &str, roles: &[&str]) -> anyhow::Result<Self> {
        let admin = Url::parse(admin_url).context("--postgres is not a valid URL")?;
        if !matches!(admin.scheme(), "postgres" | "postgresql") {
            bail!("--postgres must be a postgres:// URL");
        }
        let mut conn = PgConnection::connect(admin.as_str())
            .await
            .with_context(|| format!("connecting to {}", redacted(&admin)))?;
        let server_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .context("asking the PostgreSQL version")?;
        let mut databases = Self {
            admin,
            created: Vec::new(),
            server_version,
        };
        let run = random_suffix();
        for role in roles {
            let name = format!("kontor_bench_{run}_{role}");
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .with_context(|| format!("creating the database {name}"))?;
            databases.created.push(((*role).to_owned(), name));
        }
        let _ = conn.close().await;
        Ok(databases)
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The URL of the database created for `role`.
    pub fn url(&self, role: &str) -> anyhow::Result<String> {
        let (_, name) = self
            .created
            .iter()
            .find(|(r, _)| r == role)
            .with_context(|| format!("no database was created for {role}"))?;
        let mut url = self.admin.clone();
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }

    /// Drops every database of the run, disconnecting whoever is still connected.
    pub async fn drop_all(mut self) -> anyhow::Result<()> {
        let created = std::mem::take(&mut self.created);
        drop_databases(&self.admin, &created).await
    }
}

async fn drop_databases(admin: &Url, created: &[(String, String)]) -> anyhow::Result<()> {
    if created.is_empty() {
        return Ok(());
    }
    let mut conn = PgConnection::connect(admin.as_str())
        .await
        .with_context(|| format!("connecting to {} to drop databases", redacted(admin)))?;
    let mut failed = Vec::new();
    for (_, name) in created {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        if let Err(err) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
            failed.push(format!("{name}: {err}"));
        }
    }
    let _ = conn.close().await;
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("could not drop {}", failed.join("; "))
    }
}

impl Drop for TempDatabases {
    fn drop(&mut self) {
        let created = std::mem::take(&mut self.created);
        if created.is_empty() {
            return;
        }
        // `Drop` cannot await, and may run inside the async runtime: drop the databases from a
        // thread with its own small runtime and wait for it.
        let admin = self.admin.clone();
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime to drop the databases")?;
            runtime.block_on(drop_databases(&admin, &created))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("kontor-bench: {err:#}"),
            Err(_) => eprintln!("kontor-bench: dropping the databases panicked"),
        }
    }
}
