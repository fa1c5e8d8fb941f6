//! Operations endpoints: liveness, readiness (every database reachable and migrated, and this
//! node's key-encryption keys the ones the data was sealed with; bank client certificates near
//! their expiry as warnings) and Prometheus metrics. They take no token: expose them to the
//! cluster, not the internet.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::certificate::{EXPIRY_WARNING_DAYS, ExpiryStatus};
use kontor_service::Hub;
use serde::Serialize;
use utoipa::ToSchema;

use crate::observe;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = crate::openapi::schemas::HealthWord)]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(value_type = crate::openapi::schemas::ReadinessWord)]
    pub status: &'static str,
    pub databases: Vec<DatabaseCheck>,
    pub keys: KeysCheck,
    /// Warnings, not failures: the certificates the hub presents to banks (TLS client
    /// certificates and seals) that expire within 14 days or have expired. Empty when none does.
    pub certificates: Vec<CertificateWarning>,
}

/// A certificate at a bank close to (or past) its `notAfter`. Replace the files: the hub reads
/// a TLS certificate's again without a restart (a seal's at the next start).
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateWarning {
    #[schema(example = "sonnenbank")]
    pub bank: String,
    /// The tenant registered at the bank as a third party of its own; null for the hub's.
    pub tenant: Option<String>,
    #[schema(value_type = crate::openapi::schemas::CertificateKindWord)]
    pub kind: &'static str,
    #[schema(value_type = crate::openapi::schemas::CertificateStatusWord)]
    pub status: &'static str,
    /// The certificate's `notAfter`, RFC 3339.
    #[schema(example = "2027-03-31T23:59:59Z")]
    pub expires_at: String,
    /// The certificate's serial number, hexadecimal.
    #[schema(example = "5a1f0c")]
    pub serial: String,
}

/// Whether this node's key-encryption keys open the canary sealed in the control database.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysCheck {
    /// `ok`, `unknown_key` (sealed with a key not configured here), `wrong_key` (a key with that
    /// id is configured, but another one), `unreachable` or `timeout`.
    #[schema(value_type = crate::openapi::schemas::KeysStatusWord)]
    pub status: &'static str,
    /// The id of the key-encryption key that sealed the canary, when known.
    #[schema(example = "kek2026")]
    pub key_id: Option<String>,
    /// What is wrong, for an operator; null when all is well.
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseCheck {
    /// `control`, or `cell:<region>`.
    #[schema(example = "cell:uk")]
    pub name: String,
    #[schema(example = "postgres")]
    pub backend: &'static str,
    #[schema(value_type = crate::openapi::schemas::DatabaseStatusWord)]
    pub status: &'static str,
}

impl From<kontor_service::DatabaseCheck> for DatabaseCheck {
    fn from(check: kontor_service::DatabaseCheck) -> Self {
        Self {
            name: check.name,
            backend: check.backend,
            status: check.status,
        }
    }
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "getHealth",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

async fn check_keys(hub: &Hub, timeout: Duration) -> KeysCheck {
    let (status, key_id, problem) = match tokio::time::timeout(timeout, hub.key_status()).await {
        Ok(Ok(status)) => {
            let problem = (!status.is_ok()).then(|| status.explain());
            (status.code(), Some(status.key_id().to_owned()), problem)
        }
        Ok(Err(err)) => ("unreachable", None, Some(err.to_string())),
        Err(_) => ("timeout", None, None),
    };
    if status != "ok" {
        tracing::warn!(
            status,
            key_id = key_id.as_deref(),
            problem = problem.as_deref(),
            "keys not ready"
        );
    }
    KeysCheck {
        status,
        key_id,
        problem,
    }
}

/// Readiness: the control database and every cell answer and are fully migrated, and this
/// node's key-encryption keys open the key canary (the data was sealed with them). Bank client
/// certificates that expire within 14 days are listed in `certificates` (and logged) without
/// making the node unready. A node that
/// was told to stop answers 503 with status `draining` (the checks still run and are shown)
/// while it goes on serving for `server.drain_seconds`.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Draining before a stop, or a database is unreachable or not migrated, or the keys cannot open the data", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let draining = state.draining().is_draining();
    readiness(state.hub(), state.settings().readiness_timeout, draining).await
}

/// What the operations endpoints of a process without the API (`kontor worker`) need.
#[derive(Debug, Clone)]
pub struct OpsState {
    pub hub: Hub,
    /// How long `/readyz` waits for each database.
    pub readiness_timeout: Duration,
}

/// `/readyz` of a process without the API: the same checks.
pub async fn worker_readyz(State(state): State<OpsState>) -> Response {
    readiness(&state.hub, state.readiness_timeout, false).await
}

/// The bank certificates that expire within the warning window (or have expired), each logged
/// as a warning.
fn certificate_warnings(hub: &Hub) -> Vec<CertificateWarning> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out = Vec::new();
    for certificate in hub.directory().certificates() {
        let info = certificate.info();
        let status = ExpiryStatus::at(info.not_after, now);
        if status == ExpiryStatus::Ok {
            continue;
        }
        let label = certificate.label();
        let expires_at = time::OffsetDateTime::from_unix_timestamp(info.not_after)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| info.not_after.to_string());
        tracing::warn!(
            bank = %label.bank,
            tenant = label.tenant.as_deref(),
            kind = label.kind,
            serial = %info.serial,
            expires_at = %expires_at,
            status = status.as_str(),
            "bank certificate expires within {EXPIRY_WARNING_DAYS} days or has expired"
        );
        out.push(CertificateWarning {
            bank: label.bank.clone(),
            tenant: label.tenant.clone(),
            kind: label.kind,
            status: status.as_str(),
            expires_at,
            serial: info.serial,
        });
    }
    out
}

/// `draining`: the process was told to stop and serves out its drain time.
async fn readiness(hub: &Hub, timeout: Duration, draining: bool) -> Response {
    let databases: Vec<DatabaseCheck> = hub
        .database_checks(timeout)
        .await
        .into_iter()
        .map(DatabaseCheck::from)
        .collect();
    // The canary lives in the control database (checked first): ask only once that is usable.
    let control_ok = databases
        .first()
        .is_some_and(|control| control.status == "ok");
    let keys = if control_ok {
        check_keys(hub, timeout).await
    } else {
        KeysCheck {
            status: "unreachable",
            key_id: None,
            problem: None,
        }
    };
    let ready = !draining && databases.iter().all(|d| d.status == "ok") && keys.status == "ok";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if draining {
        "draining"
    } else if ready {
        "ready"
    } else {
        "not_ready"
    };
    let body = Readiness {
        status: word,
        databases,
        keys,
        certificates: certificate_warnings(hub),
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "getMetrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> Response {
    let Some(handle) = observe::prometheus() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
