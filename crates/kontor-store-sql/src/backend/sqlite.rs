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
use sqlx::pool::PoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Database, Executor};

pub const BACKEND: &str = "sqlite";

pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How a queue's own transactions begin. SQLite has one writer at a time, and `BEGIN IMMEDIATE`
/// takes the write lock before anything is read: no two claims overlap, which is what
/// `FOR UPDATE SKIP LOCKED` gives on PostgreSQL.
/// A move's final pass: a deferred transaction, one snapshot in WAL mode without the write lock
/// (writers are serialized by that lock and each reads the fence under it).
pub const BEGIN_SNAPSHOT: &str = "BEGIN";

pub const BEGIN_QUEUE: &str = "BEGIN IMMEDIATE";

/// SQLite has no row locks to skip; see [`BEGIN_QUEUE`].
pub const SKIP_LOCKED: &str = "";

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CANTOPEN: i64 = 14;

pub fn is_url(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// Checks the URL, creates the file's folder, and makes sure a missing file is created. What
/// this creates only its owner may read (folders 0700, the database 0600): SQLite would create
/// the file with the process's umask, typically world-readable, and gives the `-wal` and `-shm`
/// files the database file's mode.
pub fn prepare_url(url: &str) -> Result<String, String> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| e.to_string())?;
    let path = options.get_filename();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if url.contains("mode=") {
        // The caller chose how to open it (read-only, say): create nothing.
        return Ok(url.to_owned());
    }
    create_private_file(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    if url.contains('?') {
        Ok(format!("{url}&mode=rwc"))
    } else {
        Ok(format!("{url}?mode=rwc"))
    }
}

/// Creates `dir` and its missing parents, readable by the owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates an empty database file readable by the owner only, unless it exists.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// The database file a URL names.
pub fn file_of(url: &str) -> Option<std::path::PathBuf> {
    SqliteConnectOptions::from_str(url)
        .ok()
        .map(|o| Path::new(o.get_filename()).to_path_buf())
}

/// Per-connection settings: WAL for concurrent readers, `synchronous=FULL` so that a committed
/// payment survives a power cut, foreign keys on, `secure_delete` so that deleted rows are
/// overwritten with zeros in the file instead of lingering in free pages (what erasure relies
/// on), and how long a writer waits for the lock before the error the retry helper handles.
pub fn configure(options: AnyPoolOptions, busy_timeout: Duration) -> AnyPoolOptions {
    on_connect(options, busy_timeout)
}

/// [`configure`] for the typed read pool: the same statements on each new connection.
pub fn configure_typed(options: SqlitePoolOptions, busy_timeout: Duration) -> SqlitePoolOptions {
    on_connect(options, busy_timeout)
}

fn on_connect<DB>(options: PoolOptions<DB>, busy_timeout: Duration) -> PoolOptions<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let busy = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
    options.after_connect(move |conn, _meta| {
        let busy = busy.clone();
        Box::pin(async move {
            for pragma in [
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = FULL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA secure_delete = ON",
            ] {
                conn.execute(pragma).await?;
            }
            conn.execute(AssertSqlSafe(busy)).await?;
            Ok(())
        })
    })
}

/// Run after a key was shredded, outside any transaction: copies every page back into the
/// database file (where `secure_delete` has zeroed the deleted row) and truncates the WAL, which
/// still held the key's earlier page images. Answers one row `(busy, log, checkpointed)`; `busy`
/// is 1 when a reader kept it from completing.
pub const AFTER_SHRED: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

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

#[cfg(all(test, unix))]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn what_is_created_only_its_owner_may_read() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("data/nested/control.db");
        let url = format!("sqlite://{}", file.display());
        let prepared = prepare_url(&url).unwrap();
        assert!(prepared.ends_with("?mode=rwc"), "{prepared}");
        assert_eq!(mode(&root.path().join("data")), 0o700);
        assert_eq!(mode(&root.path().join("data/nested")), 0o700);
        assert_eq!(mode(&file), 0o600);

        // An existing file is the operator's: neither replaced nor changed.
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        prepare_url(&url).unwrap();
        assert_eq!(mode(&file), 0o640);

        // A URL that says how to open the file creates none.
        let read_only = root.path().join("data/other.db");
        prepare_url(&format!("sqlite://{}?mode=ro", read_only.display())).unwrap();
        assert!(!read_only.exists());
    }
}
