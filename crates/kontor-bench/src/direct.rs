//! The baselines' connections for reads: PostgreSQL connections of their own, each used by one
//! statement at a time and put back as it is, as `pgbench` uses its clients' connections.
//! sqlx's pool would ping every connection it takes back (a second round trip per statement),
//! which the hub's reads do not pay either (its typed read pool, `kontor-store-sql`'s
//! `conns.rs`).

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

#[derive(Clone)]
pub struct Direct {
    options: Arc<PgConnectOptions>,
    resting: Arc<Mutex<Vec<PgConnection>>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").finish_non_exhaustive()
    }
}

impl Direct {
    /// Connects `count` connections to `url` up front, so that no measured statement connects.
    pub async fn connect(url: &str, count: usize) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let mut resting = Vec::with_capacity(count);
        for _ in 0..count {
            resting.push(options.connect().await?);
        }
        Ok(Self {
            options: Arc::new(options),
            resting: Arc::new(Mutex::new(resting)),
        })
    }

    /// Runs `statement` on a resting connection (a new one when none rests), and puts the
    /// connection back when it answered.
    pub async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let resting = self.resting.lock().ok().and_then(|mut r| r.pop());
        let mut conn = match resting {
            Some(conn) => conn,
            None => PgConnection::connect_with(&self.options).await?,
        };
        let answer = statement(&mut conn).await;
        if answer.is_ok()
            && let Ok(mut resting) = self.resting.lock()
        {
            resting.push(conn);
        }
        answer
    }

    pub async fn close(&self) {
        let resting = match self.resting.lock() {
            Ok(mut resting) => std::mem::take(&mut *resting),
            Err(_) => Vec::new(),
        };
        for conn in resting {
            let _ = conn.close().await;
        }
    }
}
