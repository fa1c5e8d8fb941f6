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
use crate::tx::{Mode, Tx};

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
    // The next number is found by the insert itself: read and write of the history's index page
    // in one statement. Read first and written later, that page (or, while the table is small,
    // the whole table: a sequential scan) made two steps of unrelated payments a dangerous
    // structure on PostgreSQL, each having read what the other then wrote.
    tx.execute(
        sqlx::query(
            "INSERT INTO payment_status_history (payment_id, seq, status, bank_status, reason, at) \
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM payment_status_history \
             WHERE payment_id = $1",
        )
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(bank_status)
        .bind(reason)
        .bind(at.unix_micros()),
    )
    .await
    .map(drop)
}

/// What a checked step makes of the payment read as `current`: the payment afterwards, and whether
/// the step gets an entry in the status history.
fn stepped(
    current: &PaymentSecrets,
    change: &PaymentChange,
) -> StoreResult<(PaymentSecrets, bool)> {
    let p = &current.payment;
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
    let (state_hash, state_expires_at, state_spent_at) = match &change.state {
        None => (
            current.state_hash.clone(),
            current.state_expires_at,
            current.state_spent_at,
        ),
        Some(None) => (None, None, None),
        Some(Some((hash, until))) => (Some(hash.clone()), Some(*until), None),
    };
    let next = PaymentSecrets {
        payment: Payment {
            phase: change.phase,
            status,
            bank_status,
            status_reason: reason,
            bank_payment_id: change
                .bank_payment_id
                .clone()
                .or_else(|| p.bank_payment_id.clone()),
            next_poll_at: change.next_poll_at.unwrap_or(p.next_poll_at),
            poll_attempts: change.poll_attempts.unwrap_or(p.poll_attempts),
            updated_at: change.at,
            ..p.clone()
        },
        details: change
            .details
            .clone()
            .unwrap_or_else(|| current.details.clone()),
        authorize_token_hash: current.authorize_token_hash.clone(),
        state_hash,
        state_expires_at,
        state_spent_at,
        session: change.session.clone().or_else(|| current.session.clone()),
    };
    Ok((next, record))
}

/// A column equal to a value, NULL equal to NULL (portable: no `IS NOT DISTINCT FROM`).
macro_rules! same {
    ($column:literal, $n:literal) => {
        concat!(
            "(",
            $column,
            " = $",
            $n,
            " OR (",
            $column,
            " IS NULL AND $",
            $n,
            " IS NULL))"
        )
    };
}

