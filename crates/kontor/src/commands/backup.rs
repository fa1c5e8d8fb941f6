//! `kontor backup` and `kontor restore`: every database of a SQLite deployment in one file.
//!
//! The file is a gzip-compressed tar archive. Its first member is `manifest.json`; then comes one
//! copy of each database, made online with `VACUUM INTO`, which reads the database in one read
//! transaction: the copy is consistent, and the hub keeps writing meanwhile. The manifest names
//! each database, its file, size and SHA-256, and the number of rows in each of its tables.
//!
//! A restore reads and checks the whole archive (format, names, sizes, checksums, SQLite's own
//! integrity check, the row counts) in a staging folder before it touches the data directory,
//! and refuses a directory that holds anything unless told `--force`.
//!
//! An archive holds either the data (the control database and every cell) or, with
//! `--key-stores`, the regions' key stores (the users' wrapped data keys), never both: the key
//! stores' backups are kept briefly and apart, so that an erased user's key is gone from every
//! backup a few days after the erasure, while the data's backups, which no longer open for that
//! user, are kept for as long as the operator needs. Key-encryption keys are never in an archive.
//!
//! A restore carries the erasure ledger forward: the entries of the control database it
//! replaces (and of `--ledger-from`) are kept, and once every database is in place the ledger is
//! replayed, so that no restore brings back a user erased after the backup was made.
//!
//! PostgreSQL databases are backed up with pgBackRest (`ops/backup`), not with this.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row, SqliteConnection};

use kontor_store::Schema;
use kontor_store_sql::SqlControl;

use crate::config::Config;
use crate::wiring::{Stores, pool_settings};

/// What the manifest's `format` says, and the version of its layout this binary writes.
const FORMAT: &str = "kontor-backup";
const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";

/// What an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Contents {
    /// The control database and every cell.
    Data,
    /// Every region's key store.
    KeyStores,
}

/// The manifest: the archive's table of contents.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub contents: Contents,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub kontor_version: String,
    pub databases: Vec<DatabaseEntry>,
}

/// One database in the archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEntry {
    /// `control` or `cell:<region>`, as `/readyz` names databases.
    pub name: String,
    /// The member's name in the archive (`control.db`, `cell-<region>.db`).
    pub file: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
}

/// A database of the configured deployment: its name, its file in an archive, where it lives.
struct Located {
    name: String,
    file: String,
    path: PathBuf,
}

/// The databases of the deployment an archive of `contents` holds, which must be SQLite files.
fn locate(config: &Config, contents: Contents) -> anyhow::Result<Vec<Located>> {
    let databases = config.databases()?;
    let all = match contents {
        Contents::Data => {
            let mut all = vec![(
                "control".to_owned(),
                "control.db".to_owned(),
                databases.control,
            )];
            for (cell, url) in databases.cells {
                let name = cell.segment();
                all.push((format!("cell:{name}"), format!("cell-{name}.db"), url));
            }
            all
        }
        Contents::KeyStores => databases
            .keys
            .into_iter()
            .map(|(cell, url)| {
                let name = cell.segment();
                (format!("keys:{name}"), format!("keys-{name}.db"), url)
            })
            .collect(),
    };
    let mut located = Vec::new();
    for (name, file, url) in all {
        if !kontor_store_sql::backend::sqlite::is_url(url.expose()) {
            bail!(
                "the {name} database is not SQLite ({url}): PostgreSQL databases are backed up \
                 with pgBackRest (see ops/backup and docs/OPERATIONS.md)"
            );
        }
        let path = kontor_store_sql::backend::sqlite::file_of(url.expose())
            .with_context(|| format!("the {name} database's URL names no file: {url}"))?;
        located.push(Located { name, file, path });
    }
    Ok(located)
}

/// Progress on a terminal: one line redrawn per step, nothing when stderr is not a terminal.
struct Progress {
    total: usize,
    on: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            on: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: usize, what: &str) {
        if !self.on {
            return;
        }
        const WIDTH: usize = 24;
        let filled = WIDTH * done / self.total.max(1);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K[{bar}] {done}/{} {what}", self.total);
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.on {
            let _ = writeln!(std::io::stderr().lock());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 and size of a file.
fn digest_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((hex(&hasher.finalize()), bytes))
}

async fn connect(path: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let url = format!("sqlite://{}", path.display());
    let options = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(std::time::Duration::from_secs(30))
        .disable_statement_logging();
    options
        .connect()
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// A string literal in SQL.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// An identifier in SQL.
fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Rows per table of an open database.
async fn table_counts(conn: &mut SqliteConnection) -> anyhow::Result<BTreeMap<String, i64>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut counts = BTreeMap::new();
    for name in names {
        let sql = AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", identifier(&name)));
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&mut *conn).await?;
        counts.insert(name, count);
    }
    Ok(counts)
}

