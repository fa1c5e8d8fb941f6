//! Fresh databases per test: a temporary folder of SQLite files, or new PostgreSQL databases
//! created on the test server and dropped when the test ends.

use std::sync::Arc;
use std::time::Duration;

use kontor_domain::{CellId, Region};
use kontor_store::{Cells, ControlStore, KeyStores, Schema};
use kontor_store_sql::{PoolSettings, SqlCell, SqlControl, SqlKeyStore};
use rand::Rng;
use sqlx::{AnyPool, Connection};

use crate::skip::{loud_skip, postgres_admin_url, require_postgres};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One fresh, empty database. PostgreSQL ones are dropped on `Drop`.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    drop_on_exit: Option<(String, String)>,
}

impl TestDatabase {
    pub fn sqlite(dir: &std::path::Path, name: &str) -> Self {
        Self {
            url: format!("sqlite://{}/{name}.db", dir.display()),
            drop_on_exit: None,
        }
    }

    /// A new database on the test server, or `None` (after a loud banner) when there is no
    /// server and it is not required.
    pub async fn postgres(test: &str) -> Option<Self> {
        let admin = postgres_admin_url();
        let reachable =
            tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin)).await;
        let mut conn = match reachable {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => return unreachable(test, &admin, &err.to_string()),
            Err(_) => return unreachable(test, &admin, "connection timed out"),
        };
        let name = format!("kontor_test_{:016x}", rand::rng().random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = replace_database(&admin, &name);
        Some(Self {
            url,
            drop_on_exit: Some((admin, name)),
        })
    }
}

fn unreachable(test: &str, admin: &str, why: &str) -> Option<TestDatabase> {
    let msg = format!("PostgreSQL not reachable at {admin} ({why}); set KONTOR_TEST_POSTGRES_URL");
    if require_postgres() {
        panic!("{msg} — KONTOR_REQUIRE_POSTGRES=1 makes this a failure");
    }
    loud_skip(test, &msg);
    None
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_on_exit.take() else {
            return;
        };
        // Drop runs inside the test's runtime; a separate thread with its own runtime can block.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A control database and cells, each with its key store, fresh and migrated, on one backend.
/// Cells are named as configuration names them: a region (`de`) is its cell 1, `de-2` its
/// cell 2.
pub struct TestStores {
    pub backend: Backend,
    pub control: Arc<SqlControl>,
    pub cells: Cells,
    pub sql_cells: Vec<Arc<SqlCell>>,
    pub key_stores: KeyStores,
    pub sql_key_stores: Vec<Arc<SqlKeyStore>>,
    /// The cells' names, in the order of `sql_cells` and `sql_key_stores`.
    pub cell_names: Vec<CellId>,
    pub urls: Vec<(String, String)>,
    _databases: Vec<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStores")
            .field("backend", &self.backend)
            .finish()
    }
}

/// Parses test cell names: `de` (cell 1) or `de-2`.
pub fn cell_ids(names: &[&str]) -> Vec<CellId> {
    names
        .iter()
        .map(|name| match Region::parse(name) {
            Ok(region) => CellId::first(region),
            Err(_) => CellId::parse(name).expect("test cell name"),
        })
        .collect()
}

impl TestStores {
    pub async fn sqlite(regions_: &[&str]) -> Self {
        Self::sqlite_with(regions_, &PoolSettings::default()).await
    }

