//! `TestApp`: the real router, on fresh databases, serving HTTP on an ephemeral port, with helpers
//! to create tenants, get tokens and call the API the way a tenant would.

use std::net::SocketAddr;
use std::time::Duration;

use kontor_api::auth::{ClientSecret, SigningKey, TokenService};
use kontor_api::server::ServerSettings;
use kontor_api::{ApiSettings, AppState};
use kontor_crypto::Keyring;
use kontor_domain::tenant::{Scopes, TenantName};
use kontor_domain::time::Timestamp;
use kontor_domain::{ApiClientId, ManualClock, TenantId};
use kontor_service::{BankDirectory, Hub, HubParts, HubSettings};
use kontor_store::{NewApiClient, NewTenant, TenantStore};
use kontor_store_sql::PoolSettings;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::databases::{Backend, TestStores};

/// The key-encryption key of every test app (id [`TEST_KEK_ID`]): all the keys the test
/// deployment has, for tests that play an attacker holding them.
pub const TEST_KEK: [u8; 32] = [9; 32];
pub const TEST_KEK_ID: &str = "test";

/// The key test tokens are signed with; tests may forge tokens with it (e.g. expired ones).
pub const TEST_SIGNING_KEY: [u8; 32] = [7; 32];

pub struct TestApp {
    pub address: SocketAddr,
    pub stores: TestStores,
    pub http: reqwest::Client,
    pub tokens: TokenService,
    pub hub: Hub,
    /// The hub's clock: it runs with the system's, and a test moves it forward (past a lease,
    /// to a retry) instead of sleeping.
    pub clock: ManualClock,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A tenant created for a test, with its first client's credentials.
#[derive(Debug, Clone)]
pub struct TestTenant {
    pub tenant_id: TenantId,
    pub client_id: ApiClientId,
    pub client_secret: String,
}

#[derive(Debug)]
pub struct TestAppBuilder {
    backend: Backend,
    regions: Vec<String>,
    settings: ApiSettings,
    server: ServerSettings,
    pool: PoolSettings,
    directory: BankDirectory,
    tweak: fn(&mut HubSettings),
}

impl TestAppBuilder {
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// The cells, by name: a region (`de`) is its cell 1, `de-2` its cell 2.
    pub fn regions(mut self, regions: &[&str]) -> Self {
        self.regions = regions.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// `n` cells in each region given so far (`de`, `de-2`, …, `uk`, `uk-2`, …).
    pub fn cells_per_region(mut self, n: u16) -> Self {
        let regions: Vec<String> = std::mem::take(&mut self.regions);
        for region in regions {
            self.regions.push(region.clone());
            for number in 2..=n {
                self.regions.push(format!("{region}-{number}"));
            }
        }
        self
    }

    pub fn api_settings(mut self, settings: ApiSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The HTTP server's timeouts and connection limit.
    pub fn server_settings(mut self, server: ServerSettings) -> Self {
        self.server = server;
        self
    }

    pub fn pool_settings(mut self, pool: PoolSettings) -> Self {
        self.pool = pool;
        self
    }

    /// The banks the hub knows (see [`crate::sandbox_directory`]).
    pub fn directory(mut self, directory: BankDirectory) -> Self {
        self.directory = directory;
        self
    }

    /// Adjusts the hub's settings after the defaults for tests are applied.
    pub fn hub_settings(mut self, tweak: fn(&mut HubSettings)) -> Self {
        self.tweak = tweak;
        self
    }

    /// `None` only when the backend is PostgreSQL and no server is reachable (a banner says so).
    pub async fn try_spawn(self, test: &str) -> Option<TestApp> {
        let regions: Vec<&str> = self.regions.iter().map(String::as_str).collect();
        let stores = match self.backend {
            Backend::Sqlite => TestStores::sqlite_with(&regions, &self.pool).await,
            Backend::Postgres => TestStores::postgres_with(test, &regions, &self.pool).await?,
        };
        Some(
            TestApp::start(
                stores,
                self.settings,
                self.server,
                self.directory,
                self.tweak,
            )
            .await,
        )
    }

    /// Spawns on SQLite (always available).
    pub async fn spawn(self) -> TestApp {
        assert_eq!(
            self.backend,
            Backend::Sqlite,
            "use try_spawn for PostgreSQL"
        );
        self.try_spawn("sqlite").await.expect("sqlite test app")
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            backend: Backend::Sqlite,
            regions: vec!["de".to_owned(), "uk".to_owned()],
            // No client cache: revocation takes effect on the next request, deterministically.
            settings: ApiSettings {
                client_cache_ttl: Duration::ZERO,
                ..ApiSettings::default()
            },
            server: ServerSettings::default(),
            pool: PoolSettings::default(),
            directory: BankDirectory::new(),
            tweak: |_| {},
        }
    }

    /// The common case: SQLite, cells `de` and `uk`.
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub async fn serve(stores: TestStores, settings: ApiSettings) -> Self {
        Self::serve_with(stores, settings, BankDirectory::new(), |_| {}).await
    }

    pub async fn serve_with(
        stores: TestStores,
        settings: ApiSettings,
        directory: BankDirectory,
        tweak: fn(&mut HubSettings),
    ) -> Self {
        Self::start(
            stores,
            settings,
            ServerSettings::default(),
            directory,
            tweak,
        )
        .await
    }

    /// Serves through the same accept loop as `kontor serve` (timeouts, connection limit, peer
    /// addresses for the handlers).
    async fn start(
        stores: TestStores,
        settings: ApiSettings,
        server: ServerSettings,
        directory: BankDirectory,
        tweak: fn(&mut HubSettings),
    ) -> Self {
        crate::install_crypto_provider();
        let key = SigningKey::new("test", &TEST_SIGNING_KEY).expect("test key");
        let tokens = TokenService::new(vec![key], 900).expect("token service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("local addr");
        let public_url = url::Url::parse(&format!("http://{address}/")).expect("public url");
        let mut hub_settings = HubSettings::new(public_url);
        hub_settings.allow_http_redirects = true;
        tweak(&mut hub_settings);
        let keyring =
            Keyring::new(&[(TEST_KEK_ID.to_owned(), TEST_KEK.to_vec())]).expect("keyring");
        let clock = ManualClock::running();
        // Put together and served as `kontor serve` does (its wiring reads these parts from
        // configuration): `Hub::assemble`, `AppState::new`, the router, and the accept loop
        // with the state's drain switch.
        let hub = Hub::assemble(HubParts {
            cells: stores.cells.clone(),
            control: stores.control(),
            key_stores: stores.key_stores.clone(),
            keyring,
            // No key cache: an erasure test reads straight after the shred, on this node.
            data_key_cache: Duration::ZERO,
            directory,
            settings: hub_settings,
            clock: clock.clock(),
        });
        let state = AppState::new(hub.clone(), tokens.clone(), settings);
        let options = kontor_api::server::Options {
            draining: state.draining().clone(),
            tls: None,
        };
        let router = kontor_api::router(state);
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(kontor_api::server::serve_with(
            listener,
            router,
            server,
            options,
            async {
                let _ = rx.await;
            },
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Below the server's idle keep-alive (75 s): a connection the server is closing is
            // never picked for a request (a test may pause longer than that between two).
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            address,
            stores,
            http,
            tokens,
            hub,
            clock,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A tenant with one client holding `scopes` (all scopes when `None`).
    pub async fn tenant_with_scopes(&self, name: &str, scopes: Option<Scopes>) -> TestTenant {
        self.tenant_with_id(TenantId::generate(), name, scopes)
            .await
    }

    /// A tenant with an id chosen beforehand (to configure something for it before the app
    /// starts, such as its own bank credentials).
    pub async fn tenant_with_id(
        &self,
        id: TenantId,
        name: &str,
        scopes: Option<Scopes>,
    ) -> TestTenant {
        let now = Timestamp::now();
        let tenant = NewTenant {
            id,
            name: TenantName::parse(name).expect("tenant name"),
            created_at: now,
        };
        let secret = ClientSecret::generate();
        let client = NewApiClient {
            id: ApiClientId::generate(),
            tenant_id: tenant.id.clone(),
            secret_hash: secret.hash(),
            scopes: scopes.unwrap_or_else(Scopes::all),
            created_at: now,
        };
        self.stores
            .control
            .create_tenant(&tenant, &client)
            .await
            .expect("create tenant");
        TestTenant {
            tenant_id: tenant.id,
            client_id: client.id,
            client_secret: secret.reveal().to_owned(),
        }
    }

    pub async fn tenant(&self, name: &str) -> TestTenant {
        self.tenant_with_scopes(name, None).await
    }

    /// `POST /v1/oauth/token` with HTTP Basic; the raw response.
    pub async fn request_token(
        &self,
        tenant: &TestTenant,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url("/v1/oauth/token"))
            .basic_auth(tenant.client_id.as_str(), Some(&tenant.client_secret))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// A bearer token with all of the client's scopes.
    pub async fn token(&self, tenant: &TestTenant) -> String {
        let response = self
            .request_token(tenant, &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), 200, "token request failed");
        let body: Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Creates a user and returns its JSON, asserting 201.
    pub async fn create_user(&self, token: &str, external_id: &str, region: &str) -> Value {
        let body = serde_json::json!({ "external_id": external_id, "region": region });
        let response = self.post_json("/v1/users", token, &body).await;
        assert_eq!(response.status(), 201, "creating user {external_id}");
        response.json().await.expect("user json")
    }

    /// Rows in the `users` table of every cell, read behind the API's back.
    pub async fn user_rows(&self) -> i64 {
        let mut total = 0;
        for cell in &self.stores.sql_cells {
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(cell.database().pool())
                .await
                .expect("count users");
            total += count;
        }
        total
    }

    pub async fn stop(mut self) {
        self.shutdown_now().await;
    }

    async fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Reads an error envelope, asserting its shape, and returns its code.
pub async fn error_code(response: reqwest::Response) -> String {
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("error body is JSON");
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        error["request_id"].as_str().map(str::to_owned),
        header_id,
        "{body}"
    );
    error["code"].as_str().expect("error.code").to_owned()
}
