//! Rotating a signing secret: the new one is shown once; for a day every delivery carries two
//! signatures, one per secret, so a receiver verifies with either while it switches over.

use std::time::Duration;

use kontor_domain::time::Timestamp;
use serde_json::{Value, json};

use super::hooks;
use super::receiver::{Receiver, verify};

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
    let h = hooks().await;
    let receiver = Receiver::start().await;
    let created = h.endpoint(&receiver.url(), &["*"]).await;
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();

    let response = h
        .app
        .post_json(
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            &h.token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until =
        Timestamp::parse_rfc3339(rotated["previous_secret_expires_at"].as_str().unwrap()).unwrap();
    let in_a_day = Timestamp::now().plus_seconds(86_400).unix_seconds();
    assert!((until.unix_seconds() - in_a_day).abs() < 60, "{rotated}");

    let user = h.user("uk").await;
    h.record(&user, 1).await;
    h.deliverer().run_once().await;
    let first = &receiver.wait_delivered(1, Duration::from_secs(5)).await[0];
    assert_eq!(first.signature.split(' ').count(), 2, "{}", first.signature);
    assert!(
        verify(&old, first),
        "receivers on the old secret still verify"
    );
    assert!(verify(&new, first), "receivers on the new secret verify");

    // Once the overlap is over, only the new secret signs.
    let control = h.app.stores.control.database().pool().clone();
    sqlx::query("UPDATE webhook_endpoints SET previous_expires_at = $1 WHERE id = $2")
        .bind(Timestamp::now().plus_seconds(-1).unix_micros())
        .bind(id)
        .execute(&control)
        .await
        .unwrap();
    h.record(&user, 2).await;
    h.deliverer().run_once().await;
    let second = &receiver.wait_delivered(2, Duration::from_secs(5)).await[1];
    assert_eq!(second.signature.split(' ').count(), 1);
    assert!(verify(&new, second));
    assert!(!verify(&old, second));
    let shown = h.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert!(
        shown["previous_secret_expires_at"].is_null(),
        "an overlap that is over is not shown: {shown}"
    );

    // The sealed secrets are not readable in the database.
    let stored: (String, Option<String>) =
        sqlx::query_as("SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .fetch_one(&control)
            .await
            .unwrap();
    assert!(stored.0.starts_with("s1.") && !stored.0.contains(&new[6..]));
    assert!(!stored.1.unwrap_or_default().contains(&old[6..]));
    assert!(
        h.get(&format!("/v1/webhook-endpoints/{id}"))
            .await
            .get("secret")
            .is_none()
    );
}