    pub async fn sqlite_with(regions_: &[&str], settings: &PoolSettings) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let control = TestDatabase::sqlite(dir.path(), "control");
        let cells = cell_ids(regions_)
            .into_iter()
            .map(|id| {
                let name = id.segment();
                let db = TestDatabase::sqlite(dir.path(), &format!("cell-{name}"));
                let keys = TestDatabase::sqlite(&dir.path().join("keys"), &name);
                (id, db, keys)
            })
            .collect();
        Self::build(Backend::Sqlite, control, cells, Some(dir), settings).await
    }

    /// `None` when PostgreSQL is unavailable and not required (a banner says so).
    pub async fn postgres(test: &str, regions_: &[&str]) -> Option<Self> {
        Self::postgres_with(test, regions_, &PoolSettings::default()).await
    }

    pub async fn postgres_with(
        test: &str,
        regions_: &[&str],
        settings: &PoolSettings,
    ) -> Option<Self> {
        let control = TestDatabase::postgres(test).await?;
        let mut cells = Vec::new();
        for id in cell_ids(regions_) {
            let cell = TestDatabase::postgres(test).await?;
            let keys = TestDatabase::postgres(test).await?;
            cells.push((id, cell, keys));
        }
        Some(Self::build(Backend::Postgres, control, cells, None, settings).await)
    }

    pub async fn new(backend: Backend, test: &str, regions_: &[&str]) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite(regions_).await),
            Backend::Postgres => Self::postgres(test, regions_).await,
        }
    }

    async fn build(
        backend: Backend,
        control_db: TestDatabase,
        cell_dbs: Vec<(CellId, TestDatabase, TestDatabase)>,
        dir: Option<tempfile::TempDir>,
        settings: &PoolSettings,
    ) -> Self {
        let control = Arc::new(SqlControl::open(&control_db.url, settings).expect("open control"));
        control.migrate().await.expect("migrate control");
        let mut cells = Cells::new();
        let mut sql_cells = Vec::new();
        let mut urls = vec![("control".to_owned(), control_db.url.clone())];
        let mut databases = vec![control_db];
        let mut key_stores = KeyStores::new();
        let mut sql_key_stores = Vec::new();
        let mut cell_names = Vec::new();
        for (id, db, keys_db) in cell_dbs {
            let region = id.region().clone();
            let cell =
                Arc::new(SqlCell::open(region.clone(), &db.url, settings).expect("open cell"));
            cell.migrate().await.expect("migrate cell");
            cells
                .insert_as(id.clone(), cell.clone())
                .expect("cell of its region");
            sql_cells.push(cell);
            let keys = Arc::new(
                SqlKeyStore::open(region.clone(), &keys_db.url, settings).expect("open key store"),
            );
            keys.migrate().await.expect("migrate key store");
            key_stores
                .insert_as(id.clone(), keys.clone())
                .expect("key store of its region");
            sql_key_stores.push(keys);
            urls.push((id.segment(), db.url.clone()));
            urls.push((format!("keys:{}", id.segment()), keys_db.url.clone()));
            cell_names.push(id);
            databases.push(db);
            databases.push(keys_db);
        }
        Self {
            backend,
            control,
            cells,
            sql_cells,
            key_stores,
            sql_key_stores,
            cell_names,
            urls,
            _databases: databases,
            _dir: dir,
        }
    }

    pub fn control(&self) -> Arc<dyn ControlStore> {
        self.control.clone()
    }

    fn position(&self, name: &str) -> usize {
        let id = cell_ids(&[name]).remove(0);
        self.cell_names
            .iter()
            .position(|c| c == &id)
            .expect("no such test cell")
    }

    /// A cell by its name: `de` (or `de-1`) for cell 1, `de-2` for cell 2.
    pub fn cell(&self, name: &str) -> &Arc<SqlCell> {
        &self.sql_cells[self.position(name)]
    }

    /// The URL of a database by its name in [`TestStores::urls`] (`uk`, `control`, …).
    pub fn url(&self, name: &str) -> &str {
        self.urls
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url.as_str())
            .expect("no such test database")
    }

    /// A cell's key store, by the cell's name.
    pub fn key_store(&self, name: &str) -> &Arc<SqlKeyStore> {
        &self.sql_key_stores[self.position(name)]
    }

    /// A raw pool on the control database, for tests that look behind the store's back.
    pub fn raw_control_pool(&self) -> AnyPool {
        self.control.database().pool().clone()
    }

    /// A raw pool on a cell, for tests that look behind the store's back.
    pub fn raw_cell_pool(&self, region: &str) -> AnyPool {
        self.cell(region).database().pool().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn swaps_the_database_name() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
