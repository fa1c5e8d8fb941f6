//! Kontor's HTTP API: the tenant API (`/v1/…`), the operations endpoints and the OpenAPI
//! document with its `/docs` page. [`router`] builds the whole thing from an [`AppState`].

pub mod auth;
mod client_ip;
pub mod error;
pub mod extract;
pub mod limits;
mod moving;
mod observe;
pub mod openapi;
mod pages;
pub mod pagination;
pub mod request_id;
mod request_limits;
mod routes;
mod security_headers;
pub mod server;
pub mod state;

pub use error::{ApiError, ErrorCode};
pub use observe::{prometheus, requests_started};
pub use pages::escape_html;
pub use routes::ops::OpsState;
pub use routes::{ops_router, router};
pub use state::{ApiSettings, AppState};
