//! Events checked against the OpenAPI document: each delivery body (the event as the log shows
//! it) must validate against the document's `webhooks` entry for its type, whose `data` is the
//! payload type the hub built it from. `World::events` runs every event it reads through this,
//! so every flow test that looks at events checks their payloads too.

use serde_json::{Value, json};

/// The body schema of a delivery of `event_type`, with the document's components to resolve
/// its references against.
fn envelope_schema(doc: &Value, event_type: &str) -> Value {
    let body = &doc["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]["schema"];
    assert!(
        body.is_object(),
        "the document has no webhook entry for {event_type}"
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [body],
    })
}

/// Panics with the first violation when an event does not match its documented schema.
pub fn check_against(doc: &Value, event: &Value) {
    let event_type = event["type"].as_str().expect("an event type");
    let schema = envelope_schema(doc, event_type);
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    if let Err(error) = validator.validate(event) {
        panic!("{event_type} does not match its schema: {error}\n{event:#}");
    }
}
