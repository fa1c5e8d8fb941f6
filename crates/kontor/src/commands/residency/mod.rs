//! `kontor residency check`: reads every cell and the control database (and, given a path, a
//! backup file or a folder of SQLite database files) and reports what should not be there: rows
//! of another region in a cell, user-linked data in the control database, and plaintext where a
//! sealed value or a keyed hash belongs. Reads only; needs no keys. Exits non-zero on a finding.
//! Findings name the database, table, column and the row's id, never the value.

mod rules;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::TryStreamExt;
use kontor_domain::CellId;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Column, Row};

pub use rules::FindingKind;

use crate::config::Config;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub database: String,
    pub table: String,
    pub column: String,
    /// The row's id (or its first column), to find it by.
    pub row: String,
    pub kind: FindingKind,
    /// What was seen, without the value.
    pub detail: String,
}

/// What a database is, as far as the check is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Control,
    /// A cell, with its region when known (a backup's is taken from its users).
    Cell(Option<String>),
}

struct Target {
    name: String,
    url: String,
    role: Option<Role>,
}

pub async fn run(config: &Config, backup: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let databases = config.databases()?;
    let mut targets = vec![Target {
        name: "control".into(),
        url: databases.control.expose().to_owned(),
        role: Some(Role::Control),
    }];
    for (cell, url) in &databases.cells {
        targets.push(Target {
            name: format!("cell {}", cell.segment()),
            url: url.expose().to_owned(),
            role: Some(Role::Cell(Some(cell.region().to_string()))),
        });
    }
    if let Some(path) = backup {
        for file in backup_files(path)? {
            targets.push(Target {
                name: file.display().to_string(),
                url: format!("sqlite://{}?mode=ro", file.display()),
                role: None,
            });
        }
    }
    let findings = check(&targets).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({ "databases": targets.len(), "findings": findings })
        )?;
    } else {
        for f in &findings {
            writeln!(
                out,
                "{}: {}.{} row {}: {} ({})",
                f.database,
                f.table,
                f.column,
                f.row,
                f.kind.as_str(),
                f.detail
            )?;
        }
        writeln!(
            out,
            "{} finding(s) in {} database(s)",
            findings.len(),
            targets.len()
        )?;
    }
    if findings.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("residency check: {} finding(s)", findings.len())
    }
}

/// The SQLite database files at `path`: the file itself, or the files of a folder (not its
/// subfolders) but SQLite's `-wal`, `-shm` and `-journal` companions, which are read with them.
fn backup_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let file = entry?.path();
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let companion = ["-wal", "-shm", "-journal"]
            .iter()
            .any(|s| name.ends_with(s));
        if file.is_file() && !companion && is_sqlite(&file) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

fn is_sqlite(file: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

async fn check(targets: &[Target]) -> anyhow::Result<Vec<Finding>> {
    sqlx::any::install_default_drivers();
    let mut findings = Vec::new();
    for target in targets {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&target.url)
            .await
            .with_context(|| format!("opening {}", target.name))?;
        let result = scan(&pool, target, &mut findings).await;
        pool.close().await;
        result.with_context(|| format!("reading {}", target.name))?;
    }
    Ok(findings)
}

async fn tables(pool: &AnyPool, url: &str) -> Result<Vec<String>, sqlx::Error> {
    let sql = if url.starts_with("sqlite:") {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    } else {
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
    };
    sqlx::query_scalar(sql).fetch_all(pool).await
}

async fn scan(pool: &AnyPool, target: &Target, findings: &mut Vec<Finding>) -> anyhow::Result<()> {
    let tables = tables(pool, &target.url).await?;
    let role = match &target.role {
        Some(role) => role.clone(),
        None if tables.iter().any(|t| t == "users") => {
            // A backup's region: its file name (`cell-uk.db`), else its first user's id.
            let first: Option<String> = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
                .fetch_optional(pool)
                .await?;
            let region = region_of_file(&target.name).or_else(|| {
                first.and_then(|id| rules::region_ids(&id).next().map(|(_, r)| r.to_owned()))
            });
            Role::Cell(region)
        }
        None if tables.iter().any(|t| t == "tenants") => Role::Control,
        None => return Ok(()),
    };
    for table in tables.iter().filter(|t| !t.starts_with("_sqlx")) {
        // The names come from the database's own catalogue; quoted all the same.
        let sql = format!("SELECT * FROM \"{}\"", table.replace('"', "\"\""));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
        while let Some(row) = rows.try_next().await? {
            scan_row(&row, &target.name, table, &role, findings);
        }
    }
    Ok(())
}

