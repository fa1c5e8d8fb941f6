//! The whole sandbox as the HTTP layer sees it: the clock, the banks and their URLs.

use std::sync::Arc;

use crate::core::clock::SimClock;
use crate::state::Bank;

#[derive(Debug)]
pub struct App {
    pub clock: Arc<SimClock>,
    pub banks: Vec<Arc<Bank>>,
    pub seed: u64,
    /// Absolute URL of the sandbox root, without a trailing slash.
    pub root_url: String,
    /// The `traceparent` headers received (see `web::traces`).
    pub traces: crate::web::traces::TraceLog,
}

impl App {
    pub fn bank(&self, id: &str) -> Option<&Arc<Bank>> {
        self.banks.iter().find(|b| b.id() == id)
    }
}
