//! The operations of `kontor-bench payments`, each a closure the load generator calls once per
//! request: `POST /v1/payments` alone; initiation through the hub including the bank call
//! (the POST, the hub's payment page, and its `pay` form, which creates the payment at the bank
//! and answers with the redirect to the bank's SCA page); the write transactions a POST runs,
//! directly through sqlx; and the bank's initiation endpoint called directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kontor_domain::time::Timestamp;
use kontor_domain::{PaymentId, Region};
use rand::{Rng, RngCore};
use serde_json::Value;
use sqlx::PgPool;
use url::Url;

use crate::load::Failure;
use crate::sandbox::Customer;
use crate::users::OpFuture;
use kontor_test_support::browser::{Browser, Landing};

/// Never followed: another host.
const TENANT_REDIRECT: &str = "https://tenant.example/paid";

/// What the store runs for a POST, statement for statement (`kontor-store-sql`'s
/// `begin_idempotent`, `create_payment` with `append_history`, and `complete_idempotent`).
const BEGIN_WRITE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const SELECT_KEY: &str = "SELECT request_hash, resource_id, state, locked_until FROM idempotency_keys \
     WHERE tenant_id = $1 AND idempotency_key = $2";
const INSERT_KEY: &str = "INSERT INTO idempotency_keys (tenant_id, idempotency_key, request_hash, \
     resource_id, state, locked_until, created_at) VALUES ($1, $2, $3, $4, 'in_flight', $5, $6)";
const SELECT_PAYMENT: &str = "SELECT id, tenant_id, user_id, bank_id, scheme, status, phase, \
     amount_minor, currency, end_to_end_id, redirect_uri, bank_payment_id, bank_status, \
     status_reason, created_at, updated_at, next_poll_at, poll_attempts, details, \
     authorize_token_hash, state_hash, state_expires_at, state_spent_at, session FROM payments \
     WHERE id = $1";
const COUNT_OWNER: &str = "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND id = $2";
const INSERT_PAYMENT: &str = "INSERT INTO payments (id, tenant_id, user_id, bank_id, scheme, \
     status, phase, amount_minor, currency, end_to_end_id, redirect_uri, details, \
     authorize_token_hash, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)";
const NEXT_SEQ: &str = "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM payment_status_history \
     WHERE payment_id = $1";
const INSERT_HISTORY: &str = "INSERT INTO payment_status_history (payment_id, seq, status, \
     bank_status, reason, at) VALUES ($1, $2, $3, $4, $5, $6)";
const COMPLETE_KEY: &str = "UPDATE idempotency_keys SET state = 'done', locked_until = NULL, \
     completed_at = $3 WHERE tenant_id = $1 AND idempotency_key = $2";

fn transport_failure(err: &reqwest::Error) -> Failure {
    if err.is_timeout() {
        "HTTP timeout".to_owned()
    } else if err.is_connect() {
        "HTTP connect error".to_owned()
    } else {
        "HTTP transport error".to_owned()
    }
}

async fn status_failure(response: reqwest::Response) -> Failure {
    let status = response.status().as_u16();
    let code = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("HTTP {status} {code}").trim_end().to_owned()
}

fn sql_failure(err: &sqlx::Error) -> Failure {
    match err {
        sqlx::Error::Database(db) => format!("SQLSTATE {}", db.code().as_deref().unwrap_or("?")),
        sqlx::Error::PoolTimedOut => "pool timed out".to_owned(),
        other => format!(
            "sqlx: {}",
            other.to_string().chars().take(60).collect::<String>()
        ),
    }
}

/// What every API operation needs.
#[derive(Debug, Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub hub_base: Arc<String>,
    pub bearer: Arc<String>,
    pub customer: Arc<Customer>,
    pub user_id: Arc<String>,
    /// The sandbox's root URL: where the `pay` form must send the user.
    pub bank_root: Arc<String>,
}

/// `POST /v1/payments` with a fresh Idempotency-Key; returns the authorisation URL.
async fn create(api: &Api, key: String) -> Result<Url, Failure> {
    let body = api
        .customer
        .payment_body(&api.user_id, "1.00", TENANT_REDIRECT);
    let response = api
        .http
        .post(format!("{}/v1/payments", api.hub_base))
        .bearer_auth(api.bearer.as_str())
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .map_err(|e| transport_failure(&e))?;
    if response.status() != reqwest::StatusCode::CREATED {
        return Err(status_failure(response).await);
    }
    let created: Value = response.json().await.map_err(|e| transport_failure(&e))?;
    created["authorize_url"]
        .as_str()
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| "a 201 without an authorize_url".to_owned())
}

