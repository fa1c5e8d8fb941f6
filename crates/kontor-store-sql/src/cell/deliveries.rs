//! Webhook deliveries in a cell, next to the events they deliver. The claim that leases due
//! deliveries to a worker is the one statement whose SQL differs per backend: on PostgreSQL its
//! row selection ends in `FOR UPDATE SKIP LOCKED`, on SQLite it runs under the single write lock
//! (see the dialect crates). The queue's own transactions — claiming, recording an attempt,
//! taking the dispatcher's lease — begin with the dialect's `BEGIN_QUEUE` (READ COMMITTED on
//! PostgreSQL): each touches rows it locks first, and under SERIALIZABLE concurrent workers would
//! abort one another on predicate locks that cover neighbouring rows. Everything else is
//! serializable as usual.

use std::collections::HashMap;

use async_trait::async_trait;
use kontor_domain::event::{Event, EventType};
use kontor_domain::time::Timestamp;
use kontor_domain::webhook::{Attempt, AttemptError, Delivery, DeliveryFailure, DeliveryState};
use kontor_domain::{DeliveryId, EventId, TenantId, UserId, WebhookEndpointId};
use kontor_store::{
    AttemptRecord, ClaimedDelivery, DeliveryFilter, DeliveryOutcome, DeliveryStore, NewDelivery,
    Page, PageKey, StoreError, StoreResult,
};
use sqlx::any::AnyRow;

use super::SqlCell;
use super::events::{event_from_columns, event_from_row};
use super::lease;
use crate::database::{column, optional_timestamp};
use crate::query::{Arg, Filtered, limit_arg};
use crate::tx::Tx;

/// Rows per multi-row INSERT: well under every backend's limit on bound parameters.
const INSERT_CHUNK: usize = 50;

async fn insert_deliveries(tx: &mut Tx<'_>, deliveries: &[NewDelivery]) -> StoreResult<()> {
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let mut q = Filtered::new(
            "INSERT INTO webhook_deliveries (id, tenant_id, event_id, endpoint_id, ordering_key, \
             queued_at, state, next_attempt_at, redelivery, created_at, updated_at) VALUES ",
        );
        for (i, d) in chunk.iter().enumerate() {
            let id = q.arg(Arg::Text(d.id.to_string()));
            let tenant = q.arg(Arg::Text(d.tenant_id.to_string()));
            let event = q.arg(Arg::Text(d.event_id.to_string()));
            let endpoint = q.arg(Arg::Text(d.endpoint_id.to_string()));
            let key = q.arg(Arg::Text(d.ordering_key.clone()));
            let queued = q.arg(Arg::Int(d.queued_at.unix_micros()));
            let redelivery = q.arg(Arg::Int(i64::from(d.redelivery)));
            let created = q.arg(Arg::Int(d.created_at.unix_micros()));
            q.push(if i == 0 { "" } else { ", " });
            q.push(&format!(
                "({id}, {tenant}, {event}, {endpoint}, {key}, {queued}, 'pending', {created}, \
                 {redelivery}, {created}, {created})"
            ));
        }
        // A fan-out row that exists already (another worker dispatched the event) is kept.
        q.push(" ON CONFLICT DO NOTHING");
        tx.execute(q.build()).await?;
    }
    Ok(())
}

