//! Two workers over one outbox, on SQLite and on PostgreSQL: every event is delivered exactly
//! once, no delivery is ever sent by both at the same time, and each user's deliveries still
//! arrive in order.

use std::collections::HashMap;
use std::time::Duration;

use kontor_test_support::{Backend, TestApp};

use super::receiver::{Receiver, Reply};
use super::{Hooks, hooks_on, local, spawn_worker};

async fn race(h: Hooks) {
    let receiver = Receiver::start().await;
    // Answers take a moment, so that both workers have attempts in flight at once.
    receiver.set_rule(|r, _| {
        let jitter = r.id.bytes().last().unwrap_or(0) % 4;
        Reply::Slow(Duration::from_millis(u64::from(jitter) + 1))
    });
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let endpoint = endpoint["id"].as_str().unwrap();
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for u in 0..30 {
        let user = h.user(if u % 2 == 0 { "uk" } else { "de" }).await;
        for n in 0..4 {
            let id = h.record(&user, n).await.to_string();
            expected.entry(user.to_string()).or_default().push(id);
        }
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let (stop_a, worker_a) = spawn_worker(&h.app);
    let (stop_b, worker_b) = spawn_worker(&h.app);
    receiver
        .wait_delivered(total, Duration::from_secs(60))
        .await;
    // Every delivery recorded as succeeded, a final state no worker claims again; then the
    // workers stop, which waits for any attempt still in flight: so a duplicate, however late,
    // is in the count.
    all_succeeded(&h, endpoint, total).await;
    stop_a.send(true).unwrap();
    stop_b.send(true).unwrap();
    worker_a.await.unwrap();
    worker_b.await.unwrap();

    let received = receiver.received();
    assert_eq!(
        received.len(),
        total,
        "every event exactly once, no duplicates"
    );
    let (per_id, per_user) = receiver.max_concurrency();
    assert_eq!(per_id, 1, "no delivery sent twice at the same time");
    assert_eq!(per_user, 1, "one delivery per user in flight");
    for (user, ids) in &expected {
        let order: Vec<&String> = received
            .iter()
            .filter(|r| &r.user() == user)
            .map(|r| &r.id)
            .collect();
        assert_eq!(order, ids.iter().collect::<Vec<_>>(), "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_race_over_the_outbox_on_sqlite() {
    race(hooks_on(TestApp::builder().hub_settings(local).spawn().await).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_race_over_the_outbox_on_postgres() {
    let Some(app) = TestApp::builder()
        .backend(Backend::Postgres)
        .hub_settings(local)
        .try_spawn("api::webhooks::race")
        .await
    else {
        return;
    };
    race(hooks_on(app).await).await;
}

/// Waits until the log shows `total` deliveries of `endpoint`, all succeeded.
async fn all_succeeded(h: &Hooks, endpoint: &str, total: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let log = h.deliveries(endpoint).await;
        if log.len() == total && log.iter().all(|d| d["state"] == "succeeded") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries never all succeeded: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
