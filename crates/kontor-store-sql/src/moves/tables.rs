//! Every table of a cell, and how each of its rows belongs to a tenant or a user: what a move
//! copies, in foreign-key order. Rows are read generically (`SELECT *`, each value an integer, a
//! text or NULL), hashed in one canonical encoding, and written with portable upserts, so a
//! column added by a later migration moves without a change here (both cells must run the same
//! migrations; the move checks it).
//!
//! Tables of a cell that belong to no tenant and do not move: `worker_leases` (per-cell job
//! leases), `move_fences` (the moves' own fences), `_sqlx_migrations` and
//! `kontor_migration_lease` (the schema's bookkeeping). [`every_cell_table_is_attributed`] in
//! the tests fails when a migration adds a table that is in neither list.

use sha2::{Digest, Sha256};
use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{Column, Row, TypeInfo};

use kontor_store::{StoreError, StoreResult};

/// One cell table a move carries.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    /// The primary key's columns, in order.
    pub key: &'static [&'static str],
    /// The condition selecting a tenant's rows, `$1` the tenant id.
    pub of_tenant: &'static str,
    /// The condition selecting a user's rows, `$1` the user id.
    pub of_user: &'static str,
}

/// Parents before children: copies go in this order, deletions in the reverse.
/// Where `payments` and `webhook_deliveries` are in [`TABLES`] (the fence locks their rows).
pub(crate) const TRANSACTIONS: usize = 4;
pub(crate) const PAYMENTS: usize = 6;
pub(crate) const DELIVERIES: usize = 9;

pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "users",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "id = $1",
    },
    Table {
        name: "connections",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
    Table {
        name: "accounts",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
    Table {
        name: "balances",
        key: &["account_id", "kind"],
        of_tenant: "account_id IN (SELECT id FROM accounts WHERE tenant_id = $1)",
        of_user: "account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
    },
    Table {
        name: "transactions",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
    },
    Table {
        name: "transaction_changes",
        key: &["connection_id", "seq"],
        of_tenant: "connection_id IN (SELECT id FROM connections WHERE tenant_id = $1)",
        of_user: "connection_id IN (SELECT id FROM connections WHERE user_id = $1)",
    },
    Table {
        name: "payments",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
    Table {
        name: "payment_status_history",
        key: &["payment_id", "seq"],
        of_tenant: "payment_id IN (SELECT id FROM payments WHERE tenant_id = $1)",
        of_user: "payment_id IN (SELECT id FROM payments WHERE user_id = $1)",
    },
    // An event about no user (`user_id` NULL) belongs to the tenant: it moves with the tenant,
    // never with a user.
    Table {
        name: "events",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
    Table {
        name: "webhook_deliveries",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "event_id IN (SELECT id FROM events WHERE user_id = $1)",
    },
    Table {
        name: "webhook_attempts",
        key: &["delivery_id", "seq"],
        of_tenant: "delivery_id IN (SELECT id FROM webhook_deliveries WHERE tenant_id = $1)",
        of_user: "delivery_id IN (SELECT d.id FROM webhook_deliveries d \
                  JOIN events e ON e.id = d.event_id WHERE e.user_id = $1)",
    },
    Table {
        name: "erasures",
        key: &["user_id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
    Table {
        name: "erasure_revocations",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
    },
];

/// Cell tables that belong to no tenant and stay where they are.
pub(crate) const UNMOVED: &[&str] = &[
    "worker_leases",
    "move_fences",
    "_sqlx_migrations",
    "kontor_migration_lease",
];

/// One stored value, as every backend hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Null { integer: bool },
    Integer(i64),
    Text(String),
}

/// One row: its columns' names and values, in the table's order.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub columns: Vec<(String, Value)>,
}

impl StoredRow {
    pub(crate) fn from_any(row: &AnyRow) -> StoreResult<Self> {
        let mut columns = Vec::with_capacity(row.columns().len());
        for column in row.columns() {
            let at = column.ordinal();
            // A NULL's column kind is only needed to bind it for PostgreSQL, which reports every
            // column's declared type; SQLite takes a NULL of any kind.
            let kind: AnyTypeInfoKind = column.type_info().kind();
            // Decoded by the column's declared kind first: a failed decode builds an error, and
            // a frozen move decodes every row of the subject twice.
            let integer = kind.is_integer();
            let value = if integer {
                decode_integer(row, at).or_else(|| decode_text(row, at))
            } else {
                decode_text(row, at).or_else(|| decode_integer(row, at))
            };
            let value = match value {
                Some(Some(value)) => value,
                Some(None) => Value::Null { integer },
                None => {
                    return Err(StoreError::corrupt(format!(
                        "column {} ({}) is neither an integer nor a text",
                        column.name(),
                        column.type_info().name()
                    )));
                }
            };
            columns.push((column.name().to_owned(), value));
        }
        Ok(Self { columns })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The primary key's values, encoded to compare and to look up.
    pub(crate) fn key(&self, table: &Table) -> StoreResult<Vec<u8>> {
        let mut out = Vec::new();
        for name in table.key {
            let value = self
                .get(name)
                .ok_or_else(|| StoreError::corrupt(format!("{}: no column {name}", table.name)))?;
            encode_value(&mut out, value);
        }
        Ok(out)
    }

    /// The primary key's values, to page after.
    pub(crate) fn key_values(&self, table: &Table) -> StoreResult<Vec<Value>> {
        table
            .key
            .iter()
            .map(|name| {
                self.get(name)
                    .cloned()
                    .ok_or_else(|| StoreError::corrupt(format!("{}: no column {name}", table.name)))
            })
            .collect()
    }

    /// SHA-256 of the canonical encoding: every column by name order, its name, kind and value.
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut sorted: Vec<&(String, Value)> = self.columns.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut bytes = Vec::new();
        for (name, value) in sorted {
            encode_text(&mut bytes, name);
            encode_value(&mut bytes, value);
        }
        Sha256::digest(&bytes).into()
    }
}

fn decode_integer(row: &AnyRow, at: usize) -> Option<Option<Value>> {
    row.try_get::<Option<i64>, _>(at)
        .ok()
        .map(|v| v.map(Value::Integer))
}

fn decode_text(row: &AnyRow, at: usize) -> Option<Option<Value>> {
    row.try_get::<Option<String>, _>(at)
        .ok()
        .map(|v| v.map(Value::Text))
}

fn encode_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null { .. } => out.push(b'N'),
        Value::Integer(n) => {
            out.push(b'I');
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Text(s) => {
            out.push(b'T');
            encode_text(out, s);
        }
    }
}

/// The order-independent digest of a table's rows: SHA-256 over their sorted row hashes.
pub(crate) fn table_hash<'a>(rows: impl Iterator<Item = &'a [u8; 32]>) -> String {
    let mut hashes: Vec<&[u8; 32]> = rows.collect();
    hashes.sort();
    let mut digest = Sha256::new();
    for h in hashes {
        digest.update(h);
    }
    hex(&digest.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Binds a value to a statement, a NULL with its column's type (PostgreSQL needs one).
pub(crate) fn bind<'q>(query: crate::tx::Sql<'q>, value: &Value) -> crate::tx::Sql<'q> {
    match value {
        Value::Null { integer: true } => query.bind(None::<i64>),
        Value::Null { integer: false } => query.bind(None::<String>),
        Value::Integer(n) => query.bind(*n),
        Value::Text(s) => query.bind(s.clone()),
    }
}

/// The WHERE condition of a subject (`$1` its id).
pub(crate) fn condition(table: &Table, of_user: bool) -> &'static str {
    if of_user {
        table.of_user
    } else {
        table.of_tenant
    }
}

