//! A rejected payment says why, in the bank's words: here its error code when it refused the
//! initiation (insufficient funds and a user who left the bank's authorisation are checked in
//! `payments`).

use kontor_test_support::browser::Browser;
use serde_json::{Value, json};

use crate::payments::{body, payment, post};
use crate::support::world;

#[tokio::test]
async fn a_rejected_payment_carries_the_banks_reason() {
    let w = world().await;
    let user_id = w.user("alice").await;

    // Refused at initiation: a debtor account that is not at this bank.
    let mut foreign = body(&user_id, "sonnenbank", "1.00");
    foreign["debtor_account"] = json!({"iban": "DE89370400440532013000"});
    let created: Value = post(&w, Some("foreign-debtor"), &foreign)
        .await
        .json()
        .await
        .unwrap();
    let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);
    let page = browser
        .open(created["authorize_url"].as_str().unwrap())
        .await
        .page();
    let back = browser.submit(&page.form("pay").unwrap()).await.left();
    let id = created["id"].as_str().unwrap();
    let refused = payment(&w, id).await;
    assert_eq!(refused["status"], "rejected", "{refused} ({back})");
    assert_eq!(refused["status_reason"], "FORMAT_ERROR", "{refused}");
    let last = refused["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "FORMAT_ERROR");
    let events = w.events("&type=payment.status_changed").await;
    assert!(
        events
            .iter()
            .any(|e| e["data"]["payment_id"] == id && e["data"]["reason"] == "FORMAT_ERROR"),
        "{events:?}"
    );
}
