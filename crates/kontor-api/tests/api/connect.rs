//! The connect flow through the real pages, against the sandbox bank, for both standards:
//! success, cancel and failure at the bank, decoupled approval, and every way a link can be
//! misused ending somewhere sensible.

use kontor_test_support::browser::Landing;
use kontor_test_support::error_code;
use serde_json::json;

use crate::support::{REDIRECT, query_of, world};

#[tokio::test]
async fn linking_works_for_both_standards() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let (user_id, id, back) = w.link(user, bank).await;
        assert!(back.as_str().starts_with(REDIRECT), "{back}");
        let query = query_of(&back);
        assert_eq!(query["connection_id"], id);
        assert_eq!(query["status"], "active", "{back}");
        let connection = w.synced(&id).await;
        assert_eq!(connection["status"], "active");
        assert_eq!(connection["bank_id"], bank);
        assert_eq!(connection["user_id"], user_id.as_str());
        assert!(connection["valid_until"].is_string());
        assert!(
            !connection["account_ids"].as_array().unwrap().is_empty(),
            "{connection}"
        );
    }
    let active = w.events("&type=connection.active").await;
    assert_eq!(active.len(), 2);
}

#[tokio::test]
async fn the_tenant_may_preselect_the_bank() {
    let w = world().await;
    let user = w.user("alice").await;
    let created = w.create_connection(&user, Some("sonnenbank")).await;
    assert_eq!(created["bank_id"], "sonnenbank");
    let browser = w.browser();
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    assert!(page.form("bank-sonnenbank").is_some());
    assert!(
        page.form("bank-thames-bank").is_none(),
        "only the chosen bank is offered"
    );
    assert!(page.contains("Acme Budget"), "the tenant's name is shown");
}

#[tokio::test]
async fn the_connect_page_speaks_german_and_searches_banks() {
    let w = world().await;
    let user = w.user("alice").await;
    let created = w.create_connection(&user, None).await;
    let url = created["connect_url"].as_str().unwrap();
    let browser = w.browser();
    let german = browser.open(&format!("{url}&lang=de")).await.page();
    assert!(german.contains("Bank verbinden") && german.contains("lang=\"de\""));
    let page = browser.open(&format!("{url}&q=thames")).await.page();
    assert!(page.form("bank-thames-bank").is_some());
    assert!(page.form("bank-sonnenbank").is_none());
    let by_country = browser.open(&format!("{url}&country=FR")).await.page();
    assert!(by_country.form("bank-banque-lumiere").is_some());
    assert!(by_country.form("bank-sonnenbank").is_none());
}

#[tokio::test]
async fn cancelling_at_the_bank_fails_the_connection_with_a_reason() {
    let w = world().await;
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let created = w.create_connection(&user_id, None).await;
        let browser = w.browser();
        let login = w
            .to_bank(&browser, created["connect_url"].as_str().unwrap(), bank)
            .await;
        let back = browser.submit(&login.form("cancel-form").unwrap()).await;
        let back = match back {
            Landing::Left(url) => url,
            // Some banks show a "cancelled" page with a link back to the TPP.
            Landing::Page(page) => {
                let link = page.link("return").expect("a way back");
                browser.open(link.as_str()).await.left()
            }
        };
        // The same user action gets the same reason at every bank.
        let query = query_of(&back);
        assert_eq!(query["status"], "failed", "{bank}: {back}");
        assert_eq!(query["reason"], "user_cancelled", "{bank}: {back}");
        let id = created["id"].as_str().unwrap();
        let connection = w.connection(id).await;
        assert_eq!(connection["status"], "failed");
        assert_eq!(connection["failure_reason"], "user_cancelled");
    }
    assert_eq!(w.events("&type=connection.failed").await.len(), 2);
}

#[tokio::test]
async fn three_wrong_passwords_fail_the_connection_alike_at_every_bank() {
    let w = world().await;
    let mut reasons = Vec::new();
    for (user, bank) in [("alice", "sonnenbank"), ("bob", "thames-bank")] {
        let user_id = w.user(user).await;
        let created = w.create_connection(&user_id, None).await;
        let browser = w.browser();
        let mut page = w
            .to_bank(&browser, created["connect_url"].as_str().unwrap(), bank)
            .await;
        let mut landing = None;
        for _ in 0..3 {
            let form = page
                .form("login-form")
                .unwrap()
                .set("username", user)
                .set("password", "wrong");
            match browser.submit(&form).await {
                Landing::Page(next) if next.form("login-form").is_some() => page = next,
                other => {
                    landing = Some(other);
                    break;
                }
            }
        }
        let back = match landing.expect("the third failure ends the authorisation") {
            Landing::Left(url) => url,
            Landing::Page(page) => browser
                .open(page.link("return").expect("a way back").as_str())
                .await
                .left(),
        };
        let query = query_of(&back);
        assert_eq!(query["status"], "failed", "{bank}: {back}");
        reasons.push(query["reason"].clone());
    }
    // Neither standard tells giving up from cancelling: the bank's "no" is the user's.
    assert_eq!(reasons, ["user_cancelled", "user_cancelled"]);
}

