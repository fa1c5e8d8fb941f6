//! Bank data in the hub the way a tenant gets it: the sandbox bank (behind the timing proxy) in
//! the hub's bank directory, a user, a connection linked through the hub's connect page and the
//! bank's redirect SCA pages with the scripted browser, and the syncs that follow. Used by the
//! `reads` and `ingest` benchmarks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kontor_sandbox_bank::RunningSandbox;
use kontor_test_support::browser::{self, Browser, Landing, Page, query_of};
use serde::Serialize;
use serde_json::{Value, json};
use tempfile::TempDir;
use url::Url;

use crate::bank_proxy::BankProxy;
use crate::hub::Token;
use crate::sandbox::{self, HubBank};
use crate::setup::BenchEnv;

/// Never followed: another host, where the browser leaves the hub.
const TENANT_REDIRECT: &str = "https://tenant.example/linked";
/// How long a first sync of 24 months may take before the run gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(300);
/// Renew the setup token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// The most pages one link may take (connect page, login, code, accounts, back).
const MAX_PAGES: usize = 10;

#[derive(Debug, Serialize)]
struct WorkerSection {
    embedded: bool,
}

#[derive(Debug, Serialize)]
struct HubConfigFile {
    banks: Vec<HubBank>,
    worker: WorkerSection,
}

/// The sandbox bank behind its timing proxy, and the hub configuration that points at it.
#[derive(Debug)]
pub struct BankWorld {
    pub sandbox: RunningSandbox,
    pub proxy: BankProxy,
    config: PathBuf,
    _dir: TempDir,
}

impl BankWorld {
    /// Starts the sandbox (seed 42, frozen clock) behind the proxy and writes a hub
    /// configuration with its banks; `embedded_worker` says whether `kontor serve` runs its
    /// worker too.
    pub async fn start(embedded_worker: bool) -> anyhow::Result<Self> {
        let (listener, proxy_url) = BankProxy::bind().await?;
        let sandbox = sandbox::start_behind(42, Some(&proxy_url)).await?;
        let upstream = format!("http://{}", sandbox.local_addr());
        let proxy = BankProxy::forward_to(listener, proxy_url, &upstream)?;
        let dir = tempfile::Builder::new()
            .prefix("kontor-bench-bank-")
            .tempdir()
            .context("creating a folder for the hub's configuration")?;
        let config = dir.path().join("kontor.toml");
        let file = HubConfigFile {
            banks: sandbox::hub_banks(&sandbox),
            worker: WorkerSection {
                embedded: embedded_worker,
            },
        };
        std::fs::write(
            &config,
            toml::to_string(&file).context("rendering the hub configuration")?,
        )
        .with_context(|| format!("writing {}", config.display()))?;
        Ok(Self {
            sandbox,
            proxy,
            config,
            _dir: dir,
        })
    }

    /// The settings that give the hub this configuration.
    pub fn hub_env(&self) -> Vec<(String, String)> {
        vec![(
            "KONTOR_CONFIG".to_owned(),
            self.config.display().to_string(),
        )]
    }
}

/// The tenant's side of the setup: API calls with a token that is renewed as it ages.
#[derive(Debug)]
pub struct Tenant<'a> {
    env: &'a BenchEnv,
    http: reqwest::Client,
    token: Token,
    issued: Instant,
}

/// A linked connection after its first sync.
#[derive(Debug, Clone)]
pub struct Linked {
    pub user_id: String,
    pub connection_id: String,
    pub account_ids: Vec<String>,
}

