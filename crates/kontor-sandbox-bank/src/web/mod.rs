//! The sandbox's HTTP surface: an index page, `/admin`, and one subtree per bank.

pub mod admin;
mod admin_clients;
pub mod extract;
pub mod faults;
mod index;
pub mod json;
pub mod pages;
pub mod traces;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::app::App;
use crate::config::Standard;

pub fn router(app: &Arc<App>) -> Router {
    let mut router = Router::new()
        .route("/", get(index::index))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app.clone())
        .nest("/admin", admin::router(app.clone()));
    for bank in &app.banks {
        let api = match bank.config.standard {
            Standard::BerlinGroup => crate::bg::router(bank.clone()),
            Standard::UkOpenBanking => crate::uk::router(bank.clone()),
        };
        router = router.nest(
            &format!("/{}", bank.id()),
            pages::router(bank.clone()).merge(api),
        );
    }
    router
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::app::save_after,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            traces::record,
        ))
}
