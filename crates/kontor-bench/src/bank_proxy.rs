//! A timing proxy between the hub and the sandbox bank: the sandbox announces the proxy's URL
//! as its own (`public_url`), so every call the hub makes to a bank — and every link the bank
//! hands out — passes through here. Each call is noted with its path and when it started and
//! ended, which splits a sync's wall time into time spent waiting for the bank and time spent in
//! the hub. The proxy adds one loopback hop per call; that hop counts as hub time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Bank answers are a few hundred KiB at most (a page of 50 transactions is far less).
const BODY_LIMIT: usize = 16 << 20;

/// One call through the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub started: Instant,
    pub ended: Instant,
}

#[derive(Debug, Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// The running proxy; stops when dropped.
#[derive(Debug)]
pub struct BankProxy {
    url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    server: JoinHandle<()>,
}

/// Bank time within a stretch of calls: how many, and for how long the hub was waiting for at
/// least one of them.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct BankTime {
    pub calls: usize,
    pub seconds: f64,
}

impl BankProxy {
    /// Binds a free local port; [`BankProxy::forward_to`] then starts forwarding. The sandbox
    /// needs the proxy's URL before it starts, and the proxy the sandbox's address after.
    pub async fn bind() -> anyhow::Result<(TcpListener, String)> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the bank proxy")?;
        let url = format!("http://{}", listener.local_addr()?);
        Ok((listener, url))
    }

    pub fn forward_to(listener: TcpListener, url: String, upstream: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the proxy's client")?;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http,
            calls: Arc::clone(&calls),
        };
        let router = axum::Router::new().fallback(forward).with_state(shared);
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("kontor-bench: the bank proxy stopped: {err}");
            }
        });
        Ok(Self { url, calls, server })
    }

    /// The URL the sandbox announces as its own.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many calls were noted so far: a mark to measure from.
    pub fn mark(&self) -> usize {
        self.calls.lock().map_or(0, |calls| calls.len())
    }

    /// The calls since `mark` whose path contains `path_part`, merged into the time during
    /// which at least one of them was open.
    pub fn bank_time(&self, mark: usize, path_part: &str) -> BankTime {
        let Ok(calls) = self.calls.lock() else {
            return BankTime::default();
        };
        let mut spans: Vec<(Instant, Instant)> = calls
            .iter()
            .skip(mark)
            .filter(|c| c.path.contains(path_part))
            .map(|c| (c.started, c.ended))
            .collect();
        BankTime {
            calls: spans.len(),
            seconds: union(&mut spans).as_secs_f64(),
        }
    }
}

impl Drop for BankProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The length of the union of `spans`.
fn union(spans: &mut [(Instant, Instant)]) -> Duration {
    spans.sort_by_key(|s| s.0);
    let mut total = Duration::ZERO;
    let mut open: Option<(Instant, Instant)> = None;
    for &(start, end) in spans.iter() {
        open = match open {
            Some((from, to)) if start <= to => Some((from, to.max(end))),
            Some((from, to)) => {
                total += to - from;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((from, to)) = open {
        total += to - from;
    }
    total
}

fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::CONTENT_LENGTH
        || name == header::HOST
        || name == header::UPGRADE
        || name == header::TE
        || name.as_str() == "keep-alive"
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !hop_by_hop(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let Ok(body) = to_bytes(body, BODY_LIMIT).await else {
        return (StatusCode::BAD_GATEWAY, "request body too large").into_response();
    };
    let started = Instant::now();
    let mut headers = HeaderMap::new();
    copy_headers(&parts.headers, &mut headers);
    let sent = shared
        .http
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let status = answer.status();
    let mut answer_headers = HeaderMap::new();
    copy_headers(answer.headers(), &mut answer_headers);
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(err) => return (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
    };
    let ended = Instant::now();
    if let Ok(mut calls) = shared.calls.lock() {
        calls.push(Call {
            path: parts.uri.path().to_owned(),
            started,
            ended,
        });
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = answer_headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_calls_count_once() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        let mut spans = vec![
            (ms(10), ms(20)),
            (ms(0), ms(5)),
            (ms(15), ms(30)),
            (ms(40), ms(41)),
        ];
        assert_eq!(union(&mut spans), Duration::from_millis(26));
        assert_eq!(union(&mut []), Duration::ZERO);
    }

    #[tokio::test]
    async fn calls_pass_through_and_are_timed() {
        kontor_test_support::install_crypto_provider();
        let upstream = axum::Router::new().route(
            "/bank/v1/accounts",
            axum::routing::get(|headers: HeaderMap| async move {
                let id = headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                ([("x-request-id", id)], "[1,2,3]")
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, upstream).await });
        let (listener, url) = BankProxy::bind().await.unwrap();
        let proxy = BankProxy::forward_to(listener, url, &format!("http://{addr}")).unwrap();
        let mark = proxy.mark();
        let answer = reqwest::Client::new()
            .get(format!("{}/bank/v1/accounts?withBalance=true", proxy.url()))
            .header("x-request-id", "abc")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["x-request-id"], "abc");
        assert_eq!(answer.text().await.unwrap(), "[1,2,3]");
        let missing = reqwest::get(format!("{}/elsewhere", proxy.url()))
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(proxy.bank_time(mark, "/accounts").calls, 1);
        assert_eq!(proxy.bank_time(mark, "/").calls, 2);
        assert_eq!(proxy.bank_time(proxy.mark(), "/").calls, 0);
    }
}
