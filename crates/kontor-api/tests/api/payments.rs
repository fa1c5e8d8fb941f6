//! Payments against the sandbox bank, for both standards: exactly once per Idempotency-Key,
//! every validation error with its code and nothing stored, the user's authorisation through the
//! hub's page and the bank's SCA, rejection, cancellation, bank faults with no duplicate at the
//! bank, and status polling until final.

use kontor_domain::time::Timestamp;
use kontor_sandbox_bank::FaultConfig;
use kontor_test_support::browser::{Browser, Landing};
use kontor_test_support::error_code;
use serde_json::{Value, json};

use crate::support::{World, query_of, world};

const PAID: &str = "https://tenant.example/paid";

pub(crate) fn body(user_id: &str, bank: &str, amount: &str) -> Value {
    let (creditor, currency) = if bank == "thames-bank" {
        (
            json!({"name": "Landlord Ltd", "sort_code": "400993", "account_number": "30971327"}),
            "GBP",
        )
    } else {
        (
            json!({"name": "Hausverwaltung Müller", "iban": "DE89370400440532013000"}),
            "EUR",
        )
    };
    let mut body = json!({
        "user_id": user_id,
        "bank_id": bank,
        "creditor": creditor,
        "amount": {"value": amount, "currency": currency},
        "remittance": "Rent November",
        "redirect_uri": PAID,
    });
    if bank == "sonnenbank" {
        // Alice's current account (the sandbox's ids do not depend on the seed).
        body["debtor_account"] = json!({"iban": "DE21642494690527912747"});
    }
    body
}

pub(crate) async fn post(w: &World, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = w
        .app
        .http
        .post(w.app.url("/v1/payments"))
        .bearer_auth(&w.token)
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

async fn payment_rows(w: &World) -> i64 {
    let mut total = 0;
    for region in ["de", "uk"] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payments")
            .fetch_one(&w.app.stores.raw_cell_pool(region))
            .await
            .unwrap();
        total += n;
    }
    total
}

/// Confirms on the hub's page and authorises at the bank; returns the tenant redirect.
pub(crate) async fn authorise(w: &World, authorize_url: &str, user: &str) -> url::Url {
    let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);
    let page = browser.open(authorize_url).await.page();
    assert!(page.contains("id=\"pay\""), "{}", page.body);
    let login = browser.submit(&page.form("pay").unwrap()).await.page();
    assert_eq!(login.step().as_deref(), Some("login"), "{}", login.body);
    w.authenticate(&browser, &login, user).await.left()
}

pub(crate) async fn payment(w: &World, id: &str) -> Value {
    w.app
        .get(&format!("/v1/payments/{id}"), &w.token)
        .await
        .json()
        .await
        .unwrap()
}

/// Lets simulated time pass at the bank and runs the worker's payment polling until `id` is
/// final (bounded).
pub(crate) async fn settle(w: &World, id: &str) -> Value {
    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    let mut later = Timestamp::now();
    for _ in 0..12 {
        let current = payment(w, id).await;
        if ["completed", "rejected", "cancelled"].contains(&current["status"].as_str().unwrap()) {
            return current;
        }
        w.sandbox.advance_clock(time::Duration::hours(2)).unwrap();
        later = later.plus_seconds(3600);
        worker.progress_payments(later).await;
    }
    payment(w, id).await
}

