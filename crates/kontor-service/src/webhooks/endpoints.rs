//! Managing a tenant's webhook endpoints: create (with a new signing secret, shown once), change,
//! rotate the secret (the old one keeps signing for a while), delete.

use kontor_crypto::WebhookSecret;
use kontor_domain::webhook::{
    Description, DisabledReason, EndpointStatus, EventSelection, WebhookEndpoint,
};
use kontor_domain::{TenantId, WebhookEndpointId};
use kontor_store::{EndpointChange, NewWebhookEndpoint, StoreError};

use super::address::{check_resolved, check_syntax};
use super::keys::seal_secret;
use crate::ErrorCode;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

#[derive(Debug, Clone)]
pub struct NewEndpointRequest {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A change as the tenant asked for it; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    /// `enabled` or `disabled`.
    pub status: Option<String>,
}

/// An endpoint with its signing secret, in the one response that shows the secret.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: WebhookSecret,
}

fn events_of(names: &[String]) -> ServiceResult<EventSelection> {
    EventSelection::parse(names)
        .map_err(|e| ServiceError::invalid(ErrorCode::InvalidEventTypes, e.to_string()))
}

fn description_of(raw: &str) -> ServiceResult<Option<Description>> {
    Description::parse(raw)
        .map_err(|e| ServiceError::invalid(ErrorCode::InvalidDescription, e.to_string()))
}

impl Hub {
    /// Checks a URL as endpoints need it: syntax, scheme, and what its host resolves to.
    async fn checked_url(&self, raw: &str) -> ServiceResult<String> {
        let policy = self.settings().webhooks.url_policy();
        let url = check_syntax(raw, &policy)?;
        check_resolved(&url, &policy).await?;
        Ok(url.to_string())
    }

    pub async fn create_webhook_endpoint(
        &self,
        tenant: &TenantId,
        request: NewEndpointRequest,
    ) -> ServiceResult<CreatedEndpoint> {
        let events = events_of(&request.events)?;
        let description = match request.description.as_deref() {
            Some(raw) => description_of(raw)?,
            None => None,
        };
        let url = self.checked_url(&request.url).await?;
        let now = self.clock().now();
        let endpoint = WebhookEndpoint {
            id: WebhookEndpointId::generate(),
            tenant_id: tenant.clone(),
            url,
            description,
            events,
            status: EndpointStatus::Enabled,
            disabled_reason: None,
            disabled_at: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let secret = WebhookSecret::generate()?;
        let key = self.vault().tenant_key(self.control(), tenant).await?;
        let new = NewWebhookEndpoint {
            sealed_secret: seal_secret(&key, &endpoint.id, &secret)?,
            endpoint,
        };
        let limit = self.settings().webhooks.max_endpoints_per_tenant;
        let endpoint = match self.control().create_webhook_endpoint(&new, limit).await {
            Ok(endpoint) => endpoint,
            Err(StoreError::Conflict { .. }) => {
                return Err(ServiceError::conflict(
                    ErrorCode::WebhookEndpointLimit,
                    format!("a tenant has at most {limit} webhook endpoints"),
                ));
            }
            Err(err) => return Err(ServiceError::from(err)),
        };
        tracing::info!(webhook_endpoint.id = %endpoint.id, "webhook endpoint created");
        Ok(CreatedEndpoint { endpoint, secret })
    }

    pub async fn webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> ServiceResult<WebhookEndpoint> {
        self.control()
            .webhook_endpoint(tenant, id)
            .await
            .map_err(ServiceError::from)
    }

    pub async fn webhook_endpoints(
        &self,
        tenant: &TenantId,
    ) -> ServiceResult<Vec<WebhookEndpoint>> {
        self.control()
            .list_webhook_endpoints(tenant)
            .await
            .map_err(ServiceError::from)
    }

    pub async fn update_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
        update: EndpointUpdate,
    ) -> ServiceResult<WebhookEndpoint> {
        let mut change = EndpointChange {
            events: update.events.as_deref().map(events_of).transpose()?,
            ..EndpointChange::default()
        };
        if let Some(description) = &update.description {
            change.description = Some(match description {
                Some(raw) => description_of(raw)?,
                None => None,
            });
        }
        if let Some(status) = &update.status {
            change.status = Some(match EndpointStatus::parse(status) {
                Some(EndpointStatus::Enabled) => (EndpointStatus::Enabled, None),
                Some(EndpointStatus::Disabled) => {
                    (EndpointStatus::Disabled, Some(DisabledReason::Tenant))
                }
                None => {
                    return Err(ServiceError::invalid(
                        ErrorCode::InvalidEndpointStatus,
                        "status must be enabled or disabled",
                    ));
                }
            });
        }
        // The URL last: it is the one check that goes to the network.
        if let Some(url) = &update.url {
            change.url = Some(self.checked_url(url).await?);
        }
        let endpoint = self
            .control()
            .update_webhook_endpoint(tenant, id, &change, self.clock().now())
            .await?;
        tracing::info!(webhook_endpoint.id = %id, status = %endpoint.status, "webhook endpoint changed");
        Ok(endpoint)
    }

    /// A new signing secret; the old one keeps signing (both signatures are sent) for
    /// `webhooks.secret_overlap_seconds`, so receivers can switch without missing a delivery.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> ServiceResult<CreatedEndpoint> {
        // 404 before anything is generated or sealed.
        self.webhook_endpoint(tenant, id).await?;
        let secret = WebhookSecret::generate()?;
        let key = self.vault().tenant_key(self.control(), tenant).await?;
        let sealed = seal_secret(&key, id, &secret)?;
        let now = self.clock().now();
        let until = now.plus_seconds(self.settings().webhooks.secret_overlap_seconds);
        let endpoint = self
            .control()
            .rotate_webhook_secret(tenant, id, &sealed, until, now)
            .await?;
        tracing::info!(webhook_endpoint.id = %id, "webhook secret rotated");
        Ok(CreatedEndpoint { endpoint, secret })
    }

    /// Deletes an endpoint. Its pending deliveries are given up when they come due; its
    /// delivery log stays with the events.
    pub async fn delete_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> ServiceResult<()> {
        self.control().delete_webhook_endpoint(tenant, id).await?;
        tracing::info!(webhook_endpoint.id = %id, "webhook endpoint deleted");
        Ok(())
    }
}
