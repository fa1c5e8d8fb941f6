//! What a cell holds in numbers, for the gauges the worker exports: payments waiting in each
//! phase, the webhook backlog, overdue syncs and consents about to lapse. Counts and ages only,
//! never an id or anything personal.

use async_trait::async_trait;
use kontor_domain::time::Timestamp;

use crate::error::StoreResult;

pub use kontor_domain::gauges::{CellGauges, CellSize, PhaseGauge};

#[async_trait]
pub trait GaugeStore: Send + Sync {
    /// The cell's gauges at `now`; consents are counted as expiring when they lapse before
    /// `expiring_before`. Reads only.
    async fn gauges(&self, now: Timestamp, expiring_before: Timestamp) -> StoreResult<CellGauges>;

    /// How many users the cell holds (placement's measure of load). Reads only.
    async fn user_count(&self) -> StoreResult<u64>;

    /// The cell's users, big tables' row counts and bytes on disk. Reads only; counts whole
    /// tables, so it is for operators, not for every request.
    async fn size(&self) -> StoreResult<CellSize>;
}
