//! The bank's own web pages: redirect SCA and the decoupled-SCA "app".

mod app;
pub mod render;
pub mod sca;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::state::Bank;

/// Page routes of one bank (no fault injection: faults model the API, not the PSU's browser).
pub fn router(bank: Arc<Bank>) -> Router {
    Router::new()
        .route("/sca/{authorisation_id}", get(sca::show))
        .route("/sca/{authorisation_id}/login", post(sca::login))
        .route("/sca/{authorisation_id}/otp", post(sca::one_time_code))
        .route("/sca/{authorisation_id}/accounts", post(sca::accounts))
        .route("/sca/{authorisation_id}/cancel", post(sca::cancel))
        .route("/app", get(app::show))
        .route("/app/login", post(app::login))
        .route(
            "/app/authorisations/{authorisation_id}/approve",
            post(app::approve),
        )
        .route(
            "/app/authorisations/{authorisation_id}/reject",
            post(app::reject),
        )
        .with_state(bank)
}
