//! Delivery to a real receiver: signed as Standard Webhooks specifies, retried after the
//! receiver was down (nothing lost), redirects not followed, slow answers timed out, and every
//! attempt in the delivery log with its status and latency.

use std::time::Duration;

use kontor_domain::time::Timestamp;
use serde_json::Value;

use super::hooks;
use super::receiver::{Receiver, Reply, free_port, verify};

#[tokio::test]
async fn an_event_is_delivered_signed_with_its_id() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["user.erased"]).await;
    let secret = endpoint["secret"].as_str().unwrap();

    // A change through the API records the event in the same transaction.
    let user = h.user("uk").await;
    let erased = h.app.delete(&format!("/v1/users/{user}"), &h.token).await;
    assert_eq!(erased.status(), 204);
    h.deliverer().run_once().await;

    let got = receiver.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let delivery = &got[0];
    let events = h.get("/v1/events?type=user.erased").await;
    let event = &events["data"][0];
    assert_eq!(
        delivery.id,
        event["id"].as_str().unwrap(),
        "webhook-id is the event id"
    );
    assert_eq!(delivery.content_type, "application/json");
    assert_eq!(
        &delivery.json, event,
        "the body is the event as the log shows it"
    );
    let now = Timestamp::now().unix_seconds();
    assert!(
        (now - delivery.timestamp).abs() < 300,
        "a fresh webhook-timestamp"
    );
    assert!(verify(secret, delivery), "{}", delivery.signature);

    // A signature binds id, timestamp and body.
    let mut tampered = delivery.clone();
    tampered.body = br#"{"id":"evt_forged"}"#.to_vec();
    assert!(!verify(secret, &tampered));
    let mut replayed = delivery.clone();
    replayed.timestamp += 1;
    assert!(!verify(secret, &replayed));
    let other = h.endpoint(&receiver.url(), &["*"]).await;
    assert!(!verify(other["secret"].as_str().unwrap(), delivery));

    // The log has it, with the attempt.
    let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["state"], "succeeded");
    assert_eq!(log[0]["event_type"], "user.erased");
    assert_eq!(log[0]["attempts"][0]["status_code"], 204);
    assert!(log[0]["attempts"][0]["latency_ms"].as_u64().unwrap() >= 1);
    assert!(log[0]["attempts"][0]["error"].is_null());
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_everything_afterwards() {
    let h = hooks().await;
    let port = free_port();
    let endpoint = h
        .endpoint(&format!("http://127.0.0.1:{port}/hook"), &["*"])
        .await;
    let id = endpoint["id"].as_str().unwrap();
    let mut recorded = Vec::new();
    for n in 0..4 {
        let user = h.user(if n % 2 == 0 { "uk" } else { "de" }).await;
        recorded.push(h.record(&user, n).await.to_string());
    }
    // Nobody listens: every first attempt fails, and each delivery waits for its retry.
    let reports = h.deliverer().run_once().await;
    assert_eq!(reports.len(), 4);
    let log = h.deliveries(id).await;
    assert!(log.iter().all(|d| d["state"] == "pending"));
    assert!(
        log.iter()
            .all(|d| d["attempts"][0]["error"] == "connection_failed"),
        "{log:?}"
    );

    let receiver = Receiver::start_on(port).await;
    // The retries fall due a second after the first attempts.
    h.app.clock.advance(Duration::from_secs(1));
    h.deliverer().run_once().await;
    let got = receiver.wait_delivered(4, Duration::from_secs(5)).await;
    let mut ids: Vec<String> = got.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    recorded.sort();
    assert_eq!(ids, recorded, "the same webhook-ids, nothing lost");
    let log = h.deliveries(id).await;
    for delivery in &log {
        assert_eq!(delivery["state"], "succeeded");
        let attempts = delivery["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["error"], "connection_failed");
        assert!(attempts[0]["status_code"].is_null());
        assert_eq!(attempts[1]["status_code"], 204);
    }
}

#[tokio::test]
async fn redirects_are_not_followed_and_slow_answers_time_out() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    receiver.set_rule(|_, seen| match seen {
        0 => Reply::Redirect,
        1 => Reply::Slow(Duration::from_secs(2)),
        2 => Reply::Status(500),
        _ => Reply::Status(200),
    });
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("de").await;
    h.record(&user, 1).await;
    let log = loop_until_delivered(&h, endpoint["id"].as_str().unwrap()).await;
    let attempts = log["attempts"].as_array().unwrap();
    let summary: Vec<(Value, Value)> = attempts
        .iter()
        .map(|a| (a["status_code"].clone(), a["error"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Value::from(302), Value::from("redirect")),
            (Value::Null, Value::from("timeout")),
            (Value::from(500), Value::from("http_status")),
            (Value::from(200), Value::Null),
        ]
    );
    assert!(attempts[1]["latency_ms"].as_u64().unwrap() >= 800);
    assert!(
        receiver.received().iter().all(|r| r.path == "/hook"),
        "the redirect target was never asked"
    );
    let ids: Vec<_> = receiver.received().iter().map(|r| r.id.clone()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one webhook-id across retries"
    );
}

async fn loop_until_delivered(h: &super::Hooks, endpoint: &str) -> Value {
    h.pump_until(Duration::from_secs(15), async || {
        h.deliveries(endpoint).await[0]["state"] != "pending"
    })
    .await;
    let log = h.deliveries(endpoint).await;
    assert_eq!(log[0]["state"], "succeeded", "{log:?}");
    log[0].clone()
}

/// An endpoint whose signing secret cannot be opened (a corrupt row, a key the hub no longer
/// has) holds up only its own deliveries: the others claimed with them are sent.
#[tokio::test]
async fn an_unreadable_secret_holds_up_only_its_own_endpoint() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let broken = h.endpoint(&receiver.url(), &["*"]).await;
    let good = h
        .endpoint(&format!("{}/good", receiver.url()), &["*"])
        .await;
    sqlx::query("UPDATE webhook_endpoints SET secret = 'not-a-sealed-secret' WHERE id = $1")
        .bind(broken["id"].as_str().unwrap())
        .execute(&h.app.stores.raw_control_pool())
        .await
        .unwrap();
    let user = h.user("uk").await;
    let event = h.record(&user, 1).await;
    h.deliverer().run_once().await;
    let got = receiver.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, event.to_string());
    assert_eq!(got[0].path, "/hook/good");
    let good_log = h.deliveries(good["id"].as_str().unwrap()).await;
    assert_eq!(good_log[0]["state"], "succeeded");
    let waiting = h.deliveries(broken["id"].as_str().unwrap()).await;
    assert_eq!(
        waiting[0]["state"], "pending",
        "kept for when the secret is readable"
    );
}

/// The status is the answer: a 2xx within the timeout counts even if the body behind it is
/// slow (reading it is not waited for), so the receiver does not get the event twice.
#[tokio::test]
async fn a_success_with_a_slow_body_counts_once() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    receiver.set_rule(|_, _| Reply::SlowBody(Duration::from_secs(3)));
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let user = h.user("uk").await;
    h.record(&user, 1).await;
    h.deliverer().run_once().await;
    let log = h.deliveries(endpoint["id"].as_str().unwrap()).await;
    assert_eq!(log[0]["state"], "succeeded", "{log:?}");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(receiver.received().len(), 1);
}