#[tokio::test]
async fn a_payment_is_made_exactly_once_for_both_standards() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let key = format!("order-{user}-1");
        let request = body(&user_id, bank, "12.34");
        let response = post(&w, Some(&key), &request).await;
        assert_eq!(response.status(), 201, "{bank}");
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["status"], "pending");
        let id = created["id"].as_str().unwrap().to_owned();
        let url = created["authorize_url"].as_str().unwrap().to_owned();
        assert!(
            w.sandbox.payments().iter().all(|p| p.bank_id != bank),
            "nothing reaches the bank before the user authorises"
        );

        // The same request again is answered the same, without a second payment.
        let again = post(&w, Some(&key), &request).await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let replayed: Value = again.json().await.unwrap();
        assert_eq!(replayed["id"], id.as_str());
        assert_eq!(replayed["authorize_url"], url.as_str());

        let back = authorise(&w, &url, user).await;
        assert!(back.as_str().starts_with(PAID), "{back}");
        let query = query_of(&back);
        assert_eq!(query["payment_id"], id);
        assert_ne!(query["status"], "rejected", "{back}");

        let done = settle(&w, &id).await;
        assert_eq!(done["status"], "completed", "{bank}: {done}");
        let bank_statuses: Vec<&str> = done["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["bank_status"].as_str())
            .collect();
        assert!(!bank_statuses.is_empty(), "{done}");
        assert!(done["bank_payment_id"].is_string());
        assert!(
            done["authorize_url"].is_null(),
            "no authorisation link once done"
        );

        let ledger: Vec<_> = w
            .sandbox
            .payments()
            .into_iter()
            .filter(|p| p.bank_id == bank)
            .collect();
        assert_eq!(
            ledger.len(),
            1,
            "{bank}: exactly one payment at the bank: {ledger:?}"
        );
        assert!(ledger[0].executed);
        assert_eq!(ledger[0].amount, "12.34");
        // A replay after completion still answers the same payment.
        let late: Value = post(&w, Some(&key), &request).await.json().await.unwrap();
        assert_eq!(late["id"], id.as_str());
        assert_eq!(late["status"], "completed");
    }
    let changes = w.events("&type=payment.status_changed").await;
    assert!(changes.len() >= 4, "{changes:?}");
}

#[tokio::test]
async fn idempotency_key_reuse_and_concurrency() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let first = post(&w, Some("k-1"), &body(&user_id, "sonnenbank", "5.00")).await;
    assert_eq!(first.status(), 201);
    // Same key, different body.
    let other = post(&w, Some("k-1"), &body(&user_id, "sonnenbank", "6.00")).await;
    assert_eq!(other.status(), 422);
    assert_eq!(error_code(other).await, "idempotency_key_reused");
    // A request still in flight holds its key (held here as a crashed request would).
    let tenant = {
        let page: Value = w
            .app
            .get(&format!("/v1/users/{user_id}"), &w.token)
            .await
            .json()
            .await
            .unwrap();
        let _ = page;
        let claims = w.app.tokens.verify(&w.token, Timestamp::now()).unwrap();
        claims.tenant
    };
    let now = Timestamp::now();
    w.app
        .hub
        .control()
        .begin_idempotent(
            &tenant,
            &kontor_domain::UserId::parse(&user_id).unwrap(),
            "k-2",
            "held",
            "pay_de_00000000000000000000000000",
            now.plus_seconds(30),
            now,
        )
        .await
        .unwrap();
    let busy = post(&w, Some("k-2"), &body(&user_id, "sonnenbank", "7.00")).await;
    assert_eq!(busy.status(), 409);
    assert_eq!(error_code(busy).await, "idempotency_key_in_use");
    // Keys are per tenant.
    let other_tenant = w.app.tenant("Other").await;
    let other_token = w.app.token(&other_tenant).await;
    let other_user = w.app.create_user(&other_token, "x", "de").await;
    let theirs = w
        .app
        .http
        .post(w.app.url("/v1/payments"))
        .bearer_auth(&other_token)
        .header("idempotency-key", "k-1")
        .json(&body(
            other_user["id"].as_str().unwrap(),
            "sonnenbank",
            "5.00",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 201);
    assert_eq!(payment_rows(&w).await, 2);
}

