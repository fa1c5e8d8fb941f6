//! What each cell holds in numbers, for the worker's gauges (payments per phase, the webhook
//! backlog, overdue syncs, consents about to lapse).

use kontor_domain::CellId;
use kontor_domain::time::Timestamp;
use kontor_store::CellGauges;

use crate::error::{ServiceError, ServiceResult};
use crate::hub::Hub;

impl Hub {
    /// Every cell's gauges at `now`, each on its own: a cell that cannot answer does not hide
    /// the others. A consent counts as expiring within the notice period
    /// (`expiry_notice_days`), the one in which tenants are told.
    pub async fn cell_gauges(&self, now: Timestamp) -> Vec<(CellId, ServiceResult<CellGauges>)> {
        let horizon = now.plus_seconds(self.settings().expiry_notice_days * 86_400);
        let mut all = Vec::new();
        for (region, cell) in self.cells().iter() {
            let gauges = cell.gauges(now, horizon).await.map_err(ServiceError::from);
            all.push((region.clone(), gauges));
        }
        all
    }
}
