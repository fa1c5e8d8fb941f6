//! Migrations that run outside a transaction, statement by statement.
//!
//! A migration whose first line is `-- no-transaction` is sqlx's non-transactional kind; sqlx
//! sends its whole text as one query string, which PostgreSQL runs as one implicit transaction
//! when it holds several statements, and `CREATE INDEX CONCURRENTLY` refuses to run in one. So
//! Kontor applies such a migration itself: each statement (a statement ends with a line that
//! ends in `;`) is sent on its own, on one connection, and the migration is recorded in sqlx's
//! table afterwards, with sqlx's checksum, exactly as sqlx would record it. The migrations
//! before it and after it still go through sqlx.
//!
//! Nothing is atomic here, so every statement of such a file must be safe to run again
//! (`IF NOT EXISTS`), and a concurrent index build that failed half-way leaves an `INVALID`
//! index behind that `IF NOT EXISTS` would take for done: before each `CREATE INDEX
//! CONCURRENTLY`, an invalid index of that name is dropped (`DROP INDEX CONCURRENTLY`). The
//! caller holds the migration lease throughout; the lease is renewed on another connection of
//! the pool, so a long index build does not lose it.

use std::time::Instant;

use kontor_store::StoreResult;
use sqlx::AssertSqlSafe;
use sqlx::migrate::Migration;

use crate::database::SqlDatabase;
use crate::dialect::Dialect;

/// The statements of a non-transactional migration, comments and blank lines dropped.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("--") {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        if trimmed.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// The index a `CREATE INDEX CONCURRENTLY [IF NOT EXISTS] name …` statement builds.
pub(crate) fn concurrent_index(statement: &str) -> Option<String> {
    let words: Vec<String> = statement
        .split_whitespace()
        .take(8)
        .map(str::to_ascii_uppercase)
        .collect();
    let mut rest = match words.as_slice() {
        [create, index, concurrently, rest @ ..]
            if create == "CREATE" && index == "INDEX" && concurrently == "CONCURRENTLY" =>
        {
            rest
        }
        _ => return None,
    };
    if let [if_, not, exists, tail @ ..] = rest
        && if_ == "IF"
        && not == "NOT"
        && exists == "EXISTS"
    {
        rest = tail;
    }
    let name = rest.first()?;
    let original = statement
        .split_whitespace()
        .find(|word| word.eq_ignore_ascii_case(name))?;
    Some(original.trim_end_matches(';').to_owned())
}

/// Applies one non-transactional migration statement by statement and records it.
pub(crate) async fn apply(db: &SqlDatabase, migration: &Migration) -> StoreResult<()> {
    let started = Instant::now();
    let mut conn = db.pool().acquire().await.map_err(|e| db.classify(e))?;
    for statement in statements(migration.sql.as_str()) {
        if db.dialect() == Dialect::Postgres
            && let Some(index) = concurrent_index(&statement)
        {
            drop_if_invalid(db, &mut conn, &index).await?;
        }
        sqlx::raw_sql(AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await
            .map_err(|e| db.classify(e))?;
    }
    let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, $4)",
    )
    .bind(migration.version)
    .bind(migration.description.to_string())
    .bind(migration.checksum.to_vec())
    .bind(elapsed)
    .execute(&mut *conn)
    .await
    .map_err(|e| db.classify(e))?;
    tracing::info!(
        version = migration.version,
        description = %migration.description,
        "applied a migration outside a transaction"
    );
    Ok(())
}

/// Drops what a failed concurrent build of `index` left behind, so that the build runs again.
async fn drop_if_invalid(
    db: &SqlDatabase,
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    index: &str,
) -> StoreResult<()> {
    let invalid: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_catalog.pg_index i \
         JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
         WHERE c.relname = $1 AND NOT i.indisvalid",
    )
    .bind(index)
    .fetch_one(&mut **conn)
    .await
    .map_err(|e| db.classify(e))?;
    if invalid > 0 {
        tracing::warn!(%index, "dropping an invalid index a failed build left behind");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS \"{}\"",
            index.replace('"', "")
        )))
        .execute(&mut **conn)
        .await
        .map_err(|e| db.classify(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_line_ends_and_drop_comments() {
        let sql = "-- no-transaction\n-- why\nALTER TABLE t ADD COLUMN c TEXT;\n\
                   CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c\n    ON t (c);\n";
        assert_eq!(
            statements(sql),
            vec![
                "ALTER TABLE t ADD COLUMN c TEXT;".to_owned(),
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c\n    ON t (c);".to_owned(),
            ]
        );
    }

    #[test]
    fn finds_the_index_a_concurrent_build_makes() {
        assert_eq!(
            concurrent_index("CREATE INDEX CONCURRENTLY IF NOT EXISTS Tx_By_Date ON t (c);"),
            Some("Tx_By_Date".to_owned())
        );
        assert_eq!(
            concurrent_index("create index concurrently t_c on t (c)"),
            Some("t_c".to_owned())
        );
        assert_eq!(concurrent_index("CREATE INDEX t_c ON t (c)"), None);
        assert_eq!(concurrent_index("ALTER TABLE t ADD COLUMN c TEXT"), None);
    }
}
