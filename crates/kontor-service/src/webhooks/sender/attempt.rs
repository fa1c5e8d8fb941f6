//! Attempting: one leased delivery sent, and how it went recorded.

use kontor_domain::event::Event;
use kontor_domain::webhook::{Attempt, DeliveryFailure, DisabledReason, EndpointStatus};
use kontor_store::{AttemptRecord, CellStore, ClaimedDelivery, DeliveryOutcome};
use rand::Rng;
use tracing::Instrument;

use super::super::payload;
use super::claim::Signer;
use super::post::{Signed, post_signed};
use super::{AttemptReport, Deliverer, Job};
use crate::error::ServiceResult;

impl Deliverer {
    /// Attempts one leased delivery and records how it went.
    pub async fn run(&self, job: Job) -> ServiceResult<AttemptReport> {
        // The attempt's span in the exported traces: the tenant's endpoint id, the event type,
        // the attempt's number and outcome, the receiver's status — never the payload.
        let span = tracing::info_span!(
            target: kontor_domain::TRACE_TARGET,
            "webhook attempt",
            otel.name = "webhook attempt",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            webhook_endpoint.id = %job.claimed.endpoint_id,
            event.type = job.claimed.event.event_type.as_str(),
            attempt = job.claimed.attempts + 1,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self.attempt(job).instrument(span.clone()).await;
        let outcome = match &result {
            Ok(report) => {
                if let Some(status) = report.attempt.as_ref().and_then(|a| a.status_code) {
                    span.record("http.response.status_code", status);
                }
                match report.outcome {
                    DeliveryOutcome::Delivered => "delivered",
                    DeliveryOutcome::RetryAt(_) => "retry",
                    DeliveryOutcome::GiveUp(failure) => failure.as_str(),
                }
            }
            Err(_) => "error",
        };
        span.record("outcome", outcome);
        if outcome != "delivered" {
            span.record("otel.status_code", "error");
        }
        result
    }

    async fn attempt(&self, job: Job) -> ServiceResult<AttemptReport> {
        let cell = self.hub.cell(&job.cell)?;
        let claimed = &job.claimed;
        let signer = match job.signer.as_deref() {
            None => {
                return self
                    .give_up(cell, claimed, DeliveryFailure::EndpointDeleted)
                    .await;
            }
            Some(s) if s.endpoint.status != EndpointStatus::Enabled => {
                // Disabled for failing: make sure the event that says so is recorded (a crash
                // right after disabling would have lost it; recording it again keeps one).
                if s.endpoint.disabled_reason == Some(DisabledReason::Failing)
                    && let Some(at) = s.endpoint.disabled_at
                {
                    let since = claimed.first_attempt_at.unwrap_or(at);
                    self.record_disabled(&s.endpoint, at, since).await?;
                }
                return self
                    .give_up(cell, claimed, DeliveryFailure::EndpointDisabled)
                    .await;
            }
            Some(s) => s,
        };
        let attempt = self
            .send(signer, &claimed.event, claimed.attempts + 1)
            .await;
        let settings = &self.hub.settings().webhooks;
        let ended = self.hub.clock().now();
        let outcome = if attempt.succeeded() {
            DeliveryOutcome::Delivered
        } else {
            match settings.retry_schedule.delay_after(attempt.number) {
                Some(delay) => {
                    let jitter = rand::rng().random_range(0..=delay / 10);
                    DeliveryOutcome::RetryAt(ended.plus_seconds(delay + jitter))
                }
                None => DeliveryOutcome::GiveUp(DeliveryFailure::RetriesExhausted),
            }
        };
        let disabled = match outcome {
            DeliveryOutcome::GiveUp(_) => {
                let since = claimed.first_attempt_at.unwrap_or(attempt.at);
                self.disable_if_failing(&signer.endpoint, since).await
            }
            _ => None,
        };
        self.record(
            &job.cell,
            AttemptRecord {
                id: claimed.id.clone(),
                attempt: attempt.clone(),
                outcome,
            },
        )
        .await?;
        if let Some((at, since)) = disabled {
            self.record_disabled(&signer.endpoint, at, since).await?;
        }
        let result = if attempt.succeeded() {
            "delivered"
        } else {
            "failed"
        };
        metrics::counter!("kontor_webhook_attempts_total", "result" => result).increment(1);
        if let DeliveryOutcome::GiveUp(failure) = outcome {
            metrics::counter!("kontor_webhook_deliveries_failed_total", "reason" => failure.as_str())
                .increment(1);
            tracing::info!(
                delivery.id = %claimed.id,
                webhook_endpoint.id = %claimed.endpoint_id,
                attempts = attempt.number,
                "webhook delivery failed for good"
            );
        }
        Ok(AttemptReport {
            delivery: claimed.id.clone(),
            endpoint: claimed.endpoint_id.clone(),
            attempt: Some(attempt),
            outcome,
            disabled_endpoint: disabled.is_some(),
        })
    }

    /// Gives a delivery up without attempting it: its endpoint is gone or disabled.
    async fn give_up(
        &self,
        cell: &dyn CellStore,
        claimed: &ClaimedDelivery,
        failure: DeliveryFailure,
    ) -> ServiceResult<AttemptReport> {
        cell.give_up_delivery(&claimed.id, &self.owner, failure, self.hub.clock().now())
            .await?;
        metrics::counter!("kontor_webhook_deliveries_failed_total", "reason" => failure.as_str())
            .increment(1);
        Ok(AttemptReport {
            delivery: claimed.id.clone(),
            endpoint: claimed.endpoint_id.clone(),
            attempt: None,
            outcome: DeliveryOutcome::GiveUp(failure),
            disabled_endpoint: false,
        })
    }

    /// One HTTP attempt. Never fails: what went wrong is part of the attempt.
    async fn send(&self, signer: &Signer, event: &Event, number: u32) -> Attempt {
        let at = self.hub.clock().now();
        let posted = post_signed(
            &self.client,
            &self.hub.settings().webhooks,
            Signed {
                url: signer.url.as_ref(),
                secrets: &signer.secrets,
                id: event.id.as_str(),
                at,
                body: payload(event),
            },
            0,
        )
        .await;
        Attempt {
            number,
            at,
            status_code: posted.status,
            error: posted.error,
            latency_us: i64::try_from(posted.latency.as_micros()).unwrap_or(i64::MAX),
        }
    }
}
