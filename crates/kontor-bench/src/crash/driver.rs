//! The payment driver of the crash test: for each Idempotency-Key, `POST /v1/payments` with
//! random retries (after errors, after a success, two at once) or abandonment after an error,
//! then, for keys that got a 201, the user's authorisation over plain HTTP, restarted from where
//! it broke whenever the hub dies under it. Everything seen is counted and kept per key with
//! its time, for the report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::sandbox::Customer;
use kontor_test_support::browser::{self, Browser, FailureKind, Landing, Page, query_of};

/// Where the tenant wants its users back; never followed (another host).
pub const TENANT_REDIRECT: &str = "https://tenant.example/paid";

/// The random choices of the driver.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// Chance that a key's first POST goes out twice at once.
    pub concurrent: f64,
    /// Chance that a key that got its 201 is POSTed again (before or during the authorisation).
    pub replay: f64,
    /// Chance, after each failed POST, that the key is abandoned for good.
    pub abandon: f64,
    /// Give up POSTing a key (never abandoned) after this long without a 201.
    pub post_deadline: Duration,
    /// Give up authorising a payment after this long.
    pub auth_deadline: Duration,
    /// New keys started per second, over all workers (`None`: as fast as the workers go).
    pub rate: Option<f64>,
}

/// Where the driver sends its requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://127.0.0.1:<port>`: the same for every life of the hub.
    pub hub_base: String,
    pub sandbox_url: String,
    pub bearer: String,
}

/// One tenant-side user and who they are at the bank.
#[derive(Debug, Clone)]
pub struct Payer {
    pub customer: Customer,
    pub user_id: String,
}

/// What the driver needs.
#[derive(Debug)]
pub struct Driver {
    pub http: reqwest::Client,
    pub target: Target,
    pub payers: Vec<Payer>,
    pub knobs: Knobs,
    pub seed: u64,
    pub t0: Instant,
    pub counters: Counters,
    pub keys: Vec<Arc<Mutex<KeyRecord>>>,
    next: AtomicUsize,
    /// Where every POST is recorded with its times, when a caller wants them (`failover`).
    pub journal: Option<Arc<crate::journal::Journal>>,
    /// Set to stop the workers from taking new keys (the keys they hold are driven to the end).
    pub stop: AtomicBool,
}

/// Counts by name.
#[derive(Debug, Default)]
pub struct Counters(Mutex<BTreeMap<String, u64>>);

impl Counters {
    pub fn bump(&self, name: &str) {
        *lock(&self.0).entry(name.to_owned()).or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.0).clone()
    }
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Everything about one Idempotency-Key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub key: String,
    pub bank_id: String,
    pub user_id: String,
    /// Unique over the run: how the bank's ledger is matched to the key.
    pub amount: String,
    pub currency: String,
    #[serde(skip)]
    pub body: Value,
    /// Payment ids of every 201 answered for the key (one, unless the hub broke its promise).
    pub payment_ids: BTreeSet<String>,
    pub posts: u32,
    pub abandoned: bool,
    pub gave_up: bool,
    /// How the authorisation ended: `tenant:<status>`, `settled page`, `gave up`, …
    pub auth_outcome: Option<String>,
    pub auth_attempts: u32,
    /// (ms since the start of the run, what happened).
    pub events: Vec<(u64, String)>,
}

impl KeyRecord {
    pub fn got_201(&self) -> bool {
        !self.payment_ids.is_empty()
    }
}

enum PostOutcome {
    Created {
        id: String,
        authorize_url: Option<String>,
        replayed: bool,
    },
    InUse,
    Failed(String),
    Unexpected(u16, String),
}

/// Where an authorisation attempt stopped.
enum FlowEnd {
    Finished(String),
    Retry { from: Option<Url>, reason: String },
}

