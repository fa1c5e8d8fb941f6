//! Strict mode at a Berlin Group bank: before any handler runs, the TLS client certificate
//! (QWAC) must chain to the TPP CA, be valid, and carry the PSD2 role of the service; and the
//! request must be signed (`Digest`, `Signature`, `TPP-Signature-Certificate`) with a QSealC of
//! the same organisation. Failures answer `401` with the spec's `tppMessages` codes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::certs::{CertProblem, TppCertificate};
use super::http_signature as sig;
use super::qc::PspRole;
use super::tls::PeerCertificates;
use crate::bg::error::{BgError, Service};
use crate::state::Bank;
use crate::web::extract::BODY_LIMIT;

/// The roles that may use a path: AIS needs `PSP_AI`, PIS `PSP_PI`, confirmation of funds
/// `PSP_IC`, signing baskets either of AI and PI.
fn roles_for(path: &str) -> &'static [PspRole] {
    let first = path.trim_start_matches('/').split('/').nth(1).unwrap_or("");
    match first {
        "consents" | "accounts" | "card-accounts" => &[PspRole::Ai],
        "payments" | "bulk-payments" | "periodic-payments" => &[PspRole::Pi],
        "funds-confirmations" => &[PspRole::Ic],
        "signing-baskets" => &[PspRole::Ai, PspRole::Pi],
        _ => &[],
    }
}

fn unauthorized(service: Service, code: &'static str, text: impl Into<String>) -> Response {
    BgError::new(service, StatusCode::UNAUTHORIZED, code, text).into_response()
}

fn certificate_error(service: Service, which: &str, problem: &CertProblem) -> Response {
    let code = match problem {
        CertProblem::Missing => "CERTIFICATE_MISSING",
        CertProblem::Invalid(_) => "CERTIFICATE_INVALID",
        CertProblem::Expired(_) => "CERTIFICATE_EXPIRED",
    };
    unauthorized(service, code, format!("{which}: {problem}"))
}

fn role_error(
    service: Service,
    which: &str,
    cert: &TppCertificate,
    needed: &[PspRole],
) -> Option<Response> {
    if needed.is_empty() || needed.iter().any(|r| cert.has_role(*r)) {
        return None;
    }
    let needed: Vec<&str> = needed.iter().map(|r| r.name()).collect();
    let held: Vec<&str> = cert.roles().iter().map(|r| r.name()).collect();
    Some(unauthorized(
        service,
        "ROLE_INVALID",
        format!(
            "{which} lacks the PSD2 role {} for this service (it has: {})",
            needed.join(" or "),
            if held.is_empty() {
                "none".to_string()
            } else {
                held.join(", ")
            }
        ),
    ))
}

/// The middleware.
pub async fn guard(State(bank): State<Arc<Bank>>, request: Request, next: Next) -> Response {
    let Some(gate) = bank.tpp.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let service = crate::bg::service_of(&path);
    let needed = roles_for(&path);
    let tls = match gate.judge_tls(request.extensions().get::<PeerCertificates>()) {
        Ok(cert) => cert,
        Err(problem) => return certificate_error(service, "TLS client certificate", &problem),
    };
    if let Some(refused) = role_error(service, "the TLS client certificate", &tls, needed) {
        return refused;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return BgError::format(service, "the body is too large").into_response();
    };
    let headers = &parts.headers;
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let Some(signature) = text("signature") else {
        return unauthorized(
            service,
            "SIGNATURE_MISSING",
            "this bank requires signed requests: Signature, Digest and TPP-Signature-Certificate",
        );
    };
    let Some(certificate) = text("tpp-signature-certificate") else {
        return certificate_error(service, "TPP-Signature-Certificate", &CertProblem::Missing);
    };
    let seal = match decode_certificate(certificate)
        .map_err(CertProblem::Invalid)
        .and_then(|der| gate.judge_seal(&der))
    {
        Ok(seal) => seal,
        Err(problem) => return certificate_error(service, "TPP-Signature-Certificate", &problem),
    };
    if let Some(refused) = role_error(service, "TPP-Signature-Certificate", &seal, needed) {
        return refused;
    }
    if let (Some(a), Some(b)) = (
        tls.organization_identifier(),
        seal.organization_identifier(),
    ) && !a.eq_ignore_ascii_case(b)
    {
        return unauthorized(
            service,
            "CERTIFICATE_INVALID",
            format!("TPP-Signature-Certificate belongs to {b}, the TLS client certificate to {a}"),
        );
    }
    let invalid = |text: String| unauthorized(service, "SIGNATURE_INVALID", text);
    let params = match sig::parse(signature) {
        Ok(params) => params,
        Err(text) => return invalid(text),
    };
    if !sig::key_id_matches(&params.key_id, &seal) {
        return invalid(format!(
            "keyId does not name TPP-Signature-Certificate (expected SN={},CA={})",
            seal.serial_hex(),
            seal.issuer.to_rfc4514()
        ));
    }
    let missing = sig::uncovered(&params, headers);
    if !missing.is_empty() {
        return invalid(format!("the signature must cover: {}", missing.join(", ")));
    }
    let Some(digest) = text("digest") else {
        return invalid("Digest is required with a Signature".into());
    };
    if let Err(text) = sig::check_digest(digest, &bytes) {
        return invalid(text);
    }
    // `(request-target)` is the path the TPP sent, bank prefix included.
    let original = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|o| &o.0);
    let uri = original.unwrap_or(&parts.uri);
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let verified =
        sig::signing_string(&params, parts.method.as_str(), target, headers).and_then(|input| {
            sig::verify(
                params.algorithm.as_deref(),
                &seal.key,
                &input,
                &params.signature,
            )
        });
    if let Err(text) = verified {
        return invalid(text);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `TPP-Signature-Certificate`: base64 DER (the spec's `format: byte`); PEM armour is tolerated.
fn decode_certificate(value: &str) -> Result<Vec<u8>, String> {
    let body: String = value
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| "TPP-Signature-Certificate is not base64".to_string())
}