/// SQLite's own check of a database file, which must answer exactly `ok`.
async fn integrity(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await?;
    let answers: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get::<String, _>(0).ok())
        .collect();
    if answers != ["ok"] {
        bail!("integrity check failed: {}", answers.join("; "));
    }
    Ok(())
}

/// A consistent copy of the database at `source`, written to `target` (which must not exist).
async fn snapshot(source: &Path, target: &Path) -> anyhow::Result<BTreeMap<String, i64>> {
    if !source.exists() {
        bail!("{} does not exist: nothing to back up", source.display());
    }
    let mut conn = connect(source, false).await?;
    let target_text = target
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", target.display()))?;
    let sql = AssertSqlSafe(format!("VACUUM INTO {}", literal(target_text)));
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {}", source.display()))?;
    conn.close().await?;
    let mut copy = connect(target, true).await?;
    let counts = table_counts(&mut copy).await?;
    copy.close().await?;
    Ok(counts)
}

/// What `kontor backup` reports.
#[derive(Debug, Serialize)]
struct BackupReport<'a> {
    file: String,
    contents: Contents,
    bytes: u64,
    databases: &'a [DatabaseEntry],
}

pub async fn backup(
    config: &Config,
    out: &Path,
    key_stores: bool,
    force: bool,
    json: bool,
) -> anyhow::Result<()> {
    let contents = if key_stores {
        Contents::KeyStores
    } else {
        Contents::Data
    };
    let databases = locate(config, contents)?;
    if out.exists() && !force {
        bail!(
            "{} exists; choose another file or pass --force to replace it",
            out.display()
        );
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let staging = tempfile::Builder::new()
        .prefix(".kontor-backup-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a staging folder in {}", parent.display()))?;

    let progress = Progress::new(databases.len() + 1);
    let mut entries = Vec::new();
    for (i, db) in databases.iter().enumerate() {
        progress.show(i, &format!("copying {}", db.file));
        let copy = staging.path().join(&db.file);
        let tables = snapshot(&db.path, &copy).await?;
        let (sha256, bytes) = digest_file(&copy)?;
        entries.push(DatabaseEntry {
            name: db.name.clone(),
            file: db.file.clone(),
            bytes,
            sha256,
            tables,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        contents,
        created_at: kontor_domain::time::Timestamp::now().to_rfc3339(),
        kontor_version: env!("CARGO_PKG_VERSION").to_owned(),
        databases: entries,
    };

    progress.show(databases.len(), "writing the archive");
    let partial = staging.path().join("archive.partial");
    write_archive(&partial, &manifest, staging.path())?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving the archive to {}", out.display()))?;
    sync_dir(&parent);
    progress.finish();

    let bytes = std::fs::metadata(out)?.len();
    let mut stdout = std::io::stdout().lock();
    if json {
        let report = BackupReport {
            file: out.display().to_string(),
            contents,
            bytes,
            databases: &manifest.databases,
        };
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    } else {
        for db in &manifest.databases {
            let rows: i64 = db.tables.values().sum();
            writeln!(stdout, "{}: {} bytes, {rows} rows", db.name, db.bytes)?;
        }
        writeln!(
            stdout,
            "backup written to {} ({bytes} bytes)",
            out.display()
        )?;
    }
    Ok(())
}

fn private_file(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn write_archive(path: &Path, manifest: &Manifest, staging: &Path) -> anyhow::Result<()> {
    let file = private_file(path)?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let manifest_json = serde_json::to_vec_pretty(manifest)?;
    append(
        &mut tar,
        MANIFEST,
        &mut manifest_json.as_slice(),
        manifest_json.len() as u64,
    )?;
    for db in &manifest.databases {
        let mut file = File::open(staging.join(&db.file))?;
        append(&mut tar, &db.file, &mut file, db.bytes)?;
    }
    let gz = tar.into_inner()?;
    let writer = gz.finish()?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &mut dyn Read,
    size: u64,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, data)
        .with_context(|| format!("adding {name} to the archive"))
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// A member name this format can hold: a plain file name, never a path.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Reads the archive into `staging`, checking every member against the manifest as it goes.
fn unpack(archive: &Path, staging: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut tar = tar::Archive::new(gz);
    let mut manifest: Option<Manifest> = None;
    let mut seen = Vec::new();
    for entry in tar
        .entries()
        .context("not a Kontor backup (unreadable archive)")?
    {
        let mut entry = entry.context("the archive is damaged")?;
        let name = entry
            .path()
            .context("the archive is damaged (a member without a name)")?
            .to_string_lossy()
            .into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            bail!("the archive holds {name:?}, which is not a plain file");
        }
        let Some(manifest) = manifest.as_ref() else {
            if name != MANIFEST {
                bail!("not a Kontor backup: its first member is {name:?}, not {MANIFEST}");
            }
            let mut text = Vec::new();
            entry.by_ref().take(1 << 20).read_to_end(&mut text)?;
            let parsed: Manifest =
                serde_json::from_slice(&text).context("the backup's manifest is not valid")?;
            check_manifest(&parsed)?;
            manifest = Some(parsed);
            continue;
        };
        let Some(expected) = manifest.databases.iter().find(|d| d.file == name) else {
            bail!("the archive holds {name:?}, which its manifest does not list");
        };
        if seen.contains(&name) {
            bail!("the archive holds {name:?} twice");
        }
        let target = staging.join(&name);
        let mut out = BufWriter::new(private_file(&target)?);
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut bytes = 0u64;
        loop {
            let n = entry
                .read(&mut buffer)
                .with_context(|| format!("the archive is damaged in {name}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])?;
            bytes += n as u64;
        }
        out.flush()?;
        let sha256 = hex(&hasher.finalize());
        if bytes != expected.bytes || sha256 != expected.sha256 {
            bail!(
                "{name} does not match the manifest ({bytes} bytes, SHA-256 {sha256}; expected \
                 {} bytes, {})",
                expected.bytes,
                expected.sha256
            );
        }
        seen.push(name);
    }
    let manifest = manifest.context("not a Kontor backup: the archive is empty")?;
    for db in &manifest.databases {
        if !seen.contains(&db.file) {
            bail!("the archive lacks {}, which its manifest lists", db.file);
        }
    }
    Ok(manifest)
}

fn check_manifest(manifest: &Manifest) -> anyhow::Result<()> {
    if manifest.format != FORMAT {
        bail!("not a Kontor backup (format {:?})", manifest.format);
    }
    if manifest.version != FORMAT_VERSION {
        bail!(
            "this backup has format version {}; this kontor reads version {FORMAT_VERSION}",
            manifest.version
        );
    }
    let mut names = Vec::new();
    for db in &manifest.databases {
        if !plain_name(&db.file) || db.file == MANIFEST {
            bail!("the manifest names an unusable file {:?}", db.file);
        }
        if names.contains(&&db.file) {
            bail!("the manifest lists {} twice", db.file);
        }
        names.push(&db.file);
    }
    Ok(())
}

/// True when `dir` holds anything but the names in `besides`.
fn holds_anything(dir: &Path, besides: &[&str]) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if !besides.iter().any(|b| name == *b) && !name.starts_with(".kontor-restore-") {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err).with_context(|| format!("reading {}", dir.display())),
    }
}

/// A database file and the files SQLite keeps beside it.
fn with_companions(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

/// One entry of the erasure ledger (ids only).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Erasure {
    user_id: String,
    tenant_id: String,
    region: String,
    erased_at: i64,
}

/// The erasure ledger of a control database file (empty when it has none yet).
async fn read_ledger(path: &Path) -> anyhow::Result<Vec<Erasure>> {
    let mut conn = connect(path, true).await?;
    let has_ledger: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'erasures'",
    )
    .fetch_one(&mut conn)
    .await?;
    let mut ledger = Vec::new();
    if has_ledger > 0 {
        let rows = sqlx::query("SELECT user_id, tenant_id, region, erased_at FROM erasures")
            .fetch_all(&mut conn)
            .await?;
        for row in rows {
            ledger.push(Erasure {
                user_id: row.try_get(0)?,
                tenant_id: row.try_get(1)?,
                region: row.try_get(2)?,
                erased_at: row.try_get(3)?,
            });
        }
    }
    conn.close().await?;
    Ok(ledger)
}

/// Adds the entries a control database lacks; returns how many it lacked.
async fn extend_ledger(path: &Path, ledger: &[Erasure]) -> anyhow::Result<u64> {
    let mut conn = connect(path, false).await?;
    let mut added = 0;
    let mut tx = conn.begin().await?;
    for entry in ledger {
        let done = sqlx::query(
            "INSERT INTO erasures (user_id, tenant_id, region, erased_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(&entry.user_id)
        .bind(&entry.tenant_id)
        .bind(&entry.region)
        .bind(entry.erased_at)
        .execute(&mut *tx)
        .await?;
        added += done.rows_affected();
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(added)
}

/// What `kontor restore` reports.
#[derive(Debug, Serialize)]
struct RestoreReport<'a> {
    data_dir: String,
    contents: Contents,
    created_at: &'a str,
    databases: Vec<RestoredDatabase<'a>>,
    /// Ledger entries the restored control database lacked and was given.
    erasures_carried: u64,
    /// The ledger's replay, or `null` while databases of the deployment are still missing.
    replay: Option<Replay>,
}

#[derive(Debug, Serialize)]
struct RestoredDatabase<'a> {
    name: &'a str,
    path: String,
    rows: i64,
}

#[derive(Debug, Serialize)]
struct Replay {
    entries: u64,
    keys_shredded: u64,
    users_erased: u64,
}

pub async fn restore(
    config: &Config,
    from: &Path,
    ledger_from: Option<&Path>,
    force: bool,
    json: bool,
) -> anyhow::Result<()> {
    let data_dir = config.data_dir.clone();
    create_private_dir(&data_dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".kontor-restore-")
        .tempdir_in(&data_dir)
        .with_context(|| format!("creating a staging folder in {}", data_dir.display()))?;
    let manifest = unpack(from, staging.path())?;
    let targets = locate(config, manifest.contents)?;

    // Data goes into an empty data directory (its key stores and keys may be there already);
    // key stores where none is yet.
    let occupied = match manifest.contents {
        Contents::Data => holds_anything(&data_dir, &["keys", "secrets"])?,
        Contents::KeyStores => false,
    } || targets
        .iter()
        .flat_map(|t| with_companions(&t.path))
        .any(|p| p.exists());
    if occupied && !force {
        bail!(
            "{} is not empty; restore into an empty directory, or pass --force to replace the \
             databases there (stop every kontor process using them first)",
            data_dir.display()
        );
    }

    // Every database in the backup must have a place in this deployment, and the other way round.
    let mut plan = Vec::new();
    for db in &manifest.databases {
        let Some(target) = targets.iter().find(|t| t.name == db.name) else {
            bail!(
                "the backup holds the {} database, which this configuration does not have",
                db.name
            );
        };
        plan.push((db, target));
    }
    for target in &targets {
        if !manifest.databases.iter().any(|d| d.name == target.name) {
            bail!(
                "this configuration has the {} database, which the backup does not hold",
                target.name
            );
        }
    }
    let progress = Progress::new(plan.len() + 2);
    for (i, (db, _)) in plan.iter().enumerate() {
        progress.show(i, &format!("checking {}", db.file));
        let mut conn = connect(&staging.path().join(&db.file), true).await?;
        integrity(&mut conn)
            .await
            .with_context(|| format!("{} in the backup", db.file))?;
        let counts = table_counts(&mut conn).await?;
        conn.close().await?;
        if counts != db.tables {
            bail!("{}: the rows per table differ from the manifest", db.file);
        }
    }

    // The ledger only moves forward: what the replaced control database and --ledger-from know
    // is kept.
    let control_path = locate(config, Contents::Data)?
        .into_iter()
        .find(|t| t.name == "control")
        .map(|t| t.path)
        .context("the configuration has no control database")?;
    let mut ledger = Vec::new();
    if let Some(path) = ledger_from {
        if !path.is_file() {
            bail!("--ledger-from {}: no such file", path.display());
        }
        ledger.extend(
            read_ledger(path)
                .await
                .with_context(|| format!("reading the erasure ledger in {}", path.display()))?,
        );
    }
    let replaces_control = manifest.contents == Contents::Data && control_path.exists();
    if replaces_control {
        ledger.extend(read_ledger(&control_path).await.with_context(|| {
            format!("reading the erasure ledger in {}", control_path.display())
        })?);
    }
    ledger.sort();
    ledger.dedup();

    progress.show(plan.len(), "moving into place");
    let mut restored = Vec::new();
    for (db, target) in &plan {
        for path in with_companions(&target.path) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("removing {}", path.display()));
                }
            }
        }
        if let Some(parent) = target.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent)?;
        }
        let staged = staging.path().join(&db.file);
        if std::fs::rename(&staged, &target.path).is_err() {
            // Another file system: copy, then let the staging folder go.
            std::fs::copy(&staged, &target.path)
                .with_context(|| format!("writing {}", target.path.display()))?;
        }
        if let Some(parent) = target.path.parent() {
            sync_dir(parent);
        }
        restored.push(RestoredDatabase {
            name: &db.name,
            path: target.path.display().to_string(),
            rows: db.tables.values().sum(),
        });
    }

    // With every database in place, migrate what is behind and replay the ledger.
    progress.show(plan.len() + 1, "replaying the erasure ledger");
    let complete = locate(config, Contents::Data)?
        .iter()
        .chain(locate(config, Contents::KeyStores)?.iter())
        .all(|t| t.path.exists());
    let mut erasures_carried = 0;
    let mut replay = None;
    if complete {
        let stores = Stores::open(config)?;
        for (name, db) in stores.all() {
            db.migrate()
                .await
                .with_context(|| format!("migrating the restored {name} database"))?;
        }
        if !ledger.is_empty() {
            erasures_carried = extend_ledger(&control_path, &ledger).await?;
        }
        let report = stores.settle_erasures().await?;
        stores.close().await;
        replay = Some(Replay {
            entries: report.entries,
            keys_shredded: report.keys_shredded,
            users_erased: report.users_erased,
        });
    } else if !ledger.is_empty() && control_path.exists() {
        // Without the rest, the ledger waits in the control database for the replay; a control
        // database from an older release gets its schema first, so that the ledger has a table.
        let databases = config.databases()?;
        let control = SqlControl::open(databases.control.expose(), &pool_settings(config))
            .with_context(|| format!("opening the control database {}", databases.control))?;
        let migrated = control.migrate().await;
        control.database().close().await;
        migrated.context("migrating the restored control database")?;
        erasures_carried = extend_ledger(&control_path, &ledger).await?;
    }
    progress.finish();
    if manifest.contents == Contents::Data && !replaces_control && ledger_from.is_none() {
        tracing::warn!(
            backup = %manifest.created_at,
            "restored into a new directory without --ledger-from: users erased after the backup \
             was made are known only to a newer control database; replay its ledger \
             (kontor restore --ledger-from, or kontor erasure replay) or erase them again"
        );
    }

    let mut stdout = std::io::stdout().lock();
    if json {
        let report = RestoreReport {
            data_dir: data_dir.display().to_string(),
            contents: manifest.contents,
            created_at: &manifest.created_at,
            databases: restored,
            erasures_carried,
            replay,
        };
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    } else {
        for db in &restored {
            writeln!(stdout, "{}: {} rows → {}", db.name, db.rows, db.path)?;
        }
        match &replay {
            Some(r) => writeln!(
                stdout,
                "erasure ledger: {} entries ({erasures_carried} carried over), {} keys shredded, \
                 {} users erased again",
                r.entries, r.keys_shredded, r.users_erased
            )?,
            None => writeln!(
                stdout,
                "erasure ledger: not replayed yet — restore the missing databases, then run \
                 `kontor erasure replay`"
            )?,
        }
        writeln!(
            stdout,
            "restored the backup of {} into {}",
            manifest.created_at,
            data_dir.display()
        )?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_plain_file_names() {
        for good in ["control.db", "cell-de.db", "cell_uk-2.db"] {
            assert!(plain_name(good), "{good}");
        }
        for bad in ["", ".", "..", "../x.db", "/etc/passwd", "a/b.db", "x\0.db"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn sql_quoting_doubles_the_quote() {
        assert_eq!(literal("/tmp/it's.db"), "'/tmp/it''s.db'");
        assert_eq!(identifier("we\"ird"), "\"we\"\"ird\"");
    }
}
