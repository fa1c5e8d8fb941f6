//! The W3C `traceparent` headers the sandbox received, newest last, for the hub's tests to
//! check that a bank call carries its span's context: `GET /admin/traceparents`. Only the last
//! [`KEPT`] are kept; the header's value is kept only when it is short printable ASCII.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::app::App;

const KEPT: usize = 256;
const MAX_LEN: usize = 512;

#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

#[derive(Debug, Default)]
pub struct TraceLog {
    received: Mutex<VecDeque<Received>>,
}

impl TraceLog {
    fn push(&self, entry: Received) {
        let Ok(mut received) = self.received.lock() else {
            return;
        };
        if received.len() == KEPT {
            received.pop_front();
        }
        received.push_back(entry);
    }

    pub fn all(&self) -> Vec<Received> {
        self.received
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    let value = request.headers().get(name)?.to_str().ok()?;
    (value.len() <= MAX_LEN).then(|| value.to_owned())
}

pub async fn record(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(traceparent) = header(&request, "traceparent") {
        app.traces.push(Received {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            traceparent,
            tracestate: header(&request, "tracestate"),
        });
    }
    next.run(request).await
}

pub async fn list(State(app): State<Arc<App>>) -> Json<Vec<Received>> {
    Json(app.traces.all())
}