pub fn api_create(
    api: &Api,
    sequence: &Arc<AtomicU64>,
    run: &Arc<String>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let api = api.clone();
    let sequence = Arc::clone(sequence);
    let run = Arc::clone(run);
    move || {
        let key = format!("bench-{run}-{}", sequence.fetch_add(1, Ordering::Relaxed));
        let api = api.clone();
        Box::pin(async move { create(&api, key).await.map(drop) })
    }
}

/// The POST, the hub's payment page, and its `pay` form: ends at the 303 to the bank.
pub fn api_initiate(
    api: &Api,
    sequence: &Arc<AtomicU64>,
    run: &Arc<String>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let api = api.clone();
    let sequence = Arc::clone(sequence);
    let run = Arc::clone(run);
    move || {
        let key = format!("bench-{run}-{}", sequence.fetch_add(1, Ordering::Relaxed));
        let api = api.clone();
        Box::pin(async move {
            let url = create(&api, key).await?;
            // Only the hub's redirects are followed: the bank's SCA page is where this stops.
            let browser = Browser::with_client(api.http.clone(), &[api.hub_base.as_str()]);
            let page = match browser
                .try_open(&url)
                .await
                .map_err(|f| format!("page: {:?}", f.kind))?
            {
                Landing::Page(page) if page.status == 200 => page,
                Landing::Page(page) => return Err(format!("page: HTTP {}", page.status)),
                Landing::Left(_) => return Err("page: redirected away".to_owned()),
            };
            let form = page
                .form("pay")
                .ok_or_else(|| "page: no pay form".to_owned())?;
            match browser
                .try_submit(&form)
                .await
                .map_err(|f| format!("pay: {:?}", f.kind))?
            {
                Landing::Left(to) if to.as_str().starts_with(api.bank_root.as_str()) => Ok(()),
                Landing::Left(to) => Err(format!("pay: sent to {}", to.host_str().unwrap_or("?"))),
                Landing::Page(page) => Err(format!("pay: HTTP {}", page.status)),
            }
        })
    }
}

/// The ids and values the SQL baseline writes.
#[derive(Debug, Clone)]
pub struct SqlTarget {
    /// The cell's region (the payments' ids carry it).
    pub region: Region,
    pub control: PgPool,
    pub cell: PgPool,
    pub tenant_id: Arc<String>,
    pub user_id: Arc<String>,
    pub bank_id: Arc<String>,
    pub currency: Arc<String>,
    /// Serialization failures retried, per transaction (`claim`, `insert`, `complete`).
    pub retries: Arc<[AtomicU64; 3]>,
}

/// Runs one transaction again on a serialization failure (SQLSTATE 40001), as the store's
/// `retry_serializable` does: at most 10 attempts, full-jitter backoff from 2 ms doubling up to
/// 250 ms.
async fn retrying<F, Fut>(retries: &AtomicU64, mut attempt: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let mut number = 0u32;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(db))
                if db.code().as_deref() == Some("40001") && number < 9 =>
            {
                retries.fetch_add(1, Ordering::Relaxed);
                let cap_ms = 2u64.saturating_mul(1 << number.min(20)).min(250);
                let delay = rand::rng().random_range(0..=cap_ms * 1000);
                tokio::time::sleep(std::time::Duration::from_micros(delay)).await;
                number += 1;
            }
            Err(err) => return Err(sql_failure(&err)),
            Ok(()) => return Ok(()),
        }
    }
}

