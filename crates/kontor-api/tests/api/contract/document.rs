//! What the document says about itself: ids that generated clients can rely on, parameters with
//! the bounds the server enforces, closed sets of words as enums, and, for every operation, the
//! error answers it really gives, each with the error envelope.

use std::collections::HashSet;

use kontor_api::pagination::MAX_LIMIT;
use kontor_domain::{
    AccountId, ConnectionId, DeliveryId, EventId, PaymentId, Region, UserId, WebhookEndpointId,
};
use kontor_test_support::error_code;
use regex::Regex;
use serde_json::{Value, json};

use super::{document, fixture, operations, resolve};

#[tokio::test]
async fn operation_ids_are_unique_and_every_operation_has_one() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let mut seen = HashSet::new();
    for op in operations(&doc) {
        assert!(!op.id().is_empty(), "{} has no operationId", op.label());
        assert!(seen.insert(op.id().to_owned()), "{} repeats", op.label());
    }
    assert!(seen.contains("listWebhookEndpoints") && seen.contains("listWebhookDeliveries"));
}

#[tokio::test]
async fn id_parameters_carry_the_pattern_of_their_kind() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let uk = Region::parse("uk").unwrap();
    let samples = [
        ("UserId", UserId::generate(&uk).to_string()),
        ("ConnectionId", ConnectionId::generate(&uk).to_string()),
        ("AccountId", AccountId::generate(&uk).to_string()),
        ("EventId", EventId::generate(&uk).to_string()),
        ("PaymentId", PaymentId::generate(&uk).to_string()),
        (
            "WebhookEndpointId",
            WebhookEndpointId::generate().to_string(),
        ),
        ("DeliveryId", DeliveryId::generate(&uk).to_string()),
    ];
    let mut checked = 0;
    for op in operations(&doc) {
        for param in op.spec["parameters"].as_array().into_iter().flatten() {
            if param["in"] != "path" {
                continue;
            }
            let reference = param["schema"]["$ref"].as_str().unwrap_or_default();
            let kind = reference.trim_start_matches("#/components/schemas/");
            let pattern = resolve(&doc, &param["schema"])["pattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: {} has no pattern", op.label(), param["name"]));
            let pattern = Regex::new(pattern).unwrap();
            let (_, sample) = samples
                .iter()
                .find(|(name, _)| *name == kind)
                .unwrap_or_else(|| panic!("{}: unknown id kind {kind:?}", op.label()));
            assert!(pattern.is_match(sample), "{}: {sample}", op.label());
            for (other, wrong) in &samples {
                if *other != kind {
                    assert!(!pattern.is_match(wrong), "{}: {wrong}", op.label());
                }
            }
            assert!(!pattern.is_match("0"), "{}", op.label());
            checked += 1;
        }
    }
    assert!(checked >= 17, "only {checked} path parameters");
}

#[tokio::test]
async fn limits_and_words_are_bounded_as_the_server_enforces() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let mut limits = 0;
    for op in operations(&doc) {
        for param in op.spec["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "limit" {
                let schema = resolve(&doc, &param["schema"]);
                assert_eq!(schema["minimum"], json!(1), "{}", op.label());
                assert_eq!(schema["maximum"], json!(MAX_LIMIT), "{}", op.label());
                limits += 1;
            }
        }
    }
    assert!(limits >= 7, "only {limits} limit parameters");
    // Every field that holds one of a closed set of words says which.
    let words = [
        "status",
        "state",
        "kind",
        "type",
        "scheme",
        "standard",
        "failure_reason",
        "disabled_reason",
        "error",
        "region",
        "language",
    ];
    let mut enums = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if !words.contains(&field.as_str()) {
                continue;
            }
            let resolved = resolve(&doc, property);
            if resolved["type"] == "object" || resolved.get("properties").is_some() {
                continue; // a nested object named like a word (a delivery attempt's error is not)
            }
            assert!(
                resolved["enum"].is_array(),
                "{name}.{field} is not an enum: {resolved}"
            );
            enums += 1;
        }
    }
    assert!(enums >= 15, "only {enums} enums");
    assert_eq!(
        doc["components"]["schemas"]["Region"]["enum"],
        json!(["de", "uk"])
    );
    // The directory's banks are the bank ids a request may name.
    let mut banks: Vec<&str> = doc["components"]["schemas"]["BankId"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    banks.sort_unstable();
    assert_eq!(banks, ["banque-lumiere", "sonnenbank", "thames-bank"]);
    // Webhook URLs have the shape of every other https URL the API takes.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["CreateWebhookEndpointRequest"]["properties"]["url"]["pattern"],
        schemas["HttpsUrl"]["pattern"]
    );
}