#[tokio::test]
async fn invalid_payments_have_codes_and_store_nothing() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let uk_user = w.user("bob").await;
    let good = body(&user_id, "sonnenbank", "10.00");
    let with = |path: &[&str], value: Value| {
        let mut b = good.clone();
        let mut slot = &mut b;
        for p in &path[..path.len() - 1] {
            slot = &mut slot[*p];
        }
        slot[path[path.len() - 1]] = value;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&["amount", "value"], json!("0.00")), "invalid_amount"),
        (with(&["amount", "value"], json!("-1.00")), "invalid_amount"),
        (with(&["amount", "value"], json!("1.234")), "invalid_amount"),
        (with(&["amount", "value"], json!("1e3")), "invalid_amount"),
        (with(&["amount", "value"], json!(12.5)), "invalid_type"),
        (
            with(&["amount", "currency"], json!("EURO")),
            "invalid_currency",
        ),
        (
            with(&["amount", "currency"], json!("GBP")),
            "currency_not_supported",
        ),
        (
            with(&["creditor", "iban"], json!("DE89370400440532013001")),
            "invalid_iban",
        ),
        (
            with(&["creditor", "name"], json!("")),
            "invalid_creditor_name",
        ),
        (
            with(&["creditor", "name"], json!("x".repeat(71))),
            "invalid_creditor_name",
        ),
        (
            with(&["remittance"], json!("x".repeat(141))),
            "invalid_remittance",
        ),
        (
            with(&["end_to_end_id"], json!("x".repeat(36))),
            "invalid_end_to_end_id",
        ),
        (with(&["bank_id"], json!("no-such-bank")), "unknown_bank"),
        (with(&["user_id"], json!("nobody")), "invalid_id"),
        (
            with(&["redirect_uri"], json!("ftp://x")),
            "invalid_redirect_uri",
        ),
        (
            with(
                &["creditor"],
                json!({"name": "X", "sort_code": "400993", "account_number": "30971327"}),
            ),
            "scheme_not_supported",
        ),
        (
            with(&["creditor"], json!({"name": "X"})),
            "invalid_account_number",
        ),
        (with(&["surprise"], json!(true)), "unknown_field"),
        (
            with(&["debtor_account"], Value::Null),
            "debtor_account_required",
        ),
    ];
    for (i, (request, code)) in cases.iter().enumerate() {
        let response = post(&w, Some(&format!("bad-{i}")), request).await;
        assert!(
            response.status().is_client_error(),
            "{code}: {}",
            response.status()
        );
        assert_eq!(error_code(response).await, *code, "{request}");
    }
    let uk = body(&uk_user, "thames-bank", "1.00");
    let mut uk_bad = uk.clone();
    uk_bad["creditor"] = json!({"name": "X", "sort_code": "4009", "account_number": "30971327"});
    assert_eq!(
        error_code(post(&w, Some("uk-bad"), &uk_bad).await).await,
        "invalid_account_number"
    );
    let mut instant_uk = uk.clone();
    instant_uk["amount"]["currency"] = json!("EUR");
    assert_eq!(
        error_code(post(&w, Some("uk-eur"), &instant_uk).await).await,
        "currency_not_supported"
    );

    let missing = post(&w, None, &good).await;
    assert_eq!(error_code(missing).await, "missing_idempotency_key");
    let not_found = post(
        &w,
        Some("ghost"),
        &with(&["user_id"], json!("usr_de_00000000000000000000000000")),
    )
    .await;
    assert_eq!(not_found.status(), 404);
    assert_eq!(
        payment_rows(&w).await,
        0,
        "nothing stored for any invalid request"
    );
    // The keys of refused requests were not used up.
    assert_eq!(post(&w, Some("bad-0"), &good).await.status(), 201);
    assert_eq!(post(&w, Some("ghost"), &good).await.status(), 201);
}

