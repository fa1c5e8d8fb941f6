//! The event catalogue (`GET /v1/event-types`, the document's `webhooks`) and the test event
//! (`POST /v1/webhook-endpoints/{id}/test`): signed like a delivery, sent to one endpoint only,
//! recorded nowhere, and the receiver's answer reported.

use std::time::Duration;

use kontor_api::limits::Limit;
use kontor_domain::event::EventType;
use kontor_domain::{TenantId, WebhookEndpointId};
use kontor_test_support::{TestApp, error_code};
use serde_json::Value;

use super::receiver::{Receiver, Reply, verify};
use super::{Hooks, hooks, hooks_on, local};
use crate::event_schemas::check_against;

async fn document(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_catalogue_names_every_type_with_its_schema() {
    let h = hooks().await;
    let doc = document(&h.app).await;
    let listed = h.get("/v1/event-types").await;
    let types = listed["data"].as_array().unwrap();
    assert_eq!(types.len(), EventType::ALL.len() + 1);
    for t in EventType::ALL {
        let entry = types
            .iter()
            .find(|e| e["name"] == t.as_str())
            .unwrap_or_else(|| panic!("{t} is not listed"));
        assert_eq!(entry["description"], t.description());
        assert_eq!(entry["selectable"], true);
    }
    for entry in types {
        let name = entry["name"].as_str().unwrap();
        let reference = entry["data_schema"].as_str().unwrap();
        let component = reference
            .strip_prefix("/openapi.json#/components/schemas/")
            .unwrap();
        assert!(
            doc["components"]["schemas"][component].is_object(),
            "{name}: {reference} is not in the document"
        );
        let webhook = &doc["webhooks"][name]["post"];
        assert!(
            webhook.is_object(),
            "{name} is not in the document's webhooks"
        );
        let data = &webhook["requestBody"]["content"]["application/json"]["schema"]["properties"]["data"]
            ["$ref"];
        assert_eq!(data, &format!("#/components/schemas/{component}"), "{name}");
    }
    let test = types.iter().find(|e| e["name"] == "webhook.test").unwrap();
    assert_eq!(test["selectable"], false);
    // Selecting the test event is refused: it is never recorded.
    let response = h
        .app
        .post_json(
            "/v1/webhook-endpoints",
            &h.token,
            &serde_json::json!({"url": "http://127.0.0.1:9/hook", "events": ["webhook.test"]}),
        )
        .await;
    assert_eq!(error_code(response).await, "invalid_event_types");
}

async fn test_event(h: &Hooks, token: &str, id: &str) -> reqwest::Response {
    h.app
        .http
        .post(h.app.url(&format!("/v1/webhook-endpoints/{id}/test")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_test_event_is_signed_like_a_delivery_and_reaches_that_endpoint_only() {
    let h = hooks().await;
    let doc = document(&h.app).await;
    let receiver = Receiver::start().await;
    let bystander = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["connection.active"]).await;
    h.endpoint(&bystander.url(), &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();

    let response = test_event(&h, &h.token, id).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["delivered"], true, "{report}");
    assert_eq!(report["status_code"], 204);
    assert!(report["error"].is_null());
    assert_eq!(report["type"], "webhook.test");
    assert_eq!(report["body_excerpt"], "");

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert!(
        verify(endpoint["secret"].as_str().unwrap(), got),
        "signed with the secret"
    );
    assert_eq!(got.id, report["event_id"].as_str().unwrap());
    assert_eq!(got.json["type"], "webhook.test");
    assert_eq!(got.json["data"]["endpoint_id"], id);
    check_against(&doc, &got.json);

    // Recorded nowhere, sent nowhere else: no event, no delivery, even after the worker ran.
    h.deliverer().run_once().await;
    assert!(
        h.get("/v1/events").await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(h.deliveries(id).await.is_empty());
    assert!(bystander.received().is_empty());
    let events = h.app.get(&format!("/v1/events/{}", got.id), &h.token).await;
    assert_eq!(events.status(), 404);
}

#[tokio::test]
async fn the_receivers_answer_is_reported_whatever_it_is() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();

    // A redirect is not followed, and its body is shown.
    receiver.set_rule(|_, _| Reply::Redirect);
    let report: Value = test_event(&h, &h.token, id).await.json().await.unwrap();
    assert_eq!(report["delivered"], false);
    assert_eq!(report["status_code"], 302);
    assert_eq!(report["error"], "redirect");
    assert_eq!(report["body_excerpt"], "moved");
    assert_eq!(
        receiver.received().len(),
        1,
        "the redirect was not followed"
    );

    receiver.set_rule(|_, _| Reply::Status(503));
    let report: Value = test_event(&h, &h.token, id).await.json().await.unwrap();
    assert_eq!(report["status_code"], 503);
    assert_eq!(report["error"], "http_status");

    // Too slow: the webhook timeout (800 ms here) bounds the request.
    receiver.set_rule(|_, _| Reply::Hang);
    let report: Value = test_event(&h, &h.token, id).await.json().await.unwrap();
    assert_eq!(report["error"], "timeout");
    assert!(report["status_code"].is_null());
    assert!(report["body_excerpt"].is_null());

    // Nobody listening.
    drop(receiver);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report: Value = test_event(&h, &h.token, id).await.json().await.unwrap();
    assert_eq!(report["error"], "connection_failed", "{report}");
    assert_eq!(report["delivered"], false);
}

#[tokio::test]
async fn another_tenants_endpoint_is_not_found_and_bad_ids_are_refused() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    let other = h.app.tenant("Other").await;
    let token = h.app.token(&other).await;
    let response = test_event(&h, &token, id).await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "not_found");
    let response = test_event(&h, &h.token, "whe_nope").await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_id");
    assert!(receiver.received().is_empty());
}

/// The address rules of deliveries hold for the test event: an endpoint whose host now
/// resolves to a private address (here: a hub that allows none) gets nothing.
#[tokio::test]
async fn the_test_event_obeys_the_address_rules() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let endpoint = h
        .endpoint(&format!("http://localhost:{}/hook", receiver.port), &["*"])
        .await;
    let id = WebhookEndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap();
    let strict = super::ssrf::strict_hub(&h.app);
    let tenant: &TenantId = &h.tenant.tenant_id;
    let report = strict.test_webhook_endpoint(tenant, &id).await.unwrap();
    assert!(!report.delivered);
    assert_eq!(
        report.error.map(|e| e.as_str()),
        Some("address_not_allowed")
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn test_events_are_rate_limited_per_tenant() {
    let mut api = crate::support::test_api_settings();
    api.rate_limits.webhook_tests_per_tenant = Limit::new(2, 1);
    let app = TestApp::builder()
        .hub_settings(local)
        .api_settings(api)
        .spawn()
        .await;
    let h = hooks_on(app).await;
    let receiver = Receiver::start().await;
    let endpoint = h.endpoint(&receiver.url(), &["*"]).await;
    let id = endpoint["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(test_event(&h, &h.token, id).await.status(), 200);
    }
    let refused = test_event(&h, &h.token, id).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "rate_limited");
    assert_eq!(receiver.received().len(), 2);
}
