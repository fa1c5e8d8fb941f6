//! Recording: attempts that end close together are recorded together, in one transaction per
//! cell (group commit). Each attempt hands its record to the deliverer's recorder and waits for
//! it to be committed, so an attempt still ends only once it is recorded; while the recorder
//! commits one group, the attempts ending meanwhile gather into the next. When attempts end
//! one at a time, a group is one attempt and nothing waits.

use std::sync::Arc;

use futures_util::future::join_all;
use kontor_domain::CellId;
use kontor_store::AttemptRecord;
use tokio::sync::{mpsc, oneshot};

use super::Deliverer;
use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

/// Most attempts one group records.
const GROUP_LIMIT: usize = 128;

/// An attempt waiting to be recorded.
pub(super) struct Pending {
    cell: CellId,
    record: AttemptRecord,
    recorded: oneshot::Sender<ServiceResult<()>>,
}

impl Deliverer {
    /// Records one attempt (and what it leaves the delivery as) together with the attempts that
    /// end at the same time; returns once it is committed.
    pub(super) async fn record(&self, cell: &CellId, record: AttemptRecord) -> ServiceResult<()> {
        let (recorded, answer) = oneshot::channel();
        let recorder = self.recorder.get_or_init(|| {
            let (sender, queue) = mpsc::unbounded_channel();
            tokio::spawn(record_groups(self.hub.clone(), self.owner.clone(), queue));
            sender
        });
        let pending = Pending {
            cell: cell.clone(),
            record,
            recorded,
        };
        if let Err(mpsc::error::SendError(pending)) = recorder.send(pending) {
            return record_alone(&self.hub, &self.owner, pending.cell, pending.record).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(ServiceError::Internal(
                "the recorder stopped before recording the attempt".to_owned(),
            ))
        })
    }
}

/// The recorder: takes whatever attempts wait (up to [`GROUP_LIMIT`]), records each cell's in
/// one transaction, the cells at once, and answers each attempt. Ends when every clone of its
/// deliverer is gone.
async fn record_groups(hub: Hub, owner: Arc<str>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut waiting = Vec::with_capacity(GROUP_LIMIT);
    while queue.recv_many(&mut waiting, GROUP_LIMIT).await > 0 {
        let mut groups: Vec<(CellId, Vec<Pending>)> = Vec::new();
        for pending in waiting.drain(..) {
            match groups.iter_mut().find(|(cell, _)| *cell == pending.cell) {
                Some((_, group)) => group.push(pending),
                None => groups.push((pending.cell.clone(), vec![pending])),
            }
        }
        join_all(
            groups
                .into_iter()
                .map(|(cell, group)| record_group(&hub, &owner, cell, group)),
        )
        .await;
    }
}

/// Records one cell's group in one transaction. If that fails, each attempt is recorded on its
/// own, so that one that cannot be recorded (its delivery gone) does not fail the others.
async fn record_group(hub: &Hub, owner: &str, cell_id: CellId, group: Vec<Pending>) {
    if group.len() > 1
        && let Ok(cell) = hub.cell(&cell_id)
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
        let result = record_alone(hub, owner, cell_id.clone(), pending.record).await;
        let _ = pending.recorded.send(result);
    }
}

async fn record_alone(
    hub: &Hub,
    owner: &str,
    cell: CellId,
    record: AttemptRecord,
) -> ServiceResult<()> {
    hub.cell(&cell)?
        .record_attempt(&record.id, owner, &record.attempt, record.outcome)
        .await
        .map_err(ServiceError::from)
}
