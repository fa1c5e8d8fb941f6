//! Shared steps of the flow tests: a hub wired to an in-process sandbox bank, a tenant with a
//! token, and linking a sandbox user through the real pages, as a person would.

use std::time::Duration;

use kontor_api::ApiSettings;
use kontor_banks::{ConsentSession, HttpSettings};
use kontor_domain::{ConnectionId, TenantId};
use kontor_sandbox_bank::{RunningSandbox, SandboxBank};
use kontor_test_support::browser::{Browser, Landing, Page};
use kontor_test_support::{TestApp, sandbox_directory};
use serde_json::{Value, json};
use url::Url;

pub const REDIRECT: &str = "https://tenant.example/linked";

pub struct World {
    pub app: TestApp,
    pub sandbox: RunningSandbox,
    pub token: String,
    pub tenant_id: TenantId,
}

/// Connector settings for tests: quick retries, a short timeout for the latency fault.
pub fn http_settings() -> HttpSettings {
    HttpSettings {
        request_timeout: Duration::from_secs(3),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(2),
        ..HttpSettings::default()
    }
}

pub async fn world() -> World {
    world_with(http_settings(), test_api_settings(), |_| {}).await
}

/// The API settings of [`world`]: no client cache, so that revocation is deterministic.
pub fn test_api_settings() -> ApiSettings {
    ApiSettings {
        client_cache_ttl: Duration::ZERO,
        ..ApiSettings::default()
    }
}

/// A world with other connector, API or hub settings.
pub async fn world_with(
    http: HttpSettings,
    api: ApiSettings,
    hub: fn(&mut kontor_service::HubSettings),
) -> World {
    let sandbox = SandboxBank::builder().seed(11).start_local().await.unwrap();
    let directory = sandbox_directory(&sandbox, &http);
    let app = TestApp::builder()
        .directory(directory)
        .api_settings(api)
        .hub_settings(hub)
        .spawn()
        .await;
    let tenant = app.tenant("Acme Budget").await;
    let token = app.token(&tenant).await;
    World {
        app,
        sandbox,
        token,
        tenant_id: tenant.tenant_id,
    }
}

/// A world on `backend`; `None` when PostgreSQL is skipped.
pub async fn world_on(backend: kontor_test_support::Backend, test: &str) -> Option<World> {
    world_on_from(backend, test, None).await
}

/// The sandbox's start for a story that needs card payments pending at link time which book
/// within four days: 20:00 UTC on the last Friday before now. What is pending depends on the
/// weekday and the hour (the sandbox's cards are authorised 07:30–21:30 and book at 05:00 one to
/// three days later, on a business day), so a bank started "now" had nothing pending at the UK
/// bank on a Monday between 06:00 and 07:30; on a Friday evening that day's payments and
/// Thursday's later ones are pending, and all of them book on Monday.
pub fn friday_evening() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    let back = (i64::from(now.weekday().number_days_from_monday()) + 7 - 4) % 7;
    let day = now.date() - time::Duration::days(back);
    let evening = day.with_hms(20, 0, 0).unwrap().assume_utc();
    if evening > now {
        evening - time::Duration::days(7)
    } else {
        evening
    }
}

/// [`world_on`] with the sandbox's clock starting at `start` (now when `None`).
pub async fn world_on_from(
    backend: kontor_test_support::Backend,
    test: &str,
    start: Option<time::OffsetDateTime>,
) -> Option<World> {
    let http = http_settings();
    let mut builder = SandboxBank::builder().seed(11);
    if let Some(start) = start {
        builder = builder.start_time(start);
    }
    let sandbox = builder.start_local().await.unwrap();
    let directory = sandbox_directory(&sandbox, &http);
    let app = TestApp::builder()
        .backend(backend)
        .directory(directory)
        .api_settings(test_api_settings())
        .try_spawn(test)
        .await?;
    let tenant = app.tenant("Acme Budget").await;
    let token = app.token(&tenant).await;
    Some(World {
        app,
        sandbox,
        token,
        tenant_id: tenant.tenant_id,
    })
}

/// A world on `backend` with two cells in each region (`de`, `de-2`, `uk`, `uk-2`) and other
/// hub settings; `None` when PostgreSQL is skipped.
pub async fn world_of_cells(
    backend: kontor_test_support::Backend,
    test: &str,
    hub: fn(&mut kontor_service::HubSettings),
) -> Option<World> {
    let http = http_settings();
    let sandbox = SandboxBank::builder().seed(11).start_local().await.unwrap();
    let directory = sandbox_directory(&sandbox, &http);
    let app = TestApp::builder()
        .backend(backend)
        .cells_per_region(2)
        .directory(directory)
        .api_settings(test_api_settings())
        .hub_settings(hub)
        .try_spawn(test)
        .await?;
    let tenant = app.tenant("Acme Budget").await;
    let token = app.token(&tenant).await;
    Some(World {
        app,
        sandbox,
        token,
        tenant_id: tenant.tenant_id,
    })
}

pub fn region_of(username: &str) -> &'static str {
    if username == "bob" { "uk" } else { "de" }
}

