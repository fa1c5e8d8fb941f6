//! Webhooks end to end: endpoints over the API, events recorded in the outbox, workers
//! delivering them to a real HTTP receiver (`receiver.rs`).

mod catalogue;
mod crash;
mod delivery;
mod endpoints;
mod failing;
mod ordering;
mod race;
mod receiver;
mod redeliver;
mod rotation;
mod ssrf;

use std::time::{Duration, Instant};

use kontor_domain::event::{Event, EventType};
use kontor_domain::webhook::RetrySchedule;
use kontor_domain::{EventId, UserId};
use kontor_service::{Deliverer, HubSettings};
use kontor_test_support::{TestApp, TestTenant};
use kontor_worker::{Worker, WorkerSettings};
use serde_json::{Value, json};
use tokio::sync::watch;

/// Receivers on this machine, over http; retries a second apart, four attempts in all.
pub fn local(settings: &mut HubSettings) {
    let w = &mut settings.webhooks;
    w.allow_http = true;
    w.allow_private_addresses = true;
    w.retry_schedule = RetrySchedule::new(vec![1, 1, 1]);
    w.timeout = Duration::from_millis(800);
    w.poll_interval = Duration::from_millis(20);
    w.lease_seconds = 30;
}

pub struct Hooks {
    pub app: TestApp,
    pub tenant: TestTenant,
    pub token: String,
}

pub async fn hooks() -> Hooks {
    hooks_on(TestApp::builder().hub_settings(local).spawn().await).await
}

pub async fn hooks_on(app: TestApp) -> Hooks {
    let tenant = app.tenant("Hooks Ltd").await;
    let token = app.token(&tenant).await;
    Hooks { app, tenant, token }
}

impl Hooks {
    /// Creates an endpoint; returns the response (with its secret).
    pub async fn endpoint(&self, url: &str, events: &[&str]) -> Value {
        let response = self
            .app
            .post_json(
                "/v1/webhook-endpoints",
                &self.token,
                &json!({ "url": url, "events": events }),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn user(&self, region: &str) -> UserId {
        let external = format!("u-{}", rand::random::<u64>());
        let user = self.app.create_user(&self.token, &external, region).await;
        UserId::parse(user["id"].as_str().unwrap()).unwrap()
    }

    /// Records an event about `user` in its cell, as a change would (the outbox).
    pub async fn record(&self, user: &UserId, n: u64) -> EventId {
        let event = Event::untyped(
            self.tenant.tenant_id.clone(),
            user,
            EventType::TransactionsUpdated,
            json!({ "n": n }),
        );
        let cell = self.app.hub.cell(user.cell()).unwrap();
        cell.append_event(&event).await.unwrap();
        event.id
    }

    pub fn deliverer(&self) -> Deliverer {
        Deliverer::new(self.app.hub.clone()).unwrap()
    }

    /// Runs a deliverer until `done` holds (or fails the test after `within`), moving the hub's
    /// clock a retry step (a second, see `local`) after each round instead of waiting for it.
    pub async fn pump_until(&self, within: Duration, done: impl AsyncFn() -> bool) {
        let deliverer = self.deliverer();
        let deadline = Instant::now() + within;
        loop {
            deliverer.run_once().await;
            if done().await {
                return;
            }
            assert!(Instant::now() < deadline, "not done within {within:?}");
            self.app.clock.advance(Duration::from_secs(1));
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self.app.get(path, &self.token).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Every delivery of an endpoint, through the API's pages.
    pub async fn deliveries(&self, endpoint: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=200");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await;
            out.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return out,
            }
        }
    }
}

/// A worker loop (webhooks and the other jobs) until the returned sender says stop.
pub fn spawn_worker(app: &TestApp) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(app.hub.clone(), WorkerSettings::default());
    (stop, tokio::spawn(worker.run(stopped)))
}
