//! `POST /v1/payments/{id}/cancel` against the sandbox bank: before the user authorised (at the
//! hub, the link stops working), after (at a Berlin Group bank until settlement; refused for UK
//! domestic and instant payments), while the user is at the bank's SCA, and racing the worker
//! that resumes a step toward the bank — always ending in one state the hub and the bank agree on.

use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::FaultConfig;
use kontor_test_support::Backend;
use kontor_test_support::browser::Landing;
use kontor_test_support::error_code;
use serde_json::Value;

use crate::payments::{authorise, body, payment, post, settle};
use crate::support::{World, query_of, world, world_on};

async fn cancel(w: &World, id: &str) -> reqwest::Response {
    w.app
        .http
        .post(w.app.url(&format!("/v1/payments/{id}/cancel")))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap()
}

/// Cancels `id`, asking again while another step holds the payment (`payment_busy`, as a client
/// would): the worker's step may keep its lease a moment after it returned on a loaded machine.
async fn cancel_once_free(w: &World, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let response = cancel(w, id).await;
        let status = response.status().as_u16();
        if status == 200 {
            return;
        }
        let code = error_code(response).await;
        assert!(
            status == 409 && code == "payment_busy" && std::time::Instant::now() < deadline,
            "the cancel after the worker's step: {status} {code}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn create(w: &World, user_id: &str, bank: &str, key: &str, amount: &str) -> Value {
    let response = post(w, Some(key), &body(user_id, bank, amount)).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// The bank's record of the hub's payment `amount` at `bank` (amounts are unique per test).
fn at_bank(w: &World, bank: &str, amount: &str) -> Vec<kontor_sandbox_bank::PaymentRecord> {
    w.sandbox
        .payments()
        .into_iter()
        .filter(|p| p.bank_id == bank && p.amount == amount)
        .collect()
}

fn last_reason(view: &Value) -> Option<&str> {
    view["history"].as_array()?.last()?["reason"].as_str()
}

async fn before_authorisation(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let created = create(&w, &user_id, bank, &format!("{bank}-early"), "2.10").await;
        let id = created["id"].as_str().unwrap();
        let url = created["authorize_url"].as_str().unwrap();

        let response = cancel(&w, id).await;
        assert_eq!(response.status(), 200, "{bank}");
        let cancelled: Value = response.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
        assert_eq!(cancelled["status_reason"], "tenant_cancelled");
        assert_eq!(last_reason(&cancelled), Some("tenant_cancelled"));
        assert!(cancelled["authorize_url"].is_null(), "{cancelled}");

        // The authorisation link no longer leads to the bank.
        let browser = w.browser();
        let page = browser.open(url).await.page();
        assert!(page.form("pay").is_none(), "{}", page.body);
        assert!(page.body.contains("cancelled"), "{}", page.body);
        assert!(
            at_bank(&w, bank, "2.10").is_empty(),
            "nothing reached the bank"
        );

        // Cancelling again answers the same; the event was emitted once.
        let again = cancel(&w, id).await;
        assert_eq!(again.status(), 200);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["history"], cancelled["history"]);
        let events: Vec<Value> = w
            .events("&type=payment.status_changed")
            .await
            .into_iter()
            .filter(|e| e["data"]["payment_id"] == id)
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0]["data"]["status"], "cancelled");
        assert_eq!(events[0]["data"]["previous_status"], "pending");
        assert_eq!(events[0]["data"]["reason"], "tenant_cancelled");
    }

    // Another tenant's payment does not exist; an unknown or malformed id neither.
    let user_id = w.user("alice").await;
    let created = create(&w, &user_id, "sonnenbank", "theirs", "2.11").await;
    let other = w.app.tenant("Other").await;
    let other_token = w.app.token(&other).await;
    let response = w
        .app
        .http
        .post(w.app.url(&format!(
            "/v1/payments/{}/cancel",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        payment(&w, created["id"].as_str().unwrap()).await["status"],
        "pending"
    );
    let response = cancel(&w, "pay_de_00000000000000000000000000").await;
    assert_eq!(response.status(), 404);
    let response = cancel(&w, "nope").await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_id");
}

#[tokio::test]
async fn before_authorisation_the_hub_cancels_on_sqlite() {
    before_authorisation(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn before_authorisation_the_hub_cancels_on_postgres() {
    before_authorisation(
        Backend::Postgres,
        "api::payment_cancel::before_authorisation_the_hub_cancels_on_postgres",
    )
    .await;
}

async fn after_authorisation(backend: Backend, test: &str) {
    let Some(w) = world_on(backend, test).await else {
        return;
    };
    // A SEPA credit transfer waits for the bank's settlement cycle: it can still be stopped.
    let alice = w.user("alice").await;
    let created = create(&w, &alice, "sonnenbank", "sct", "3.10").await;
    let id = created["id"].as_str().unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "alice").await;
    assert_eq!(payment(&w, id).await["status"], "authorised");
    assert!(at_bank(&w, "sonnenbank", "3.10")[0].executed);
    let response = cancel(&w, id).await;
    assert_eq!(response.status(), 200);
    let cancelled: Value = response.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let history = cancelled["history"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["bank_status"],
        "CANC",
        "{cancelled}"
    );
    let ledger = at_bank(&w, "sonnenbank", "3.10");
    assert_eq!(ledger.len(), 1);
    assert!(!ledger[0].executed, "the bank stopped it: {ledger:?}");
    assert_eq!(ledger[0].status.iso(), "CANC");
    // Polling does not bring it back.
    assert_eq!(settle(&w, id).await["status"], "cancelled");

    // An instant one has gone through by then: refused, and nothing changes.
    let mut instant = body(&alice, "sonnenbank", "3.20");
    instant["instant"] = true.into();
    let created: Value = post(&w, Some("inst"), &instant).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "alice").await;
    let before = payment(&w, id).await;
    let response = cancel(&w, id).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "payment_not_cancellable");
    let after = payment(&w, id).await;
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["history"], before["history"]);
    assert_eq!(settle(&w, id).await["status"], "completed");

    // A UK domestic payment the user authorised cannot be cancelled.
    let bob = w.user("bob").await;
    let created = create(&w, &bob, "thames-bank", "uk", "3.30").await;
    let id = created["id"].as_str().unwrap();
    authorise(&w, created["authorize_url"].as_str().unwrap(), "bob").await;
    let response = cancel(&w, id).await;
    assert_eq!(response.status(), 409);
    let code = error_code(response).await;
    assert_eq!(code, "payment_not_cancellable");
    let done = settle(&w, id).await;
    assert_eq!(done["status"], "completed");
    // Nor can a final payment.
    let response = cancel(&w, id).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "payment_not_cancellable");
    assert_eq!(at_bank(&w, "thames-bank", "3.30").len(), 1);
}

