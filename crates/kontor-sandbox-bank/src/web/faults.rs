//! The fault-injection layer in front of each bank's API: latency, then reset, 429 or 5xx
//! as the bank's `FaultState` decides (or a 5xx in place of the answer of a request the bank
//! handled), answered in the bank's own standard.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Standard;
use crate::server::ConnectionKill;
use crate::state::Bank;
use crate::state::faults::FaultAction;

pub async fn inject(State(bank): State<Arc<Bank>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let (latency, action) = {
        let mut faults = bank.faults();
        (faults.latency_ms(&path), faults.decide(&path))
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let (status, retry_after) = match action {
        FaultAction::None => return next.run(request).await,
        FaultAction::Reset => {
            tracing::debug!(bank = bank.id(), %path, "fault: connection reset");
            if let Some(kill) = request.extensions().get::<ConnectionKill>() {
                kill.0.notify_one();
                // The connection is being dropped; this request never gets an answer.
                std::future::pending::<()>().await;
            }
            (StatusCode::INTERNAL_SERVER_ERROR, None)
        }
        FaultAction::RateLimit { retry_after } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after))
        }
        FaultAction::Error { status } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            None,
        ),
        FaultAction::LoseAnswer { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let lost = fault_answer(&bank, &request, &path, status, None);
            let handled = next.run(request).await.status();
            tracing::debug!(bank = bank.id(), %path, handled = handled.as_u16(), "fault: answer lost");
            return lost;
        }
    };
    tracing::debug!(bank = bank.id(), %path, status = status.as_u16(), "fault injected");
    fault_answer(&bank, &request, &path, status, retry_after)
}

fn fault_answer(
    bank: &Bank,
    request: &Request,
    path: &str,
    status: StatusCode,
    retry_after: Option<u32>,
) -> Response {
    match bank.config.standard {
        Standard::BerlinGroup => crate::bg::fault_response(path, status, retry_after),
        Standard::UkOpenBanking => {
            crate::uk::fault_response(bank, request, path, status, retry_after)
        }
    }
}