fn delivery_from_row(row: &AnyRow) -> StoreResult<Delivery> {
    let state: String = column(row, "state")?;
    let raw_type: String = column(row, "type")?;
    let failure: Option<String> = column(row, "failure")?;
    Ok(Delivery {
        id: DeliveryId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        endpoint_id: WebhookEndpointId::parse(&column::<String>(row, "endpoint_id")?)
            .map_err(StoreError::corrupt)?,
        event_id: EventId::parse(&column::<String>(row, "event_id")?)
            .map_err(StoreError::corrupt)?,
        event_type: EventType::parse(&raw_type)
            .ok_or_else(|| StoreError::corrupt(format!("event type {raw_type}")))?,
        user_id: column::<Option<String>>(row, "user_id")?
            .map(|raw| UserId::parse(&raw))
            .transpose()
            .map_err(StoreError::corrupt)?,
        state: DeliveryState::parse(&state).ok_or_else(|| StoreError::corrupt(state))?,
        failure: failure
            .map(|f| DeliveryFailure::parse(&f).ok_or_else(|| StoreError::corrupt(f)))
            .transpose()?,
        attempts: u32::try_from(column::<i64>(row, "attempts")?).map_err(StoreError::corrupt)?,
        next_attempt_at: optional_timestamp(row, "next_attempt_at")?,
        redelivery: column::<i64>(row, "redelivery")? != 0,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
        delivered_at: optional_timestamp(row, "delivered_at")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> StoreResult<(DeliveryId, Attempt)> {
    let error: Option<String> = column(row, "error")?;
    let status: Option<i64> = column(row, "status_code")?;
    Ok((
        DeliveryId::parse(&column::<String>(row, "delivery_id")?).map_err(StoreError::corrupt)?,
        Attempt {
            number: u32::try_from(column::<i64>(row, "seq")?).map_err(StoreError::corrupt)?,
            at: Timestamp::from_unix_micros(column(row, "at")?),
            status_code: status
                .map(u16::try_from)
                .transpose()
                .map_err(StoreError::corrupt)?,
            error: error
                .map(|e| AttemptError::parse(&e).ok_or_else(|| StoreError::corrupt(e)))
                .transpose()?,
            latency_us: column(row, "latency_us")?,
        },
    ))
}

/// The move fence of a delivery's tenant or user, as a condition on `webhook_deliveries` (the
/// user is the event's).
macro_rules! delivery_unfenced {
    ($d:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM move_fences f LEFT JOIN events e ON e.id = ",
            $d,
            ".event_id WHERE f.tenant_id = ",
            $d,
            ".tenant_id AND (f.user_id IS NULL OR f.user_id = e.user_id))"
        )
    };
}

/// Picks and locks the due heads of their queues; the dialect's clause makes concurrent claims
/// skip each other's rows. `$1` is now. Writes nothing: the fence is read again, after these
/// locks are held, by [`lease_sql`].
fn due_heads_sql(skip_locked: &str) -> String {
    format!(
        "SELECT d.id FROM webhook_deliveries d \
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
           AND (d.lease_until IS NULL OR d.lease_until < $1) \
           AND {} \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
             WHERE o.endpoint_id = d.endpoint_id AND o.ordering_key = d.ordering_key \
               AND o.state = 'pending' AND o.id <> d.id \
               AND ((o.queued_at, o.id) < (d.queued_at, d.id) OR o.lease_until >= $1)) \
         ORDER BY d.next_attempt_at, d.queued_at, d.id LIMIT $2{skip_locked}",
        delivery_unfenced!("d")
    )
}

/// Leases the locked heads `ids` to `owner` unless a fence covers them now, answering each with
/// its event. A statement of its own after the row locks: at READ COMMITTED it reads a fence
/// committed after [`due_heads_sql`] began (a move's freeze locks the subject's deliveries
/// first, so a fence committed later than these locks waits for this transaction), and fenced
/// rows are left as they were, their locks released at commit. The list is padded to a power of
/// two (repeating the first id), so that few statement texts stay prepared.
fn lease_sql(owner: &str, until: Timestamp, ids: &[String]) -> Filtered {
    let mut q = Filtered::new("UPDATE webhook_deliveries SET lease_owner = ");
    let p = q.arg(Arg::Text(owner.to_owned()));
    q.push(&p);
    let p = q.arg(Arg::Int(until.unix_micros()));
    q.push(&format!(", lease_until = {p} WHERE id IN ("));
    let padding = ids.len().next_power_of_two() - ids.len();
    q.push_list(
        ids.iter()
            .cloned()
            .chain(ids.first().into_iter().cycle().take(padding).cloned()),
    );
    q.push(concat!(
        ") AND ",
        delivery_unfenced!("webhook_deliveries"),
        " RETURNING id, endpoint_id, event_id, attempts, first_attempt_at, tenant_id, \
         (SELECT e.user_id FROM events e WHERE e.id = webhook_deliveries.event_id) AS user_id, \
         (SELECT e.type FROM events e WHERE e.id = webhook_deliveries.event_id) AS type, \
         (SELECT e.data FROM events e WHERE e.id = webhook_deliveries.event_id) AS data, \
         (SELECT e.created_at FROM events e WHERE e.id = webhook_deliveries.event_id) \
           AS event_created_at"
    ));
    q
}

/// A row of [`lease_sql`].
fn claimed_from_row(row: &AnyRow) -> StoreResult<ClaimedDelivery> {
    let event = event_from_columns(row, "event_id", "event_created_at")?;
    Ok(ClaimedDelivery {
        id: DeliveryId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        endpoint_id: WebhookEndpointId::parse(&column::<String>(row, "endpoint_id")?)
            .map_err(StoreError::corrupt)?,
        attempts: u32::try_from(column::<i64>(row, "attempts")?).map_err(StoreError::corrupt)?,
        first_attempt_at: optional_timestamp(row, "first_attempt_at")?,
        event,
    })
}

/// Counts an attempt of delivery `id` and settles the delivery as `outcome` says, in one
/// statement answering the attempt's number. A success counts whoever sent it; a failure moves
/// the delivery on only for the lease holder (a worker whose lease ran out must not reschedule
/// another's attempt). Every `SET` reads the row as it was, so `settles` is one condition.
fn settle_sql(
    id: &DeliveryId,
    owner: &str,
    attempt: &Attempt,
    outcome: DeliveryOutcome,
) -> Filtered {
    let (state, failure, next, delivered, lease_check) = match outcome {
        DeliveryOutcome::Delivered => ("succeeded", None, None, Some(attempt.at), false),
        DeliveryOutcome::RetryAt(at) => ("pending", None, Some(at), None, true),
        DeliveryOutcome::GiveUp(why) => ("failed", Some(why.as_str()), None, None, true),
    };
    let mut q = Filtered::new("UPDATE webhook_deliveries SET attempts = attempts + 1, ");
    let at = q.arg(Arg::Int(attempt.at.unix_micros()));
    let now = q.arg(Arg::Int(Timestamp::now().unix_micros()));
    q.push(&format!(
        "first_attempt_at = COALESCE(first_attempt_at, {at}), updated_at = {now}"
    ));
    let settles = if lease_check {
        let p = q.arg(Arg::Text(owner.to_owned()));
        format!("state = 'pending' AND lease_owner = {p}")
    } else {
        "state = 'pending'".to_owned()
    };
    let set = |q: &mut Filtered, column: &str, value: Option<Arg>| {
        let value = match value {
            Some(v) => q.arg(v),
            None => "NULL".to_owned(),
        };
        q.push(&format!(
            ", {column} = CASE WHEN {settles} THEN {value} ELSE {column} END"
        ));
    };
    set(&mut q, "state", Some(Arg::Text(state.to_owned())));
    set(&mut q, "failure", failure.map(|f| Arg::Text(f.to_owned())));
    set(
        &mut q,
        "next_attempt_at",
        next.map(|t| Arg::Int(t.unix_micros())),
    );
    if let Some(t) = delivered {
        set(&mut q, "delivered_at", Some(Arg::Int(t.unix_micros())));
    }
    set(&mut q, "lease_owner", None);
    set(&mut q, "lease_until", None);
    let p = q.arg(Arg::Text(id.to_string()));
    q.push(&format!(" WHERE id = {p} RETURNING attempts"));
    q
}

/// Most attempts one statement of `record_attempts` records (6 parameters a row; a power of
/// two, see [`crate::query::runs`]).
const RECORDS_PER_STATEMENT: usize = 64;

/// `CASE id WHEN $a THEN $b … END` over `records`, each record's attempt time.
fn attempt_times(q: &mut Filtered, records: &[&AttemptRecord]) -> String {
    let mut sql = String::from("CASE id");
    for r in records {
        let id = q.arg(Arg::Text(r.id.to_string()));
        let at = q.arg(Arg::Int(r.attempt.at.unix_micros()));
        sql.push_str(&format!(" WHEN {id} THEN {at}"));
    }
    sql.push_str(" END");
    sql
}

/// Records one run of `record_attempts`, each attempt as `record_attempt` records it: the
/// delivered ones counted and settled by one `UPDATE … RETURNING` (which locks their rows), any
/// other outcome by its own statement with its lease checked; then the fences read once for the
/// whole run, after the row locks (see `record_attempt`); then the attempts inserted by one
/// multi-row `INSERT`. [`StoreError::NotFound`] if a delivery is gone, [`StoreError::Moving`] if
/// a fence covers one (the transaction rolls back; the caller records the others alone).
async fn record_run(tx: &mut Tx<'_>, owner: &str, run: &[&AttemptRecord]) -> StoreResult<()> {
    let mut seqs: HashMap<String, i64> = HashMap::with_capacity(run.len());
    let delivered: Vec<&AttemptRecord> = run
        .iter()
        .copied()
        .filter(|r| r.outcome == DeliveryOutcome::Delivered)
        .collect();
    for part in crate::query::runs(&delivered, RECORDS_PER_STATEMENT) {
        let mut q = Filtered::new(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, first_attempt_at = \
             COALESCE(first_attempt_at, ",
        );
        let times = attempt_times(&mut q, part);
        let now = q.arg(Arg::Int(Timestamp::now().unix_micros()));
        // A success counts whoever sent it (as in `settle_sql`); a delivery settled already
        // keeps its state and only counts the attempt.
        q.push(&format!(
            "{times}), updated_at = {now}, \
             state = CASE WHEN state = 'pending' THEN 'succeeded' ELSE state END, \
             failure = CASE WHEN state = 'pending' THEN NULL ELSE failure END, \
             next_attempt_at = CASE WHEN state = 'pending' THEN NULL ELSE next_attempt_at END, \
             delivered_at = CASE WHEN state = 'pending' THEN {times} ELSE delivered_at END, \
             lease_owner = CASE WHEN state = 'pending' THEN NULL ELSE lease_owner END, \
             lease_until = CASE WHEN state = 'pending' THEN NULL ELSE lease_until END \
             WHERE id IN ("
        ));
        q.push_list(part.iter().map(|r| r.id.to_string()));
        q.push(") RETURNING id, attempts");
        for row in tx.fetch_all(q.build()).await? {
            seqs.insert(column(&row, "id")?, column(&row, "attempts")?);
        }
    }
    for r in run
        .iter()
        .filter(|r| r.outcome != DeliveryOutcome::Delivered)
    {
        let settled = tx
            .fetch_optional(settle_sql(&r.id, owner, &r.attempt, r.outcome).build())
            .await?
            .ok_or(StoreError::NotFound)?;
        seqs.insert(r.id.to_string(), column(&settled, "attempts")?);
    }
    super::fences::guard_rows(
        tx,
        super::fences::Row::Delivery,
        run.iter().map(|r| r.id.as_str()),
    )
    .await?;
    let mut q = Filtered::new(
        "INSERT INTO webhook_attempts (delivery_id, seq, at, status_code, error, latency_us) \
         VALUES ",
    );
    for (i, r) in run.iter().enumerate() {
        let seq = *seqs.get(r.id.as_str()).ok_or(StoreError::NotFound)?;
        let values = [
            q.arg(Arg::Text(r.id.to_string())),
            q.arg(Arg::Int(seq)),
            q.arg(Arg::Int(r.attempt.at.unix_micros())),
            q.arg(Arg::OptInt(r.attempt.status_code.map(i64::from))),
            q.arg(Arg::OptText(
                r.attempt.error.map(|e| AttemptError::as_str(e).to_owned()),
            )),
            q.arg(Arg::Int(r.attempt.latency_us)),
        ];
        q.push(if i == 0 { "(" } else { ", (" });
        q.push(&values.join(", "));
        q.push(")");
    }
    tx.execute(q.build()).await?;
    Ok(())
}

#[async_trait]
impl DeliveryStore for SqlCell {
    async fn undispatched_events(&self, limit: usize) -> StoreResult<Vec<Event>> {
        self.db
            .rows(
                || {
                    sqlx::query(concat!(
                        "SELECT id, tenant_id, user_id, type, data, created_at FROM events \
             WHERE dispatched_at IS NULL AND ",
                        unfenced!("events"),
                        " ORDER BY created_at, id LIMIT $1"
                    ))
                    .bind(limit_arg(limit))
                },
                event_from_row,
            )
            .await
    }

    async fn dispatch_events(
        &self,
        events: &[EventId],
        deliveries: &[NewDelivery],
        at: Timestamp,
    ) -> StoreResult<()> {
        for event in events {
            self.ensure_home("event", event.region())?;
        }
        self.db
            .write("dispatch_events", |tx| {
                Box::pin(async move {
                    super::fences::guard_rows(
                        tx,
                        super::fences::Row::Event,
                        events.iter().map(EventId::as_str),
                    )
                    .await?;
                    insert_deliveries(tx, deliveries).await?;
                    // By primary key alone: a condition on `dispatched_at` would let the
                    // planner pick `events_undispatched` and walk every undispatched event for
                    // each chunk, which it did on tables without statistics (a backlog of
                    // 20,000 events: 36 ms a chunk). `COALESCE` keeps the first dispatch's time
                    // should two dispatchers race.
                    for chunk in events.chunks(INSERT_CHUNK) {
                        let mut q = Filtered::new(
                            "UPDATE events SET dispatched_at = COALESCE(dispatched_at, ",
                        );
                        let p = q.arg(Arg::Int(at.unix_micros()));
                        q.push(&p);
                        q.push(") WHERE id IN (");
                        q.push_list(chunk.iter().map(EventId::to_string));
                        q.push(")");
                        tx.execute(q.build()).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn claim_job(
        &self,
        name: &str,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        lease::WORKER_JOBS
            .claim(&self.db, name, owner, until, now)
            .await
    }

    async fn release_job(&self, name: &str, owner: &str) -> StoreResult<()> {
        lease::WORKER_JOBS.release(&self.db, name, owner).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let heads = &due_heads_sql(self.db.dialect().skip_locked());
        let rows = self
            .db
            .transaction(crate::tx::Mode::Queue, "claim_deliveries", |tx| {
                Box::pin(async move {
                    let ids: Vec<String> = tx
                        .scalars(
                            sqlx::query_scalar(sqlx::AssertSqlSafe(heads.as_str()))
                                .bind(now.unix_micros())
                                .bind(limit_arg(limit)),
                        )
                        .await?;
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    tx.fetch_all(lease_sql(owner, until, &ids).build()).await
                })
            })
            .await?;
        let mut claimed = rows
            .iter()
            .map(claimed_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        // Oldest first, so that a worker starts queues in the order they became due.
        claimed.sort_by_key(|c| (c.event.created_at, c.id.to_string()));
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: &DeliveryId,
        owner: &str,
        attempt: &Attempt,
        outcome: DeliveryOutcome,
    ) -> StoreResult<()> {
        self.ensure_home("delivery", id.region())?;
        let settle = &settle_sql(id, owner, attempt, outcome);
        self.db
            .transaction(crate::tx::Mode::Queue, "record_attempt", |tx| {
                Box::pin(async move {
                    // Counting the attempt (and settling the delivery) locks the row: a second
                    // recorder of the same delivery (one whose lease ran out) waits here and then
                    // counts the next number.
                    let settled = tx
                        .fetch_optional(settle.build())
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let seq: i64 = column(&settled, "attempts")?;
                    // After the row lock, in a statement of its own: at READ COMMITTED this read
                    // sees a fence committed while it waited for the lock (a move's freeze locks
                    // all the subject's deliveries), see `moves::fence`. A fenced delivery's
                    // transaction is rolled back, the settling above with it.
                    let logged = tx
                        .execute(
                            sqlx::query(
                                "INSERT INTO webhook_attempts (delivery_id, seq, at, status_code, \
                                 error, latency_us) SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (\
                                 SELECT 1 FROM webhook_deliveries d LEFT JOIN events e \
                                 ON e.id = d.event_id JOIN move_fences f ON f.tenant_id = d.tenant_id \
                                 AND (f.user_id IS NULL OR f.user_id = e.user_id) WHERE d.id = $1)"
                            )
                            .bind(id.as_str())
                            .bind(seq)
                            .bind(attempt.at.unix_micros())
                            .bind(attempt.status_code.map(i64::from))
                            .bind(attempt.error.map(AttemptError::as_str))
                            .bind(attempt.latency_us),
                        )
                        .await?;
                    if logged == 0 {
                        return Err(StoreError::Moving {
                            subject: "tenant".into(),
                        });
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn record_attempts(&self, owner: &str, records: &[AttemptRecord]) -> StoreResult<()> {
        for record in records {
            self.ensure_home("delivery", record.id.region())?;
        }
        // In the order of their ids, so that two recorders lock shared rows in the same order.
        let mut sorted: Vec<&AttemptRecord> = records.iter().collect();
        sorted.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        if sorted.windows(2).any(|w| w[0].id == w[1].id) {
            // The same delivery twice: its attempts are numbered one after the other.
            for record in records {
                self.record_attempt(&record.id, owner, &record.attempt, record.outcome)
                    .await?;
            }
            return Ok(());
        }
        let sorted = &sorted;
        self.db
            .transaction(crate::tx::Mode::Queue, "record_attempts", |tx| {
                Box::pin(async move {
                    for run in crate::query::runs(sorted, RECORDS_PER_STATEMENT) {
                        record_run(tx, owner, run).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn give_up_delivery(
        &self,
        id: &DeliveryId,
        owner: &str,
        failure: DeliveryFailure,
        at: Timestamp,
    ) -> StoreResult<()> {
        self.db
            .transaction(crate::tx::Mode::Queue, "give_up_delivery", |tx| {
                Box::pin(async move {
                    tx.execute(
                        sqlx::query(
                            "UPDATE webhook_deliveries SET state = 'failed', failure = $3, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
                 WHERE id = $1 AND state = 'pending' AND lease_owner = $2",
                        )
                        .bind(id.as_str())
                        .bind(owner)
                        .bind(failure.as_str())
                        .bind(at.unix_micros()),
                    )
                    .await?;
                    // After the row lock, as in `record_attempt`.
                    super::fences::guard_row(tx, super::fences::Row::Delivery, id.as_str()).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn delivered_since(
        &self,
        endpoint: &WebhookEndpointId,
        since: Timestamp,
    ) -> StoreResult<bool> {
        let found: i64 = self
            .db
            .scalar(|| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 AS one FROM webhook_deliveries \
             WHERE endpoint_id = $1 AND delivered_at >= $2 LIMIT 1) recent",
                )
                .bind(endpoint.as_str())
                .bind(since.unix_micros())
            })
            .await?;
        Ok(found > 0)
    }

    async fn event(&self, tenant: &TenantId, id: &EventId) -> StoreResult<Event> {
        self.db
            .row(
                || {
                    sqlx::query(
                        "SELECT id, tenant_id, user_id, type, data, created_at FROM events \
             WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                },
                event_from_row,
            )
            .await
    }

    async fn create_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<()> {
        for d in deliveries {
            self.ensure_home("delivery", d.id.region())?;
        }
        self.db
            .write("create_deliveries", |tx| {
                Box::pin(async move {
                    for d in deliveries {
                        super::fences::guard_row(
                            tx,
                            super::fences::Row::Event,
                            d.event_id.as_str(),
                        )
                        .await?;
                    }
                    insert_deliveries(tx, deliveries).await?;
                    Ok(())
                })
            })
            .await
    }

    async fn list_deliveries(
        &self,
        tenant: &TenantId,
        endpoint: &WebhookEndpointId,
        filter: &DeliveryFilter,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Delivery>> {
        let mut q = Filtered::new(
            "SELECT d.id, d.tenant_id, d.endpoint_id, d.event_id, e.type, e.user_id, d.state, \
             d.failure, d.attempts, d.next_attempt_at, d.redelivery, d.created_at, d.delivered_at \
             FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE d.tenant_id = ",
        );
        let p = q.arg(Arg::Text(tenant.to_string()));
        q.push(&p);
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM move_fences f WHERE f.tenant_id = d.tenant_id \
             AND (f.user_id IS NULL OR f.user_id = e.user_id) AND f.state IN ('incoming', 'gone'))",
        );
        let p = q.arg(Arg::Text(endpoint.to_string()));
        q.push(&format!(" AND d.endpoint_id = {p}"));
        if let Some(state) = filter.state {
            let p = q.arg(Arg::Text(state.as_str().to_owned()));
            q.push(&format!(" AND d.state = {p}"));
        }
        if let Some(event) = &filter.event {
            let p = q.arg(Arg::Text(event.to_string()));
            q.push(&format!(" AND d.event_id = {p}"));
        }
        q.page_by_creation("d.", after, limit);
        q.fetch_page(&self.db, limit, delivery_from_row, |d| PageKey {
            sort: d.created_at.unix_micros(),
            id: d.id.to_string(),
        })
        .await
    }

    async fn delivery_attempts(
        &self,
        ids: &[DeliveryId],
    ) -> StoreResult<Vec<(DeliveryId, Attempt)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Filtered::new(
            "SELECT delivery_id, seq, at, status_code, error, latency_us FROM webhook_attempts \
             WHERE delivery_id IN (",
        );
        q.push_list(ids.iter().map(DeliveryId::to_string));
        q.push(") ORDER BY delivery_id, seq");
        self.db.rows(|| q.build(), attempt_from_row).await
    }
}
