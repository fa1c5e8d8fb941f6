//! What guards a connect link and explains a consent's end: the per-link cap on decoupled-SCA
//! starts, and the search for a newer authorisation that superseded a consent.

use kontor_domain::ConnectionId;
use kontor_domain::bank::BankId;
use kontor_domain::connection::Connection;
use kontor_domain::time::Timestamp;
use kontor_store::StoreResult;

use super::connections::connection_from_row;
use crate::database::SqlDatabase;
use crate::query::{Arg, Filtered};

/// At most this many account ids are compared; a person rarely has more at one bank.
const MAX_COMPARED_ACCOUNTS: usize = 50;
/// At most this many candidates are returned.
const MAX_CANDIDATES: i64 = 20;

pub(super) async fn count_decoupled_start(
    db: &SqlDatabase,
    id: &ConnectionId,
    max: u32,
) -> StoreResult<bool> {
    db.write("count_decoupled_start", |tx| {
        Box::pin(async move {
            super::fences::guard_row(tx, super::fences::Row::Connection, id.as_str()).await?;
            // One conditional UPDATE: the check and the count cannot be split by another request.
            let counted = tx
                .execute(
                    sqlx::query(
                        "UPDATE connections SET decoupled_starts = decoupled_starts + 1 \
             WHERE id = $1 AND status = 'pending' AND decoupled_starts < $2",
                    )
                    .bind(id.as_str())
                    .bind(i64::from(max)),
                )
                .await?;

            Ok(counted == 1)
        })
    })
    .await
}

pub(super) async fn authorised_sharing_accounts(
    db: &SqlDatabase,
    bank: &BankId,
    after: Timestamp,
    bank_account_ids: &[String],
    except: &ConnectionId,
) -> StoreResult<Vec<Connection>> {
    if bank_account_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Filtered::new(concat!(
        "SELECT ",
        connection_columns!(),
        " FROM connections WHERE bank_id = "
    ));
    let p = q.arg(Arg::Text(bank.to_string()));
    q.push(&p);
    let p = q.arg(Arg::Int(after.unix_micros()));
    q.push(&format!(" AND authorised_at > {p}"));
    let p = q.arg(Arg::Text(except.to_string()));
    q.push(&format!(" AND id <> {p}"));
    q.push(" AND id IN (SELECT connection_id FROM accounts WHERE bank_account_id IN (");
    for (i, account) in bank_account_ids
        .iter()
        .take(MAX_COMPARED_ACCOUNTS)
        .enumerate()
    {
        let p = q.arg(Arg::Text(account.clone()));
        q.push(&format!("{}{p}", if i == 0 { "" } else { ", " }));
    }
    let limit = q.arg(Arg::Int(MAX_CANDIDATES));
    q.push(&format!(")) ORDER BY authorised_at, id LIMIT {limit}"));
    db.rows(|| q.build(), connection_from_row).await
}