impl Driver {
    pub fn new(
        http: reqwest::Client,
        target: Target,
        payers: Vec<Payer>,
        knobs: Knobs,
        seed: u64,
        payments: usize,
    ) -> Self {
        let t0 = Instant::now();
        let keys = (0..payments)
            .map(|i| {
                let payer = &payers[i % payers.len()];
                // Unique amounts: 1.00, 1.01, … in each payer's currency (never 0).
                let cents = 100 + i;
                let amount = format!("{}.{:02}", cents / 100, cents % 100);
                let body = payer
                    .customer
                    .payment_body(&payer.user_id, &amount, TENANT_REDIRECT);
                Arc::new(Mutex::new(KeyRecord {
                    key: format!("crash-{seed}-{i:05}"),
                    bank_id: payer.customer.bank_id.clone(),
                    user_id: payer.user_id.clone(),
                    amount,
                    currency: payer.customer.currency.clone(),
                    body,
                    payment_ids: BTreeSet::new(),
                    posts: 0,
                    abandoned: false,
                    gave_up: false,
                    auth_outcome: None,
                    auth_attempts: 0,
                    events: Vec::new(),
                }))
            })
            .collect();
        Self {
            http,
            target,
            payers,
            knobs,
            seed,
            t0,
            counters: Counters::default(),
            keys,
            next: AtomicUsize::new(0),
            journal: None,
            stop: AtomicBool::new(false),
        }
    }