/// Writes the payment `next` over `current` in one statement, if the row is still `current`
/// (every column a step reads or keeps), and, with `lease`, if no one else holds it; whether it
/// was written. A step runs this first, at READ COMMITTED on PostgreSQL ([`Mode::Queue`]): the
/// statement locks the row, and PostgreSQL checks the condition again against the row as the
/// step that held the lock left it, so that a step computed from a stale read changes nothing
/// and is read and computed again. Under SERIALIZABLE a step read the payment's primary-key page
/// and then wrote to it (a step changes indexed columns, so PostgreSQL adds index entries), as
/// did every step and creation beside it on that page — on a small table, all of them — and
/// PostgreSQL aborted one of each such pair, or the pivot of each chain.
async fn write_step(
    tx: &mut Tx<'_>,
    current: &PaymentSecrets,
    next: &PaymentSecrets,
    lease: Option<(&str, Timestamp, Timestamp)>,
) -> StoreResult<bool> {
    const SET: &str = "UPDATE payments SET phase = $2, status = $3, bank_status = $4, \
         session = $5, bank_payment_id = $6, state_hash = $7, state_expires_at = $8, \
         next_poll_at = $9, poll_attempts = $10, updated_at = $11, state_spent_at = $12, \
         status_reason = $13, details = $14";
    // The row is found by its id alone: the comparisons sit in a CASE, which no index can
    // answer, so that the planner never reads the phase's or the poll time's index page for it
    // (pages every step writes to: on a small table it chose them).
    const WHERE: &str = concat!(
        " WHERE id = $1 AND CASE WHEN phase = $15 AND status = $16 AND updated_at = $17 \
         AND poll_attempts = $18 AND details = $19 AND ",
        same!("bank_status", "20"),
        " AND ",
        same!("session", "21"),
        " AND ",
        same!("bank_payment_id", "22"),
        " AND ",
        same!("state_hash", "23"),
        " AND ",
        same!("state_expires_at", "24"),
        " AND ",
        same!("state_spent_at", "25"),
        " AND ",
        same!("next_poll_at", "26"),
        " AND ",
        same!("status_reason", "27"),
        " THEN 1 ELSE 0 END = 1"
    );
    const LEASE: &str = ", lease_owner = $28, lease_until = $29";
    const LEASE_FREE: &str = " AND (lease_until IS NULL OR lease_until < $30 OR lease_owner = $28)";
    let sql = match lease {
        None => format!("{SET}{WHERE}"),
        Some(_) => format!("{SET}{LEASE}{WHERE}{LEASE_FREE}"),
    };
    let (c, n) = (&current.payment, &next.payment);
    let micros = |t: Option<Timestamp>| t.map(Timestamp::unix_micros);
    let mut q = sqlx::query(AssertSqlSafe(sql))
        .bind(c.id.as_str())
        .bind(n.phase.as_str())
        .bind(n.status.as_str())
        .bind(n.bank_status.clone())
        .bind(next.session.clone())
        .bind(n.bank_payment_id.clone())
        .bind(next.state_hash.clone())
        .bind(micros(next.state_expires_at))
        .bind(micros(n.next_poll_at))
        .bind(i64::from(n.poll_attempts))
        .bind(n.updated_at.unix_micros())
        .bind(micros(next.state_spent_at))
        .bind(n.status_reason.clone())
        .bind(next.details.clone())
        .bind(c.phase.as_str())
        .bind(c.status.as_str())
        .bind(c.updated_at.unix_micros())
        .bind(i64::from(c.poll_attempts))
        .bind(current.details.clone())
        .bind(c.bank_status.clone())
        .bind(current.session.clone())
        .bind(c.bank_payment_id.clone())
        .bind(current.state_hash.clone())
        .bind(micros(current.state_expires_at))
        .bind(micros(current.state_spent_at))
        .bind(micros(c.next_poll_at))
        .bind(c.status_reason.clone());
    if let Some((owner, until, now)) = lease {
        q = q
            .bind(owner.to_owned())
            .bind(until.unix_micros())
            .bind(now.unix_micros());
    }
    Ok(tx.execute(q).await? == 1)
}

/// Records a step written by [`write_step`]: its history entry and its event.
impl SqlCell {
    /// One step's transaction: the compare-and-set of the row (false when the row changed since
    /// `current` was read), the move fence read after the row's lock (as `moves::fence` expects of
    /// a READ COMMITTED step), then the history.
    async fn commit_step(
        &self,
        op: &'static str,
        current: &PaymentSecrets,
        next: &PaymentSecrets,
        lease: Option<(&str, Timestamp, Timestamp)>,
        record: bool,
        change: &PaymentChange,
    ) -> StoreResult<bool> {
        self.db
            .transaction(Mode::Queue, op, |tx| {
                Box::pin(async move {
                    if !write_step(tx, current, next, lease).await? {
                        return Ok(false);
                    }
                    let id = current.payment.id.as_str();
                    super::fences::guard_row(tx, super::fences::Row::Payment, id).await?;
                    record_step(tx, next, record, change).await?;
                    Ok(true)
                })
            })
            .await
    }
}

async fn record_step(
    tx: &mut Tx<'_>,
    next: &PaymentSecrets,
    record: bool,
    change: &PaymentChange,
) -> StoreResult<()> {
    let n = &next.payment;
    if record {
        append_history(
            tx,
            &n.id,
            n.status,
            n.bank_status.as_deref(),
            n.status_reason.as_deref(),
            change.at,
        )
        .await?;
    }
    if let Some(event) = &change.event {
        insert_event(tx, event).await?;
    }
    Ok(())
}

/// How often a step reads the payment again when it changed between the read and the write.
const STEP_READS: u32 = 10;

/// A step's write found the payment changed since it was read: counted like a serialization
/// retry (`kontor_db_retries_total`), or given up on after [`STEP_READS`] reads.
fn changed_under(op: &'static str, reads: u32) -> StoreResult<()> {
    if reads >= STEP_READS {
        metrics::counter!("kontor_db_retries_exhausted_total", "op" => op).increment(1);
        tracing::warn!(
            db.op = op,
            attempts = reads,
            "giving up on a conflicting transaction"
        );
        return Err(StoreError::Contention { attempts: reads });
    }
    metrics::counter!("kontor_db_retries_total", "op" => op).increment(1);
    tracing::debug!(db.op = op, attempt = reads, "retrying transaction");
    Ok(())
}

