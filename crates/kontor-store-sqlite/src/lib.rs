//! The SQLite dialect of Kontor's storage: the embedded default, so that a fresh machine runs the
//! hub with nothing else installed. Files are opened in WAL mode with full fsync; every write
//! transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front, which makes SQLite
//! serializable and avoids the lock-upgrade deadlock a deferred transaction would hit.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::any::AnyPoolOptions;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;

pub const BACKEND: &str = "sqlite";

pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How a queue's own transactions begin. SQLite has one writer at a time, and `BEGIN IMMEDIATE`
/// takes the write lock before anything is read: no two claims overlap, which is what
/// `FOR UPDATE SKIP LOCKED` gives on PostgreSQL.
pub const BEGIN_QUEUE: &str = "BEGIN IMMEDIATE";

/// SQLite has no row locks to skip; see [`BEGIN_QUEUE`].
pub const SKIP_LOCKED: &str = "";

pub static CONTROL_MIGRATOR: Migrator = sqlx::migrate!("./migrations/control");
pub static CELL_MIGRATOR: Migrator = sqlx::migrate!("./migrations/cell");

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CANTOPEN: i64 = 14;

pub fn is_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Checks the URL, creates the file's folder, and makes sure a missing file is created.
pub fn prepare_url(url: &str) -> Result<String, String> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let path = options.get_filename();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if url.contains("mode=") {
        Ok(url.to_owned())
    } else if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// The database file a URL names.
pub fn file_of(url: &str) -> Option<std::path::PathBuf> {
    SqliteConnectOptions::from_str(url)
        .ok()
        .map(|o| Path::new(o.get_filename()).to_path_buf())
}

/// Per-connection settings: WAL for concurrent readers, `synchronous=FULL` so that a committed
/// payment survives a power cut, foreign keys on, and how long a writer waits for the lock before
/// the error the retry helper handles.
pub fn configure(options: AnyPoolOptions, busy_timeout: Duration) -> AnyPoolOptions {
    let busy_ms = busy_timeout.as_millis();
    options.after_connect(move |conn, _meta| {
        Box::pin(async move {
            for pragma in [
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
            ] {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            let busy = AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}"));
            sqlx::query(busy).execute(&mut *conn).await?;
            Ok(())
        })
    })
}

fn primary_code(err: &dyn DatabaseError) -> Option<i64> {
    err.code()
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff)
}

/// A writer could not get the lock in time, or a read snapshot went stale: the statement failed,
/// the transaction is rolled back, and a rerun may succeed.
pub fn is_retryable(err: &dyn DatabaseError) -> bool {
    matches!(primary_code(err), Some(SQLITE_BUSY | SQLITE_LOCKED))
}

pub fn is_unavailable(err: &dyn DatabaseError) -> bool {
    matches!(primary_code(err), Some(SQLITE_IOERR | SQLITE_CANTOPEN))
}
