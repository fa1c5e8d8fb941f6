//! The outbox's reader: turns newly recorded events into deliveries, one per endpoint that wants
//! each, and marks the events dispatched in the same transaction. One worker at a time does this
//! per cell (a named lease), in the order events were recorded, so that the deliveries of one
//! user's events queue up in that order.

use std::collections::HashMap;

use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{WebhookEndpoint, ordering_key};
use kontor_domain::{DeliveryId, TenantId};
use kontor_store::{CellStore, NewDelivery};

use crate::error::ServiceResult;
use crate::hub::Hub;

/// The name of the dispatcher's lease in each cell.
const DISPATCH_JOB: &str = "webhook-dispatch";
/// How long a dispatcher may hold its lease without renewing it (once per batch).
const DISPATCH_LEASE_SECONDS: i64 = 30;
/// Batches per call, so that one busy cell does not starve the others.
const MAX_BATCHES: usize = 20;

impl Hub {
    /// Dispatches the cell's undispatched events as `owner` (a worker); returns how many. Does
    /// nothing (returns 0) when another worker is dispatching this cell.
    pub async fn dispatch_events(
        &self,
        cell: &dyn CellStore,
        owner: &str,
        now: Timestamp,
    ) -> ServiceResult<usize> {
        let batch = self.settings().webhooks.dispatch_batch.max(1);
        // A read first: an idle cell costs no write.
        if cell.undispatched_events(1).await?.is_empty() {
            return Ok(0);
        }
        let lease = |at: Timestamp| at.plus_seconds(DISPATCH_LEASE_SECONDS);
        if !cell.claim_job(DISPATCH_JOB, owner, lease(now), now).await? {
            return Ok(0);
        }
        let mut dispatched = 0;
        let result = async {
            for round in 0..MAX_BATCHES {
                let at = self.clock().now();
                if round > 0 && !cell.claim_job(DISPATCH_JOB, owner, lease(at), at).await? {
                    break;
                }
                // Read for each batch: an endpoint created or enabled since the last one wants
                // the events this batch reads.
                let mut endpoints: HashMap<TenantId, Vec<WebhookEndpoint>> = HashMap::new();
                let events = cell.undispatched_events(batch).await?;
                let mut deliveries = Vec::new();
                for event in &events {
                    if !endpoints.contains_key(&event.tenant_id) {
                        let list = self
                            .control()
                            .list_webhook_endpoints(&event.tenant_id)
                            .await?;
                        endpoints.insert(event.tenant_id.clone(), list);
                    }
                    let wanted = endpoints
                        .get(&event.tenant_id)
                        .into_iter()
                        .flatten()
                        .filter(|endpoint| endpoint.wants(event));
                    for endpoint in wanted {
                        deliveries.push(NewDelivery {
                            id: DeliveryId::generate(event.id.cell()),
                            tenant_id: event.tenant_id.clone(),
                            endpoint_id: endpoint.id.clone(),
                            event_id: event.id.clone(),
                            ordering_key: ordering_key(event),
                            queued_at: event.created_at,
                            redelivery: false,
                            created_at: at,
                        });
                    }
                }
                let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
                cell.dispatch_events(&ids, &deliveries, at).await?;
                dispatched += events.len();
                metrics::counter!("kontor_webhook_deliveries_created_total")
                    .increment(u64::try_from(deliveries.len()).unwrap_or(0));
                if events.len() < batch {
                    break;
                }
            }
            Ok::<_, kontor_store::StoreError>(())
        }
        .await;
        if let Err(err) = cell.release_job(DISPATCH_JOB, owner).await {
            tracing::debug!(error = %err, "releasing the dispatch lease failed; it lapses");
        }
        result?;
        Ok(dispatched)
    }
}
