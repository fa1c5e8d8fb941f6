//! Logging and traces. Logs: structured JSON lines (or human-readable ones) on stderr, so that
//! stdout stays free for the output scripts parse. What gets logged is chosen at the call sites:
//! ids and counts, never secrets or personal data.
//!
//! Traces (`[telemetry] otlp_endpoint`): the spans whose target is
//! [`kontor_domain::TRACE_TARGET`] — one per HTTP request, bank call, database transaction,
//! webhook attempt and worker job — are exported over OTLP/HTTP (protobuf) in batches from a
//! bounded queue. Only those spans, with only the attributes they declare, leave the process:
//! the log's own spans and events (which carry ids) never do. A failing collector costs a
//! warning a minute at most, never a request: spans beyond the queue are dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use kontor_domain::TRACE_TARGET;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider,
};
use tracing::Level;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat, TelemetryConfig};

/// At most one warning about failing exports per this long; the others are counted in it.
const FAILURE_LOG_INTERVAL_SECONDS: u64 = 60;

/// How long shutting down may spend exporting what is still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the log shows of what `filter` lets through.
fn logged<S>(filter: EnvFilter) -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The exported spans are not the log's: they stay out of it, and the log's out of them.
    filter
        .and(filter_fn(|meta| meta.target() != TRACE_TARGET))
        .and(HarmlessNotices)
}

/// Where sqlx logs the notices PostgreSQL sends a connection (warnings at `warn`).
const SQLX_NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// PostgreSQL's warning for a `ROLLBACK` outside a transaction.
const NO_TRANSACTION_NOTICE: &str = "there is no transaction in progress";

/// Keeps one notice out of the log: "there is no transaction in progress". sqlx sends that
/// `ROLLBACK` itself whenever a `COMMIT` fails: the server has already ended the transaction
/// (a serialization failure found at commit, a deferred constraint), but sqlx still counts it
/// open and rolls it back when the transaction is dropped. The `ROLLBACK` changes nothing and
/// the connection goes back to the pool clean; the commit's own error is handled (retried or
/// answered) where it happened. Under a failover, when many commits fail at once, these
/// warnings came in bursts and hid the lines that matter. Every other notice is still logged.
struct HarmlessNotices;

impl<S> tracing_subscriber::layer::Filter<S> for HarmlessNotices {
    fn enabled(
        &self,
        _: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        true
    }

    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if event.metadata().target() != SQLX_NOTICE_TARGET {
            return true;
        }
        let mut message = NoticeMessage(None);
        event.record(&mut message);
        message.0.as_deref() != Some(NO_TRANSACTION_NOTICE)
    }
}

/// The `message` field of an event.
struct NoticeMessage(Option<String>);

impl tracing::field::Visit for NoticeMessage {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// What a process exports spans as: its role (`serve`, `worker`, `demo`) and the regions whose
/// cells it serves.
#[derive(Debug, Clone)]
pub struct Process {
    pub role: &'static str,
    pub regions: Vec<String>,
}

/// The trace exporter of a process, if telemetry is on. [`Telemetry::shutdown`] exports what is
/// still queued; call it once the process has drained.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn is_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued (waiting at most a few seconds) and stops the exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // Blocking: the export thread needs this runtime's workers to send the last batch.
        let result =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                .await;
        match result {
            Ok(Ok(())) => tracing::info!("trace export flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "flushing the trace export failed"),
            Err(error) => tracing::warn!(%error, "flushing the trace export failed"),
        }
    }
}

/// The filter for `log.level`: sqlx's own INFO lines (a PostgreSQL `NOTICE` such as "relation
/// already exists, skipping" on every migration, statement summaries) say nothing an operator
/// acts on, so sqlx logs warnings and errors only unless the level names it (`sqlx=info`).
/// `RUST_LOG`, when set, is taken as it is.
pub fn level_directives(level: &str) -> String {
    if level.contains("sqlx") {
        level.to_owned()
    } else {
        format!("{level},sqlx=warn")
    }
}

/// Installs the logger, and the trace exporter when `process` is given and telemetry is on.
/// Must run inside the Tokio runtime that the process then uses (exports run on it).
pub fn init(
    log: &LogConfig,
    telemetry: &TelemetryConfig,
    process: Option<&Process>,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level_directives(&log.level)))
        .unwrap_or_else(|_| EnvFilter::new(level_directives("info")));
    let logged = logged(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let fmt = match log.format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(logged)
            .boxed(),
        LogFormat::Pretty => fmt.compact().with_filter(logged).boxed(),
    };
    let endpoint = telemetry
        .otlp_endpoint
        .as_deref()
        .filter(|_| process.is_some());
    let (provider, traces) = match (endpoint, process) {
        (Some(endpoint), Some(process)) => {
            let provider = provider(telemetry, endpoint, process)?;
            let tracer = provider.tracer("kontor");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_threads(false)
                .with_location(false)
                .with_target(false)
                .with_level(false)
                .with_tracked_inactivity(false)
                .with_filter(Targets::new().with_target(TRACE_TARGET, Level::INFO));
            (Some(provider), Some(layer))
        }
        _ => (None, None),
    };
    // A second initialisation (tests calling into the CLI twice) is harmless; ignore it.
    let installed = tracing_subscriber::registry()
        .with(fmt)
        .with(traces)
        .try_init()
        .is_ok();
    let Some(provider) = provider else {
        return Ok(Telemetry::default());
    };
    if !installed {
        let _ = provider.shutdown();
        return Ok(Telemetry::default());
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    tracing::info!(
        endpoint = %telemetry.traces_url(endpoint.unwrap_or_default())?,
        role = process.map(|p| p.role),
        "exporting traces over OTLP"
    );
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn provider(
    config: &TelemetryConfig,
    endpoint: &str,
    process: &Process,
) -> anyhow::Result<SdkTracerProvider> {
    let url = config.traces_url(endpoint)?;
    let client = Exporter::new(config)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.as_str())
        .with_timeout(config.export_timeout())
        .with_http_client(client)
        .build()
        .context("building the OTLP span exporter")?;
    let batches = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_size)
        .with_max_export_batch_size(config.max_export_batch_size)
        .with_scheduled_delay(Duration::from_millis(config.scheduled_delay_ms))
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batches)
        .build();
    let mut attributes = vec![
        KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new("kontor.role", process.role),
        KeyValue::new("kontor.region", process.regions.join(",")),
    ];
    attributes.extend(
        config
            .resource_attributes
            .iter()
            .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
    );
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attributes(attributes)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: the workspace's reqwest over rustls (ring), each request run on
/// the process's Tokio runtime (the batch processor exports from a thread of its own). Failures
/// are logged here, a warning a minute at most.
#[derive(Debug)]
struct Exporter {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    failures: Arc<FailureLog>,
}

