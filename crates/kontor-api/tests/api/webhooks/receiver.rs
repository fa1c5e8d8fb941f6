//! A real HTTP receiver for webhook tests: it records every request (headers, body, when), answers
//! as a test scripts it, and counts how many requests for one webhook-id or one user are in
//! flight at once. It verifies signatures with its own HMAC code, as a tenant's receiver would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// 302 to another path of this receiver, which would answer 204.
    Redirect,
    /// Answers 204 after a while.
    Slow(Duration),
    /// Answers 200 at once, but sends the body only after a while.
    SlowBody(Duration),
    /// Never answers.
    Hang,
}

/// Decides the reply from the request and how many requests with its webhook-id came before.
pub type Rule = Arc<dyn Fn(&Received, usize) -> Reply + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub json: Value,
    /// The status it was answered with (0 for a request never answered).
    pub status: u16,
}

impl Received {
    pub fn user(&self) -> String {
        self.json["user_id"].as_str().unwrap_or_default().to_owned()
    }

    pub fn delivered(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Default)]
struct Inner {
    log: Vec<Received>,
    seen: HashMap<String, usize>,
    in_flight_ids: HashMap<String, usize>,
    in_flight_users: HashMap<String, usize>,
    max_per_id: usize,
    max_per_user: usize,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    rule: Arc<Mutex<Rule>>,
}

pub struct Receiver {
    pub port: u16,
    shared: Shared,
    server: Option<JoinHandle<()>>,
}

/// A port that nothing listens on (for "the receiver is down").
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Receiver {
    /// Answers 204 to everything until told otherwise.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .unwrap();
        let listener = socket.listen(1024).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Shared {
            inner: Arc::default(),
            rule: Arc::new(Mutex::new(Arc::new(|_: &Received, _| Reply::Status(204)))),
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            shared,
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn set_rule(&self, rule: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static) {
        *self.shared.rule.lock().unwrap() = Arc::new(rule);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.inner.lock().unwrap().log.clone()
    }

    pub fn delivered(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::delivered)
            .collect()
    }

    /// Most requests with one webhook-id, and for one user, in flight at the same time.
    pub fn max_concurrency(&self) -> (usize, usize) {
        let inner = self.shared.inner.lock().unwrap();
        (inner.max_per_id, inner.max_per_user)
    }

    /// Waits until `n` requests were answered with a 2xx.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let delivered = self.delivered();
            if delivered.len() >= n {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} deliveries arrived in {within:?}",
                delivered.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_received(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut received = Received {
        path: uri.path().to_owned(),
        id: header(&headers, "webhook-id"),
        timestamp: header(&headers, "webhook-timestamp").parse().unwrap_or(0),
        signature: header(&headers, "webhook-signature"),
        content_type: header(&headers, "content-type"),
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        body: body.to_vec(),
        status: 0,
    };
    let rule = shared.rule.lock().unwrap().clone();
    let reply = {
        let mut inner = shared.inner.lock().unwrap();
        let seen = inner.seen.entry(received.id.clone()).or_default();
        let before = *seen;
        *seen += 1;
        let reply = rule(&received, before);
        received.status = match &reply {
            Reply::Status(s) => *s,
            Reply::Redirect => 302,
            Reply::Slow(_) => 204,
            Reply::SlowBody(_) => 200,
            Reply::Hang => 0,
        };
        let per_id = inner.in_flight_ids.entry(received.id.clone()).or_default();
        *per_id += 1;
        let per_id = *per_id;
        let per_user = inner.in_flight_users.entry(received.user()).or_default();
        *per_user += 1;
        let per_user = *per_user;
        inner.max_per_id = inner.max_per_id.max(per_id);
        inner.max_per_user = inner.max_per_user.max(per_user);
        inner.log.push(received.clone());
        reply
    };
    let response = match reply {
        Reply::Status(status) => StatusCode::from_u16(status).unwrap().into_response(),
        Reply::Redirect => {
            (StatusCode::FOUND, [("location", "/redirected")], "moved").into_response()
        }
        Reply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Reply::SlowBody(wait) => {
            let late = futures_util::stream::once(async move {
                tokio::time::sleep(wait).await;
                Ok::<_, std::convert::Infallible>(Bytes::from_static(b"thanks"))
            });
            (StatusCode::OK, axum::body::Body::from_stream(late)).into_response()
        }
        Reply::Hang => std::future::pending().await,
    };
    let mut inner = shared.inner.lock().unwrap();
    if let Some(n) = inner.in_flight_ids.get_mut(&received.id) {
        *n -= 1;
    }
    if let Some(n) = inner.in_flight_users.get_mut(&received.user()) {
        *n -= 1;
    }
    response
}

/// Verifies a request's signature the way the README tells receivers to: HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}` keyed with the base64-decoded part of the
/// `whsec_` secret, compared with each `v1,` signature in the header.
pub fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .signature
        .split(' ')
        .any(|candidate| candidate == expected)
}
