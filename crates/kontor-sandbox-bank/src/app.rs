//! The whole sandbox as the HTTP layer sees it: the clock, the banks and their URLs, and where
//! their state is saved.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::core::clock::SimClock;
use crate::state::Bank;
use crate::state::persist::{self, Saved, StateFileError};

#[derive(Debug)]
pub struct App {
    pub clock: Arc<SimClock>,
    pub banks: Vec<Arc<Bank>>,
    pub seed: u64,
    /// Absolute URL of the sandbox root, without a trailing slash.
    pub root_url: String,
    /// The `traceparent` headers received (see `web::traces`).
    pub traces: crate::web::traces::TraceLog,
    /// Where the state is saved (see [`persist`]); `None` keeps it in memory only.
    pub state_file: Option<PathBuf>,
    /// One save at a time, so that the file always ends with the latest state.
    pub save_lock: Mutex<()>,
}

impl App {
    pub fn bank(&self, id: &str) -> Option<&Arc<Bank>> {
        self.banks.iter().find(|b| b.id() == id)
    }

    /// Everything the state file holds, as of now.
    pub fn snapshot(&self) -> Saved {
        Saved {
            format: persist::FORMAT,
            seed: self.seed,
            clock: self.clock.snapshot(),
            banks: self
                .banks
                .iter()
                .map(|bank| (bank.id().to_string(), bank.snapshot()))
                .collect(),
        }
    }

    /// Saves the state if a bank or the clock changed since the last save. Returns whether it
    /// wrote. On failure the change stays marked, so the next call tries again.
    pub fn save_if_changed(&self) -> Result<bool, StateFileError> {
        let Some(path) = &self.state_file else {
            return Ok(false);
        };
        let _one_at_a_time = match self.save_lock.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Flags are taken before the snapshot locks the banks: a change that sets its flag
        // afterwards is saved by the next call.
        let moved = self.clock.take_moved();
        let changed: Vec<bool> = self.banks.iter().map(|b| b.take_changed()).collect();
        if !moved && !changed.contains(&true) {
            return Ok(false);
        }
        match persist::store(path, &self.snapshot()) {
            Ok(()) => Ok(true),
            Err(err) => {
                for bank in &self.banks {
                    bank.mark_changed();
                }
                if moved {
                    self.clock.mark_moved();
                }
                Err(err)
            }
        }
    }

    /// Saves the state whether or not it changed (at start, so the clock's origin is kept).
    pub fn save(&self) -> Result<(), StateFileError> {
        if self.state_file.is_some() {
            self.clock.mark_moved();
        }
        self.save_if_changed().map(|_| ())
    }
}

/// Saves after a request that may have changed something, before its answer leaves: a client
/// never holds a consent, token or payment id that a restarted sandbox would not know. A failed
/// save is logged (the sandbox keeps serving, and tries again after the next request).
pub async fn save_after(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(request).await;
    if app.state_file.is_some() {
        let saver = app.clone();
        match tokio::task::spawn_blocking(move || saver.save_if_changed()).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(
                error = %err,
                "the sandbox could not save its state; a restart would forget what changed since the last save"
            ),
            Err(err) => tracing::error!(error = %err, "the sandbox's save task failed"),
        }
    }
    response
}
