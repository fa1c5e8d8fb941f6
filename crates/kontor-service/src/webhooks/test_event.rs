//! The test event: a `webhook.test` sent at once to one endpoint, signed exactly like a delivery
//! (the same code signs and posts both), so a tenant can check its receiver and its signature
//! check before real events arrive. Nothing is recorded: no event in the log, no delivery, and no
//! other endpoint hears of it. The address rules are those of deliveries.

use std::time::Duration;

use kontor_domain::event::WEBHOOK_TEST;
use kontor_domain::event::payload::WebhookTest;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::AttemptError;
use kontor_domain::{EventId, TenantId, WebhookEndpointId};

use super::sender::{Signed, Signer, post_signed, webhook_client};
use super::{Payload, body_of};
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// How much of the receiver's answer is shown back.
pub const TEST_EXCERPT_BYTES: usize = 1024;

/// What the receiver made of the test event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// The `webhook-id` it was sent with.
    pub event_id: EventId,
    pub sent_at: Timestamp,
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    pub status_code: Option<u16>,
    /// What went wrong (`None` for a 2xx).
    pub error: Option<AttemptError>,
    pub latency: Duration,
    /// The start of the answer's body (at most [`TEST_EXCERPT_BYTES`]), as text.
    pub body_excerpt: Option<String>,
    /// Whether the body was longer than the excerpt (or not all of it could be read).
    pub body_truncated: bool,
}

impl Hub {
    /// Sends a signed `webhook.test` to one of the tenant's endpoints now and reports the
    /// answer. `NotFound` for another tenant's endpoint. A disabled endpoint is tested too: that
    /// is how a tenant checks a fixed receiver before enabling it again.
    pub async fn test_webhook_endpoint(
        &self,
        tenant: &TenantId,
        id: &WebhookEndpointId,
    ) -> ServiceResult<TestReport> {
        self.webhook_endpoint(tenant, id).await?;
        let now = self.clock().now();
        let row = self
            .control()
            .endpoint_secrets(std::slice::from_ref(id), now)
            .await?
            .into_iter()
            .next()
            .ok_or(ServiceError::NotFound)?;
        let signer = Signer::open(self, row)?;
        // An id like a real event's, so receivers parse it the same way; it names no recorded
        // event (`GET /v1/events/{id}` answers 404).
        let cell = self
            .cells()
            .ids()
            .next()
            .cloned()
            .ok_or_else(|| ServiceError::Internal("no cell".into()))?;
        let event_id = EventId::generate(&cell);
        let data = serde_json::to_value(WebhookTest {
            endpoint_id: id.clone(),
            test: true,
        })
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let body = body_of(&Payload {
            id: event_id.as_str(),
            event_type: WEBHOOK_TEST,
            user_id: None,
            data: &data,
            created_at: now.to_rfc3339(),
        });
        let settings = &self.settings().webhooks;
        let client = self.webhook_client(|| webhook_client(settings))?;
        let signed = Signed {
            url: signer.url.as_ref(),
            secrets: &signer.secrets,
            id: event_id.as_str(),
            at: now,
            body,
        };
        // One byte past the excerpt tells whether the body was longer.
        let posted = post_signed(client, settings, signed, TEST_EXCERPT_BYTES + 1).await;
        let mut excerpt = posted.excerpt;
        let truncated = excerpt.len() > TEST_EXCERPT_BYTES;
        excerpt.truncate(TEST_EXCERPT_BYTES);
        tracing::info!(
            webhook_endpoint.id = %id,
            status = posted.status,
            error = posted.error.map(AttemptError::as_str),
            "webhook test event sent"
        );
        Ok(TestReport {
            event_id,
            sent_at: now,
            delivered: posted.error.is_none(),
            status_code: posted.status,
            error: posted.error,
            latency: posted.latency,
            body_excerpt: posted
                .status
                .map(|_| String::from_utf8_lossy(&excerpt).into_owned()),
            body_truncated: truncated,
        })
    }
}
