//! Payments in a cell: creation that a retry cannot duplicate, steps recorded as checked phase
//! changes (with the status history and the event, in one transaction), the single-use callback
//! state, and what the worker polls or resumes.

use async_trait::async_trait;
use kontor_domain::bank::BankId;
use kontor_domain::currency::Currency;
use kontor_domain::money::Money;
use kontor_domain::payment::{Payment, PaymentPhase, PaymentScheme, PaymentStatus, StatusChange};
use kontor_domain::time::Timestamp;
use kontor_domain::{PaymentId, TenantId, UserId};
use kontor_store::{
    ListFilter, NewPayment, Page, PageKey, PaymentChange, PaymentSecrets, PaymentStore, StoreError,
    StoreResult,
};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use super::SqlCell;
use super::events::insert_event;
use super::lease;
use crate::database::{column, optional_timestamp};
use crate::query::{Arg, Filtered, limit_arg};
use crate::tx::Tx;

macro_rules! payment_columns {
    () => {
        "id, tenant_id, user_id, bank_id, scheme, status, phase, amount_minor, currency, \
         end_to_end_id, redirect_uri, bank_payment_id, bank_status, status_reason, created_at, \
         updated_at, next_poll_at, poll_attempts"
    };
}

fn payment_from_row(row: &AnyRow) -> StoreResult<Payment> {
    let scheme: String = column(row, "scheme")?;
    let status: String = column(row, "status")?;
    let phase: String = column(row, "phase")?;
    let currency =
        Currency::parse(&column::<String>(row, "currency")?).map_err(StoreError::corrupt)?;
    Ok(Payment {
        id: PaymentId::parse(&column::<String>(row, "id")?).map_err(StoreError::corrupt)?,
        tenant_id: TenantId::parse(&column::<String>(row, "tenant_id")?)
            .map_err(StoreError::corrupt)?,
        user_id: UserId::parse(&column::<String>(row, "user_id")?).map_err(StoreError::corrupt)?,
        bank_id: BankId::parse(&column::<String>(row, "bank_id")?).map_err(StoreError::corrupt)?,
        scheme: PaymentScheme::parse(&scheme).ok_or_else(|| StoreError::corrupt(scheme))?,
        status: PaymentStatus::parse(&status).map_err(StoreError::corrupt)?,
        phase: PaymentPhase::parse(&phase).ok_or_else(|| StoreError::corrupt(phase))?,
        amount: Money::from_minor(column(row, "amount_minor")?, currency)
            .map_err(StoreError::corrupt)?,
        end_to_end_id: column(row, "end_to_end_id")?,
        redirect_uri: column(row, "redirect_uri")?,
        bank_payment_id: column(row, "bank_payment_id")?,
        bank_status: column(row, "bank_status")?,
        status_reason: column(row, "status_reason")?,
        created_at: Timestamp::from_unix_micros(column(row, "created_at")?),
        updated_at: Timestamp::from_unix_micros(column(row, "updated_at")?),
        next_poll_at: optional_timestamp(row, "next_poll_at")?,
        poll_attempts: u32::try_from(column::<i64>(row, "poll_attempts")?)
            .map_err(StoreError::corrupt)?,
    })
}

fn secrets_from_row(row: &AnyRow) -> StoreResult<PaymentSecrets> {
    Ok(PaymentSecrets {
        payment: payment_from_row(row)?,
        details: column(row, "details")?,
        authorize_token_hash: column(row, "authorize_token_hash")?,
        state_hash: column(row, "state_hash")?,
        state_expires_at: optional_timestamp(row, "state_expires_at")?,
        state_spent_at: optional_timestamp(row, "state_spent_at")?,
        session: column(row, "session")?,
    })
}

macro_rules! secrets_select {
    () => {
        concat!(
            "SELECT ",
            payment_columns!(),
            ", details, authorize_token_hash, state_hash, state_expires_at, state_spent_at, \
             session FROM payments"
        )
    };
}

const SECRETS_SQL: &str = concat!(secrets_select!(), " WHERE id = $1");

/// `$1, $2, …` for `n` values of an `IN` list.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn status_change_from_row(row: &AnyRow) -> StoreResult<StatusChange> {
    let status: String = column(row, "status")?;
    Ok(StatusChange {
        status: PaymentStatus::parse(&status).map_err(StoreError::corrupt)?,
        bank_status: column(row, "bank_status")?,
        reason: column(row, "reason")?,
        at: Timestamp::from_unix_micros(column(row, "at")?),
    })
}

