//! Replaying an event: new deliveries of it, with the same `webhook-id`, queued behind what is
//! already pending for the same user at each endpoint.

use kontor_domain::webhook::{Delivery, DeliveryState, EndpointStatus, ordering_key};
use kontor_domain::{DeliveryId, EventId, TenantId, WebhookEndpointId};
use kontor_store::NewDelivery;

use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

impl Hub {
    /// Delivers a recorded event again: to `endpoint` (whichever events it selects), or to every
    /// enabled endpoint that selects the event's type.
    pub async fn redeliver(
        &self,
        tenant: &TenantId,
        event_id: &EventId,
        endpoint: Option<&WebhookEndpointId>,
    ) -> ServiceResult<Vec<Delivery>> {
        let cell = self.event_cell(tenant, event_id).await?;
        let event = cell.event(tenant, event_id).await?;
        let targets = match endpoint {
            Some(id) => {
                let endpoint = self.webhook_endpoint(tenant, id).await?;
                if endpoint.status != EndpointStatus::Enabled {
                    return Err(ServiceError::conflict(
                        ErrorCode::WebhookEndpointDisabled,
                        "the endpoint is disabled; enable it first",
                    ));
                }
                vec![endpoint]
            }
            None => {
                let all = self.webhook_endpoints(tenant).await?;
                let wanted: Vec<_> = all
                    .into_iter()
                    .filter(|e| {
                        e.status == EndpointStatus::Enabled && e.events.matches(event.event_type)
                    })
                    .collect();
                if wanted.is_empty() {
                    return Err(ServiceError::conflict(
                        ErrorCode::NoWebhookEndpoints,
                        "no enabled webhook endpoint selects this event's type",
                    ));
                }
                wanted
            }
        };
        let now = self.clock().now();
        let new: Vec<NewDelivery> = targets
            .iter()
            .map(|endpoint| NewDelivery {
                id: DeliveryId::generate(event.id.cell()),
                tenant_id: tenant.clone(),
                endpoint_id: endpoint.id.clone(),
                event_id: event.id.clone(),
                ordering_key: ordering_key(&event),
                queued_at: now,
                redelivery: true,
                created_at: now,
            })
            .collect();
        cell.create_deliveries(&new).await?;
        tracing::info!(event.id = %event.id, deliveries = new.len(), "event redelivery queued");
        Ok(new
            .into_iter()
            .map(|d| Delivery {
                id: d.id,
                tenant_id: d.tenant_id,
                endpoint_id: d.endpoint_id,
                event_id: d.event_id,
                event_type: event.event_type,
                user_id: event.user_id.clone(),
                state: DeliveryState::Pending,
                failure: None,
                attempts: 0,
                next_attempt_at: Some(now),
                redelivery: true,
                created_at: now,
                delivered_at: None,
            })
            .collect())
    }
}
