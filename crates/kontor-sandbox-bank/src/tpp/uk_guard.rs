//! Strict mode at a UK bank's resource endpoints: the request must come over a TLS client
//! certificate of the TPP CA, the access token must be bound to that very certificate (RFC 8705
//! `cnf.x5t#S256`; another certificate gets `401`), and payment requests must carry a valid
//! `x-jws-signature` of the token's client.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::tls::PeerCertificates;
use super::uk_jws;
use crate::state::Bank;
use crate::uk::error::UkError;
use crate::web::extract::BODY_LIMIT;

pub async fn guard(State(bank): State<Arc<Bank>>, request: Request, next: Next) -> Response {
    let Some(gate) = bank.tpp.clone() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if !path.starts_with("/open-banking/") {
        return next.run(request).await;
    }
    let signed = request.method() == Method::POST && path.starts_with(crate::uk::PISP);
    let tls = match gate.judge_tls(request.extensions().get::<PeerCertificates>()) {
        Ok(cert) => cert,
        Err(problem) => {
            tracing::info!(bank = bank.id(), %problem, "UK request refused: TLS client certificate");
            return UkError::unauthorized().into_response();
        }
    };
    let thumbprint = tls.thumbprint();
    let token = crate::uk::bearer(request.headers())
        .and_then(|t| bank.lock().access_tokens.get(t).cloned());
    let Some(token) = token else {
        // Unknown or missing token: the handler answers 401 as it always does.
        return next.run(request).await;
    };
    if token.cnf_x5t_s256.as_deref() != Some(thumbprint.as_str()) {
        tracing::info!(
            bank = bank.id(),
            "UK request refused: the token is bound to another certificate"
        );
        return UkError::unauthorized().into_response();
    }
    if !signed {
        return next.run(request).await;
    }
    let Some(client) = gate.client(bank.id(), &token.client_id) else {
        return UkError::unauthorized().into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return UkError::bad_request("UK.OBIE.Field.Invalid", "the body is too large")
            .into_response();
    };
    let header = parts
        .headers
        .get("x-jws-signature")
        .map(|v| v.to_str().unwrap_or(""));
    if let Err(error) = uk_jws::verify(&client, header, &bytes) {
        return error.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