#[tokio::test]
async fn after_authorisation_the_bank_decides_on_sqlite() {
    after_authorisation(Backend::Sqlite, "sqlite").await;
}

#[tokio::test]
async fn after_authorisation_the_bank_decides_on_postgres() {
    after_authorisation(
        Backend::Postgres,
        "api::payment_cancel::after_authorisation_the_bank_decides_on_postgres",
    )
    .await;
}

/// The tenant cancels while the user is at the bank's SCA page; the user then authenticates.
/// Berlin Group: the payment was cancelled at the bank, whose SCA then fails. UK: the consent
/// gets authorised, but the hub never submits the payment. Either way no money moves and the
/// user is sent back to the tenant with `cancelled`.
#[tokio::test]
async fn a_cancel_while_the_user_is_at_the_bank_wins() {
    let w = world().await;
    for (user, bank, amount) in [
        ("alice", "sonnenbank", "4.10"),
        ("bob", "thames-bank", "4.20"),
    ] {
        let user_id = w.user(user).await;
        let created = create(&w, &user_id, bank, &format!("{bank}-sca"), amount).await;
        let id = created["id"].as_str().unwrap();
        let browser = w.browser();
        let page = browser
            .open(created["authorize_url"].as_str().unwrap())
            .await
            .page();
        let login = browser.submit(&page.form("pay").unwrap()).await.page();
        assert_eq!(login.step().as_deref(), Some("login"), "{}", login.body);

        let response = cancel(&w, id).await;
        assert_eq!(response.status(), 200, "{bank}");

        let form = login
            .form("login-form")
            .unwrap()
            .set("username", user)
            .set("password", "sandbox");
        let next = browser.submit(&form).await.page();
        if next.step().as_deref() == Some("failed") {
            // Berlin Group: the bank cancelled the payment, so its SCA ends as failed; the
            // user goes back through the hub, which keeps the payment cancelled.
            assert_eq!(bank, "sonnenbank");
            if let Some(link) = next.link("return") {
                let back = browser.open(link.as_str()).await.left();
                assert_eq!(query_of(&back)["status"], "cancelled", "{bank}: {back}");
            }
        } else {
            // UK: the consent is authorised at the bank, but the hub never submits it.
            assert_eq!(next.step().as_deref(), Some("otp"), "{}", next.body);
            let mut landing = browser
                .submit(&next.form("otp-form").unwrap().set("otp", "123456"))
                .await;
            if let Landing::Page(page) = &landing
                && page.step().as_deref() == Some("accounts")
            {
                landing = browser
                    .submit(&page.form("accounts-form").unwrap().check_all())
                    .await;
            }
            let back = landing.left();
            assert_eq!(query_of(&back)["status"], "cancelled", "{bank}: {back}");
        }
        let done = settle(&w, id).await;
        assert_eq!(done["status"], "cancelled", "{bank}: {done}");
        assert!(
            at_bank(&w, bank, amount).iter().all(|p| !p.executed),
            "{bank}: no money moved"
        );
    }
}

