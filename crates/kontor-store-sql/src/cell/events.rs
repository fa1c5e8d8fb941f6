//! The event log of a cell: events are inserted inside the transaction of the change they
//! report, and listed per tenant with filters.

use async_trait::async_trait;
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::{EventId, TenantId, UserId};
use kontor_store::{EventFilter, EventStore, Page, PageKey, StoreError, StoreResult};
use sqlx::any::AnyRow;

use super::SqlCell;
use crate::database::column;
use crate::query::{Arg, Filtered};
use crate::tx::Tx;

/// Inserts `event` within an open transaction; an event whose id is stored already is left as
/// it is (ids are random, or derived from what the event records so that a repeat is one).
pub(crate) async fn insert_event(tx: &mut Tx<'_>, event: &Event) -> StoreResult<()> {
    tx.execute(
        sqlx::query(
            "INSERT INTO events (id, tenant_id, user_id, type, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id.as_str())
        .bind(event.tenant_id.as_str())
        .bind(event.user_id.as_ref().map(UserId::as_str))
        .bind(event.event_type.as_str())
        .bind(event.data.to_string())
        .bind(event.created_at.unix_micros()),
    )
    .await
    .map(drop)
}

pub(crate) fn event_from_row(row: &AnyRow) -> StoreResult<Event> {
    event_from_columns(row, "id", "created_at")
}

/// An event from a row whose event id and creation time are in the columns named (a row that
/// has an id and a creation time of its own, such as a claimed delivery's).
pub(crate) fn event_from_columns(row: &AnyRow, id: &str, created_at: &str) -> StoreResult<Event> {
    let raw_type: String = column(row, "type")?;
    let data: String = column(row, "data")?;
    Ok(Event {
        id: EventId::parse(&column::<String>(row, id)?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        user_id: column::<Option<String>>(row, "user_id")?
            .map(|raw| UserId::parse(&raw))
            .transpose()
            .map_err(StoreError::corrupt)?,
        event_type: EventType::parse(&raw_type)
            .ok_or_else(|| StoreError::corrupt(format!("event type {raw_type}")))?,
        data: serde_json::from_str(&data).map_err(StoreError::corrupt)?,
        created_at: Timestamp::from_unix_micros(column(row, created_at)?),
    })
}

#[async_trait]
impl EventStore for SqlCell {
    async fn append_event(&self, event: &Event) -> StoreResult<()> {
        self.ensure_home("event", event.id.region())?;
        self.db
            .write("append_event", |tx| {
                Box::pin(async move {
                    super::fences::guard(
                        tx,
                        event.tenant_id.as_str(),
                        event.user_id.as_ref().map(|u| u.as_str()),
                    )
                    .await?;
                    insert_event(tx, event).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        filter: &EventFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Event>> {
        let mut q = Filtered::new(
            "SELECT id, tenant_id, user_id, type, data, created_at FROM events WHERE tenant_id = ",
        );
        let p = q.arg(Arg::Text(tenant.to_string()));
        q.push(&p);
        q.push(concat!(" AND ", listed!("events")));
        if let Some(event_type) = filter.event_type {
            let p = q.arg(Arg::Text(event_type.as_str().to_owned()));
            q.push(&format!(" AND type = {p}"));
        }
        if let Some(user) = &filter.user {
            let p = q.arg(Arg::Text(user.to_string()));
            q.push(&format!(" AND user_id = {p}"));
        }
        if let Some(since) = filter.since {
            let p = q.arg(Arg::Int(since.unix_micros()));
            q.push(&format!(" AND created_at >= {p}"));
        }
        if let Some(until) = filter.until {
            let p = q.arg(Arg::Int(until.unix_micros()));
            q.push(&format!(" AND created_at < {p}"));
        }
        q.page_by_creation("", after, limit);
        q.fetch_page(&self.db, limit, event_from_row, |e| PageKey {
            sort: e.created_at.unix_micros(),
            id: e.id.to_string(),
        })
        .await
    }
}
