//! Leases on connections and payments, one implementation for both: a short claim that its live
//! holder renews while it works. A process that dies stops renewing, so its claims lapse within
//! `lease_seconds` and another process (or the same one, restarted) takes the work over; a slow
//! bank never makes a live holder lose its claim.

use std::future::Future;
use std::time::Duration;

use kontor_domain::time::Timestamp;
use kontor_domain::{ConnectionId, PaymentId};
use kontor_store::StoreResult;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// What a lease is on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LeaseOn<'a> {
    Connection(&'a ConnectionId),
    Payment(&'a PaymentId),
}

impl std::fmt::Display for LeaseOn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeaseOn::Connection(id) => write!(f, "{id}"),
            LeaseOn::Payment(id) => write!(f, "{id}"),
        }
    }
}

impl Hub {
    /// Until when a lease taken or renewed at `now` lasts.
    fn lease_until(&self, now: Timestamp) -> Timestamp {
        now.plus_seconds(self.settings().lease_seconds)
    }

    /// How often a holder renews: three times per lease, so that a renewal or two may fail (a
    /// slow database) before the lease lapses under a live holder.
    fn renew_every(&self) -> Duration {
        let lease_ms =
            u64::try_from(self.settings().lease_seconds.saturating_mul(1000)).unwrap_or(u64::MAX);
        Duration::from_millis((lease_ms / 3).max(100))
    }

    /// Takes the lease for `owner` if nobody else holds one.
    pub(crate) async fn claim_lease(&self, on: LeaseOn<'_>, owner: &str) -> ServiceResult<bool> {
        let now = self.clock().now();
        let until = self.lease_until(now);
        match on {
            LeaseOn::Connection(id) => self.cell_of(id).await?.claim(id, owner, until, now).await,
            LeaseOn::Payment(id) => {
                let cell = self.payment_cell(id).await?;
                cell.claim_payment(id, owner, until, now).await
            }
        }
        .map_err(ServiceError::from)
    }

    async fn renew_lease(&self, on: LeaseOn<'_>, owner: &str) -> StoreResult<bool> {
        let until = self.lease_until(self.clock().now());
        match on {
            LeaseOn::Connection(id) => match self.cell_of(id).await {
                Ok(cell) => cell.renew(id, owner, until).await,
                Err(_) => Ok(false),
            },
            LeaseOn::Payment(id) => match self.payment_cell(id).await {
                Ok(cell) => cell.renew_payment(id, owner, until).await,
                Err(_) => Ok(false),
            },
        }
    }

    async fn release_lease(&self, on: LeaseOn<'_>, owner: &str) {
        let released = match on {
            LeaseOn::Connection(id) => match self.cell_of(id).await {
                Ok(cell) => cell.release(id, owner).await,
                Err(_) => Ok(()),
            },
            LeaseOn::Payment(id) => match self.payment_cell(id).await {
                Ok(cell) => cell.release_payment(id, owner).await,
                Err(_) => Ok(()),
            },
        };
        if let Err(err) = released {
            tracing::warn!(lease.on = %on, error = %err, "could not release a lease");
        }
    }

    /// Runs `work` under the lease `owner` holds, renewing it meanwhile, and gives it back
    /// afterwards. `None` when another process took the lease over (ours had lapsed: the
    /// database did not answer our renewals in time): `work` is stopped there, as a crash would
    /// stop it, so that two processes never go on with the same work.
    pub(crate) async fn holding_lease<T>(
        &self,
        on: LeaseOn<'_>,
        owner: &str,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        // The renewals run beside the work, never instead of it: the work may hold a write on
        // the leased row (a sync's last transaction) that a renewal has to wait for.
        let renewing = async {
            let every = self.renew_every();
            let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match self.renew_lease(on, owner).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    // Perhaps the next renewal gets through; the lease still runs meanwhile.
                    Err(err) => {
                        tracing::warn!(lease.on = %on, error = %err, "could not renew a lease");
                    }
                }
            }
        };
        // On the heap: the work is a sync or a payment step, large futures both.
        let outcome = tokio::select! {
            done = Box::pin(work) => Some(done),
            () = renewing => {
                tracing::warn!(lease.on = %on, "lease taken over by another process; stopping");
                None
            }
        };
        if outcome.is_some() {
            self.release_lease(on, owner).await;
        }
        outcome
    }

    /// A lease owner name unique to one piece of work in this process.
    pub(crate) fn lease_owner(&self, what: &str) -> String {
        format!(
            "{}/{what}/{}",
            self.settings().instance_id,
            crate::tokens::random_token()
        )
    }
}
