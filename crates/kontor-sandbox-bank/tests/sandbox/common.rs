//! The test harness: a sandbox on a free port, an HTTP client that does not follow redirects,
//! and calls that validate every exchange against the standards' specs.

use std::sync::atomic::{AtomicU64, Ordering};

use kontor_sandbox_bank::{RunningSandbox, SandboxBank, SandboxBuilder};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use time::macros::datetime;

use crate::spec::{Api, Specs, specs};
use crate::validate::Exchange;

pub const TPP_REDIRECT: &str = "https://tpp.example/callback";
pub const TPP_NOK_REDIRECT: &str = "https://tpp.example/failed";

pub struct Harness {
    pub sandbox: RunningSandbox,
    pub client: reqwest::Client,
    pub specs: &'static Specs,
}

/// A fixed start so dates in assertions are stable: a Monday morning.
pub fn builder() -> SandboxBuilder {
    SandboxBank::builder()
        .seed(7)
        .start_time(datetime!(2026-03-02 09:00 UTC))
}

impl Harness {
    /// Starts the default sandbox, or returns `None` when the specs are missing (skipped).
    pub async fn start() -> Option<Harness> {
        Self::start_with(builder()).await
    }

    pub async fn start_with(builder: SandboxBuilder) -> Option<Harness> {
        let specs = specs()?;
        // reqwest is built without a TLS provider; plain http needs none, but the client
        // builder insists on one being installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sandbox = builder.start_local().await.expect("sandbox starts");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(Harness {
            sandbox,
            client,
            specs,
        })
    }

    pub fn base(&self, bank: &str) -> String {
        self.sandbox.base_url(bank).expect("bank exists")
    }

    /// Sends one API call and validates it: the response always, the request whenever the
    /// sandbox accepted it (2xx), since the sandbox must accept only what the spec allows.
    pub async fn call(
        &self,
        api: Api,
        root: &str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json"));
        let content_type = body.map(|_| "application/json".to_string());
        self.call_raw(api, root, method, path, headers, bytes, content_type)
            .await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors the parts of an HTTP request"
    )]
    pub async fn call_raw(
        &self,
        api: Api,
        root: &str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
        content_type: Option<String>,
    ) -> Reply {
        let reply = self
            .send(
                &method,
                &format!("{root}{path}"),
                headers,
                body.clone(),
                content_type.clone(),
            )
            .await;
        let (spec_path, query) = split(path);
        let mut request_headers = header_map(headers);
        if let Some(ct) = &content_type {
            request_headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_str(ct).unwrap(),
            );
        }
        let exchange = Exchange {
            method: method.as_str(),
            path: &spec_path,
            query: &query,
            request_headers: &request_headers,
            request_body: body.as_deref(),
            status: reply.status,
            response_headers: &reply.headers,
            response_body: &reply.body,
        };
        if let Err(e) = self.specs.validate_response(api, &exchange) {
            panic!(
                "{method} {path} → {}: response does not conform to the spec:\n{e}\nbody: {}",
                reply.status,
                reply.text()
            );
        }
        if (200..300).contains(&reply.status)
            && let Err(e) = self.specs.validate_request(api, &exchange)
        {
            panic!("{method} {path}: the sandbox accepted a request the spec does not allow:\n{e}");
        }
        reply
    }

    /// A plain HTTP exchange (pages, OAuth endpoints, admin) without spec validation.
    pub async fn send(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
        content_type: Option<String>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method.clone(), url)
            .headers(header_map(headers));
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Some(b) = body {
            request = request.body(b);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get_page(&self, url: &str) -> Reply {
        self.send(&Method::GET, url, &[], None, None).await
    }

    /// Submits an HTML form (url-encoded), as a browser would.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            &Method::POST,
            url,
            &[],
            Some(body.into_bytes()),
            Some("application/x-www-form-urlencoded".into()),
        )
        .await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.sandbox.admin_url());
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap());
        let ct = bytes.as_ref().map(|_| "application/json".to_string());
        self.send(&method, &url, &[], bytes, ct).await
    }
}

fn split(path: &str) -> (String, Vec<(String, String)>) {
    match path.split_once('?') {
        Some((p, q)) => (
            p.to_string(),
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
        ),
        None => (path.to_string(), Vec::new()),
    }
}

fn header_map(headers: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> String {
        self.header("location")
            .unwrap_or_else(|| panic!("no Location on {}: {}", self.status, self.text()))
            .to_string()
    }

    /// The `data-step` of an SCA page.
    pub fn step(&self) -> String {
        let text = self.text();
        let start = text
            .find("data-step=\"")
            .unwrap_or_else(|| panic!("not an SCA page: {text}"))
            + 11;
        text[start..].split('"').next().unwrap_or("").to_string()
    }

    /// The `action` of the form with this id, made absolute against `root`.
    pub fn form_action(&self, form_id: &str, root: &str) -> String {
        let text = self.text();
        let start = text
            .find(&format!("id=\"{form_id}\""))
            .unwrap_or_else(|| panic!("no form #{form_id} in: {text}"));
        let tag_start = text[..start].rfind('<').unwrap();
        let tag = &text[tag_start..start + text[start..].find('>').unwrap()];
        let action = tag
            .split("action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        format!("{root}{action}")
    }

    pub fn has_id(&self, id: &str) -> bool {
        self.text().contains(&format!("id=\"{id}\""))
    }

    /// The first value of a hidden or other input named `name` inside the page.
    pub fn input_value(&self, name: &str) -> String {
        let text = self.text();
        let start = text
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no input {name}"))
            + name.len()
            + 15;
        text[start..].split('"').next().unwrap().to_string()
    }
}

static UUIDS: AtomicU64 = AtomicU64::new(1);

/// A fresh UUID for `X-Request-ID`.
pub fn uuid() -> String {
    let n = UUIDS.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        n,
        n & 0xffff,
        n & 0xfff,
        n & 0xfff,
        n
    )
}

/// Berlin Group request headers: a new X-Request-ID plus the given ones.
pub fn bg(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut headers = vec![("x-request-id", uuid())];
    headers.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    headers
}

/// The root URL of the sandbox (for relative form actions).
pub fn root(h: &Harness) -> String {
    h.sandbox.url().to_string()
}
