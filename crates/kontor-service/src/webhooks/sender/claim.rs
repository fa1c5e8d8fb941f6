//! Claiming: leasing due deliveries across the cells and opening their endpoints' secrets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kontor_crypto::WebhookSecret;
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::WebhookEndpoint;
use kontor_domain::{CellId, WebhookEndpointId};
use kontor_store::{CellStore, ClaimedDelivery, EndpointSecrets};
use url::Url;

use super::super::keys::open_secret;
use super::{Deliverer, Job};
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// An endpoint ready to sign with: its URL and its secrets in clear, for one round of attempts.
pub(in crate::webhooks) struct Signer {
    pub endpoint: WebhookEndpoint,
    pub url: Option<Url>,
    pub secrets: Vec<WebhookSecret>,
}

impl Signer {
    /// Opens an endpoint's secrets (the current one, and the previous one while it still signs)
    /// with its tenant's data key.
    pub(in crate::webhooks) fn open(hub: &Hub, row: EndpointSecrets) -> ServiceResult<Self> {
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

impl Deliverer {
    /// Leases up to `limit` due deliveries across the cells and prepares them for sending.
    pub async fn claim(&self, limit: usize, now: Timestamp) -> Vec<Job> {
        let lease_until = now.plus_seconds(self.hub.settings().webhooks.lease_seconds);
        // First each cell's fair share, all cells at once, so that a busy cell cannot starve
        // the others; then whatever room is left, to the cells that filled their share.
        let cells: Vec<_> = self.hub.cells().iter().collect();
        let count = cells.len().max(1);
        let shares = cells.iter().enumerate().map(|(n, (cell_id, cell))| {
            // `limit` split as evenly as it goes: the first `limit % count` get one more.
            let want = limit / count + usize::from(n < limit % count);
            async move {
                if want == 0 {
                    return (cell_id, want, Vec::new());
                }
                (
                    cell_id,
                    want,
                    self.claim_in(cell_id, cell.as_ref(), lease_until, now, want)
                        .await,
                )
            }
        });
        let mut claimed: Vec<(CellId, ClaimedDelivery)> = Vec::new();
        let mut hungry = Vec::new();
        for (cell_id, want, batch) in futures_util::future::join_all(shares).await {
            if want > 0 && batch.len() == want {
                hungry.push(*cell_id);
            }
            claimed.extend(batch.into_iter().map(|c| (CellId::clone(cell_id), c)));
        }
        for (cell_id, cell) in &cells {
            let room = limit.saturating_sub(claimed.len());
            if room == 0 || !hungry.contains(cell_id) {
                continue;
            }
            let batch = self
                .claim_in(cell_id, cell.as_ref(), lease_until, now, room)
                .await;
            claimed.extend(batch.into_iter().map(|c| (CellId::clone(cell_id), c)));
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
            .map(|(cell, claimed)| Job {
                signer: signers.get(&claimed.endpoint_id).cloned(),
                cell,
                claimed,
                leased_until: lease_until,
            })
            .collect()
    }

    /// One cell's claim; a failure is logged and claims nothing.
    async fn claim_in(
        &self,
        cell_id: &CellId,
        cell: &dyn CellStore,
        lease_until: Timestamp,
        now: Timestamp,
        want: usize,
    ) -> Vec<ClaimedDelivery> {
        match cell
            .claim_deliveries(&self.owner, lease_until, now, want)
            .await
        {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(cell = %cell_id, error = %err, "claiming deliveries failed");
                Vec::new()
            }
        }
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
}
