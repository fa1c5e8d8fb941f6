//! `kontor demo` explains itself, over plain HTTP (the browser test does the same in Chromium
//! when it is installed): `/` is a landing page naming the sandbox users with a link each; bob's
//! link opens on his UK bank, and after linking the result page shows his connection in words;
//! carol's is in French; the README is served.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::time::{Duration, Instant};

use common::demo::Demo;
use kontor_test_support::browser::{Browser, Landing, sandbox_link_form};
use serde_json::Value;

async fn get(http: &reqwest::Client, url: &str) -> (u16, String, String) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_a_landing_page_per_user_links_and_a_tidy_result_page() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let (demo, json) = Demo::start(&dir.path().join("data"), dir.path());
    let json: Value = serde_json::from_str(&json).unwrap();
    let api = json["api_base_url"].as_str().unwrap().to_owned();
    let sandbox = json["sandbox_url"].as_str().unwrap().to_owned();
    assert_eq!(json["home_url"].as_str(), Some(format!("{api}/").as_str()));
    for user in ["alice", "bob", "carol"] {
        assert_eq!(
            json["connect_urls"][user].as_str(),
            Some(format!("{api}/demo/connect/{user}").as_str()),
            "{json}"
        );
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // `/`: a page, not the API's JSON 404.
    let (status, kind, home) = get(&http, &format!("{api}/")).await;
    assert_eq!(status, 200, "{home}");
    assert!(kind.starts_with("text/html"), "{kind}");
    for words in [
        "open banking hub",
        "id=\"connect-alice\"",
        "id=\"connect-bob\"",
        "id=\"connect-carol\"",
        "Thames Bank",
        "Banque Lumière",
        "href=\"/docs\"",
        "href=\"/demo/readme\"",
    ] {
        assert!(
            home.contains(words),
            "the landing page lacks {words:?}:\n{home}"
        );
    }
    let (status, kind, readme) = get(&http, &format!("{api}/demo/readme")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert!(readme.starts_with("# Kontor"), "{}", &readme[..60]);
    let (status, _, _) = get(&http, &format!("{api}/demo/connect/mallory")).await;
    assert_eq!(status, 404);

    // carol's link: French, on her French bank.
    let browser = Browser::new(&[&api, &sandbox]);
    let carol = browser
        .open(&format!("{api}/demo/connect/carol"))
        .await
        .page();
    assert!(carol.contains("<html lang=\"fr\""), "{}", carol.body);
    assert!(
        carol.contains("Continuer vers Banque Lumière"),
        "{}",
        carol.body
    );
    assert!(!carol.contains("id=\"bank-sonnenbank\""), "{}", carol.body);

    // bob's link opens on his UK bank: nothing to change before picking it.
    let mut landing = browser.open(&format!("{api}/demo/connect/bob")).await;
    let page = match &landing {
        Landing::Page(page) => page.clone(),
        Landing::Left(url) => panic!("bob's link left for {url}"),
    };
    assert!(page.contains("id=\"bank-thames-bank\""), "{}", page.body);
    assert!(!page.contains("id=\"bank-sonnenbank\""), "{}", page.body);
    for _ in 0..10 {
        let page = match landing {
            Landing::Page(page) if page.url.path() == "/demo/done" => {
                landing = Landing::Page(page);
                break;
            }
            Landing::Page(page) => page,
            Landing::Left(url) => panic!("left for {url}"),
        };
        let form = sandbox_link_form(&page, "thames-bank", "bob")
            .unwrap_or_else(|| panic!("unexpected page {}:\n{}", page.url, page.body));
        landing = browser.submit(&form).await;
    }
    let done = landing.page().url;
    assert_eq!(done.path(), "/demo/done", "{done}");

    // The result page refreshes itself until the first sync is in.
    let started = Instant::now();
    let result = loop {
        let (status, _, body) = get(&http, done.as_str()).await;
        assert_eq!(status, 200, "{body}");
        if body.contains("<h1>Linked</h1>") {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no data after 30 s:\n{body}\n{}",
            demo.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        result.contains("bob (Bob Thompson) linked <b>Thames Bank</b>"),
        "{result}"
    );
    for words in [
        "class=\"account\"",
        "<dl class=\"balances\">",
        "table class=\"transactions\"",
    ] {
        assert!(
            result.contains(words),
            "the result page lacks {words:?}:\n{result}"
        );
    }
    for raw in [
        "closing_booked",
        "interim_available",
        "expected</dt>",
        "booked</td>",
    ] {
        assert!(
            !result.contains(raw),
            "the result page shows {raw:?}:\n{result}"
        );
    }

    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
}
