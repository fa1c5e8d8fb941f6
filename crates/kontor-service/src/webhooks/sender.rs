//! Attempting deliveries. A worker leases due deliveries (the oldest pending one of each queue),
//! signs each with the endpoint's secret(s) as Standard Webhooks specifies, POSTs it, and records
//! the attempt: a 2xx within the timeout delivers it; anything else — a redirect included, which
//! is never followed — schedules the next attempt, until the retry schedule is used up. Then the
//! delivery has failed, and if nothing reached the endpoint since the delivery's first attempt,
//! the endpoint is disabled with a `webhook_endpoint.disabled` event.
//!
//! A worker that dies mid-attempt holds its leases until they lapse; then another worker attempts
//! those deliveries again, with the same `webhook-id`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use kontor_crypto::WebhookSecret;
use kontor_domain::event::Event;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{
    Attempt, AttemptError, DeliveryFailure, DisabledReason, EndpointStatus, WebhookEndpoint,
    endpoint_disabled_event,
};
use kontor_domain::{DeliveryId, Region, WebhookEndpointId};
use kontor_store::{CellStore, ClaimedDelivery, DeliveryOutcome, EndpointSecrets};
use rand::Rng;
use tracing::Instrument;
use url::{Host, Url};

use super::address::{
    AddressRefused, GuardedResolver, Unresolvable, address_allowed, port_allowed,
};
use super::keys::open_secret;
use super::payload;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// Most of an answer's body read (and thrown away) so the connection can be reused.
const BODY_DRAIN_LIMIT: usize = 64 * 1024;
/// How long the body of an answer is read after its status arrived.
const BODY_DRAIN_TIME: Duration = Duration::from_secs(1);

/// An endpoint ready to sign with: its URL and its secrets in clear, for one round of attempts.
pub(super) struct Signer {
    pub endpoint: WebhookEndpoint,
    pub url: Option<Url>,
    pub secrets: Vec<WebhookSecret>,
}

impl Signer {
    /// Opens an endpoint's secrets (the current one, and the previous one while it still signs)
    /// with its tenant's data key.
    pub(super) fn open(hub: &Hub, row: EndpointSecrets) -> ServiceResult<Self> {
        let endpoint = row.endpoint;
        let wrapped = row.tenant_key.ok_or_else(|| {
            ServiceError::Internal(format!("tenant of {} has no data key", endpoint.id))
        })?;
        let key = hub.vault().open_tenant_key(&wrapped, &endpoint.tenant_id)?;
        let mut secrets = vec![open_secret(&key, &endpoint.id, &row.sealed_secret)?];
        if let Some(previous) = &row.sealed_previous {
            secrets.push(open_secret(&key, &endpoint.id, previous)?);
        }
        Ok(Signer {
            url: Url::parse(&endpoint.url).ok(),
            endpoint,
            secrets,
        })
    }
}