async fn secrets_in(tx: &mut Tx<'_>, id: &PaymentId) -> StoreResult<PaymentSecrets> {
    tx.row(sqlx::query(SECRETS_SQL).bind(id.as_str()), secrets_from_row)
        .await
}

async fn append_history(
    tx: &mut Tx<'_>,
    id: &PaymentId,
    status: PaymentStatus,
    bank_status: Option<&str>,
    reason: Option<&str>,
    at: Timestamp,
) -> StoreResult<()> {
    let next: i64 = tx.scalar(sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM payment_status_history WHERE payment_id = $1",
    )
    .bind(id.as_str())).await?;
    tx.execute(sqlx::query("INSERT INTO payment_status_history (payment_id, seq, status, bank_status, reason, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id.as_str())
        .bind(next)
        .bind(status.as_str())
        .bind(bank_status)
        .bind(reason)
        .bind(at.unix_micros())).await.map(drop)
}

/// Applies a checked step to the payment read as `current` in `tx`; the payment as it is then.
async fn advance_in(
    tx: &mut Tx<'_>,
    current: &PaymentSecrets,
    change: &PaymentChange,
) -> StoreResult<PaymentSecrets> {
    let p = &current.payment;
    let id = &p.id;
    if !change.from.contains(&p.phase) {
        return Err(StoreError::state_refused(format_args!(
            "payment is {}",
            p.phase.as_str()
        )));
    }
    let (status, bank_status, reason, record) = match &change.status {
        None => (
            p.status,
            p.bank_status.clone(),
            p.status_reason.clone(),
            false,
        ),
        Some((next, verbatim)) => {
            let status = if *next == p.status {
                *next
            } else {
                p.status.apply(*next).map_err(StoreError::state_refused)?
            };
            let bank_status = verbatim.clone().or_else(|| p.bank_status.clone());
            // A reason belongs to the status it came with: a new status without one clears it.
            let reason = change.reason.clone().or_else(|| {
                (status == p.status)
                    .then(|| p.status_reason.clone())
                    .flatten()
            });
            let record =
                status != p.status || bank_status != p.bank_status || reason != p.status_reason;
            (status, bank_status, reason, record)
        }
    };
    let (state_hash, state_expires, state_spent) = match &change.state {
        None => (
            current.state_hash.clone(),
            current.state_expires_at,
            current.state_spent_at,
        ),
        Some(None) => (None, None, None),
        Some(Some((hash, until))) => (Some(hash.clone()), Some(*until), None),
    };
    let next_poll = match change.next_poll_at {
        None => p.next_poll_at,
        Some(next) => next,
    };
    tx.execute(
        sqlx::query(
            "UPDATE payments SET phase = $2, status = $3, bank_status = $4, \
         session = COALESCE($5, session), bank_payment_id = COALESCE($6, bank_payment_id), \
         state_hash = $7, state_expires_at = $8, next_poll_at = $9, poll_attempts = $10, \
         updated_at = $11, state_spent_at = $12, status_reason = $13, \
         details = COALESCE($14, details) WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(change.phase.as_str())
        .bind(status.as_str())
        .bind(bank_status.as_deref())
        .bind(change.session.as_deref())
        .bind(change.bank_payment_id.as_deref())
        .bind(state_hash.as_deref())
        .bind(state_expires.map(Timestamp::unix_micros))
        .bind(next_poll.map(Timestamp::unix_micros))
        .bind(i64::from(change.poll_attempts.unwrap_or(p.poll_attempts)))
        .bind(change.at.unix_micros())
        .bind(state_spent.map(Timestamp::unix_micros))
        .bind(reason.as_deref())
        .bind(change.details.as_deref()),
    )
    .await?;
    if record {
        append_history(
            tx,
            id,
            status,
            bank_status.as_deref(),
            reason.as_deref(),
            change.at,
        )
        .await?;
    }
    if let Some(event) = &change.event {
        insert_event(tx, event).await?;
    }
    secrets_in(tx, id).await
}

#[async_trait]
impl PaymentStore for SqlCell {
    async fn create_payment(&self, new: &NewPayment) -> StoreResult<Payment> {
        let p = &new.payment;
        self.ensure_home("payment", p.id.region())?;
        self.db
            .write("create_payment", |tx| {
                Box::pin(async move {
                    super::fences::guard(tx, p.tenant_id.as_str(), Some(p.user_id.as_str()))
                        .await?;
                    if let Ok(existing) = secrets_in(tx, &p.id).await {
                        return Ok(existing.payment);
                    }
                    super::users::require_user(tx, &p.tenant_id, &p.user_id).await?;
                    tx.execute(sqlx::query(
                "INSERT INTO payments (id, tenant_id, user_id, bank_id, scheme, status, phase, \
                 amount_minor, currency, end_to_end_id, redirect_uri, details, \
                 authorize_token_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
            )
            .bind(p.id.as_str())
            .bind(p.tenant_id.as_str())
            .bind(p.user_id.as_str())
            .bind(p.bank_id.as_str())
            .bind(p.scheme.as_str())
            .bind(p.status.as_str())
            .bind(p.phase.as_str())
            .bind(p.amount.minor_units())
            .bind(p.amount.currency().code())
            .bind(p.end_to_end_id.as_str())
            .bind(p.redirect_uri.as_str())
            .bind(new.details.as_str())
            .bind(new.authorize_token_hash.as_str())
            .bind(p.created_at.unix_micros())).await?;
                    append_history(tx, &p.id, p.status, None, None, p.created_at).await?;
                    let created = secrets_in(tx, &p.id).await?.payment;

                    Ok(created)
                })
            })
            .await
    }

    async fn payment(&self, tenant: &TenantId, id: &PaymentId) -> StoreResult<Payment> {
        let sql = concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE tenant_id = $1 AND id = $2"
        );
        self.db
            .row(
                || sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()),
                payment_from_row,
            )
            .await
    }

    async fn payment_secrets(&self, id: &PaymentId) -> StoreResult<PaymentSecrets> {
        self.db
            .row(
                || sqlx::query(SECRETS_SQL).bind(id.as_str()),
                secrets_from_row,
            )
            .await
    }

    async fn list_payments(
        &self,
        tenant: &TenantId,
        filter: &ListFilter<PaymentStatus>,
        after: Option<&PageKey>,
        limit: usize,
    ) -> StoreResult<Page<Payment>> {
        let mut q = Filtered::new(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE tenant_id = "
        ));
        let p = q.arg(Arg::Text(tenant.to_string()));
        q.push(&p);
        q.push(concat!(" AND ", listed!("payments")));
        q.list_filter(filter, filter.status.map(PaymentStatus::as_str));
        q.page_by_creation("", after, limit);
        q.fetch_page(&self.db, limit, payment_from_row, |p| PageKey {
            sort: p.created_at.unix_micros(),
            id: p.id.to_string(),
        })
        .await
    }

    async fn status_history(&self, id: &PaymentId) -> StoreResult<Vec<StatusChange>> {
        let rows = self.db.fetch_all(|| sqlx::query("SELECT status, bank_status, reason, at FROM payment_status_history WHERE payment_id = $1 ORDER BY seq")
            .bind(id.as_str()))
            .await?;
        rows.iter().map(status_change_from_row).collect()
    }

    async fn payments_secrets(&self, ids: &[PaymentId]) -> StoreResult<Vec<PaymentSecrets>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{} WHERE id IN ({})",
            secrets_select!(),
            placeholders(ids.len())
        );
        let rows = self
            .db
            .fetch_all(|| {
                ids.iter()
                    .fold(sqlx::query(AssertSqlSafe(sql.as_str())), |q, id| {
                        q.bind(id.as_str())
                    })
            })
            .await?;
        rows.iter().map(secrets_from_row).collect()
    }

    async fn status_histories(
        &self,
        ids: &[PaymentId],
    ) -> StoreResult<Vec<(PaymentId, StatusChange)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT payment_id, status, bank_status, reason, at FROM payment_status_history \
             WHERE payment_id IN ({}) ORDER BY payment_id, seq",
            placeholders(ids.len())
        );
        let rows = self
            .db
            .fetch_all(|| {
                ids.iter()
                    .fold(sqlx::query(AssertSqlSafe(sql.as_str())), |q, id| {
                        q.bind(id.as_str())
                    })
            })
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = column(row, "payment_id")?;
                let id = PaymentId::parse(&id).map_err(StoreError::corrupt)?;
                Ok((id, status_change_from_row(row)?))
            })
            .collect()
    }

    async fn advance_payment(
        &self,
        id: &PaymentId,
        change: &PaymentChange,
    ) -> StoreResult<Payment> {
        self.ensure_home("payment", id.region())?;
        self.db
            .write("advance_payment", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Payment, id.as_str()).await?;
                    let current = secrets_in(tx, id).await?;
                    let updated = advance_in(tx, &current, change).await?;

                    Ok(updated.payment)
                })
            })
            .await
    }

    async fn take_payment_state(
        &self,
        id: &PaymentId,
        state_hash: &str,
        now: Timestamp,
        change: &PaymentChange,
        lease: (&str, Timestamp),
    ) -> StoreResult<PaymentSecrets> {
        self.ensure_home("payment", id.region())?;
        let (owner, until) = lease;
        self.db
            .write("take_payment_state", |tx| {
                Box::pin(async move {
                    super::fences::guard_row(tx, super::fences::Row::Payment, id.as_str()).await?;
                    let current = secrets_in(tx, id).await?;
                    if !super::state_is_live(
                        current.state_hash.as_deref(),
                        current.state_spent_at,
                        current.state_expires_at,
                        state_hash,
                        now,
                    ) {
                        return Err(StoreError::NotFound);
                    }
                    let leased = tx.execute(sqlx::query(
                "UPDATE payments SET lease_owner = $2, lease_until = $3 WHERE id = $1 \
                 AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $2)",
            )
            .bind(id.as_str())
            .bind(owner)
            .bind(until.unix_micros())
            .bind(now.unix_micros())).await?;
                    if leased != 1 {
                        return Err(StoreError::state_refused("payment is leased"));
                    }
                    // Spent, not cleared: the hash stays to recognise a replay of this callback.
                    let mut current = current;
                    current.state_spent_at = Some(now);
                    let mut change = change.clone();
                    change.state = None;
                    let updated = advance_in(tx, &current, &change).await?;

                    Ok(updated)
                })
            })
            .await
    }

    async fn payments_due(
        &self,
        now: Timestamp,
        stale: Timestamp,
        abandoned: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PaymentId>> {
        let ids: Vec<String> = self
            .db
            .scalars(|| {
                sqlx::query_scalar(concat!(
                    "SELECT id FROM payments WHERE (lease_until IS NULL OR lease_until < $1) AND ( \
               (phase = 'submitted' AND next_poll_at <= $1) \
               OR (phase IN ('initiating', 'submitting') AND updated_at < $2) \
               OR (phase IN ('accepted', 'awaiting_sca') AND updated_at < $3)) AND ",
                    unfenced!("payments"),
                    " ORDER BY updated_at, id LIMIT $4"
                ))
                .bind(now.unix_micros())
                .bind(stale.unix_micros())
                .bind(abandoned.unix_micros())
                .bind(limit_arg(limit))
            })
            .await?;
        ids.iter()
            .map(|raw| PaymentId::parse(raw).map_err(StoreError::corrupt))
            .collect()
    }

    async fn claim_payment(
        &self,
        id: &PaymentId,
        owner: &str,
        until: Timestamp,
        now: Timestamp,
    ) -> StoreResult<bool> {
        lease::PAYMENTS
            .claim(&self.db, id.as_str(), owner, until, now)
            .await
    }

    async fn renew_payment(
        &self,
        id: &PaymentId,
        owner: &str,
        until: Timestamp,
    ) -> StoreResult<bool> {
        lease::PAYMENTS
            .renew(&self.db, id.as_str(), owner, until)
            .await
    }

    async fn release_payment(&self, id: &PaymentId, owner: &str) -> StoreResult<()> {
        lease::PAYMENTS.release(&self.db, id.as_str(), owner).await
    }

    async fn rename_payment_status(&self, from: &str, to: &str, batch: usize) -> StoreResult<u64> {
        // A batch of payments at a time, with their history, in one short transaction; the
        // subqueries bound each statement to the batch (no table-wide UPDATE).
        let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        self.db
            .write("rename_payment_status", |tx| {
                Box::pin(async move {
                    let ids: Vec<String> = tx.scalars(sqlx::query_scalar(
                "SELECT DISTINCT payment_id FROM payment_status_history WHERE status = $1 LIMIT $2",
            )
            .bind(from)
            .bind(limit)).await?;
                    let mut changed = 0;
                    for id in &ids {
                        changed += tx
                            .execute(
                                sqlx::query(
                                    "UPDATE payment_status_history SET status = $2 \
                     WHERE payment_id = $1 AND status = $3",
                                )
                                .bind(id.as_str())
                                .bind(to)
                                .bind(from),
                            )
                            .await?;
                    }
                    let current: Vec<String> = tx
                        .scalars(
                            sqlx::query_scalar(
                                "SELECT id FROM payments WHERE status = $1 LIMIT $2",
                            )
                            .bind(from)
                            .bind(limit),
                        )
                        .await?;
                    for id in &current {
                        changed += tx
                            .execute(
                                sqlx::query(
                                    "UPDATE payments SET status = $2 WHERE id = $1 AND status = $3",
                                )
                                .bind(id.as_str())
                                .bind(to)
                                .bind(from),
                            )
                            .await?;
                    }

                    Ok(changed)
                })
            })
            .await
    }
}
