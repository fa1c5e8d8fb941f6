//! The typed reads' own connection pool, for PostgreSQL.
//!
//! sqlx's pool pings every connection it takes back (a `Sync` and the wait for the server's
//! `ReadyForQuery`), whatever its options say: one extra round trip to the database, on both
//! sides, for each statement run outside a transaction — as many as the read itself. A read
//! taken from this pool gives its connection back only when it finished (the connection is then
//! known to be idle and in sync with the server); a read dropped half way (its request was
//! cancelled) drops its connection with it, closing the socket. So no connection is ever handed
//! out in an unknown state, and none needs a ping on the way back.
//!
//! What the pool keeps of sqlx's: a bound on the connections (a semaphore, waited for up to the
//! acquire timeout), a ping before handing out a connection that rested at least
//! `ping_after_idle`, the closing of connections older than `max_lifetime`, the closing of every
//! connection opened before the last loss (see `Losses` in `database.rs`), and new connections
//! tried again while the server refuses them or is starting up (`ConnPool::connect`). Idle
//! connections are reused most recent first, so a quiet pool lets the others age out.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::sync::{Semaphore, SemaphorePermit};

/// A connection at rest in the pool.
struct Resting<C> {
    conn: C,
    opened: Instant,
    since: Instant,
}

/// When a pooled connection is checked, and whether it is still wanted.
pub(crate) struct Checks {
    pub acquire_timeout: Duration,
    pub ping_after_idle: Duration,
    pub max_lifetime: Option<Duration>,
    /// Whether a connection of this age predates the last lost connection.
    pub suspect: Box<dyn Fn(Duration) -> bool + Send + Sync>,
}

pub(crate) struct ConnPool<C: Connection> {
    options: C::Options,
    checks: Checks,
    permits: Semaphore,
    resting: Mutex<Vec<Resting<C>>>,
    closed: AtomicBool,
}

impl<C: Connection> std::fmt::Debug for ConnPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnPool")
            .field("available", &self.permits.available_permits())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A connection handed out: [`Lease::release`] gives it back after a finished statement; dropped
/// otherwise, it closes.
pub(crate) struct Lease<'p, C: Connection> {
    pool: &'p ConnPool<C>,
    conn: C,
    opened: Instant,
    _permit: SemaphorePermit<'p>,
}

impl<C: Connection> Lease<'_, C> {
    pub(crate) fn conn(&mut self) -> &mut C {
        &mut self.conn
    }

    /// Gives the connection back for the next read: only after the statement on it finished,
    /// successfully or with an error the server answered (the connection is in sync either way).
    pub(crate) fn release(self) {
        let Lease {
            pool, conn, opened, ..
        } = self;
        if pool.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut resting) = pool.resting.lock() {
            resting.push(Resting {
                conn,
                opened,
                since: Instant::now(),
            });
        }
    }
}

impl<C: Connection> ConnPool<C> {
    pub(crate) fn new(options: C::Options, size: u32, checks: Checks) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX).max(1);
        Self {
            options,
            checks,
            permits: Semaphore::new(size),
            resting: Mutex::new(Vec::with_capacity(size)),
            closed: AtomicBool::new(false),
        }
    }

    /// A connection: a resting one that passes the checks, else a new one. Waits for a free
    /// place up to the acquire timeout ([`sqlx::Error::PoolTimedOut`]).
    pub(crate) async fn acquire(&self) -> Result<Lease<'_, C>, sqlx::Error> {
        let deadline = Instant::now() + self.checks.acquire_timeout;
        let permit = tokio::time::timeout(self.checks.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let next = self.resting.lock().ok().and_then(|mut r| r.pop());
            let Some(mut resting) = next else {
                let conn = self.connect(deadline).await?;
                return Ok(Lease {
                    pool: self,
                    conn,
                    opened: Instant::now(),
                    _permit: permit,
                });
            };
            let age = resting.opened.elapsed();
            let expired = self.checks.max_lifetime.is_some_and(|max| age >= max);
            if expired || (self.checks.suspect)(age) {
                if expired {
                    let _ = resting.conn.close().await;
                } else {
                    metrics::counter!("kontor_db_connections_dropped_total").increment(1);
                }
                continue;
            }
            if resting.since.elapsed() >= self.checks.ping_after_idle
                && let Err(error) = resting.conn.ping().await
            {
                tracing::info!(%error, "ping on an idle connection failed");
                continue;
            }
            return Ok(Lease {
                pool: self,
                conn: resting.conn,
                opened: resting.opened,
                _permit: permit,
            });
        }
    }

    /// A new connection by `deadline`. A server that refuses connections (restarting) or says it
    /// cannot take one now (starting up, or out of connection slots: SQLSTATE 57P03, 53300) is
    /// tried again, waiting 10 ms, then twice as long each time up to a fifth of the time left —
    /// as sqlx's pool does; any other error is answered at once.
    async fn connect(&self, deadline: Instant) -> Result<C, sqlx::Error> {
        let total = deadline.saturating_duration_since(Instant::now());
        let mut backoff = Duration::from_millis(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(sqlx::Error::PoolTimedOut);
            }
            match tokio::time::timeout(left, C::connect_with(&self.options)).await {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(err)) if is_transient_in_connect(&err) => {}
                Ok(Err(err)) => return Err(err),
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(total / 5);
        }
    }

    /// Refuses new leases and closes the resting connections; leased ones close when dropped.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let resting = match self.resting.lock() {
            Ok(mut resting) => std::mem::take(&mut *resting),
            Err(_) => Vec::new(),
        };
        for r in resting {
            let _ = r.conn.close().await;
        }
    }
}

/// Whether a failed connect is worth another try soon: the server refused the connection (it is
/// restarting), or it answered that it cannot take one now.
fn is_transient_in_connect(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code == "57P03" || code == "53300"),
        _ => false,
    }
}