impl Exporter {
    fn new(config: &TelemetryConfig) -> anyhow::Result<Self> {
        // reqwest is built without a bundled TLS provider; ring is the workspace's one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(config.export_timeout().min(Duration::from_secs(5)))
            .timeout(config.export_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Kontor/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the OTLP HTTP client")?;
        let runtime = tokio::runtime::Handle::try_current()
            .context("the trace exporter needs the Tokio runtime")?;
        Ok(Self {
            client,
            runtime,
            failures: Arc::new(FailureLog::default()),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for Exporter {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let request = self
            .client
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body);
        let sent = self.runtime.spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        match sent.await {
            Ok(Ok((status, body))) if status.is_success() => {
                let mut response = Response::new(body);
                *response.status_mut() = status;
                Ok(response)
            }
            Ok(Ok((status, body))) => {
                self.failures
                    .note(&format!("the collector answered {status}"));
                let mut response = Response::new(body);
                *response.status_mut() = status;
                Ok(response)
            }
            Ok(Err(error)) => {
                let reason = describe(&error);
                self.failures.note(&reason);
                Err(reason.into())
            }
            Err(error) => {
                self.failures.note("the export task failed");
                Err(Box::new(error) as HttpError)
            }
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "the collector did not answer in time".to_owned()
    } else if error.is_connect() {
        "the collector cannot be reached".to_owned()
    } else {
        format!("sending spans failed: {error}")
    }
}

/// Rate-limited warnings about failed exports: the first at once, then at most one a minute,
/// each with how many failed since the last.
#[derive(Debug, Default)]
struct FailureLog {
    /// Seconds since the epoch of the last warning (0: none yet).
    last: AtomicU64,
    unreported: AtomicU64,
}

impl FailureLog {
    fn note(&self, reason: &str) {
        let failures = self.unreported.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= FAILURE_LOG_INTERVAL_SECONDS;
        if due
            && self
                .last
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.unreported.store(0, Ordering::Relaxed);
            tracing::warn!(
                reason,
                failures,
                "exporting traces failed; spans are dropped until the collector answers"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use sqlx::{Connection, PgConnection};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A log written to memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Where the warning came from, and that only it leaves the log: a COMMIT the server refuses
    /// ends the transaction there, sqlx rolls it back anyway, and PostgreSQL warns about that
    /// ROLLBACK. A raw log beside the hub's shows the warning is really sent.
    #[tokio::test]
    async fn the_rollback_sqlx_sends_after_a_refused_commit_stays_out_of_the_log() {
        let Some(db) =
            kontor_test_support::TestDatabase::postgres("telemetry::no_transaction").await
        else {
            return;
        };
        let (raw, hub) = (Captured::default(), Captured::default());
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(raw.clone())
                    .with_filter(EnvFilter::new("warn")),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(hub.clone())
                    .with_filter(logged(EnvFilter::new("warn"))),
            );
        let _guard = tracing::subscriber::set_default(subscriber);

        let mut conn = PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(
            "CREATE TABLE t (id INT PRIMARY KEY, \
             parent INT REFERENCES t (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO t VALUES (1, 99)")
            .execute(&mut *tx)
            .await
            .unwrap();
        // The deferred foreign key is checked at COMMIT, which the server refuses.
        assert!(tx.commit().await.is_err());
        // sqlx's ROLLBACK goes out before the next statement.
        sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
        sqlx::query("DO $$ BEGIN RAISE WARNING 'a warning that matters'; END $$")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();

        let (raw, hub) = (raw.text(), hub.text());
        assert!(raw.contains(NO_TRANSACTION_NOTICE), "{raw}");
        assert!(!hub.contains(NO_TRANSACTION_NOTICE), "{hub}");
        assert!(hub.contains("a warning that matters"), "{hub}");
    }

    #[test]
    fn sqlx_logs_warnings_only_unless_named() {
        assert_eq!(level_directives("info"), "info,sqlx=warn");
        assert_eq!(level_directives("debug"), "debug,sqlx=warn");
        assert_eq!(level_directives("info,sqlx=debug"), "info,sqlx=debug");
    }
}
