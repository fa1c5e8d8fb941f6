//! A tiny browser for the bank's SCA pages: follows redirects by hand, posts the forms a person
//! would fill in, and stops when the bank sends the user back to the hub, turning that
//! redirect's query into the [`Callback`] the hub's callback route would build.

use kontor_banks::Callback;
use url::Url;

use super::html;

/// Where the connector tests say the hub's callback lives. Never requested: the browser stops
/// at the redirect to it.
pub const HUB_CALLBACK: &str = "https://hub.example/connect/callback";

#[derive(Debug)]
pub enum Landing {
    /// A page of the bank.
    Page { url: Url, html: String },
    /// The bank sent the user back to the hub.
    Hub(Callback),
}

impl Landing {
    pub fn page(self) -> (Url, String) {
        match self {
            Landing::Page { url, html } => (url, html),
            Landing::Hub(callback) => {
                panic!("expected a bank page, got back to the hub: {callback:?}")
            }
        }
    }

    pub fn callback(self) -> Callback {
        match self {
            Landing::Hub(callback) => callback,
            Landing::Page { url, html } => panic!(
                "expected a redirect to the hub, got page {url} ({:?}, error {:?})",
                html::step(&html),
                html::text(&html, "error")
            ),
        }
    }

    pub fn step(&self) -> Option<String> {
        match self {
            Landing::Page { html, .. } => html::step(html),
            Landing::Hub(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
}

impl Browser {
    pub fn new() -> Self {
        // reqwest is built without a TLS provider; building the connectors' client installs
        // ring, which this client then uses too.
        let _ = kontor_banks::build_client(&kontor_banks::HttpSettings::default());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser client");
        Self { http }
    }

    /// A browser with its own client (one trusting the strict sandbox's server CA).
    pub fn with_client(http: reqwest::Client) -> Self {
        Self { http }
    }

    /// Opens `url` and follows redirects until a bank page or the hub.
    pub async fn open(&self, url: Url) -> Landing {
        let response = self.http.get(url.clone()).send().await.expect("GET");
        self.land(url, response).await
    }

    /// Submits `<form id="{form_id}">` of the page with `fields`.
    pub async fn submit(
        &self,
        page: &(Url, String),
        form_id: &str,
        fields: &[(&str, &str)],
    ) -> Landing {
        let (url, body) = page;
        let action = html::form_action(body, form_id)
            .unwrap_or_else(|| panic!("no form #{form_id} on {url}: {:?}", html::step(body)));
        let target = url.join(&action).expect("form action");
        let response = self
            .http
            .post(target.clone())
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.land(target, response).await
    }

    async fn land(&self, mut url: Url, mut response: reqwest::Response) -> Landing {
        for _ in 0..10 {
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .expect("Location");
                let next = url.join(location).expect("redirect target");
                if next.as_str().starts_with(HUB_CALLBACK) {
                    return Landing::Hub(callback_of(&next));
                }
                response = self.http.get(next.clone()).send().await.expect("GET");
                url = next;
                continue;
            }
            let status = response.status();
            let html = response.text().await.expect("page");
            assert!(status.is_success(), "{status} at {url}: {html}");
            return Landing::Page { url, html };
        }
        panic!("too many redirects from {url}");
    }

    /// The happy path: log in, give the code, keep the accounts the bank ticks.
    pub async fn authorise(&self, start: Url, user: &str) -> Callback {
        let mut landing = self.open(start).await;
        for _ in 0..6 {
            let Landing::Page { url, html } = landing else {
                return landing.callback();
            };
            let page = (url, html);
            landing = match html::step(&page.1).as_deref() {
                Some("login") => {
                    self.submit(
                        &page,
                        "login-form",
                        &[("username", user), ("password", "sandbox")],
                    )
                    .await
                }
                Some("otp") => self.submit(&page, "otp-form", &[("otp", "123456")]).await,
                Some("accounts") => {
                    let chosen = html::checked_values(&page.1, "accounts-form", "account");
                    let fields: Vec<(&str, &str)> =
                        chosen.iter().map(|id| ("account", id.as_str())).collect();
                    self.submit(&page, "accounts-form", &fields).await
                }
                Some("done" | "failed") => self.follow_return(&page).await,
                other => panic!("unexpected SCA page {other:?} at {}", page.0),
            };
        }
        landing.callback()
    }

    /// The user presses cancel on the login page.
    pub async fn cancel(&self, start: Url) -> Callback {
        let page = self.open(start).await.page();
        assert_eq!(html::step(&page.1).as_deref(), Some("login"));
        let landing = self.submit(&page, "cancel-form", &[]).await;
        self.to_hub(landing).await
    }

    /// The user types a wrong password `times` times.
    pub async fn wrong_password(&self, start: Url, user: &str, times: usize) -> Landing {
        let mut landing = self.open(start).await;
        for _ in 0..times {
            let page = landing.page();
            assert_eq!(html::step(&page.1).as_deref(), Some("login"), "{}", page.1);
            landing = self
                .submit(
                    &page,
                    "login-form",
                    &[("username", user), ("password", "wrong")],
                )
                .await;
        }
        landing
    }

    /// From a final page (`done`/`failed`) or a redirect, on to the hub.
    pub async fn to_hub(&self, landing: Landing) -> Callback {
        match landing {
            Landing::Hub(callback) => callback,
            Landing::Page { url, html } => self.follow_return(&(url, html)).await.callback(),
        }
    }

    async fn follow_return(&self, page: &(Url, String)) -> Landing {
        let target = html::href(&page.1, "return")
            .unwrap_or_else(|| panic!("no #return link on {}: {}", page.0, page.1));
        let next = page.0.join(&target).expect("return link");
        if next.as_str().starts_with(HUB_CALLBACK) {
            return Landing::Hub(callback_of(&next));
        }
        self.open(next).await
    }
}

fn callback_of(url: &Url) -> Callback {
    Callback {
        params: url.query_pairs().into_owned().collect(),
    }
}