/// Claims the key (control database).
async fn claim(t: &SqlTarget, key: &str, id: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = t.control.begin_with(BEGIN_WRITE).await?;
    let existing = sqlx::query(SELECT_KEY)
        .bind(t.tenant_id.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
    if existing.is_some() {
        return Err(sqlx::Error::Protocol("the key exists already".to_owned()));
    }
    sqlx::query(INSERT_KEY)
        .bind(t.tenant_id.as_str())
        .bind(key)
        .bind(random_text(43))
        .bind(id)
        .bind(now + 30_000_000)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Inserts the payment and its first status (the user's cell).
async fn insert(t: &SqlTarget, id: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = t.cell.begin_with(BEGIN_WRITE).await?;
    if sqlx::query(SELECT_PAYMENT)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(sqlx::Error::Protocol(
            "the payment exists already".to_owned(),
        ));
    }
    let owner: i64 = sqlx::query_scalar(COUNT_OWNER)
        .bind(t.tenant_id.as_str())
        .bind(t.user_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if owner == 0 {
        return Err(sqlx::Error::RowNotFound);
    }
    sqlx::query(INSERT_PAYMENT)
        .bind(id)
        .bind(t.tenant_id.as_str())
        .bind(t.user_id.as_str())
        .bind(t.bank_id.as_str())
        .bind("sepa")
        .bind("pending")
        .bind("accepted")
        .bind(100_i64)
        .bind(t.currency.as_str())
        .bind(id.trim_start_matches("pay_de_"))
        .bind(TENANT_REDIRECT)
        // About the size of the sealed details the hub stores.
        .bind(random_text(420))
        .bind(random_text(43))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let seq: i64 = sqlx::query_scalar(NEXT_SEQ)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(INSERT_HISTORY)
        .bind(id)
        .bind(seq)
        .bind("pending")
        .bind(Option::<String>::None)
        .bind(Option::<String>::None)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(SELECT_PAYMENT)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await
}

/// Marks the key done (control database).
async fn complete(t: &SqlTarget, key: &str) -> Result<(), sqlx::Error> {
    let mut tx = t.control.begin_with(BEGIN_WRITE).await?;
    sqlx::query(COMPLETE_KEY)
        .bind(t.tenant_id.as_str())
        .bind(key)
        .bind(Timestamp::now().unix_micros())
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The three write transactions of a POST, each retried on serialization failures as the hub
/// retries them: claim the key (control), insert the payment and its first status (the user's
/// cell), complete the key (control).
pub fn sql_accept(
    target: &SqlTarget,
    sequence: &Arc<AtomicU64>,
    run: &Arc<String>,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let target = target.clone();
    let sequence = Arc::clone(sequence);
    let run = Arc::clone(run);
    move || {
        let key = format!("sql-{run}-{}", sequence.fetch_add(1, Ordering::Relaxed));
        let t = target.clone();
        Box::pin(async move {
            let id = PaymentId::generate(&t.region).to_string();
            let now = Timestamp::now().unix_micros();
            retrying(&t.retries[0], || claim(&t, &key, &id, now)).await?;
            retrying(&t.retries[1], || insert(&t, &id, now)).await?;
            retrying(&t.retries[2], || complete(&t, &key)).await
        })
    }
}

/// The bank's initiation endpoint called directly, as the hub's Berlin Group connector calls
/// it: `POST {bank}/v1/payments/sepa-credit-transfers` with a fresh `X-Request-ID`.
pub fn bank_initiate(
    http: &reqwest::Client,
    bank_base: &str,
    debtor_iban: &str,
) -> impl Fn() -> OpFuture + Send + Sync + 'static {
    let http = http.clone();
    let url = Arc::new(format!("{bank_base}/v1/payments/sepa-credit-transfers"));
    let debtor = Arc::new(debtor_iban.to_owned());
    move || {
        let http = http.clone();
        let url = Arc::clone(&url);
        let body = serde_json::json!({
            "endToEndIdentification": random_text(26),
            "debtorAccount": {"iban": debtor.as_str()},
            "instructedAmount": {"currency": "EUR", "amount": "1.00"},
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "creditorName": "Hausverwaltung Müller",
            "remittanceInformationUnstructured": "kontor-bench",
        });
        Box::pin(async move {
            let state = random_text(40);
            let ok = format!("http://127.0.0.1:1/pay/callback?state={state}");
            let response = http
                .post(url.as_str())
                .header("accept", "application/json")
                .header("x-request-id", uuid_v4())
                .header("psu-ip-address", "127.0.0.1")
                .header("tpp-redirect-uri", &ok)
                .header("tpp-nok-redirect-uri", format!("{ok}&kontor_nok=nok"))
                .header("tpp-redirect-preferred", "true")
                .json(&body)
                .send()
                .await
                .map_err(|e| transport_failure(&e))?;
            if response.status() != reqwest::StatusCode::CREATED {
                return Err(format!("HTTP {}", response.status().as_u16()));
            }
            let created: Value = response.json().await.map_err(|e| transport_failure(&e))?;
            if created["_links"]["scaRedirect"]["href"].is_string() {
                Ok(())
            } else {
                Err("no scaRedirect link".to_owned())
            }
        })
    }
}

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn random_text(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]));
        assert_ne!(uuid_v4(), id);
    }
}
