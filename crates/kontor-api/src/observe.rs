//! Per-request telemetry: one span per request (request id, method, route, tenant), one access
//! log line, and the Prometheus series `kontor_http_requests_total` and
//! `kontor_http_request_duration_seconds`. Routes are labelled by their template
//! (`/v1/users/{id}`), never by the concrete path, so ids stay out of metrics and logs.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use kontor_domain::TRACE_TARGET;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry_http::HeaderExtractor;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::request_id;

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. `None` if another recorder was
/// installed first (then `/metrics` says so rather than serving an empty page).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            start_upkeep(handle.clone());
            Some(handle)
        })
        .as_ref()
}

/// The recorder keeps every histogram sample raw until something drains it into the buckets;
/// only a scrape did, so without a scraper memory grew by each request's latency sample for
/// ever. A thread of its own (not a task: the recorder outlives any one runtime, as in the
/// tests) drains it every second, which keeps memory flat whether or not anyone scrapes.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the metrics upkeep thread; only scrapes drain histograms");
    }
}

fn describe() {
    metrics::describe_counter!(
        "kontor_http_requests_total",
        "HTTP requests by method, route and status"
    );
    metrics::describe_histogram!(
        "kontor_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by method and route"
    );
    metrics::describe_counter!(
        "kontor_db_retries_total",
        "Transactions rerun after a serialization failure or a busy database"
    );
    metrics::describe_counter!(
        "kontor_db_retries_exhausted_total",
        "Transactions abandoned after the last retry"
    );
    metrics::describe_gauge!("kontor_http_connections_open", "HTTP connections open now");
    metrics::describe_counter!(
        "kontor_http_connections_closed_total",
        "Connections closed by the server for a slow request head or idleness, by reason"
    );
}

/// Requests begun since the process started.
static STARTED: AtomicU64 = AtomicU64::new(0);

/// How many requests began since the process started: what tells the memory trimmer
/// (`kontor-memory`) that the API is busy.
pub fn requests_started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

pub async fn middleware(request: Request, next: Next) -> Response {
    STARTED.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let trace = trace_span(&request, &method, &route);
    let span = tracing::info_span!(
        "request",
        request.id = request_id::current().unwrap_or_default(),
        http.method = %method,
        http.route = %route,
        tenant.id = Empty,
        client.id = Empty,
    );
    let response = next
        .run(request)
        .instrument(span.clone())
        .instrument(trace.clone())
        .await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    trace.record("http.response.status_code", status);
    if status >= 500 {
        trace.record("otel.status_code", "error");
    }

    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("kontor_http_requests_total", &labels).increment(1);
    metrics::histogram!(
        "kontor_http_request_duration_seconds",
        "method" => method.as_str().to_owned(),
        "route" => route,
    )
    .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            http.status = status,
            duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "request served"
        );
    });
    response
}

/// The request's span in the exported traces: method, route template and status, nothing else
/// (no ids, no query, no headers). A caller's W3C `traceparent` (and `tracestate`) makes it a
/// child of the caller's span, so the request continues the caller's trace. Without telemetry
/// the span is disabled and the propagator does nothing.
fn trace_span(request: &Request, method: &axum::http::Method, route: &str) -> tracing::Span {
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "http request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
    );
    if !span.is_disabled() {
        let caller = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        // Only a caller's valid `traceparent` gives a parent; otherwise the span starts a trace.
        if opentelemetry::trace::TraceContextExt::has_active_span(&caller) {
            let _ = span.set_parent(caller);
        }
    }
    span
}
