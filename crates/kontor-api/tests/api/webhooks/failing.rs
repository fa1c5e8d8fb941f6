//! An endpoint that keeps failing: each delivery is retried through its schedule and then marked
//! failed; if nothing at all reached the endpoint meanwhile, the hub disables it and records a
//! `webhook_endpoint.disabled` event (which other endpoints receive). An endpoint that fails only
//! some deliveries stays enabled.

use std::time::Duration;

use kontor_domain::WebhookEndpointId;
use serde_json::json;

use super::hooks;
use super::receiver::{Receiver, Reply};

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_with_an_event() {
    let h = hooks().await;
    let broken = Receiver::start().await;
    broken.set_rule(|_, _| Reply::Status(500));
    let watcher = Receiver::start().await;
    let failing = h.endpoint(&broken.url(), &["*"]).await;
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    h.endpoint(&watcher.url(), &["webhook_endpoint.disabled"])
        .await;

    let user = h.user("uk").await;
    let event = h.record(&user, 1).await;
    let id = failing_id.clone();
    h.pump_until(Duration::from_secs(20), async || {
        h.get(&format!("/v1/webhook-endpoints/{id}")).await["status"] == "disabled"
    })
    .await;

    let endpoint = h.get(&format!("/v1/webhook-endpoints/{failing_id}")).await;
    assert_eq!(endpoint["disabled_reason"], "failing");
    let log = h.deliveries(&failing_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["state"], "failed");
    assert_eq!(log[0]["failure_reason"], "retries_exhausted");
    assert_eq!(
        log[0]["attempts"].as_array().unwrap().len(),
        4,
        "the whole schedule"
    );
    assert!(log[0]["next_attempt_at"].is_null());
    assert_eq!(broken.received().len(), 4);
    assert!(broken.received().iter().all(|r| r.id == event.to_string()));

    // The tenant is told, in the log and by webhook to the endpoint that wants it.
    let events = h.get("/v1/events?type=webhook_endpoint.disabled").await;
    let told = &events["data"][0];
    assert_eq!(told["data"]["endpoint_id"], failing_id.as_str());
    assert_eq!(told["data"]["reason"], "failing");
    assert!(told["user_id"].is_null());
    h.deliverer().run_once().await;
    let got = watcher.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].json["type"], "webhook_endpoint.disabled");
    assert_eq!(got[0].id, told["id"].as_str().unwrap());

    // A disabled endpoint gets nothing new; enabled again, it gets what comes next.
    h.record(&user, 2).await;
    h.deliverer().run_once().await;
    assert_eq!(broken.received().len(), 4);
    broken.set_rule(|_, _| Reply::Status(204));
    let response = h
        .app
        .http
        .patch(h.app.url(&format!("/v1/webhook-endpoints/{failing_id}")))
        .bearer_auth(&h.token)
        .json(&json!({ "status": "enabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    h.record(&user, 3).await;
    h.deliverer().run_once().await;
    let delivered = broken.wait_delivered(1, Duration::from_secs(5)).await;
    assert_eq!(delivered[0].json["data"]["n"], 3);
}

#[tokio::test]
async fn an_endpoint_that_fails_only_some_deliveries_stays_enabled() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let fussy = h.user("de").await;
    let fine = h.user("uk").await;
    let refused = fussy.to_string();
    receiver.set_rule(move |r, _| {
        if r.user() == refused {
            Reply::Status(422)
        } else {
            Reply::Status(204)
        }
    });
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    h.record(&fussy, 1).await;
    // Something gets through while the fussy delivery is being retried.
    let deliverer = h.deliverer();
    deliverer.run_once().await;
    h.record(&fine, 2).await;
    h.pump_until(Duration::from_secs(20), async || {
        h.deliveries(&id)
            .await
            .iter()
            .all(|d| d["state"] != "pending")
    })
    .await;
    let log = h.deliveries(&id).await;
    let states: Vec<_> = log.iter().map(|d| d["state"].clone()).collect();
    assert_eq!(states, vec![json!("failed"), json!("succeeded")]);
    assert_eq!(
        h.get(&format!("/v1/webhook-endpoints/{id}")).await["status"],
        "enabled"
    );
    assert!(
        h.get("/v1/events?type=webhook_endpoint.disabled").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The hub disabled a failing endpoint and died before recording the event that says so: the
/// deliveries still queued for the endpoint record it when they are given up — once, however
/// many of them there are and in whichever cells.
#[tokio::test]
async fn the_disabled_event_is_recorded_after_a_crash_once() {
    let h = hooks().await;
    let broken = Receiver::start().await;
    broken.set_rule(|_, _| Reply::Status(500));
    let failing = h.endpoint(&broken.url(), &["*"]).await;
    let failing_id = failing["id"].as_str().unwrap().to_owned();
    for region in ["uk", "de"] {
        let user = h.user(region).await;
        h.record(&user, 1).await;
    }
    h.deliverer().run_once().await;
    assert_eq!(broken.received().len(), 2, "a first attempt each");

    // What the worker did before it died: the endpoint is disabled, no event recorded.
    let id = WebhookEndpointId::parse(&failing_id).unwrap();
    assert!(
        h.app
            .hub
            .control()
            .disable_failing_endpoint(&id, h.app.clock.now())
            .await
            .unwrap()
    );
    let disabled_events = async || {
        h.get("/v1/events?type=webhook_endpoint.disabled").await["data"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(disabled_events().await.is_empty());

    let id = failing_id.clone();
    h.pump_until(Duration::from_secs(10), async || {
        h.deliveries(&id)
            .await
            .iter()
            .all(|d| d["state"] == "failed")
    })
    .await;
    let log = h.deliveries(&failing_id).await;
    assert!(
        log.iter()
            .all(|d| d["failure_reason"] == "endpoint_disabled")
    );
    let told = disabled_events().await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["data"]["endpoint_id"], failing_id.as_str());
    assert_eq!(told[0]["data"]["reason"], "failing");
    h.deliverer().run_once().await;
    assert_eq!(disabled_events().await.len(), 1);
    assert_eq!(
        broken.received().len(),
        2,
        "nothing sent to a disabled endpoint"
    );
}