#[tokio::test]
async fn decoupled_approval_in_the_banking_app() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created = w.create_connection(&user_id, Some("sonnenbank")).await;
    let id = created["id"].as_str().unwrap();
    let browser = w.browser();
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    let form = page
        .form("approve-in-app-sonnenbank")
        .unwrap()
        .set("psu_id", "alice");
    let wait = browser.submit(&form).await.page();
    assert!(wait.contains("http-equiv=\"refresh\""), "{}", wait.body);
    assert_eq!(w.connection(id).await["status"], "pending");

    let session = w.session(id).await;
    let authorisation = session
        .authorisation_id
        .clone()
        .expect("the bank's authorisation id");
    w.sandbox
        .approve_authorisation("sonnenbank", &authorisation, None)
        .unwrap();
    let back = browser.open(wait.url.as_str()).await.left();
    assert_eq!(query_of(&back)["status"], "active", "{back}");
    assert_eq!(w.synced(id).await["status"], "active");
}

#[tokio::test]
async fn misused_links_end_somewhere_sensible() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let created = w.create_connection(&user_id, None).await;
    let id = created["id"].as_str().unwrap();
    let url = created["connect_url"].as_str().unwrap();
    let browser = w.browser();

    // A wrong token shows the invalid-link page, not the connection.
    let wrong = url.split("token=").next().unwrap().to_owned() + "token=nope";
    let page = browser.open(&wrong).await.page();
    assert_eq!(page.status, 404);
    assert!(!page.contains("bank-sonnenbank"));

    // A callback naming no connection has nowhere to go but an error page.
    let page = browser
        .open(&w.app.url("/connect/callback?state=garbage"))
        .await
        .page();
    assert_eq!(page.status, 404);

    // Completing once, then replaying the bank's redirect: back to the tenant, still active.
    let login = w.to_bank(&browser, url, "sonnenbank").await;
    let form = login
        .form("login-form")
        .unwrap()
        .set("username", "alice")
        .set("password", "sandbox");
    let otp = browser.submit(&form).await.page();
    let mut landing = browser
        .submit(&otp.form("otp-form").unwrap().set("otp", "123456"))
        .await;
    if let Landing::Page(p) = &landing {
        landing = browser
            .submit(&p.form("accounts-form").unwrap().check_all())
            .await;
    }
    let back = landing.left();
    assert_eq!(query_of(&back)["status"], "active");
    // The page itself now says it is done.
    let settled = browser.open(url).await.page();
    assert!(settled.link("back").is_some(), "{}", settled.body);

    // A cancel after success changes nothing.
    let cancel = browser.open(url).await.page();
    assert!(cancel.form("cancel").is_none());
    assert_eq!(w.connection(id).await["status"], "active");
}

#[tokio::test]
async fn bad_connection_requests_have_codes() {
    let w = world().await;
    let user_id = w.user("alice").await;
    let cases = [
        (
            json!({"user_id": user_id, "redirect_uri": REDIRECT, "bank_id": "no-such-bank"}),
            400,
            "unknown_bank",
        ),
        (
            json!({"user_id": user_id, "redirect_uri": "ftp://x.example"}),
            400,
            "invalid_redirect_uri",
        ),
        (
            json!({"user_id": user_id, "redirect_uri": "not a url"}),
            400,
            "invalid_redirect_uri",
        ),
        (
            json!({"user_id": user_id, "redirect_uri": "https://x.example/#frag"}),
            400,
            "invalid_redirect_uri",
        ),
        (
            json!({"user_id": user_id, "redirect_uri": REDIRECT, "access": ["everything"]}),
            400,
            "invalid_access",
        ),
        (
            json!({"user_id": user_id, "redirect_uri": REDIRECT, "language": "it"}),
            400,
            "invalid_language",
        ),
        (
            json!({"user_id": "usr_de_00000000000000000000000000", "redirect_uri": REDIRECT}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": "nobody", "redirect_uri": REDIRECT}),
            400,
            "invalid_id",
        ),
    ];
    for (body, status, code) in cases {
        let response = w.app.post_json("/v1/connections", &w.token, &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }
    let banks: serde_json::Value = w
        .app
        .get("/v1/banks?country=DE", &w.token)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = banks["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sonnenbank"]);
    let all: serde_json::Value = w.app.get("/v1/banks", &w.token).await.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
}