async fn body(response: reqwest::Response, what: &str, expected: u16) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("reading the answer to {what}"))?;
    if status.as_u16() != expected {
        bail!("{what} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("parsing the answer to {what}"))
}

impl<'a> Tenant<'a> {
    pub async fn new(env: &'a BenchEnv) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        let token = env.hub.token(&env.tenant).await?;
        Ok(Self {
            env,
            http,
            token,
            issued: Instant::now(),
        })
    }

    async fn bearer(&mut self) -> anyhow::Result<String> {
        if self.issued.elapsed() + TOKEN_MARGIN >= self.token.expires_in {
            self.token = self.env.hub.token(&self.env.tenant).await?;
            self.issued = Instant::now();
        }
        Ok(self.token.bearer.clone())
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Value> {
        let bearer = self.bearer().await?;
        let response = self
            .http
            .get(self.env.hub.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        body(response, &format!("GET {path}"), 200).await
    }

    async fn post(&mut self, path: &str, json: &Value, expected: u16) -> anyhow::Result<Value> {
        let bearer = self.bearer().await?;
        let response = self
            .http
            .post(self.env.hub.url(path))
            .bearer_auth(bearer)
            .json(json)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        body(response, &format!("POST {path}"), expected).await
    }

    pub async fn create_user(&mut self, external_id: &str, region: &str) -> anyhow::Result<String> {
        let user = self
            .post(
                "/v1/users",
                &json!({"external_id": external_id, "region": region}),
                201,
            )
            .await?;
        user["id"]
            .as_str()
            .map(str::to_owned)
            .context("POST /v1/users answered without an id")
    }

    /// Links `username` at `bank` for `user_id` through the connect page and the bank's
    /// redirect SCA (all accounts shared); returns the connection's id once the hub has sent
    /// the browser back to the tenant with `status=active`.
    pub async fn link(
        &mut self,
        user_id: &str,
        bank: &str,
        username: &str,
        world: &BankWorld,
    ) -> anyhow::Result<String> {
        let created = self
            .post(
                "/v1/connections",
                &json!({"user_id": user_id, "bank_id": bank, "redirect_uri": TENANT_REDIRECT}),
                201,
            )
            .await?;
        let id = created["id"]
            .as_str()
            .context("POST /v1/connections answered without an id")?
            .to_owned();
        let connect = created["connect_url"]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .context("POST /v1/connections answered without a connect_url")?;
        let hub_base = self.env.hub.url("");
        let browser = Browser::with_client(self.http.clone(), &[&hub_base, world.proxy.url()]);
        let mut landing = browser
            .try_open(&connect)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        for _ in 0..MAX_PAGES {
            let page = match landing {
                Landing::Left(back) => {
                    let query = query_of(&back);
                    return match query.get("status").map(String::as_str) {
                        Some("active") => Ok(id),
                        other => bail!(
                            "linking ended with status {other:?} (reason {:?})",
                            query.get("reason")
                        ),
                    };
                }
                Landing::Page(page) => page,
            };
            let form = next_form(&page, bank, username)?;
            landing = browser
                .try_submit(&form)
                .await
                .map_err(|f| anyhow::anyhow!("{f}"))?;
        }
        bail!("linking took more than {MAX_PAGES} pages")
    }

    pub async fn connection(&mut self, id: &str) -> anyhow::Result<Value> {
        self.get(&format!("/v1/connections/{id}")).await
    }

    /// Waits until the connection's first sync is done (`last_synced_at` set).
    pub async fn wait_synced(&mut self, id: &str) -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let connection = self.connection(id).await?;
            if connection["last_synced_at"].is_string() {
                return Ok(connection);
            }
            if connection["status"] != "active" {
                bail!(
                    "connection {id} is {} before its first sync",
                    connection["status"]
                );
            }
            if started.elapsed() > SYNC_TIMEOUT {
                bail!(
                    "connection {id} was not synced after {} s",
                    SYNC_TIMEOUT.as_secs()
                );
            }
            // Often enough to see the end promptly, seldom enough not to load the hub.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/connections/{id}/refresh` with the user present; the hub's sync report.
    pub async fn refresh(&mut self, id: &str) -> anyhow::Result<Value> {
        self.post(
            &format!("/v1/connections/{id}/refresh"),
            &json!({"psu_ip_address": "203.0.113.7"}),
            200,
        )
        .await
    }

    /// The user's `transactions.updated` events, newest first.
    pub async fn sync_events(&mut self, user_id: &str) -> anyhow::Result<Vec<Value>> {
        let page = self
            .get(&format!(
                "/v1/events?type=transactions.updated&user_id={user_id}&limit=100"
            ))
            .await?;
        page["data"]
            .as_array()
            .cloned()
            .context("GET /v1/events answered without data")
    }

    /// A new user linked to `username` at `bank`, after the first sync.
    pub async fn linked_user(
        &mut self,
        external_id: &str,
        region: &str,
        bank: &str,
        username: &str,
        world: &BankWorld,
    ) -> anyhow::Result<Linked> {
        let user_id = self.create_user(external_id, region).await?;
        let connection_id = self.link(&user_id, bank, username, world).await?;
        let connection = self.wait_synced(&connection_id).await?;
        let account_ids = connection["account_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if account_ids.is_empty() {
            bail!("connection {connection_id} synced no account");
        }
        Ok(Linked {
            user_id,
            connection_id,
            account_ids,
        })
    }
}

/// The form to submit on a page of the link (see `browser::sandbox_link_form`).
fn next_form(
    page: &Page,
    bank: &str,
    username: &str,
) -> anyhow::Result<kontor_test_support::browser::Form> {
    browser::sandbox_link_form(page, bank, username).with_context(|| {
        format!(
            "unexpected page while linking: HTTP {} at {} (step {:?})",
            page.status,
            page.url.path(),
            page.step()
        )
    })
}
