//! Bodies have the shapes the document gives them: wherever it says object, only an object is
//! accepted (serde would take an array of the field values too), and an optional body may be
//! `null`. Type errors say what JSON was expected, not which Rust type.

use kontor_test_support::error_code;
use serde_json::{Value, json};

use super::{document, fixture, operations, resolve};

/// The object's values in order: what serde's derived structs would take in its place.
fn as_array(object: &Value) -> Value {
    Value::Array(object.as_object().unwrap().values().cloned().collect())
}

#[tokio::test]
async fn arrays_are_refused_wherever_the_document_says_object() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let mut nested = 0;
    for op in operations(&doc) {
        if !op.json_body() {
            continue;
        }
        let schema = resolve(
            &doc,
            &op.spec["requestBody"]["content"]["application/json"]["schema"],
        );
        let base = f.valid_body(&op);
        let mut cases = vec![(".".to_owned(), as_array(&base))];
        for (field, property) in schema["properties"].as_object().unwrap() {
            if resolve(&doc, property).get("properties").is_none() {
                continue;
            }
            let value = base.get(field).unwrap_or_else(|| {
                panic!("{}: the valid body lacks the object {field}", op.label())
            });
            let mut body = base.clone();
            body[field] = as_array(value);
            cases.push((field.clone(), body));
            nested += 1;
        }
        for (field, body) in cases {
            let response = f
                .request(&op, &f.path(&op), Some(&f.world.token))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{} {field}: {body}", op.label());
            let envelope: Value = response.json().await.unwrap();
            assert_eq!(envelope["error"]["code"], "invalid_type", "{}", op.label());
            let message = envelope["error"]["message"].as_str().unwrap();
            assert!(
                !message.contains("struct") && message.contains("object"),
                "{}: {message}",
                op.label()
            );
        }
    }
    assert!(nested >= 3, "only {nested} nested objects");
}

#[tokio::test]
async fn a_payment_with_array_fields_is_refused_and_creates_nothing() {
    let f = fixture().await;
    let doc = document(&f.world).await;
    let op = operations(&doc)
        .into_iter()
        .find(|op| op.path == "/v1/payments" && op.method == reqwest::Method::POST)
        .unwrap();
    let valid = f.valid_body(&op);
    let mut body = valid.clone();
    body["amount"] = json!(["12.34", "EUR"]);
    body["creditor"] = json!([
        "Hausverwaltung Müller",
        "DE89370400440532013000",
        null,
        null
    ]);
    body["debtor_account"] = json!(["DE21642494690527912747", null, null]);
    let response = f
        .request(&op, "/v1/payments", Some(&f.world.token))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_type");
    let list = format!("/v1/payments?user_id={}", f.user);
    let payments: Value = f
        .world
        .app
        .get(&list, &f.world.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments["data"], json!([]));
    // The same payment as objects is created: the refusal was about the shape alone.
    let response = f
        .request(&op, "/v1/payments", Some(&f.world.token))
        .json(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_optional_body_may_be_null() {
    let f = fixture().await;
    let path = format!("/v1/events/{}/redeliver", f.event);
    for body in ["null", " null ", "{}"] {
        let response = f
            .world
            .app
            .http
            .post(f.world.app.url(&path))
            .bearer_auth(&f.world.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{body}");
    }
    // An endpoint id that is not an id is still refused, and arrays are not objects here either.
    for (body, code) in [
        (r#"{"endpoint_id": 5}"#, "invalid_type"),
        (r#"["whe_x"]"#, "invalid_type"),
        ("nul", "malformed_json"),
    ] {
        let response = f
            .world
            .app
            .http
            .post(f.world.app.url(&path))
            .bearer_auth(&f.world.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
}