/// The HTTP client webhooks are sent with: no proxy, no redirects, and a resolver that refuses
/// addresses the policy does not allow.
pub(super) fn webhook_client(settings: &super::WebhookSettings) -> ServiceResult<reqwest::Client> {
    // reqwest is built without a bundled TLS provider; ring is the workspace's one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: settings.url_policy(),
        }))
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .timeout(settings.timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("Kontor-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ServiceError::Internal(format!("building the webhook client: {e}")))
}

/// A leased delivery with what attempting it needs.
pub struct Job {
    region: Region,
    claimed: ClaimedDelivery,
    signer: Option<Arc<Signer>>,
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
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
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
                Err(err) => tracing::warn!(%region, error = %err, "dispatching events failed"),
            }
        }
        total
    }

    /// Leases up to `limit` due deliveries across the cells and prepares them for sending.
    pub async fn claim(&self, limit: usize, now: Timestamp) -> Vec<Job> {
        let lease_until = now.plus_seconds(self.hub.settings().webhooks.lease_seconds);
        let mut claimed: Vec<(Region, ClaimedDelivery)> = Vec::new();
        // First each cell's fair share, so that a busy cell cannot starve the others; then
        // whatever room is left, to the cells that had more.
        let share = limit.div_ceil(self.hub.cells().len().max(1));
        let mut hungry = Vec::new();
        for pass in [Some(share), None] {
            for (region, cell) in self.hub.cells().iter() {
                let room = limit.saturating_sub(claimed.len());
                if room == 0 || (pass.is_none() && !hungry.contains(region)) {
                    continue;
                }
                let want = pass.map_or(room, |share| share.min(room));
                match cell
                    .claim_deliveries(&self.owner, lease_until, now, want)
                    .await
                {
                    Ok(batch) => {
                        if batch.len() == want {
                            hungry.push(region.clone());
                        }
                        claimed.extend(batch.into_iter().map(|c| (region.clone(), c)));
                    }
                    Err(err) => tracing::warn!(%region, error = %err, "claiming deliveries failed"),
                }
            }
            if pass.is_some() && hungry.is_empty() {
                break;
            }
        }
        if claimed.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<WebhookEndpointId> =
            claimed.iter().map(|(_, c)| c.endpoint_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let (signers, unreadable) = match self.signers(&ids, now).await {
            Ok(found) => found,
            Err(err) => {
                // The leases lapse and the deliveries are attempted again later.
                tracing::warn!(error = %err, "reading webhook endpoints failed");
                return Vec::new();
            }
        };
        // Deliveries to an endpoint whose secret cannot be opened wait (their leases lapse and
        // they are claimed again), without holding up the others.
        claimed
            .into_iter()
            .filter(|(_, claimed)| !unreadable.contains(&claimed.endpoint_id))
            .map(|(region, claimed)| Job {
                signer: signers.get(&claimed.endpoint_id).cloned(),
                region,
                claimed,
            })
            .collect()
    }

    async fn signers(
        &self,
        ids: &[WebhookEndpointId],
        now: Timestamp,
    ) -> ServiceResult<(
        HashMap<WebhookEndpointId, Arc<Signer>>,
        HashSet<WebhookEndpointId>,
    )> {
        let rows = self.hub.control().endpoint_secrets(ids, now).await?;
        let mut signers = HashMap::new();
        let mut unreadable = HashSet::new();
        for row in rows {
            let id = row.endpoint.id.clone();
            match self.signer(row) {
                Ok(signer) => {
                    signers.insert(id, Arc::new(signer));
                }
                Err(err) => {
                    tracing::error!(webhook_endpoint.id = %id, error = %err, "cannot open the endpoint's signing secret; its deliveries wait");
                    unreadable.insert(id);
                }
            }
        }
        Ok((signers, unreadable))
    }

    fn signer(&self, row: EndpointSecrets) -> ServiceResult<Signer> {
        Signer::open(&self.hub, row)
    }

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
        let cell = self.hub.cell(&job.region)?;
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
        cell.record_attempt(&claimed.id, &self.owner, &attempt, outcome)
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

    /// Records `webhook_endpoint.disabled` for an endpoint the hub disabled at `at`, in the
    /// first cell (the endpoint belongs to no region; one fixed cell keeps the event single
    /// however many deliveries, in whichever cells, come to record it).
    async fn record_disabled(
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
    async fn disable_if_failing(
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

    /// Everything due now, once: dispatches new events, then attempts due deliveries until none
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

/// A signed request to make: the same for a delivery and for a test event.
pub(super) struct Signed<'a> {
    pub url: Option<&'a Url>,
    pub secrets: &'a [WebhookSecret],
    /// The `webhook-id`.
    pub id: &'a str,
    /// The attempt's time, whose seconds are the `webhook-timestamp`.
    pub at: Timestamp,
    pub body: Vec<u8>,
}

/// What a signed POST got back.
pub(super) struct Posted {
    /// The answer's status, when one came.
    pub status: Option<u16>,
    /// `None` for a 2xx.
    pub error: Option<AttemptError>,
    /// From sending the request to having the answer's status (or giving up).
    pub latency: Duration,
    /// The first bytes of the answer's body, up to the excerpt's limit.
    pub excerpt: Vec<u8>,
}

/// POSTs `signed` as Standard Webhooks specifies, within `webhooks.timeout`, to an address the
/// policy allows (checked again here: the configuration may have changed since the URL was
/// accepted, and the resolver guards names only). Never fails: what went wrong is in the
/// answer. Keeps up to `excerpt_limit` bytes of the answer's body.
pub(super) async fn post_signed(
    client: &reqwest::Client,
    settings: &super::WebhookSettings,
    signed: Signed<'_>,
    excerpt_limit: usize,
) -> Posted {
    let refused = |error: AttemptError| Posted {
        status: None,
        error: Some(error),
        latency: Duration::ZERO,
        excerpt: Vec::new(),
    };
    let policy = settings.url_policy();
    let Some(url) = signed.url.cloned() else {
        return refused(AttemptError::ConnectionFailed);
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && policy.allow_http) {
        return refused(AttemptError::AddressNotAllowed);
    }
    if !port_allowed(url.port_or_known_default().unwrap_or(0), &policy) {
        return refused(AttemptError::AddressNotAllowed);
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(|ip| !address_allowed(ip, &policy)) {
        return refused(AttemptError::AddressNotAllowed);
    }
    let timestamp = signed.at.unix_seconds();
    let signature = signed
        .secrets
        .iter()
        .map(|secret| secret.sign(signed.id, timestamp, &signed.body))
        .collect::<Vec<_>>()
        .join(" ");
    let request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", signed.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(signed.body);
    let started = Instant::now();
    let sent = tokio::time::timeout(settings.timeout, request.send()).await;
    let latency = started.elapsed();
    let mut excerpt = Vec::new();
    let status = match sent {
        Ok(Ok(mut response)) => {
            // The answer is the status: the body is read (a little of it, briefly) so that the
            // connection can be used again, and for a test's excerpt; how that ends changes
            // nothing.
            let status = response.status().as_u16();
            let _ = tokio::time::timeout(BODY_DRAIN_TIME, async {
                let mut drained = 0;
                while drained < BODY_DRAIN_LIMIT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = excerpt_limit.saturating_sub(excerpt.len());
                            excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                            drained += chunk.len();
                        }
                        _ => break,
                    }
                }
            })
            .await;
            Ok(Ok(status))
        }
        Ok(Err(err)) => Ok(Err(err)),
        Err(elapsed) => Err(elapsed),
    };
    let elapsed = started.elapsed();
    metrics::histogram!("kontor_webhook_attempt_duration_seconds").record(elapsed.as_secs_f64());
    let failed = |error: AttemptError, status: Option<u16>, latency: Duration, excerpt| Posted {
        status,
        error: Some(error),
        latency,
        excerpt,
    };
    match status {
        Err(_) => failed(AttemptError::Timeout, None, elapsed, excerpt),
        Ok(Err(err)) => failed(classify(&err), None, elapsed, excerpt),
        Ok(Ok(status)) => match status {
            200..=299 => Posted {
                status: Some(status),
                error: None,
                latency,
                excerpt,
            },
            300..=399 => failed(AttemptError::Redirect, Some(status), latency, excerpt),
            _ => failed(AttemptError::HttpStatus, Some(status), latency, excerpt),
        },
    }
}

/// What a failed request says about where it failed.
fn classify(err: &reqwest::Error) -> AttemptError {
    if err.is_timeout() {
        return AttemptError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if cause.is::<AddressRefused>() {
            return AttemptError::AddressNotAllowed;
        }
        if cause.is::<Unresolvable>() {
            return AttemptError::DnsFailed;
        }
        source = cause.source();
    }
    AttemptError::ConnectionFailed
}