/// The region of a cell's file: `cell-de.db` (cell 1), `cell-de-2.db` (cell 2) or
/// `cell-de-1.db` are all region `de`.
fn region_of_file(name: &str) -> Option<String> {
    let file = Path::new(name).file_stem()?.to_str()?;
    let cell = file.strip_prefix("cell-")?;
    CellId::parse_segment(cell)
        .or_else(|| CellId::parse(cell).ok())
        .map(|cell| cell.region().to_string())
}

fn scan_row(row: &AnyRow, database: &str, table: &str, role: &Role, findings: &mut Vec<Finding>) {
    let text = |i: usize| row.try_get::<Option<String>, _>(i).ok().flatten();
    let row_id = row
        .columns()
        .iter()
        .position(|c| c.name() == "id")
        .or(Some(0))
        .and_then(text)
        .unwrap_or_default();
    let cell = matches!(role, Role::Cell(_));
    for (i, column) in row.columns().iter().enumerate() {
        let Some(value) = text(i) else { continue };
        let name = column.name();
        let mut found = |kind: FindingKind, detail: String| {
            findings.push(Finding {
                database: database.to_owned(),
                table: table.to_owned(),
                column: name.to_owned(),
                row: row_id.clone(),
                kind,
                detail,
            });
        };
        if let Some(prefix) = rules::sealed_prefix(cell, table, name) {
            if !value.starts_with(prefix) {
                found(
                    FindingKind::PlaintextInSealedColumn,
                    format!(
                        "expected {prefix}…, found {}",
                        rules::describe_plaintext(&value)
                    ),
                );
            }
            continue;
        }
        match role {
            Role::Cell(Some(region)) if name == "id" || name.ends_with("_id") => {
                for (kind, other) in rules::region_ids(&value) {
                    if other != region {
                        found(
                            FindingKind::WrongRegion,
                            format!("a {kind} id of region {other} in the {region} cell"),
                        );
                    }
                }
            }
            _ => {}
        }
        if cell {
            if let Some(what) = rules::personal_data(&value) {
                found(
                    FindingKind::PersonalDataInPlaintext,
                    format!("{what} in plaintext"),
                );
            }
        } else {
            // Ids the control database keeps by design, never with personal data: a payment's id
            // is what an idempotency key answers with, and the user's id lets erasure find the
            // record, for its 7 days; the erasure ledger names the users erased, so that a
            // restore can erase them again.
            let allowed = |kind: &str| {
                (table == "idempotency_keys" && name == "resource_id" && kind == "pay")
                    || (table == "idempotency_keys" && name == "user_id" && kind == "usr")
                    || (table == "erasures" && name == "user_id" && kind == "usr")
            };
            if let Some((kind, _)) = rules::region_ids(&value).find(|(kind, _)| !allowed(kind)) {
                found(FindingKind::UserDataInControl, format!("a {kind} id"));
            }
            if let Some(what) = rules::personal_data(&value) {
                found(FindingKind::UserDataInControl, what.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::region_of_file;

    #[test]
    fn a_cells_file_names_its_region() {
        assert_eq!(region_of_file("backup/cell-de.db").as_deref(), Some("de"));
        assert_eq!(region_of_file("cell-de-2.db").as_deref(), Some("de"));
        assert_eq!(region_of_file("/x/cell-uk-1.db").as_deref(), Some("uk"));
        for other in [
            "control.db",
            "cell-.db",
            "cell-de-0.db",
            "cell-DE.db",
            "keys-de.db",
        ] {
            assert_eq!(region_of_file(other), None, "{other}");
        }
    }
}
