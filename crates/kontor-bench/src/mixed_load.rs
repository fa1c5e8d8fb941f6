//! The mixed load of `failover` and `move` besides payments: new users (`POST /v1/users` with an Idempotency-Key), syncs of
//! linked connections (`POST /v1/connections/{id}/refresh`), and reads (a user, a page of
//! payments, a page of transactions). Closed loop, each worker with a short pause; every request
//! goes into the journal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kontor_test_support::browser::{self, Browser, Landing, query_of};
use serde_json::{Value, json};
use url::Url;

use crate::crash::driver::transport;
use crate::journal::{Journal, Kind, Outcome, answered, now_ms, unanswered};

/// Where the browser leaves the hub after linking; never followed.
const TENANT_REDIRECT: &str = "https://tenant.example/linked";

/// What every load worker shares.
#[derive(Debug)]
pub struct Load {
    pub http: reqwest::Client,
    pub base: String,
    pub bearer: String,
    pub journal: Arc<Journal>,
    pub stop: AtomicBool,
    /// Users created so far (numbers their external ids and Idempotency-Keys).
    pub users: AtomicU64,
    pub run: String,
    pub pause: Duration,
}

/// A connection linked for syncs, and what reads look at.
#[derive(Debug, Clone)]
pub struct Linked {
    pub user_id: String,
    pub connection_id: String,
    pub account_ids: Vec<String>,
}

impl Load {
    /// The load of one tenant (`bearer`) on the hub at `base`, its requests into `journal`;
    /// `run` names its users' external ids and keys.
    pub fn new(
        http: reqwest::Client,
        (base, bearer): (&str, &str),
        journal: Arc<Journal>,
        run: String,
        pause: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            base: base.to_owned(),
            bearer: bearer.to_owned(),
            journal,
            stop: AtomicBool::new(false),
            users: AtomicU64::new(0),
            run,
            pause,
        })
    }

    async fn send(
        &self,
        kind: Kind,
        request: reqwest::RequestBuilder,
        ok: u16,
        idempotent: bool,
    ) -> Option<Value> {
        let start = now_ms();
        let (outcome, body) = match request.bearer_auth(&self.bearer).send().await {
            Err(err) => (unanswered(&transport(&err), idempotent), None),
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Err(err) => (unanswered(&transport(&err), idempotent), None),
                    Ok(text) => {
                        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                        let code = body["error"]["code"].as_str().unwrap_or_default();
                        (answered(status, code, ok), Some(body))
                    }
                }
            }
        };
        let succeeded = outcome == Outcome::Ok;
        self.journal.record(kind, start, outcome);
        body.filter(|_| succeeded)
    }

    /// Creates users in `region` until told to stop.
    pub async fn users(self: Arc<Self>, region: &'static str) {
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.users.fetch_add(1, Ordering::Relaxed);
            let key = format!("{}-user-{n}", self.run);
            let request = self
                .http
                .post(format!("{}/v1/users", self.base))
                .header("idempotency-key", &key)
                .json(&json!({"external_id": key, "region": region}));
            self.send(Kind::User, request, 201, true).await;
            tokio::time::sleep(self.pause).await;
        }
    }

    /// Syncs `linked` with the user present, again and again.
    pub async fn syncs(self: Arc<Self>, linked: Linked) {
        while !self.stop.load(Ordering::Relaxed) {
            let request = self
                .http
                .post(format!(
                    "{}/v1/connections/{}/refresh",
                    self.base, linked.connection_id
                ))
                .json(&json!({"psu_ip_address": "203.0.113.7"}));
            self.send(Kind::Sync, request, 200, true).await;
            tokio::time::sleep(self.pause.max(Duration::from_millis(100))).await;
        }
    }

    /// Reads a user, their payments and an account's transactions, in turn.
    pub async fn reads(self: Arc<Self>, linked: Vec<Linked>) {
        let mut turn = 0usize;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(l) = linked.get(turn % linked.len().max(1)) else {
                return;
            };
            let path = match turn % 3 {
                0 => format!("/v1/users/{}", l.user_id),
                1 => format!("/v1/payments?user_id={}&limit=20", l.user_id),
                _ => format!(
                    "/v1/accounts/{}/transactions?limit=50",
                    l.account_ids.first().map_or("none", String::as_str)
                ),
            };
            let request = self.http.get(format!("{}{path}", self.base));
            self.send(Kind::Read, request, 200, true).await;
            turn += 1;
            tokio::time::sleep(self.pause).await;
        }
    }
}

async fn json_of(response: reqwest::Response, what: &str, expected: u16) -> anyhow::Result<Value> {
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

/// Links `username` at `bank` for `user_id` through the hub's connect page and the sandbox's
/// pages, and waits for the first sync.
pub async fn link(
    http: &reqwest::Client,
    base: &str,
    bearer: &str,
    sandbox_url: &str,
    (user_id, bank, username): (&str, &str, &str),
) -> anyhow::Result<Linked> {
    let created = http
        .post(format!("{base}/v1/connections"))
        .bearer_auth(bearer)
        .json(&json!({"user_id": user_id, "bank_id": bank, "redirect_uri": TENANT_REDIRECT}))
        .send()
        .await
        .context("POST /v1/connections")?;
    let created = json_of(created, "POST /v1/connections", 201).await?;
    let id = created["id"]
        .as_str()
        .context("POST /v1/connections answered without an id")?
        .to_owned();
    let connect = created["connect_url"]
        .as_str()
        .and_then(|u| Url::parse(u).ok())
        .context("POST /v1/connections answered without a connect_url")?;
    let browser = Browser::with_client(http.clone(), &[base, sandbox_url]);
    let mut landing = browser
        .try_open(&connect)
        .await
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let mut linked = false;
    for _ in 0..10 {
        let page = match landing {
            Landing::Left(back) => {
                let status = query_of(&back).get("status").cloned();
                if status.as_deref() != Some("active") {
                    bail!("linking {username} at {bank} ended with status {status:?}");
                }
                linked = true;
                break;
            }
            Landing::Page(page) => page,
        };
        let form = browser::sandbox_link_form(&page, bank, username).with_context(|| {
            format!(
                "unexpected page while linking: HTTP {} at {}",
                page.status,
                page.url.path()
            )
        })?;
        landing = browser
            .try_submit(&form)
            .await
            .map_err(|f| anyhow::anyhow!("{f}"))?;
    }
    if !linked {
        bail!("linking {username} at {bank} took more than 10 pages");
    }
    let started = Instant::now();
    loop {
        let response = http
            .get(format!("{base}/v1/connections/{id}"))
            .bearer_auth(bearer)
            .send()
            .await
            .context("GET /v1/connections/{id}")?;
        let connection = json_of(response, "GET /v1/connections/{id}", 200).await?;
        if connection["last_synced_at"].is_string() {
            let account_ids = connection["account_ids"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            return Ok(Linked {
                user_id: user_id.to_owned(),
                connection_id: id,
                account_ids,
            });
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("connection {id} was not synced after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