#[tokio::test]
async fn insufficient_funds_cancel_and_cancel_at_the_bank() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        // More than any sandbox account holds: the bank rejects it.
        let created: Value = post(
            &w,
            Some(&format!("{bank}-big")),
            &body(&user_id, bank, "9999999.00"),
        )
        .await
        .json()
        .await
        .unwrap();
        let back = authorise(&w, created["authorize_url"].as_str().unwrap(), user).await;
        let id = created["id"].as_str().unwrap();
        let done = settle(&w, id).await;
        assert_eq!(done["status"], "rejected", "{bank}: {done} ({back})");
        // The bank's reason: Berlin Group's status answer, the UK payment details.
        let reason = if bank == "sonnenbank" {
            "insufficient funds (fundsAvailable: false)"
        } else {
            "Insufficient funds on the debtor account"
        };
        assert_eq!(done["status_reason"], reason, "{done}");

        // Cancelled on the hub's page: nothing reaches the bank.
        let before = w.sandbox.payments().len();
        let created: Value = post(
            &w,
            Some(&format!("{bank}-cancel")),
            &body(&user_id, bank, "1.00"),
        )
        .await
        .json()
        .await
        .unwrap();
        let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);
        let page = browser
            .open(created["authorize_url"].as_str().unwrap())
            .await
            .page();
        let back = browser.submit(&page.form("cancel").unwrap()).await.left();
        assert_eq!(query_of(&back)["status"], "cancelled");
        assert_eq!(w.sandbox.payments().len(), before);

        // Cancelled at the bank's SCA page.
        let created: Value = post(
            &w,
            Some(&format!("{bank}-sca-cancel")),
            &body(&user_id, bank, "1.00"),
        )
        .await
        .json()
        .await
        .unwrap();
        let page = browser
            .open(created["authorize_url"].as_str().unwrap())
            .await
            .page();
        let login = browser.submit(&page.form("pay").unwrap()).await.page();
        let back = match browser.submit(&login.form("cancel-form").unwrap()).await {
            Landing::Left(url) => url,
            Landing::Page(page) => browser
                .open(page.link("return").unwrap().as_str())
                .await
                .left(),
        };
        let id = created["id"].as_str().unwrap();
        let left = payment(&w, id).await;
        let status = left["status"].as_str().unwrap().to_owned();
        assert!(
            ["rejected", "cancelled"].contains(&status.as_str()),
            "{bank}: {status} ({back})"
        );
        assert!(left["status_reason"].is_string(), "{bank}: {left}");
        assert!(
            !w.sandbox
                .payments()
                .iter()
                .any(|p| p.executed && p.amount == "1.00"),
            "{bank}: no money moved"
        );
    }
}

#[tokio::test]
async fn bank_faults_never_make_a_second_payment() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let created: Value = post(
            &w,
            Some(&format!("{bank}-fault")),
            &body(&user_id, bank, "3.21"),
        )
        .await
        .json()
        .await
        .unwrap();
        let url = created["authorize_url"].as_str().unwrap().to_owned();
        let id = created["id"].as_str().unwrap().to_owned();
        let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);

        // The bank answers the initiation too slowly: the hub cannot know whether it was made.
        w.sandbox
            .set_faults(
                bank,
                FaultConfig {
                    latency_ms: 4_000,
                    ..FaultConfig::default()
                },
            )
            .unwrap();
        let page = browser.open(&url).await.page();
        let answer = browser.submit(&page.form("pay").unwrap()).await.page();
        assert_eq!(
            answer.status, 502,
            "an error page, not a crash: {}",
            answer.body
        );
        w.sandbox.clear_faults(bank).unwrap();
        assert_eq!(payment(&w, &id).await["status"], "pending");

        // The worker resumes the interrupted step with the same idempotency key...
        let worker =
            kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
        worker
            .progress_payments(Timestamp::now().plus_seconds(120))
            .await;
        // ...and the user, trying again, is sent to the same payment at the bank.
        let page = browser.open(&url).await.page();
        let login = browser.submit(&page.form("pay").unwrap()).await.page();
        assert_eq!(login.step().as_deref(), Some("login"), "{}", login.body);
        let back = w.authenticate(&browser, &login, user).await.left();
        assert_eq!(query_of(&back)["payment_id"], id);
        let done = settle(&w, &id).await;
        assert_eq!(done["status"], "completed", "{bank}: {done}");
        let ours: Vec<_> = w
            .sandbox
            .payments()
            .into_iter()
            .filter(|p| p.bank_id == bank && p.amount == "3.21")
            .collect();
        assert_eq!(
            ours.len(),
            1,
            "{bank}: one payment at the bank after the retries: {ours:?}"
        );
    }
}

