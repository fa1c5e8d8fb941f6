//! Decoupled SCA from a connect link: every start sends an approval request to whoever owns the
//! login name, so a link makes at most two; the tenant may bind the login name, which the page
//! then does not ask for; the page answers the same whether the bank knows the name or not; and
//! a typo can be corrected on the same link.

use kontor_test_support::browser::{Browser, Page};
use serde_json::{Value, json};

use crate::support::{REDIRECT, World, query_of, raw, world};

const BANK: &str = "sonnenbank";

/// The approval requests waiting in `user`'s banking app, as the user sees them.
async fn pending_in_app(w: &World, user: &str) -> usize {
    let browser = Browser::new(&[w.sandbox.url()]);
    let login = browser
        .open(&format!("{}/{BANK}/app", w.sandbox.url()))
        .await
        .page();
    let form = login
        .form("app-login-form")
        .unwrap()
        .set("username", user)
        .set("password", "sandbox");
    let list = browser.submit(&form).await.page();
    list.body.matches("class=\"approval\"").count()
}

async fn link_for(w: &World, user: &str, psu_id: Option<&str>) -> Value {
    let user_id = w.user(user).await;
    let mut body = json!({"user_id": user_id, "redirect_uri": REDIRECT, "bank_id": BANK});
    if let Some(psu_id) = psu_id {
        body["psu_id"] = json!(psu_id);
    }
    let response = w.app.post_json("/v1/connections", &w.token, &body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Posts a decoupled start as a script would, without following redirects:
/// (status, Location, body).
async fn post_start(w: &World, created: &Value, psu_id: &str) -> (u16, Option<String>, String) {
    let url = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
    let token = query_of(&url)["token"].clone();
    let id = created["id"].as_str().unwrap();
    let response = w
        .app
        .http
        .post(w.app.url(&format!("/connect/{id}/start")))
        .form(&[
            ("token", token.as_str()),
            ("bank_id", BANK),
            ("method", "app"),
            ("psu_id", psu_id),
        ])
        .send()
        .await
        .unwrap();
    raw(response).await
}

/// Approves the link's decoupled authorisation as its owner would in the app, then reloads the
/// waiting page: where the user ends up.
async fn approve_and_return(w: &World, browser: &Browser, id: &str, wait: &Page) -> url::Url {
    let authorisation = w.session(id).await.authorisation_id.unwrap();
    w.sandbox
        .approve_authorisation(BANK, &authorisation, None)
        .unwrap();
    browser.open(wait.url.as_str()).await.left()
}

/// The page's own "approve in the app" form for the bank.
async fn app_form(browser: &Browser, created: &Value) -> Option<Page> {
    let page = browser
        .open(created["connect_url"].as_str().unwrap())
        .await
        .page();
    page.form(&format!("approve-in-app-{BANK}")).map(|_| page)
}

#[tokio::test]
async fn a_link_sends_at_most_two_approval_requests() {
    let w = world().await;
    let created = link_for(&w, "carol", None).await;
    let id = created["id"].as_str().unwrap();
    for attempt in 0..2 {
        let (status, location, _) = post_start(&w, &created, "alice").await;
        assert_eq!(status, 303, "start {attempt}");
        assert!(location.unwrap().contains(&format!("/connect/{id}/wait")));
    }
    for _ in 0..3 {
        let (status, location, body) = post_start(&w, &created, "alice").await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(location, None);
        assert!(body.contains("No more requests to your app"), "{body}");
    }
    assert_eq!(pending_in_app(&w, "alice").await, 2);
    // The link itself goes on: the page offers signing in at the bank, not the app.
    let connection = w.connection(id).await;
    assert_eq!(connection["status"], "pending");
    assert!(app_form(&w.browser(), &created).await.is_none());
}

#[tokio::test]
async fn a_bound_login_name_is_used_and_not_asked_for() {
    let w = world().await;
    let created = link_for(&w, "alice", Some("alice")).await;
    let id = created["id"].as_str().unwrap();
    assert!(
        created.get("psu_id").is_none(),
        "never shown back: {created}"
    );
    let browser = w.browser();
    let page = app_form(&browser, &created).await.expect("approve in app");
    assert!(!page.contains("name=\"psu_id\""), "{}", page.body);
    // Even a forged form cannot send the request to someone else.
    let form = page
        .form(&format!("approve-in-app-{BANK}"))
        .unwrap()
        .set("psu_id", "carol");
    let wait = browser.submit(&form).await.page();
    assert!(wait.url.path().ends_with("/wait"), "{}", wait.url);
    assert_eq!(pending_in_app(&w, "carol").await, 0);
    assert_eq!(pending_in_app(&w, "alice").await, 1);

    let back = approve_and_return(&w, &browser, id, &wait).await;
    assert_eq!(query_of(&back)["status"], "active", "{back}");

    for bad in ["", "   ", "a\u{7}b"] {
        let user_id = w.user("alice").await;
        let response = w
            .app
            .post_json(
                "/v1/connections",
                &w.token,
                &json!({"user_id": user_id, "redirect_uri": REDIRECT, "psu_id": bad}),
            )
            .await;
        assert_eq!(response.status(), 400, "{bad:?}");
        assert_eq!(
            kontor_test_support::error_code(response).await,
            "invalid_psu_id"
        );
    }
}

/// A page with the connection's id and token taken out, to compare two links' pages.
fn generic(page: &str, created: &Value) -> String {
    let url = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
    page.replace(created["id"].as_str().unwrap(), "ID")
        .replace(&query_of(&url)["token"], "TOKEN")
}

#[tokio::test]
async fn the_page_answers_the_same_whether_the_bank_knows_the_name() {
    let w = world().await;
    let known = link_for(&w, "alice", None).await;
    let unknown = link_for(&w, "alice", None).await;
    let a = post_start(&w, &known, "alice").await;
    let b = post_start(&w, &unknown, "no-such-customer").await;
    assert_eq!((a.0, b.0), (303, 303));
    let (a_to, b_to) = (a.1.unwrap(), b.1.unwrap());
    assert_eq!(
        generic(&a_to, &known),
        generic(&b_to, &unknown),
        "the same next step"
    );
    let browser = w.browser();
    let a_page = browser.open(&w.app.url(&a_to)).await.page();
    let b_page = browser.open(&w.app.url(&b_to)).await.page();
    assert_eq!(a_page.status, b_page.status);
    assert_eq!(
        generic(&a_page.body, &known),
        generic(&b_page.body, &unknown)
    );
    for created in [&known, &unknown] {
        let connection = w.connection(created["id"].as_str().unwrap()).await;
        assert_eq!(connection["status"], "pending", "{connection}");
    }
}

#[tokio::test]
async fn a_mistyped_login_name_can_be_corrected_on_the_same_link() {
    let w = world().await;
    let created = link_for(&w, "alice", None).await;
    let id = created["id"].as_str().unwrap();
    let browser = w.browser();
    let page = app_form(&browser, &created).await.unwrap();
    let typo = page
        .form(&format!("approve-in-app-{BANK}"))
        .unwrap()
        .set("psu_id", "alcie");
    let wait = browser.submit(&typo).await.page();
    assert!(wait.url.path().ends_with("/wait"), "{}", wait.body);
    assert_eq!(w.connection(id).await["status"], "pending");

    // Nothing arrives in the app; the user goes back and types it right.
    let retry = wait.link("retry").expect("a way to try again");
    let page = browser.open(retry.as_str()).await.page();
    let form = page
        .form(&format!("approve-in-app-{BANK}"))
        .expect("a second try")
        .set("psu_id", "alice");
    let wait = browser.submit(&form).await.page();
    assert_eq!(pending_in_app(&w, "alice").await, 1);
    let back = approve_and_return(&w, &browser, id, &wait).await;
    assert_eq!(query_of(&back)["status"], "active", "{back}");
}