/// `SELECT *` of the subject's rows after a key (`$2…`), in key order, at most `limit`.
pub(crate) fn page_sql(table: &Table, of_user: bool, after: bool, limit: usize) -> String {
    let mut sql = format!(
        "SELECT * FROM {} WHERE ({})",
        table.name,
        condition(table, of_user)
    );
    if after {
        sql.push_str(" AND ");
        sql.push_str(&keyset(table.key, 2));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&table.key.join(", "));
    sql.push_str(&format!(" LIMIT {limit}"));
    sql
}

/// `(a > $n OR (a = $n AND b > $n+1))`: after a composite key, portably.
fn keyset(key: &[&str], first: usize) -> String {
    let mut ors = Vec::new();
    for i in 0..key.len() {
        let mut ands = Vec::new();
        for (j, column) in key.iter().enumerate().take(i) {
            ands.push(format!("{column} = ${}", first + j));
        }
        ands.push(format!("{} > ${}", key[i], first + i));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    format!("({})", ors.join(" OR "))
}

/// An upsert of `rows` rows of these columns: insert, or overwrite every column but the key.
pub(crate) fn upsert_sql(table: &Table, columns: &[&str], rows: usize) -> String {
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES ",
        table.name,
        columns.join(", ")
    );
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push_str(&format!("${n}"));
        }
        sql.push(')');
    }
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !table.key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    sql.push_str(&format!(" ON CONFLICT ({}) ", table.key.join(", ")));
    if updates.is_empty() {
        sql.push_str("DO NOTHING");
    } else {
        sql.push_str("DO UPDATE SET ");
        sql.push_str(&updates.join(", "));
    }
    sql
}

/// Deletes one row by its key.
pub(crate) fn delete_sql(table: &Table) -> String {
    let cond: Vec<String> = table
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect();
    format!("DELETE FROM {} WHERE {}", table.name, cond.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fenced_tables_are_where_the_fence_looks() {
        assert_eq!(TABLES[TRANSACTIONS].name, "transactions");
        assert_eq!(TABLES[PAYMENTS].name, "payments");
        assert_eq!(TABLES[DELIVERIES].name, "webhook_deliveries");
    }

    #[test]
    fn keyset_pages_after_a_composite_key() {
        assert_eq!(keyset(&["id"], 2), "((id > $2))");
        assert_eq!(keyset(&["a", "b"], 2), "((a > $2) OR (a = $2 AND b > $3))");
    }

    #[test]
    fn upserts_overwrite_all_but_the_key() {
        let sql = upsert_sql(&TABLES[3], &["account_id", "kind", "amount_minor"], 2);
        assert_eq!(
            sql,
            "INSERT INTO balances (account_id, kind, amount_minor) VALUES ($1, $2, $3), ($4, $5, $6) \
             ON CONFLICT (account_id, kind) DO UPDATE SET amount_minor = excluded.amount_minor"
        );
    }

    #[test]
    fn a_row_hash_does_not_depend_on_column_order_but_on_every_value() {
        let a = StoredRow {
            columns: vec![
                ("id".into(), Value::Text("x".into())),
                ("n".into(), Value::Integer(1)),
                ("z".into(), Value::Null { integer: true }),
            ],
        };
        let mut b = a.clone();
        b.columns.reverse();
        assert_eq!(a.hash(), b.hash());
        let mut c = a.clone();
        c.columns[1].1 = Value::Integer(2);
        assert_ne!(a.hash(), c.hash());
        let mut d = a.clone();
        d.columns[2].1 = Value::Text(String::new());
        assert_ne!(a.hash(), d.hash());
    }
}