    /// Keys taken by a worker so far (the rest were never sent).
    pub fn taken(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.keys.len())
    }

    pub fn ms(&self) -> u64 {
        u64::try_from(self.t0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn note(&self, record: &Arc<Mutex<KeyRecord>>, event: impl Into<String>) {
        let at = self.ms();
        lock(record).events.push((at, event.into()));
    }

    /// One worker: takes keys until none are left.
    pub async fn work(self: Arc<Self>, worker: u64) {
        let mut rng = StdRng::seed_from_u64(self.seed.wrapping_mul(1_000_003).wrapping_add(worker));
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(record) = self.keys.get(index).cloned() else {
                return;
            };
            if let Some(rate) = self.knobs.rate {
                // Key i starts i/rate seconds into the run, so the kills spread over the keys.
                #[expect(
                    clippy::float_arithmetic,
                    clippy::cast_precision_loss,
                    reason = "a schedule"
                )]
                let offset = Duration::from_secs_f64(index as f64 / rate);
                tokio::time::sleep_until(self.t0 + offset).await;
            }
            self.drive(&record, &mut rng).await;
        }
    }

    async fn drive(self: &Arc<Self>, record: &Arc<Mutex<KeyRecord>>, rng: &mut StdRng) {
        let Some((id, authorize_url)) = self.post_until_created(record, rng).await else {
            return;
        };
        let mut background = None;
        if rng.random_bool(self.knobs.replay) {
            if rng.random_bool(0.5) {
                self.counters
                    .bump("replays sent after a 201 (before authorising)");
                self.replay(record, &id).await;
            } else {
                self.counters
                    .bump("replays sent after a 201 (during authorisation)");
                let me = Arc::clone(self);
                let record = Arc::clone(record);
                let id = id.clone();
                background = Some(tokio::spawn(async move { me.replay(&record, &id).await }));
            }
        }
        match authorize_url.and_then(|u| Url::parse(&u).ok()) {
            Some(url) => self.authorise(record, &url, rng).await,
            None => {
                self.counters.bump("201 without an authorize_url");
                self.note(record, "the 201 had no authorize_url: not authorised");
                lock(record).auth_outcome = Some("no authorize_url".to_owned());
            }
        }
        if let Some(task) = background {
            let _ = task.await;
        }
    }

    async fn post(&self, record: &Arc<Mutex<KeyRecord>>) -> PostOutcome {
        let start = crate::journal::now_ms();
        let outcome = self.post_once(record).await;
        if let Some(journal) = &self.journal {
            use crate::journal::{Kind, Outcome, answered, unanswered};
            let entry = match &outcome {
                PostOutcome::Created { .. } => Outcome::Ok,
                PostOutcome::InUse => Outcome::InUse,
                PostOutcome::Failed(why) => match why.strip_prefix("HTTP ") {
                    Some(answer) => {
                        let (status, code) = answer.split_once(' ').unwrap_or((answer, ""));
                        answered(status.parse().unwrap_or(0), code, 201)
                    }
                    None => unanswered(why, true),
                },
                PostOutcome::Unexpected(status, code) => answered(*status, code, 201),
            };
            journal.record(Kind::Payment, start, entry);
        }
        outcome
    }

    async fn post_once(&self, record: &Arc<Mutex<KeyRecord>>) -> PostOutcome {
        let (key, body) = {
            let mut r = lock(record);
            r.posts += 1;
            (r.key.clone(), r.body.clone())
        };
        self.counters.bump("POSTs sent");
        let sent = self
            .http
            .post(format!("{}/v1/payments", self.target.hub_base))
            .bearer_auth(&self.target.bearer)
            .header("idempotency-key", &key)
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return PostOutcome::Failed(transport(&err)),
        };
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        let text = match response.text().await {
            Ok(text) => text,
            Err(err) => {
                return PostOutcome::Failed(format!("{} (reading a {status})", transport(&err)));
            }
        };
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            201 => match json["id"].as_str() {
                Some(id) => PostOutcome::Created {
                    id: id.to_owned(),
                    authorize_url: json["authorize_url"].as_str().map(str::to_owned),
                    replayed,
                },
                None => PostOutcome::Unexpected(201, "a 201 without an id".to_owned()),
            },
            409 => PostOutcome::InUse,
            500..=599 => PostOutcome::Failed(format!(
                "HTTP {status} {}",
                json["error"]["code"].as_str().unwrap_or("")
            )),
            _ => PostOutcome::Unexpected(
                status,
                json["error"]["code"]
                    .as_str()
                    .map_or_else(|| text.chars().take(120).collect(), str::to_owned),
            ),
        }
    }

    /// Records a 201; returns false when it named another payment than an earlier 201.
    fn created(&self, record: &Arc<Mutex<KeyRecord>>, id: &str, replayed: bool) -> bool {
        if replayed {
            self.counters
                .bump("201 replayed (Idempotent-Replayed: true)");
        } else {
            self.counters.bump("201 first answers");
        }
        let mut r = lock(record);
        let same = r.payment_ids.is_empty() || r.payment_ids.contains(id);
        r.payment_ids.insert(id.to_owned());
        same
    }

    /// POSTs the key until a 201, abandoning it (at random) after an error.
    async fn post_until_created(
        &self,
        record: &Arc<Mutex<KeyRecord>>,
        rng: &mut StdRng,
    ) -> Option<(String, Option<String>)> {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > 1 {
                self.counters.bump("POST retries");
            }
            let outcomes = if attempt == 1 && rng.random_bool(self.knobs.concurrent) {
                self.counters.bump("keys POSTed twice at once");
                let (a, b) = tokio::join!(self.post(record), self.post(record));
                vec![a, b]
            } else {
                vec![self.post(record).await]
            };
            let mut created = None;
            let mut failed = false;
            for outcome in outcomes {
                match outcome {
                    PostOutcome::Created {
                        id,
                        authorize_url,
                        replayed,
                    } => {
                        self.note(
                            record,
                            format!(
                                "POST #{attempt}: 201 {id}{}",
                                if replayed { " (replayed)" } else { "" }
                            ),
                        );
                        if !self.created(record, &id, replayed) {
                            self.note(
                                record,
                                "VIOLATION: this 201 names another payment than an earlier one",
                            );
                        }
                        created.get_or_insert((id, authorize_url));
                    }
                    PostOutcome::InUse => {
                        self.counters.bump("409 idempotency_key_in_use");
                        self.note(record, format!("POST #{attempt}: 409 in use"));
                    }
                    PostOutcome::Failed(why) => {
                        self.counters.bump(&format!("POST failed: {why}"));
                        self.note(record, format!("POST #{attempt}: {why}"));
                        failed = true;
                    }
                    PostOutcome::Unexpected(status, code) => {
                        self.counters
                            .bump(&format!("POST answered {status} {code}"));
                        self.note(
                            record,
                            format!("POST #{attempt}: UNEXPECTED {status} {code}"),
                        );
                        failed = true;
                    }
                }
            }
            if created.is_some() {
                return created;
            }
            if failed && rng.random_bool(self.knobs.abandon) {
                self.counters.bump("keys abandoned after an error");
                self.note(record, "abandoned: never sent again");
                lock(record).abandoned = true;
                return None;
            }
            if started.elapsed() > self.knobs.post_deadline {
                self.counters
                    .bump("keys given up (no 201 before the deadline)");
                self.note(record, "gave up POSTing");
                lock(record).gave_up = true;
                return None;
            }
            let pause = if failed { 50..300 } else { 200..700 };
            tokio::time::sleep(Duration::from_millis(rng.random_range(pause))).await;
        }
    }

    /// The same request again after its 201: must be answered with the same payment.
    async fn replay(&self, record: &Arc<Mutex<KeyRecord>>, id: &str) {
        for _ in 0..20 {
            match self.post(record).await {
                PostOutcome::Created {
                    id: again,
                    replayed,
                    ..
                } => {
                    self.note(
                        record,
                        format!(
                            "replay: 201 {again}{}",
                            if replayed {
                                " (replayed)"
                            } else {
                                " (NOT marked replayed)"
                            }
                        ),
                    );
                    if !replayed {
                        self.counters
                            .bump("replays after a 201 not marked Idempotent-Replayed");
                    }
                    if !self.created(record, &again, replayed) || again != id {
                        self.note(record, "VIOLATION: the replay names another payment");
                    }
                    return;
                }
                PostOutcome::InUse => {
                    self.counters.bump("409 on a replay after a 201");
                    self.note(record, "replay: 409 in use (after a 201)");
                }
                PostOutcome::Failed(why) => {
                    self.counters.bump(&format!("POST failed: {why}"));
                    self.note(record, format!("replay: {why}"));
                }
                PostOutcome::Unexpected(status, code) => {
                    self.counters
                        .bump(&format!("POST answered {status} {code}"));
                    self.note(record, format!("replay: UNEXPECTED {status} {code}"));
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The user's authorisation: the hub's page, `pay`, the bank's login, code and account
    /// choice, and back through the hub to the tenant. Retried from where it broke.
    async fn authorise(
        &self,
        record: &Arc<Mutex<KeyRecord>>,
        authorize_url: &Url,
        rng: &mut StdRng,
    ) {
        let browser = Browser::with_client(
            self.http.clone(),
            &[
                self.target.hub_base.as_str(),
                self.target.sandbox_url.as_str(),
            ],
        );
        let username = {
            let bank = lock(record).bank_id.clone();
            self.payers
                .iter()
                .find(|p| p.customer.bank_id == bank)
                .map_or_else(String::new, |p| p.customer.username.clone())
        };
        let started = Instant::now();
        let mut from = authorize_url.clone();
        loop {
            lock(record).auth_attempts += 1;
            self.counters.bump("authorisation attempts");
            match self.flow(&browser, &from, &username).await {
                FlowEnd::Finished(outcome) => {
                    self.note(record, format!("authorisation: {outcome}"));
                    self.counters
                        .bump(&format!("authorisations ended: {}", outcome_kind(&outcome)));
                    lock(record).auth_outcome = Some(outcome);
                    return;
                }
                FlowEnd::Retry {
                    from: again,
                    reason,
                } => {
                    self.counters
                        .bump(&format!("authorisation retried: {}", reason_kind(&reason)));
                    self.note(record, format!("authorisation broke: {reason}"));
                    from = again.unwrap_or_else(|| authorize_url.clone());
                }
            }
            if started.elapsed() > self.knobs.auth_deadline {
                self.counters.bump("authorisations given up");
                self.note(record, "gave up authorising");
                lock(record).auth_outcome = Some("gave up".to_owned());
                return;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        }
    }

    fn is_hub(&self, url: &Url) -> bool {
        url.as_str().starts_with(&self.target.hub_base)
    }

    /// One pass through the pages from `start`.
    async fn flow(&self, browser: &Browser, start: &Url, username: &str) -> FlowEnd {
        let mut landing = match browser.try_open(start).await {
            Ok(landing) => landing,
            Err(failure) => return self.broke(&failure),
        };
        for _ in 0..12 {
            let page = match landing {
                Landing::Left(url) => {
                    let query = query_of(&url);
                    return FlowEnd::Finished(format!(
                        "tenant:{} ({})",
                        query.get("status").map_or("?", String::as_str),
                        query.get("payment_id").map_or("?", String::as_str)
                    ));
                }
                Landing::Page(page) => page,
            };
            let next = if self.is_hub(&page.url) {
                match self.on_hub_page(&page) {
                    Ok(form) => form,
                    Err(end) => return end,
                }
            } else {
                match bank_form(&page, username) {
                    Ok(form) => form,
                    Err(end) => return end,
                }
            };
            let result = match next {
                Next::Submit(form) => browser.try_submit(&form).await,
                Next::Open(url) => browser.try_open(&url).await,
            };
            landing = match result {
                Ok(landing) => landing,
                Err(failure) => return self.broke(&failure),
            };
        }
        FlowEnd::Retry {
            from: None,
            reason: "more than 12 pages".to_owned(),
        }
    }

    fn on_hub_page(&self, page: &Page) -> Result<Next, FlowEnd> {
        if page.status == 200 {
            if let Some(form) = page.form("pay") {
                return Ok(Next::Submit(form));
            }
            // The payment is past authorisation: the page says so, with a way back.
            let back = page.link("back").map(|u| query_of(&u));
            return Err(FlowEnd::Finished(format!(
                "settled page: {}",
                back.as_ref()
                    .and_then(|q| q.get("status").cloned())
                    .unwrap_or_else(|| "?".to_owned())
            )));
        }
        Err(FlowEnd::Retry {
            from: None,
            reason: format!("hub page HTTP {} at {}", page.status, page.url.path()),
        })
    }

    fn broke(&self, failure: &browser::Failure) -> FlowEnd {
        // A browser reloads what failed: the callback with its code and state again; for
        // anything else the user starts over from the authorisation link.
        let from = (failure.method == "GET"
            && self.is_hub(&failure.url)
            && failure.url.path().starts_with("/pay/callback"))
        .then(|| failure.url.clone());
        FlowEnd::Retry {
            from,
            reason: failure.to_string(),
        }
    }
}

enum Next {
    Submit(browser::Form),
    Open(Url),
}

/// The next form on a sandbox bank page.
fn bank_form(page: &Page, username: &str) -> Result<Next, FlowEnd> {
    match page.step().as_deref() {
        Some("login") => page
            .form("login-form")
            .map(|f| Next::Submit(f.set("username", username).set("password", "sandbox")))
            .ok_or_else(|| finished("bank login page without a form")),
        Some("otp") => page
            .form("otp-form")
            .map(|f| Next::Submit(f.set("otp", "123456")))
            .ok_or_else(|| finished("bank code page without a form")),
        Some("accounts") => page
            .form("accounts-form")
            .map(|f| Next::Submit(f.choose_first()))
            .ok_or_else(|| finished("bank accounts page without a form")),
        Some(step) => match page.link("return") {
            Some(url) => Ok(Next::Open(url)),
            None => Err(finished(&format!(
                "bank page `{step}` (HTTP {})",
                page.status
            ))),
        },
        None => Err(finished(&format!(
            "bank answered HTTP {} at {}",
            page.status,
            page.url.path()
        ))),
    }
}

fn finished(what: &str) -> FlowEnd {
    FlowEnd::Finished(what.to_owned())
}

pub fn transport(err: &reqwest::Error) -> String {
    match browser::kind_of(err) {
        FailureKind::Connect => "connect error".to_owned(),
        FailureKind::Timeout => "timeout".to_owned(),
        _ => "connection broken".to_owned(),
    }
}

/// `tenant:completed (pay_…)` → `tenant:completed`, for counting.
fn outcome_kind(outcome: &str) -> String {
    outcome.split(" (").next().unwrap_or(outcome).to_owned()
}

/// `Connect on GET /pay/pay_de_…: …` → `Connect on GET /pay/{id}`, for counting.
fn reason_kind(reason: &str) -> String {
    let head = reason.split(": ").next().unwrap_or(reason);
    head.split('/')
        .map(|segment| {
            if segment.starts_with("pay_") {
                "{id}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_reasons_leave_ids_out() {
        assert_eq!(
            reason_kind("Transport on POST /pay/pay_de_1xq/start: error sending request"),
            "Transport on POST /pay/{id}/start"
        );
        assert_eq!(
            outcome_kind("tenant:completed (pay_uk_1)"),
            "tenant:completed"
        );
    }
}