impl SqlCell {
    /// Whether someone other than `owner` holds the payment's lease at `now`.
    async fn payment_leased_by_another(
        &self,
        id: &PaymentId,
        owner: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let held: Option<i64> = self
            .db
            .optional_scalar(|| {
                sqlx::query_scalar(
                    "SELECT CAST(1 AS BIGINT) FROM payments WHERE id = $1 \
                     AND lease_until >= $2 AND (lease_owner IS NULL OR lease_owner <> $3)",
                )
                .bind(id.as_str())
                .bind(now.unix_micros())
                .bind(owner)
            })
            .await?;
        Ok(held.is_some())
    }
}

#[async_trait]
impl PaymentStore for SqlCell {
    async fn create_payment(&self, new: &NewPayment) -> StoreResult<Payment> {
        let p = &new.payment;
        self.ensure_home("payment", p.id.region())?;
        // Writes only, and nothing read back: a creation that first looked its id up (or read the
        // history's next number, or read the row it wrote) held a predicate lock on the page of
        // the primary key it then wrote to — while the table is small, on the whole table — and
        // so did every creation and step beside it: on PostgreSQL each such pair read what the
        // other wrote, and one of them was aborted, over and over under a few payments a second.
        // The insert is idempotent on the id; only a retried creation reads the existing row.
        self.db
            .write("create_payment", |tx| {
                Box::pin(async move {
                    super::fences::guard(tx, p.tenant_id.as_str(), Some(p.user_id.as_str()))
                        .await?;
                    super::users::require_user(tx, &p.tenant_id, &p.user_id).await?;
                    let inserted = tx.execute(sqlx::query(
                "INSERT INTO payments (id, tenant_id, user_id, bank_id, scheme, status, phase, \
                 amount_minor, currency, end_to_end_id, redirect_uri, details, \
                 authorize_token_hash, created_at, updated_at, bank_payment_id, bank_status, \
                 status_reason, next_poll_at, poll_attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20) ON CONFLICT (id) DO NOTHING",
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
            .bind(p.created_at.unix_micros())
            .bind(p.updated_at.unix_micros())
            .bind(p.bank_payment_id.as_deref())
            .bind(p.bank_status.as_deref())
            .bind(p.status_reason.as_deref())
            .bind(p.next_poll_at.map(Timestamp::unix_micros))
            .bind(i64::from(p.poll_attempts))).await?;
                    if inserted == 0 {
                        // Created before (a retry): the payment as it is now, its owner checked.
                        let existing = secrets_in(tx, &p.id).await?.payment;
                        if existing.tenant_id != p.tenant_id || existing.user_id != p.user_id {
                            return Err(StoreError::NotFound);
                        }
                        return Ok(existing);
                    }
                    tx.execute(
                        sqlx::query(
                            "INSERT INTO payment_status_history (payment_id, seq, status, at) \
                         VALUES ($1, 1, $2, $3)",
                        )
                        .bind(p.id.as_str())
                        .bind(p.status.as_str())
                        .bind(p.created_at.unix_micros()),
                    )
                    .await?;

                    Ok(p.clone())
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
        // Read, then written only if unchanged (see `write_step`).
        let mut reads = 0;
        loop {
            reads += 1;
            let current = self.payment_secrets(id).await?;
            let (next, record) = stepped(&current, change)?;
            let (current, next) = (&current, &next);
            let written = self
                .commit_step("advance_payment", current, next, None, record, change)
                .await?;
            if written {
                return Ok(next.payment.clone());
            }
            changed_under("advance_payment", reads)?;
        }
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
        // Spent, not cleared: the hash stays to recognise a replay of this callback.
        let mut change = change.clone();
        change.state = None;
        let change = &change;
        let mut reads = 0;
        loop {
            reads += 1;
            let mut current = self.payment_secrets(id).await?;
            if !super::state_is_live(
                current.state_hash.as_deref(),
                current.state_spent_at,
                current.state_expires_at,
                state_hash,
                now,
            ) {
                return Err(StoreError::NotFound);
            }
            let read = current.clone();
            current.state_spent_at = Some(now);
            let (next, record) = stepped(&current, change)?;
            let (read, next) = (&read, &next);
            let lease = Some((owner, until, now));
            let written = self
                .commit_step("take_payment_state", read, next, lease, record, change)
                .await?;
            if written {
                return Ok(next.clone());
            }
            if self.payment_leased_by_another(id, owner, now).await? {
                return Err(StoreError::state_refused("payment is leased"));
            }
            changed_under("take_payment_state", reads)?;
        }
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
