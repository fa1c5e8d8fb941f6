//! How big a cell is: its users (placement's measure of load), the row counts of the tables
//! that grow with use, and its bytes on disk where the backend tells. Reads only.

use kontor_store::{CellSize, StoreResult};

use super::SqlCell;
use crate::database::column;
use crate::dialect::Dialect;

/// The tables `kontor cells list` counts, in the order it shows them, each with its count.
const BIG_TABLES: [(&str, &str); 6] = [
    ("connections", "SELECT COUNT(*) AS n FROM connections"),
    ("accounts", "SELECT COUNT(*) AS n FROM accounts"),
    ("transactions", "SELECT COUNT(*) AS n FROM transactions"),
    ("payments", "SELECT COUNT(*) AS n FROM payments"),
    ("events", "SELECT COUNT(*) AS n FROM events"),
    (
        "webhook_deliveries",
        "SELECT COUNT(*) AS n FROM webhook_deliveries",
    ),
];

const COUNT_USERS: &str = "SELECT COUNT(*) AS n FROM users";

fn count(raw: i64) -> u64 {
    u64::try_from(raw).unwrap_or(0)
}

impl SqlCell {
    async fn count_rows(&self, sql: &'static str) -> StoreResult<u64> {
        let row = self.db.fetch_one(|| sqlx::query(sql)).await?;
        Ok(count(column(&row, "n")?))
    }

    pub(super) async fn count_users(&self) -> StoreResult<u64> {
        self.count_rows(COUNT_USERS).await
    }

    pub(super) async fn measure(&self) -> StoreResult<CellSize> {
        let users = self.count_users().await?;
        let mut rows = Vec::with_capacity(BIG_TABLES.len());
        for (table, sql) in BIG_TABLES {
            rows.push((table, self.count_rows(sql).await?));
        }
        let sql = match self.db.dialect() {
            Dialect::Postgres => "SELECT pg_database_size(current_database()) AS n",
            // The main file's pages; the WAL is checkpointed into it.
            Dialect::Sqlite => {
                "SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()"
            }
        };
        let row = self.db.fetch_one(|| sqlx::query(sql)).await?;
        let bytes = Some(count(column(&row, "n")?));
        Ok(CellSize { users, rows, bytes })
    }
}
