//! Recording: attempts that end close together are recorded together, in one transaction per
//! cell (group commit). Each attempt hands its record to the deliverer's recorder and waits for
//! it to be committed, so an attempt still ends only once it is recorded; while the recorder
//! commits one group, the attempts ending meanwhile gather into the next. When attempts end
//! one at a time, a group is one attempt and nothing waits.

use std::sync::Arc;

use futures_util::future::join_all;
use kontor_domain::Region;
use kontor_store::AttemptRecord;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::Deliverer;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// Most attempts one group records.
const GROUP_LIMIT: usize = 128;
/// Groups one recorder commits at the same time, at most.
const GROUPS_AT_ONCE: usize = 4;

/// An attempt waiting to be recorded.
pub(super) struct Pending {
    region: Region,
    record: AttemptRecord,
    recorded: oneshot::Sender<ServiceResult<()>>,
}

impl Deliverer {
    /// Records one attempt (and what it leaves the delivery as) together with the attempts that
    /// end at the same time; returns once it is committed.
    pub(super) async fn record(&self, region: &Region, record: AttemptRecord) -> ServiceResult<()> {
        let (recorded, answer) = oneshot::channel();
        let recorder = self.recorder.get_or_init(|| {
            let (sender, queue) = mpsc::unbounded_channel();
            tokio::spawn(record_groups(self.hub.clone(), self.owner.clone(), queue));
            sender
        });
        let pending = Pending {
            region: region.clone(),
            record,
            recorded,
        };
        if let Err(mpsc::error::SendError(pending)) = recorder.send(pending) {
            return record_alone(&self.hub, &self.owner, pending.region, pending.record).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(ServiceError::Internal(
                "the recorder stopped before recording the attempt".to_owned(),
            ))
        })
    }
}

/// The recorder: takes whatever attempts wait (up to [`GROUP_LIMIT`]), records each cell's in
/// one transaction, the cells at once, and answers each attempt. Up to [`GROUPS_AT_ONCE`] groups
/// are committed at the same time (their deliveries are disjoint: each is leased to this worker
/// and waits in one group), so that a slow commit does not hold up the attempts that end
/// meanwhile; when all are busy, arrivals gather into the next group. Ends when every clone of
/// its deliverer is gone.
async fn record_groups(hub: Hub, owner: Arc<str>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(GROUPS_AT_ONCE));
    let mut waiting = Vec::with_capacity(GROUP_LIMIT);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut waiting, GROUP_LIMIT).await == 0 {
            return;
        }
        let mut groups: Vec<(Region, Vec<Pending>)> = Vec::new();
        for pending in waiting.drain(..) {
            match groups
                .iter_mut()
                .find(|(region, _)| *region == pending.region)
            {
                Some((_, group)) => group.push(pending),
                None => groups.push((pending.region.clone(), vec![pending])),
            }
        }
        let hub = hub.clone();
        let owner = owner.clone();
        tokio::spawn(async move {
            join_all(
                groups
                    .into_iter()
                    .map(|(region, group)| record_group(&hub, &owner, region, group)),
            )
            .await;
            drop(slot);
        });
    }
}

/// Records one cell's group in one transaction. If that fails, each attempt is recorded on its
/// own, so that one that cannot be recorded (its delivery gone) does not fail the others.
async fn record_group(hub: &Hub, owner: &str, region: Region, group: Vec<Pending>) {
    if group.len() > 1
        && let Ok(cell) = hub.cell(&region)
    {
        let records: Vec<AttemptRecord> = group.iter().map(|p| p.record.clone()).collect();
        if cell.record_attempts(owner, &records).await.is_ok() {
            for pending in group {
                let _ = pending.recorded.send(Ok(()));
            }
            return;
        }
    }
    for pending in group {
        let result = record_alone(hub, owner, region.clone(), pending.record).await;
        let _ = pending.recorded.send(result);
    }
}

async fn record_alone(
    hub: &Hub,
    owner: &str,
    region: Region,
    record: AttemptRecord,
) -> ServiceResult<()> {
    hub.cell(&region)?
        .record_attempt(&record.id, owner, &record.attempt, record.outcome)
        .await
        .map_err(ServiceError::from)
}
