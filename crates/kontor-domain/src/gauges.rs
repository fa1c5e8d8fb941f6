//! What a cell holds in numbers, for the gauges the worker exports: payments waiting in each
//! phase, the webhook backlog, overdue syncs and consents about to lapse. Counts and ages only,
//! never an id or anything personal.

use crate::payment::PaymentPhase;
use crate::time::Timestamp;

/// The payments in one phase before `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseGauge {
    pub phase: PaymentPhase,
    pub count: u64,
    /// When the payment that has waited longest in this phase was last changed: when it
    /// entered the phase, or, in `submitted`, its last poll. `None` when the phase is empty.
    pub oldest_change: Option<Timestamp>,
}

/// One cell's gauges at a moment (`now`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CellGauges {
    /// Every phase before `done`, in [`PaymentPhase::ALL`] order, empty phases included.
    pub payments: Vec<PhaseGauge>,
    /// Deliveries neither delivered nor given up.
    pub deliveries_pending: u64,
    /// When the event of the oldest pending delivery was recorded (a redelivery: when it was
    /// asked for).
    pub oldest_pending_queued_at: Option<Timestamp>,
    /// The earliest moment at which work for the webhook workers fell due and is still
    /// waiting: a pending delivery's next attempt at or before `now`, or an event not yet
    /// turned into deliveries.
    pub oldest_due_at: Option<Timestamp>,
    /// The earliest scheduled sync of an active connection at or before `now`.
    pub oldest_overdue_sync_at: Option<Timestamp>,
    /// Active connections whose consent lapses before the horizon asked for.
    pub consents_expiring: u64,
}

/// How big a cell is, for `kontor cells list` and placement: its users, the row counts of its
/// big tables, and its size on disk where the backend tells (PostgreSQL's `pg_database_size`,
/// a SQLite file's pages).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CellSize {
    pub users: u64,
    /// `(table, rows)` for the tables that grow with use, in a fixed order.
    pub rows: Vec<(&'static str, u64)>,
    pub bytes: Option<u64>,
}
