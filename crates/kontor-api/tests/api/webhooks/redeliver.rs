//! `POST /v1/events/{id}/redeliver`: the event again, with the same webhook-id, to every
//! endpoint that wants it or to one named; with clear errors when there is nowhere to send it.

use std::time::Duration;

use kontor_test_support::error_code;
use serde_json::{Value, json};

use super::hooks;
use super::receiver::Receiver;

#[tokio::test]
async fn an_event_is_replayed_with_the_same_webhook_id() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let first = h.endpoint(&receiver.url(), &["*"]).await;
    let second = h.endpoint(&receiver.url(), &["user.erased"]).await;
    let user = h.user("de").await;
    let event = h.record(&user, 7).await;
    h.deliverer().run_once().await;
    receiver.wait_delivered(1, Duration::from_secs(5)).await;

    // Replayed to every endpoint that selects the type: only the first.
    let path = format!("/v1/events/{event}/redeliver");
    let response = h.app.post_json(&path, &h.token, &json!({})).await;
    assert_eq!(response.status(), 202);
    let queued: Value = response.json().await.unwrap();
    assert_eq!(queued["data"].as_array().unwrap().len(), 1);
    assert_eq!(queued["data"][0]["endpoint_id"], first["id"]);
    assert_eq!(queued["data"][0]["redelivery"], true);
    assert_eq!(queued["data"][0]["state"], "pending");

    // To a named endpoint, whatever it selects; an empty body is fine too.
    let named = h
        .app
        .http
        .post(h.app.url(&path))
        .bearer_auth(&h.token)
        .json(&json!({ "endpoint_id": second["id"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 202);
    let bare = h
        .app
        .http
        .post(h.app.url(&path))
        .bearer_auth(&h.token)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 202);

    h.deliverer().run_once().await;
    let got = receiver.wait_delivered(4, Duration::from_secs(5)).await;
    assert!(
        got.iter().all(|r| r.id == event.to_string()),
        "one webhook-id"
    );
    assert!(
        got.windows(2).all(|w| w[0].json == w[1].json),
        "the same body"
    );
    let log = h.deliveries(first["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 3);
    assert_eq!(log.iter().filter(|d| d["redelivery"] == true).count(), 2);
    assert!(log.iter().all(|d| d["state"] == "succeeded"));
    let only_this = h
        .get(&format!(
            "/v1/webhook-endpoints/{}/deliveries?event_id={event}&state=succeeded",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(only_this["data"].as_array().unwrap().len(), 3);
    let one = h.get(&format!("/v1/events/{event}")).await;
    assert_eq!(one["data"]["n"], 7);
}

#[tokio::test]
async fn redelivery_refuses_what_it_cannot_do() {
    let h = hooks().await;
    let user = h.user("uk").await;
    let event = h.record(&user, 1).await;
    let path = format!("/v1/events/{event}/redeliver");
    let post = async |body: Value| h.app.post_json(&path, &h.token, &body).await;

    let nowhere = post(json!({})).await;
    assert_eq!(nowhere.status(), 409);
    assert_eq!(error_code(nowhere).await, "no_webhook_endpoints");

    let endpoint = h.endpoint("http://127.0.0.1:9009/hook", &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    h.app
        .http
        .patch(h.app.url(&format!("/v1/webhook-endpoints/{id}")))
        .bearer_auth(&h.token)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .unwrap();
    let disabled = post(json!({ "endpoint_id": id })).await;
    assert_eq!(disabled.status(), 409);
    assert_eq!(error_code(disabled).await, "webhook_endpoint_disabled");

    for (body, status, code) in [
        (
            json!({ "endpoint_id": "whe_00000000000000000000000000" }),
            404,
            "not_found",
        ),
        (json!({ "endpoint_id": "nope" }), 400, "invalid_id"),
        (json!({ "endpoint": id }), 400, "unknown_field"),
    ] {
        let response = post(body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let text = h
        .app
        .http
        .post(h.app.url(&path))
        .bearer_auth(&h.token)
        .header("content-type", "text/plain")
        .body("endpoint")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(text).await, "unsupported_media_type");

    let unknown = h
        .app
        .post_json(
            "/v1/events/evt_uk_00000000000000000000000000/redeliver",
            &h.token,
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let other = h.app.tenant("Other").await;
    let other_token = h.app.token(&other).await;
    let foreign = h.app.post_json(&path, &other_token, &json!({})).await;
    assert_eq!(foreign.status(), 404);
    assert_eq!(
        h.app
            .get(&format!("/v1/events/{event}"), &other_token)
            .await
            .status(),
        404
    );
}
