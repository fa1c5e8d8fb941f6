//! Erasure: the attacker's test (every database file, copies and a backup taken before the
//! erasure, searched with every key the deployment has), the complete erasure (consents revoked
//! at the bank, events and idempotency records gone, resumed after a crash) and the erasure
//! ledger's replay onto restored cells and key stores; on SQLite and PostgreSQL.

mod attacker;
mod complete;
mod replay;
mod scan;

pub(crate) use crate::support::world_on;