impl World {
    pub fn browser(&self) -> Browser {
        Browser::new(&[&self.app.url("/"), self.sandbox.url()])
    }

    pub async fn user(&self, username: &str) -> String {
        let external = format!("{username}-{}", rand::random::<u32>());
        let user = self
            .app
            .create_user(&self.token, &external, region_of(username))
            .await;
        user["id"].as_str().unwrap().to_owned()
    }

    /// `POST /v1/connections`; returns the response body.
    pub async fn create_connection(&self, user_id: &str, bank: Option<&str>) -> Value {
        let mut body = json!({ "user_id": user_id, "redirect_uri": REDIRECT });
        if let Some(bank) = bank {
            body["bank_id"] = json!(bank);
        }
        let response = self
            .app
            .post_json("/v1/connections", &self.token, &body)
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Opens the connect page and continues to `bank`: lands on the bank's login page.
    pub async fn to_bank(&self, browser: &Browser, connect_url: &str, bank: &str) -> Page {
        let page = browser.open(connect_url).await.page();
        assert_eq!(page.status, 200, "{}", page.body);
        let form = page
            .form(&format!("bank-{bank}"))
            .expect("the bank's button");
        let login = browser.submit(&form).await.page();
        assert_eq!(login.step().as_deref(), Some("login"), "{}", login.body);
        login
    }

    /// Logs in and approves at the bank; returns where the user ended up.
    pub async fn authenticate(&self, browser: &Browser, login: &Page, user: &str) -> Landing {
        let form = login
            .form("login-form")
            .unwrap()
            .set("username", user)
            .set("password", "sandbox");
        let otp = browser.submit(&form).await.page();
        assert_eq!(otp.step().as_deref(), Some("otp"), "{}", otp.body);
        let mut landing = browser
            .submit(&otp.form("otp-form").unwrap().set("otp", "123456"))
            .await;
        if let Landing::Page(page) = &landing
            && page.step().as_deref() == Some("accounts")
        {
            landing = browser
                .submit(&page.form("accounts-form").unwrap().check_all())
                .await;
        }
        landing
    }

    /// Links `user` at `bank` end to end; returns the connection id and the tenant redirect.
    pub async fn link(&self, username: &str, bank: &str) -> (String, String, Url) {
        let user_id = self.user(username).await;
        let created = self.create_connection(&user_id, None).await;
        let browser = self.browser();
        let login = self
            .to_bank(&browser, created["connect_url"].as_str().unwrap(), bank)
            .await;
        let back = self.authenticate(&browser, &login, username).await.left();
        (user_id, created["id"].as_str().unwrap().to_owned(), back)
    }

    pub async fn connection(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/connections/{id}"), &self.token)
            .await
            .json()
            .await
            .unwrap()
    }

    /// Waits for the initial sync that linking starts in the background.
    pub async fn synced(&self, id: &str) -> Value {
        for _ in 0..300 {
            let connection = self.connection(id).await;
            if connection["last_synced_at"].is_string() {
                return connection;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("connection {id} never synced");
    }

    /// The connector session the hub keeps (sealed) for a connection.
    pub async fn session(&self, id: &str) -> ConsentSession {
        let id = ConnectionId::parse(id).unwrap();
        let cell = self.app.hub.cell_of(&id).await.unwrap();
        let secrets = cell.connection_secrets(&id).await.unwrap();
        let key = self
            .app
            .hub
            .vault()
            .user_key(cell, &secrets.connection.user_id)
            .await
            .unwrap();
        let sealed = secrets.session.expect("a session");
        let bytes = key
            .open(&sealed, &format!("connections/{id}/session"))
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The user's accounts (first page).
    pub async fn accounts(&self, user_id: &str) -> Vec<Value> {
        let page: Value = self
            .app
            .get(&format!("/v1/accounts?user_id={user_id}"), &self.token)
            .await
            .json()
            .await
            .unwrap();
        page["data"].as_array().unwrap().clone()
    }

    /// Every transaction of an account, through the API's pages.
    pub async fn all_transactions(&self, account: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/accounts/{account}/transactions?limit=200{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let response = self.app.get(&path, &self.token).await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.unwrap();
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return out,
            }
        }
    }

    /// `GET path` with the tenant's token, answered 200, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.app.get(path, &self.token).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Events of the log (first page), each checked against its documented schema.
    pub async fn events(&self, query: &str) -> Vec<Value> {
        let page: Value = self
            .app
            .get(&format!("/v1/events?limit=200{query}"), &self.token)
            .await
            .json()
            .await
            .unwrap();
        let events = page["data"].as_array().unwrap().clone();
        let doc: Value = self
            .app
            .http
            .get(self.app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for event in &events {
            crate::event_schemas::check_against(&doc, event);
        }
        events
    }

    pub async fn refresh(&self, id: &str) -> reqwest::Response {
        self.app
            .post_json(
                &format!("/v1/connections/{id}/refresh"),
                &self.token,
                &json!({"psu_ip_address": "198.51.100.7"}),
            )
            .await
    }
}

pub fn query_of(url: &Url) -> std::collections::BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A response as a script sees it, redirects not followed: (status, Location, body).
pub async fn raw(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}