/// A cancel racing the worker as it resumes a step toward the bank. Each round leaves a
/// payment mid-step (a Berlin Group initiation whose answer was lost; a UK submission whose
/// token exchange failed), then starts the worker's resumption and the tenant's cancel
/// together, the bank answering slowly so that they overlap, with the cancel arriving a bit
/// later each round. Whichever takes the payment first, the end is one state that hub and bank
/// agree on: cancelled at the hub with no money moved at the bank, or not cancelled (the cancel
/// refused with a code, nothing changed) and completed exactly once.
#[tokio::test]
async fn a_cancel_racing_the_worker_ends_in_one_state() {
    let w = world().await;
    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [0_u64, 150, 600, 1500].into_iter().enumerate() {
        for (user, user_id, bank) in [
            ("alice", &alice, "sonnenbank"),
            ("bob", &bob, "thames-bank"),
        ] {
            let amount = format!("5.{round}{}", if bank == "sonnenbank" { 1 } else { 2 });
            let created = create(&w, user_id, bank, &format!("race-{amount}"), &amount).await;
            let id = created["id"].as_str().unwrap().to_owned();
            let browser = w.browser();
            let page = browser
                .open(created["authorize_url"].as_str().unwrap())
                .await
                .page();
            if bank == "sonnenbank" {
                // The initiation's answer comes too late: the payment stays `initiating`.
                w.sandbox
                    .set_faults(
                        bank,
                        FaultConfig {
                            latency_ms: 4_000,
                            ..FaultConfig::default()
                        },
                    )
                    .unwrap();
                let answer = browser.submit(&page.form("pay").unwrap()).await.page();
                assert_eq!(answer.status, 502, "{}", answer.body);
            } else {
                // The user came back, but the token exchange failed: `submitting`.
                let login = browser.submit(&page.form("pay").unwrap()).await.page();
                w.sandbox
                    .set_faults(
                        bank,
                        FaultConfig {
                            error_percent: 100,
                            error_status: Some(503),
                            path_contains: Some("/oauth2/token".into()),
                            ..FaultConfig::default()
                        },
                    )
                    .unwrap();
                let answer = w.authenticate(&browser, &login, user).await;
                assert!(matches!(answer, Landing::Page(ref p) if p.status == 502));
            }
            // Slow but answering: the worker's step holds the payment for a while.
            w.sandbox
                .set_faults(
                    bank,
                    FaultConfig {
                        latency_ms: 800,
                        ..FaultConfig::default()
                    },
                )
                .unwrap();
            let resumed = worker.progress_payments(Timestamp::now().plus_seconds(120));
            let cancelled = async {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                let response = cancel(&w, &id).await;
                let status = response.status().as_u16();
                let code = if status == 200 {
                    String::new()
                } else {
                    error_code(response).await
                };
                (status, code)
            };
            let (_, (status, code)) = tokio::join!(resumed, cancelled);
            w.sandbox.clear_faults(bank).unwrap();

            let ledger = at_bank(&w, bank, &amount);
            assert!(ledger.len() <= 1, "{bank}: one payment at most: {ledger:?}");
            if status == 200 {
                let view = payment(&w, &id).await;
                assert_eq!(view["status"], "cancelled", "{view}");
                // Whatever the worker did next changes nothing, and no money moved.
                let later = settle(&w, &id).await;
                assert_eq!(later["status"], "cancelled", "{later}");
                assert!(at_bank(&w, bank, &amount).iter().all(|p| !p.executed));
            } else {
                assert_eq!(status, 409, "{bank}: {code}");
                assert!(
                    ["payment_busy", "payment_not_cancellable"].contains(&code.as_str()),
                    "{code}"
                );
                assert_ne!(payment(&w, &id).await["status"], "cancelled");
                if bank == "sonnenbank" {
                    // Busy, not refused: once the worker is done, the cancel goes through, at
                    // the bank this time.
                    assert_eq!(code, "payment_busy");
                    cancel_once_free(&w, &id).await;
                    assert_eq!(settle(&w, &id).await["status"], "cancelled");
                    let ledger = at_bank(&w, bank, &amount);
                    assert_eq!(ledger.len(), 1);
                    assert_eq!(ledger[0].status.iso(), "CANC");
                    assert!(!ledger[0].executed);
                } else {
                    // The user authorised it: it goes through, once.
                    let done = settle(&w, &id).await;
                    assert_eq!(done["status"], "completed", "{done}");
                    let ledger = at_bank(&w, bank, &amount);
                    assert_eq!(ledger.len(), 1);
                    assert!(ledger[0].executed);
                }
            }
            outcomes.push((bank, delay_ms, status, code));
        }
    }
    // Every UK round is refused (busy or not cancellable), never cancelled.
    assert!(
        outcomes
            .iter()
            .filter(|(bank, ..)| *bank == "thames-bank")
            .all(|(_, _, status, _)| *status == 409),
        "{outcomes:?}"
    );
}
