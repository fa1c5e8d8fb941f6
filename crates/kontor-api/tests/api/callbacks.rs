//! The bank callbacks can only be used by whoever holds their state's secret: a forged state
//! (a connection's or payment's id with anything after it) changes nothing, redirects nowhere
//! and reveals nothing; a genuine one is used once, then only brings the user back; a genuine
//! one that lapsed ends the link.

use kontor_test_support::browser::{Browser, Page};
use serde_json::Value;

use crate::payments::{body, payment, post};
use crate::support::{World, http_settings, query_of, raw, test_api_settings, world, world_with};

/// `GET` a hosted-page URL without following redirects.
async fn raw_get(w: &World, path_and_query: &str) -> (u16, Option<String>, String) {
    raw(w
        .app
        .http
        .get(w.app.url(path_and_query))
        .send()
        .await
        .unwrap())
    .await
}

/// A browser that stops where the bank sends the user back to the hub.
fn bank_only(w: &World) -> Browser {
    Browser::new(&[w.sandbox.url()])
}

/// Takes a user to the bank's login page for a new connection at `bank`.
async fn at_the_bank(w: &World, user: &str, bank: &str) -> (String, Page) {
    let user_id = w.user(user).await;
    let created = w.create_connection(&user_id, None).await;
    let login = w
        .to_bank(&w.browser(), created["connect_url"].as_str().unwrap(), bank)
        .await;
    (created["id"].as_str().unwrap().to_owned(), login)
}

#[tokio::test]
async fn a_forged_connect_callback_changes_nothing_and_reveals_nothing() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (id, login) = at_the_bank(&w, user, bank).await;
        let neutral = raw_get(&w, "/connect/callback?state=garbage").await;
        assert_eq!(neutral.0, 404);
        for forged in [
            format!("{id}.anything"),
            format!("{id}.{}", "A".repeat(43)),
            format!("{id}."),
        ] {
            let (status, location, body) =
                raw_get(&w, &format!("/connect/callback?state={forged}&code=x")).await;
            assert_eq!(status, 404, "{bank}: {body}");
            assert_eq!(location, None, "{bank}: a forged state redirects nowhere");
            // The very page a state naming no connection gets: nothing told.
            assert_eq!(body, neutral.2, "{bank}");
            assert!(!body.contains("pending") && !body.contains(&id), "{body}");
        }
        let connection = w.connection(&id).await;
        assert_eq!(connection["status"], "pending", "{bank}: {connection}");
        assert_eq!(connection["failure_reason"], Value::Null);

        // The user, still at the bank, finishes as if nothing happened.
        let back = w.authenticate(&w.browser(), &login, user).await.left();
        assert_eq!(query_of(&back)["status"], "active", "{bank}: {back}");
    }
    assert!(w.events("&type=connection.expired").await.is_empty());
    assert!(w.events("&type=connection.failed").await.is_empty());
}

#[tokio::test]
async fn a_genuine_callback_is_used_once_then_only_brings_the_user_back() {
    let w = world().await;
    let (id, login) = at_the_bank(&w, "alice", "sonnenbank").await;
    // Authenticate with a browser that stops at the hub's callback, to hold the genuine URL.
    let callback = w.authenticate(&bank_only(&w), &login, "alice").await.left();
    assert!(callback.path().ends_with("/connect/callback"), "{callback}");
    let browser = w.browser();
    let first = browser.open(callback.as_str()).await.left();
    assert_eq!(query_of(&first)["status"], "active");
    // A reload or the back button: back to the tenant, nothing redone.
    let again = browser.open(callback.as_str()).await.left();
    assert_eq!(query_of(&again)["status"], "active");
    assert_eq!(query_of(&again)["connection_id"], id);
    assert_eq!(w.events("&type=connection.active").await.len(), 1);
}

#[tokio::test]
async fn a_lapsed_genuine_state_still_ends_the_link() {
    // Every state lapses the moment it is issued.
    let w = world_with(http_settings(), test_api_settings(), |s| {
        s.state_ttl_seconds = 0;
    })
    .await;
    let (id, login) = at_the_bank(&w, "alice", "sonnenbank").await;
    let callback = w.authenticate(&bank_only(&w), &login, "alice").await.left();
    let back = w.browser().open(callback.as_str()).await.left();
    let query = query_of(&back);
    assert_eq!(query["status"], "expired", "{back}");
    assert_eq!(query["reason"], "link_expired");
    assert_eq!(w.connection(&id).await["status"], "expired");
}

#[tokio::test]
async fn a_forged_payment_callback_changes_nothing_and_reveals_nothing() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created: Value = post(
        &w,
        Some("forged-callback"),
        &body(&user_id, "sonnenbank", "1.00"),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().unwrap();
    let neutral = raw_get(&w, "/pay/callback?state=garbage").await;
    // Before the user went to the bank, and while they are there.
    let browser = w.browser();
    for at_bank in [false, true] {
        if at_bank {
            let page = browser
                .open(created["authorize_url"].as_str().unwrap())
                .await
                .page();
            let login = browser.submit(&page.form("pay").unwrap()).await.page();
            assert_eq!(login.step().as_deref(), Some("login"));
        }
        let before = payment(&w, id).await;
        let (status, location, body) = raw_get(&w, &format!("/pay/callback?state={id}.x")).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(location, None, "a forged state redirects nowhere");
        assert_eq!(body, neutral.2);
        assert!(!body.contains("pending"), "{body}");
        let after = payment(&w, id).await;
        assert_eq!(before["status"], after["status"]);
        assert_eq!(before["history"], after["history"]);
        assert_eq!(before["updated_at"], after["updated_at"], "nothing changed");
    }

    // The genuine return still completes the payment (the page sends the user back to the
    // bank's authorisation they left).
    let page = browser
        .open(created["authorize_url"].as_str().unwrap())
        .await
        .page();
    let login = browser.submit(&page.form("pay").unwrap()).await.page();
    assert_eq!(login.step().as_deref(), Some("login"), "{}", login.body);
    let back = w.authenticate(&browser, &login, "alice").await.left();
    assert_eq!(query_of(&back)["payment_id"], id);
    assert_ne!(query_of(&back)["status"], "rejected", "{back}");
}
