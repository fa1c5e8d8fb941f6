//! Attempting deliveries. A worker leases due deliveries (the oldest pending one of each queue),
//! signs each with the endpoint's secret(s) as Standard Webhooks specifies, POSTs it, and records
//! the attempt: a 2xx within the timeout delivers it; anything else — a redirect included, which
//! is never followed — schedules the next attempt, until the retry schedule is used up. Then the
//! delivery has failed, and if nothing reached the endpoint since the delivery's first attempt,
//! the endpoint is disabled with a `webhook_endpoint.disabled` event.
//!
//! A worker that dies mid-attempt holds its leases until they lapse; then another worker attempts
//! those deliveries again, with the same `webhook-id`.

mod attempt;
mod claim;
mod disable;
mod post;
mod record;

use std::sync::{Arc, OnceLock};

use futures_util::stream::{self, StreamExt};
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::Attempt;
use kontor_domain::{CellId, DeliveryId, WebhookEndpointId};
use kontor_store::{ClaimedDelivery, DeliveryOutcome};
use tokio::sync::mpsc;

pub(super) use claim::Signer;
pub(super) use post::{Signed, post_signed, webhook_client};

use crate::error::ServiceResult;
use crate::hub::Hub;

/// A leased delivery with what attempting it needs.
pub struct Job {
    cell: CellId,
    claimed: ClaimedDelivery,
    signer: Option<Arc<Signer>>,
    /// When the lease taken by the claim runs out.
    leased_until: Timestamp,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("delivery", &self.claimed.id)
            .field("endpoint", &self.claimed.endpoint_id)
            .finish_non_exhaustive()
    }
}

/// What became of one leased delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    pub delivery: DeliveryId,
    pub endpoint: WebhookEndpointId,
    /// `None` when the delivery was given up without an attempt (endpoint gone or disabled).
    pub attempt: Option<Attempt>,
    pub outcome: DeliveryOutcome,
    /// The hub disabled the endpoint after this attempt.
    pub disabled_endpoint: bool,
}

/// Sends deliveries for one worker. Cheap to clone; clones share the HTTP client and the owner
/// name under which leases are taken.
#[derive(Clone)]
pub struct Deliverer {
    hub: Hub,
    client: reqwest::Client,
    owner: Arc<str>,
    /// Where attempts go to be recorded together; started with the first attempt.
    recorder: Arc<OnceLock<mpsc::UnboundedSender<record::Pending>>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer whose leases carry the hub's instance id and a random suffix, so that two
    /// deliverers in one process are two owners.
    pub fn new(hub: Hub) -> ServiceResult<Self> {
        let owner = format!(
            "{}-{}",
            hub.settings().instance_id,
            crate::tokens::random_token().get(..6).unwrap_or("x")
        );
        Self::with_owner(hub, &owner)
    }

    pub fn with_owner(hub: Hub, owner: &str) -> ServiceResult<Self> {
        let client = webhook_client(&hub.settings().webhooks)?;
        Ok(Self {
            hub,
            client,
            owner: Arc::from(owner),
            recorder: Arc::new(OnceLock::new()),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Whether `job`'s lease, started now, would outlast the attempt (its timeout, the reading
    /// of the answer's body, and a margin for recording it): a claimed delivery that waited too
    /// long for a slot is not sent, or another worker could send it too once the lease lapsed.
    pub fn lease_outlasts_attempt(&self, job: &Job, now: Timestamp) -> bool {
        let timeout = self.hub.settings().webhooks.timeout.as_secs();
        let needed = i64::try_from(timeout)
            .unwrap_or(i64::MAX / 2)
            .saturating_add(3);
        now.plus_seconds(needed) < job.leased_until
    }

    /// Dispatches new events in every cell; returns how many. Errors are logged per cell.
    pub async fn dispatch(&self, now: Timestamp) -> usize {
        let mut total = 0;
        for (region, cell) in self.hub.cells().iter() {
            match self
                .hub
                .dispatch_events(cell.as_ref(), &self.owner, now)
                .await
            {
                Ok(n) => total += n,
                Err(err) => {
                    tracing::warn!(cell = %region, error = %err, "dispatching events failed");
                }
            }
        }
        total
    }

    /// is left (retries scheduled later stay for later). For tests and tools; the worker runs
    /// the same steps continuously.
    pub async fn run_once(&self) -> Vec<AttemptReport> {
        self.dispatch(self.hub.clock().now()).await;
        let concurrency = self.hub.settings().webhooks.concurrency.max(1);
        let mut reports = Vec::new();
        loop {
            let jobs = self.claim(concurrency, self.hub.clock().now()).await;
            if jobs.is_empty() {
                return reports;
            }
            let done: Vec<_> = stream::iter(jobs)
                .map(|job| self.run(job))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for report in done {
                match report {
                    Ok(report) => reports.push(report),
                    Err(err) => tracing::warn!(error = %err, "recording a delivery failed"),
                }
            }
        }
    }
}