/// Each error the document promises an operation, provoked, answered in the envelope.
#[tokio::test]
async fn every_operation_documents_the_errors_it_answers() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let mut probes = 0;
    for op in operations(&doc) {
        let body = op.json_body().then(|| f.valid_body(&op));
        let send = |path: String, token: Option<String>, body: Option<Value>| {
            let mut request = f.request(&op, &path, token.as_deref());
            if let Some(body) = body {
                request = request.json(&body);
            }
            request.send()
        };
        let mut expect = |status: u16, response: reqwest::Response, what: &str| {
            assert_eq!(response.status().as_u16(), status, "{}: {what}", op.label());
            assert!(
                op.documents(status),
                "{}: {status} undocumented",
                op.label()
            );
            let described = &op.spec["responses"][status.to_string()];
            assert_eq!(
                described["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorEnvelope",
                "{}: {status}",
                op.label()
            );
            probes += 1;
            response
        };
        let path = f.path(&op);
        if let Some(scope) = op.scope() {
            let response = send(path.clone(), None, body.clone()).await.unwrap();
            error_code(expect(401, response, "no token")).await;
            let token = f.token_without(&scope).await;
            let response = send(path.clone(), Some(token), body.clone()).await.unwrap();
            let code = error_code(expect(403, response, "wrong scope")).await;
            assert_eq!(code, "insufficient_scope");
        }
        let token = Some(f.world.token.clone());
        if op.path.contains("{id}") {
            let malformed = op.path.replace("{id}", "0");
            let response = send(malformed, token.clone(), body.clone()).await.unwrap();
            assert_eq!(
                error_code(expect(400, response, "malformed id")).await,
                "invalid_id"
            );
            // Well formed, in a served region, but no such resource for this tenant.
            let unknown = f.unknown_path(&op);
            let response = send(unknown.clone(), token.clone(), body.clone())
                .await
                .unwrap();
            assert_eq!(
                error_code(expect(404, response, &unknown)).await,
                "not_found"
            );
        }
        if op.has_body() {
            let response = f
                .request(&op, &path, token.as_deref())
                .header("content-type", "text/plain")
                .body("hello")
                .send()
                .await
                .unwrap();
            error_code(expect(415, response, "text body")).await;
        }
        let limited = op.spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "limit");
        if limited {
            let response = send(format!("{path}?limit=0"), token.clone(), None)
                .await
                .unwrap();
            error_code(expect(400, response, "limit=0")).await;
        }
        if op.path.starts_with("/v1/") {
            assert!(op.documents(429), "{}: 429 undocumented", op.label());
        }
    }
    assert!(probes > 80, "only {probes} probes");
}

/// The request examples work as they are.
#[tokio::test]
async fn request_examples_are_accepted() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let schemas = &doc["components"]["schemas"];
    // A property's own example, else its schema's (a region is one of the served ones).
    let example = |schema: &str, field: &str| {
        let property = &schemas[schema]["properties"][field];
        let resolved = resolve(&doc, property);
        [
            &property["example"],
            &resolved["example"],
            &resolved["examples"][0],
            &resolved["enum"][0],
        ]
        .into_iter()
        .find(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| panic!("{schema}.{field} has no example"))
    };

    let connection = json!({
        "user_id": f.user,
        "bank_id": example("CreateConnectionRequest", "bank_id"),
        "redirect_uri": example("CreateConnectionRequest", "redirect_uri"),
        "access": [schemas["Access"]["enum"][0]],
        "language": example("CreateConnectionRequest", "language"),
    });
    let response = f
        .world
        .app
        .post_json("/v1/connections", &f.world.token, &connection)
        .await;
    assert_eq!(response.status(), 201, "{connection}");

    let user = json!({
        "external_id": example("CreateUserRequest", "external_id"),
        "region": example("CreateUserRequest", "region"),
    });
    let response = f
        .world
        .app
        .post_json("/v1/users", &f.world.token, &user)
        .await;
    assert_eq!(response.status(), 201, "{user}");

    let url = example("CreateWebhookEndpointRequest", "url");
    let endpoint =
        json!({ "url": url, "events": example("CreateWebhookEndpointRequest", "events") });
    let response = f
        .world
        .app
        .post_json("/v1/webhook-endpoints", &f.world.token, &endpoint)
        .await;
    // The host must resolve to public addresses. Where this machine resolves names, the example
    // is created; where it cannot resolve any, resolution must be the only thing refused.
    let host = url::Url::parse(url.as_str().unwrap()).unwrap();
    let host = host.host_str().unwrap().to_owned();
    if tokio::net::lookup_host((host.as_str(), 443)).await.is_ok() {
        assert_eq!(response.status(), 201, "{endpoint}");
    } else {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_webhook_url");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.ends_with("does not resolve"), "{message}");
    }
    assert!(!host.ends_with(".example") && !host.ends_with(".invalid") && !host.ends_with(".test"));
}
