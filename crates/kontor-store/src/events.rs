//! The event log, kept in the cell of the user an event is about.

use async_trait::async_trait;
use kontor_domain::TenantId;
use kontor_domain::event::Event;

use crate::error::StoreResult;
use crate::page::{Page, PageKey};

pub use kontor_domain::list::EventFilter;

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Records an event on its own (most events are written with the change they report). An
    /// event whose id is stored already is not recorded again.
    async fn append_event(&self, event: &Event) -> StoreResult<()>;

    /// A tenant's events, oldest first.
    async fn list_events(
        &self,
        tenant: &TenantId,
        filter: &EventFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Event>>;
}
