//! What `kontor cells move` asks before a move: whose a user is and which cells hold a
//! subject's rows (to default `--from`), and the journal as a list (`kontor cells moves`).

use kontor_domain::{TenantId, UserId};
use kontor_store::{StoreError, StoreResult};

use super::{MoveRecord, Mover, Subject, journal};
use crate::SqlControl;

impl Mover {
    /// The names of the cells holding any row of `subject` (a user, or a tenant's users and
    /// events), in the order the mover knows them.
    pub async fn cells_holding(&self, subject: &Subject) -> StoreResult<Vec<String>> {
        let mut holding = Vec::new();
        for cell in &self.cells {
            let counts = super::row_counts(&cell.cell, subject).await?;
            if counts.values().any(|n| *n > 0) {
                holding.push(cell.name.clone());
            }
        }
        Ok(holding)
    }

    /// The tenant of `user` and the cells whose `users` table holds them.
    pub async fn user_tenant(&self, user: &UserId) -> StoreResult<Option<(TenantId, Vec<String>)>> {
        let mut found: Option<(TenantId, Vec<String>)> = None;
        for cell in &self.cells {
            let tenant: Option<String> = cell
                .db()
                .optional_scalar(|| {
                    sqlx::query_scalar("SELECT tenant_id FROM users WHERE id = $1")
                        .bind(user.as_str().to_owned())
                })
                .await?;
            let Some(tenant) = tenant else { continue };
            let tenant = TenantId::parse(&tenant).map_err(StoreError::corrupt)?;
            match &mut found {
                Some((_, cells)) => cells.push(cell.name.clone()),
                None => found = Some((tenant, vec![cell.name.clone()])),
            }
        }
        Ok(found)
    }
}

impl SqlControl {
    /// Every move in the journal, newest id last.
    pub async fn cell_moves(&self) -> StoreResult<Vec<MoveRecord>> {
        let sql = format!("SELECT {} FROM cell_moves ORDER BY id", journal::COLUMNS);
        self.database()
            .rows(
                || sqlx::query(sqlx::AssertSqlSafe(sql.clone())),
                journal::record_from_row,
            )
            .await
    }
}
