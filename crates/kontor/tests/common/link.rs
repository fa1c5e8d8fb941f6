//! Linking in a running demo: a new user with alice's accounts at Sonnenbank, through the
//! scripted browser, waited for until its first sync.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::time::{Duration, Instant};

use kontor_test_support::browser::Browser;
use serde_json::{Value, json};

const REDIRECT: &str = "https://tenant.example/linked";

#[derive(Debug, Clone)]
pub struct Linked {
    pub user_id: String,
    pub connection_id: String,
    pub account_id: String,
}

/// `method url` with a bearer token and a JSON body: the status and the JSON answer (`null` if
/// it is not JSON).
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The demo's API and sandbox, and a bearer token of its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Api<'a> {
    pub http: &'a reqwest::Client,
    pub api: &'a str,
    pub sandbox: &'a str,
    pub bearer: &'a str,
}

impl Api<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.api);
        call(self.http, method, url, self.bearer, body).await
    }

    /// A new user (region de) with alice's accounts at Sonnenbank, synced once.
    pub async fn linked_user(&self, external_id: &str) -> Linked {
        let body = json!({"external_id": external_id, "region": "de"});
        let (status, user) = self
            .call(reqwest::Method::POST, "/v1/users", Some(body))
            .await;
        assert_eq!(status, 201, "{user}");
        let user_id = user["id"].as_str().unwrap().to_owned();
        let body = json!({"user_id": user_id, "bank_id": "sonnenbank", "redirect_uri": REDIRECT});
        let (status, created) = self
            .call(reqwest::Method::POST, "/v1/connections", Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        let connection_id = created["id"].as_str().unwrap().to_owned();
        let connect = url::Url::parse(created["connect_url"].as_str().unwrap()).unwrap();
        let back = Browser::new(&[self.api, self.sandbox])
            .link_through(&connect, "sonnenbank", "alice")
            .await
            .unwrap();
        assert_eq!(back.get("status").map(String::as_str), Some("active"));
        let started = Instant::now();
        loop {
            let path = format!("/v1/connections/{connection_id}");
            let (_, connection) = self.call(reqwest::Method::GET, &path, None).await;
            if connection["last_synced_at"].is_string() {
                let account_id = connection["account_ids"][0].as_str().unwrap().to_owned();
                return Linked {
                    user_id,
                    connection_id,
                    account_id,
                };
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no sync");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
