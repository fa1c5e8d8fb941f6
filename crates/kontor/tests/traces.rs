//! OpenTelemetry traces over OTLP/HTTP, against the built binary and a collector played by the
//! test (a small HTTP server that takes `POST /v1/traces` and decodes the protobuf): a request
//! with a caller's `traceparent` continues the caller's trace down to the bank, whose sandbox
//! records the `traceparent` it received; no exported span names a user, connection or account;
//! spans still queued leave on SIGTERM; an unreachable collector fails no request and costs one
//! warning; and without `telemetry.otlp_endpoint` nothing connects to a collector, even with the
//! standard `OTEL_EXPORTER_OTLP_*` variables pointing at one.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use common::demo::{Demo, wait_for};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// One span as the collector received it, ids in lower-case hex.
#[derive(Debug, Clone)]
struct Exported {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: BTreeMap<String, String>,
    resource: BTreeMap<String, String>,
}

/// The test's OTLP/HTTP collector: every connection counted, every span kept.
struct Collector {
    url: String,
    connections: Arc<AtomicUsize>,
    spans: Arc<Mutex<Vec<Exported>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let counted = connections.clone();
        let listener = listener.tap_io(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            connections,
            spans,
        }
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until the spans of `trace_id` satisfy `done`; returns them.
    async fn wait_for_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&[Exported]) -> bool,
    ) -> Vec<Exported> {
        let started = Instant::now();
        loop {
            let spans: Vec<Exported> = self
                .spans()
                .into_iter()
                .filter(|s| s.trace_id == trace_id)
                .collect();
            if done(&spans) {
                return spans;
            }
            assert!(
                started.elapsed() < WAIT,
                "the collector did not get the trace {trace_id}; it has {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(
    State(spans): State<Arc<Mutex<Vec<Exported>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = attributes(
            &resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push(Exported {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes: attributes(&span.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
    spans.lock().unwrap().extend(received);
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn attributes(list: &[KeyValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client() -> reqwest::Client {
    kontor_test_support::install_crypto_provider();
    reqwest::Client::new()
}

/// A fresh caller's trace id and span id, and the `traceparent` naming them.
fn caller() -> (String, String, String) {
    let trace_id = hex(&rand::random::<[u8; 16]>());
    let span_id = hex(&rand::random::<[u8; 8]>());
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, traceparent)
}

/// The demo's hub and sandbox, the API credentials, and a client for both.
struct Hub {
    api: String,
    sandbox: String,
    bearer: String,
    http: reqwest::Client,
}

impl Hub {
    async fn new(first_line: &str) -> Self {
        let json: Value = serde_json::from_str(first_line).unwrap();
        let api = json["api_base_url"].as_str().unwrap().to_owned();
        let sandbox = json["sandbox_url"].as_str().unwrap().to_owned();
        let http = client();
        let response = http
            .post(format!("{api}/v1/oauth/token"))
            .basic_auth(
                json["client_id"].as_str().unwrap(),
                json["client_secret"].as_str(),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let bearer = body["access_token"].as_str().unwrap().to_owned();
        Self {
            api,
            sandbox,
            bearer,
            http,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        traceparent: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A new user with alice's accounts at Sonnenbank, synced once.
    async fn linked(&self, external_id: &str) -> common::link::Linked {
        common::link::Api {
            http: &self.http,
            api: &self.api,
            sandbox: &self.sandbox,
            bearer: &self.bearer,
        }
        .linked_user(external_id)
        .await
    }

    /// A sync with the user present, as a caller in trace `traceparent`.
    async fn refresh(&self, connection_id: &str, traceparent: &str) {
        let path = format!("/v1/connections/{connection_id}/refresh");
        let body = json!({"psu_ip_address": "203.0.113.7"});
        let (status, report) = self
            .call(reqwest::Method::POST, &path, Some(body), Some(traceparent))
            .await;
        assert_eq!(status, 200, "{report}");
    }

    /// The `traceparent` headers the sandbox bank received.
    async fn received_by_bank(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}/admin/traceparents", self.sandbox))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_reaches_the_bank_and_the_collector() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (demo, first) = Demo::start_env(
        dir.path(),
        logs.path(),
        &[
            ("KONTOR_TELEMETRY__OTLP_ENDPOINT", &collector.url),
            ("KONTOR_TELEMETRY__SCHEDULED_DELAY_MS", "200"),
        ],
    );
    let hub = Hub::new(&first).await;
    let common::link::Linked {
        user_id,
        connection_id,
        account_id,
    } = hub.linked("trace-user").await;

    let (trace_id, caller_span, traceparent) = caller();
    hub.refresh(&connection_id, &traceparent).await;

    let spans = collector
        .wait_for_trace(&trace_id, |spans| {
            spans.iter().any(|s| s.name.starts_with("POST "))
                && spans.iter().any(|s| s.name.starts_with("bank "))
        })
        .await;
    // The request continues the caller's span.
    let request = spans.iter().find(|s| s.name.starts_with("POST ")).unwrap();
    assert_eq!(request.name, "POST /v1/connections/{id}/refresh");
    assert_eq!(request.parent_span_id, caller_span, "{request:#?}");
    assert_eq!(
        request.attributes["http.route"],
        "/v1/connections/{id}/refresh"
    );
    assert_eq!(request.attributes["http.request.method"], "POST");
    assert_eq!(request.attributes["http.response.status_code"], "200");
    assert_eq!(request.resource["service.name"], "kontor");
    assert_eq!(request.resource["kontor.role"], "demo");
    assert_eq!(request.resource["kontor.region"], "de,uk");
    assert_eq!(
        request.resource["service.version"],
        env!("CARGO_PKG_VERSION")
    );
    // Its bank calls: the bank and the operation, under the request.
    let bank_calls: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.name.starts_with("bank "))
        .collect();
    for call in &bank_calls {
        assert_eq!(call.attributes["bank.id"], "sonnenbank", "{call:#?}");
        assert_eq!(call.attributes["outcome"], "ok", "{call:#?}");
        assert!(!call.attributes["bank.operation"].is_empty());
    }
    let ids: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for span in &spans {
        if span.span_id != request.span_id {
            assert!(
                ids.contains(&span.parent_span_id.as_str()),
                "{} is not under the request: {span:#?}",
                span.name
            );
        }
    }
    // The bank received the bank calls' spans as their traceparent.
    let received = hub.received_by_bank().await;
    let in_trace: Vec<&Value> = received
        .iter()
        .filter(|r| {
            r["traceparent"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("00-{trace_id}-")))
        })
        .collect();
    assert!(
        !in_trace.is_empty(),
        "the bank got no traceparent of trace {trace_id}: {received:#?}"
    );
    for entry in in_trace {
        let parent = entry["traceparent"]
            .as_str()
            .unwrap()
            .split('-')
            .nth(2)
            .unwrap();
        assert!(
            bank_calls.iter().any(|call| call.span_id == parent),
            "the bank's traceparent {entry} names no exported bank call"
        );
    }
    // Transactions of the sync are in the trace too.
    assert!(
        spans.iter().any(|s| s.name.starts_with("db ")),
        "no database transaction in {spans:#?}"
    );

    // Nothing exported names the user or what is theirs, in any trace.
    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
    let everything = collector.spans();
    for span in &everything {
        let text = format!("{} {:?}", span.name, span.attributes);
        for secret in [&user_id, &connection_id, &account_id, "alice", "trace-user"] {
            assert!(
                !text.contains(secret),
                "{secret} in an exported span: {span:#?}"
            );
        }
    }
    // The embedded worker's jobs are traced too.
    assert!(
        everything
            .iter()
            .any(|s| s.name.starts_with("worker ") && s.attributes.contains_key("job")),
        "no worker job among {} spans",
        everything.len()
    );
}

/// `kontor serve` with its stderr in a file; returns the process, its address and the file.
fn serve(dir: &Path, env: &[(&str, &str)]) -> (Child, String, PathBuf) {
    let log = dir.join("serve.stderr");
    let mut child = common::kontor(&dir.join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KONTOR_SECRETS__KEYS", common::TEST_KEKS)
        .env("KONTOR_LOG__LEVEL", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let file = std::fs::File::open(&log).unwrap();
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["message"] == "serving"
            {
                let address = entry["address"].as_str().unwrap().to_owned();
                return (child, address, log);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "kontor serve exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < WAIT, "kontor serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_for(child, WAIT).expect("kontor serve did not exit after SIGTERM")
}

/// `POST /v1/oauth/token` with a wrong secret (a 401 answered from the database), as a caller
/// in `traceparent`.
async fn token_request(address: &str, traceparent: &str) -> u16 {
    client()
        .post(format!("http://{address}/v1/oauth/token"))
        .basic_auth("cli_nobody", Some("wrong"))
        .header("traceparent", traceparent)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_queued_leave_on_sigterm() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Exports only when a batch is full or at shutdown.
    let (mut child, address, log) = serve(
        dir.path(),
        &[
            ("KONTOR_TELEMETRY__OTLP_ENDPOINT", &collector.url),
            ("KONTOR_TELEMETRY__SCHEDULED_DELAY_MS", "300000"),
            ("KONTOR_SERVER__DRAIN_SECONDS", "0"),
            ("KONTOR_WORKER__EMBEDDED", "false"),
        ],
    );
    let (trace_id, caller_span, traceparent) = caller();
    assert_eq!(token_request(&address, &traceparent).await, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        collector.spans().iter().all(|s| s.trace_id != trace_id),
        "exported before the batch was due"
    );
    let status = sigterm(&mut child);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let spans: Vec<Exported> = collector
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let request = spans
        .iter()
        .find(|s| s.name == "POST /v1/oauth/token")
        .unwrap_or_else(|| panic!("the request's span was not flushed: {spans:#?}"));
    assert_eq!(request.parent_span_id, caller_span);
    assert_eq!(request.attributes["http.response.status_code"], "401");
    assert_eq!(request.resource["kontor.role"], "serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_fails_no_request() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address, log) = serve(
        dir.path(),
        &[
            ("KONTOR_TELEMETRY__OTLP_ENDPOINT", &endpoint),
            ("KONTOR_TELEMETRY__SCHEDULED_DELAY_MS", "100"),
            ("KONTOR_TELEMETRY__MAX_EXPORT_BATCH_SIZE", "1"),
            ("KONTOR_SERVER__DRAIN_SECONDS", "0"),
            ("KONTOR_WORKER__EMBEDDED", "false"),
        ],
    );
    let http = client();
    for _ in 0..30 {
        let (_, _, traceparent) = caller();
        let response = http
            .get(format!("http://{address}/healthz"))
            .header("traceparent", traceparent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    // Several exports have failed by now (one span a batch, a batch every 100 ms at most).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = sigterm(&mut child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");
    let warnings: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("exporting traces failed"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "one warning a minute at most: {text}");
    assert_eq!(warnings[0]["reason"], "the collector cannot be reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_exported_or_propagated() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let traces_url = format!("{}/v1/traces", collector.url);
    // The SDK's own variables point at the collector: the hub must not follow them.
    let (demo, first) = Demo::start_env(
        dir.path(),
        logs.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url),
            ("OTEL_TRACES_EXPORTER", "otlp"),
        ],
    );
    let hub = Hub::new(&first).await;
    let connection_id = hub.linked("untraced-user").await.connection_id;
    let (_, _, traceparent) = caller();
    hub.refresh(&connection_id, &traceparent).await;
    let received = hub.received_by_bank().await;
    let (status, log) = demo.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        collector.connections(),
        0,
        "something connected to the collector"
    );
    assert!(
        received.is_empty(),
        "the bank got traceparent headers without telemetry: {received:#?}"
    );
}