/// The user came back from the bank, and the hub recorded it, but could not finish (here the
/// bank's token endpoint fails; a crash at that point leaves the same state). The return is
/// kept whole, the code with it, so the worker completes the payment later: one payment at the
/// bank, not a payment stranded as `authorised`.
#[tokio::test]
async fn an_interrupted_return_from_the_bank_is_completed_by_the_worker() {
    let w = world().await;
    let user_id = w.user("bob").await;
    let created: Value = post(
        &w,
        Some("uk-interrupted"),
        &body(&user_id, "thames-bank", "4.32"),
    )
    .await
    .json()
    .await
    .unwrap();
    let url = created["authorize_url"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let browser = Browser::new(&[&w.app.url("/"), w.sandbox.url()]);
    let page = browser.open(&url).await.page();
    let login = browser.submit(&page.form("pay").unwrap()).await.page();

    w.sandbox
        .set_faults(
            "thames-bank",
            FaultConfig {
                error_percent: 100,
                error_status: Some(503),
                path_contains: Some("/oauth2/token".into()),
                ..FaultConfig::default()
            },
        )
        .unwrap();
    let answer = match w.authenticate(&browser, &login, "bob").await {
        Landing::Page(page) => page,
        Landing::Left(to) => panic!("expected the hub's error page, went to {to}"),
    };
    assert_eq!(answer.status, 502, "{}", answer.body);
    let stuck = payment(&w, &id).await;
    assert_eq!(stuck["status"], "pending", "{stuck}");
    assert!(w.sandbox.payments().iter().all(|p| p.amount != "4.32"));

    w.sandbox.clear_faults("thames-bank").unwrap();
    let worker =
        kontor_worker::Worker::new(w.app.hub.clone(), kontor_worker::WorkerSettings::default());
    worker
        .progress_payments(Timestamp::now().plus_seconds(120))
        .await;
    let done = settle(&w, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let ours: Vec<_> = w
        .sandbox
        .payments()
        .into_iter()
        .filter(|p| p.bank_id == "thames-bank" && p.amount == "4.32")
        .collect();
    assert_eq!(ours.len(), 1, "one payment at the bank: {ours:?}");
}

#[tokio::test]
async fn another_tenants_payments_do_not_exist_for_you() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created: Value = post(&w, Some("mine"), &body(&user_id, "sonnenbank", "1.00"))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let other = w.app.tenant("Other").await;
    let b = w.app.token(&other).await;
    let response = w.app.get(&format!("/v1/payments/{id}"), &b).await;
    assert_eq!(response.status(), 404);
    let list: Value = w
        .app
        .get(&format!("/v1/payments?user_id={user_id}"), &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
    let theirs = w
        .app
        .http
        .post(w.app.url("/v1/payments"))
        .bearer_auth(&b)
        .header("idempotency-key", "x")
        .json(&body(&user_id, "sonnenbank", "1.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    let mine: Value = w
        .app
        .get(&format!("/v1/payments?user_id={user_id}"), &w.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
}

/// The answer to a creation is built from what was written, not read back; a list page reads its
/// payments at once. Both must show each payment exactly as reading it alone does.
#[tokio::test]
async fn a_creation_and_the_list_answer_each_payment_as_reading_it_does() {
    let w = world().await;
    let alice = w.user("alice").await;
    let bob = w.user("bob").await;
    let mut ids = Vec::new();
    for (n, (user, bank)) in [
        (&alice, "sonnenbank"),
        (&bob, "thames-bank"),
        (&alice, "sonnenbank"),
    ]
    .into_iter()
    .enumerate()
    {
        let response = post(&w, Some(&format!("list-{n}")), &body(user, bank, "3.21")).await;
        assert_eq!(response.status(), 201);
        let created: Value = response.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created, payment(&w, &id).await, "the creation's answer");
        ids.push(id);
    }
    // One with a longer history: authorised and settled.
    let url = payment(&w, &ids[0]).await["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    authorise(&w, &url, "alice").await;
    let done = settle(&w, &ids[0]).await;
    assert!(done["history"].as_array().unwrap().len() > 1, "{done}");

    let mut listed = Vec::new();
    let mut path = "/v1/payments?limit=2".to_owned();
    loop {
        let page: Value = w.app.get(&path, &w.token).await.json().await.unwrap();
        listed.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/v1/payments?limit=2&cursor={next}"),
            None => break,
        }
    }
    let mut listed_ids: Vec<String> = listed
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    listed_ids.sort();
    ids.sort();
    assert_eq!(listed_ids, ids, "every payment, once");
    for item in &listed {
        let id = item["id"].as_str().unwrap();
        assert_eq!(item, &payment(&w, id).await, "{id} as listed");
    }
}
