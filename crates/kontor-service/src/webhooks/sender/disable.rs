//! Disabling: an endpoint whose every attempt failed since a delivery's first is disabled, and
//! the event that says so recorded.

use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{WebhookEndpoint, endpoint_disabled_event};

use super::Deliverer;
use crate::error::{ServiceError, ServiceResult};

impl Deliverer {
    /// Records `webhook_endpoint.disabled` for an endpoint the hub disabled at `at`, in the
    /// first cell (the endpoint belongs to no region; one fixed cell keeps the event single
    /// however many deliveries, in whichever cells, come to record it).
    pub(super) async fn record_disabled(
        &self,
        endpoint: &WebhookEndpoint,
        at: Timestamp,
        since: Timestamp,
    ) -> ServiceResult<()> {
        let Some((region, cell)) = self.hub.cells().iter().next() else {
            return Ok(());
        };
        let event =
            endpoint_disabled_event(endpoint.tenant_id.clone(), region, &endpoint.id, at, since);
        cell.append_event(&event).await.map_err(ServiceError::from)
    }

    /// After a delivery failed for good: if nothing reached the endpoint (in any cell) since the
    /// delivery's first attempt, the endpoint keeps failing — disable it, and return when (and
    /// since when it failed), for the event that says so. Errors are logged: they must not keep
    /// the attempt from being recorded.
    pub(super) async fn disable_if_failing(
        &self,
        endpoint: &WebhookEndpoint,
        since: Timestamp,
    ) -> Option<(Timestamp, Timestamp)> {
        for (_, other) in self.hub.cells().iter() {
            match other.delivered_since(&endpoint.id, since).await {
                Ok(true) => return None,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "cannot tell whether an endpoint keeps failing");
                    return None;
                }
            }
        }
        let at = self.hub.clock().now();
        match self
            .hub
            .control()
            .disable_failing_endpoint(&endpoint.id, at)
            .await
        {
            Ok(true) => {
                metrics::counter!("kontor_webhook_endpoints_disabled_total").increment(1);
                tracing::warn!(
                    webhook_endpoint.id = %endpoint.id,
                    tenant.id = %endpoint.tenant_id,
                    "webhook endpoint disabled: every attempt failed since {since}"
                );
                Some((at, since))
            }
            Ok(false) => None,
            Err(err) => {
                tracing::warn!(error = %err, "disabling a failing endpoint failed");
                None
            }
        }
    }
}
