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
    /// A child table's (one keyed by its parent's id and a number) conditions for a page after
    /// a key, `$2` the key's first column: the tenant's or user's parents from that one on, so
    /// the parent's index yields them in key order from the page's position (cell 0017) instead
    /// of every parent of the subject for every page. `None` for the other tables.
    pub after: Option<(&'static str, &'static str)>,
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
        after: None,
    },
    Table {
        name: "connections",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
    },
    Table {
        name: "accounts",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
    },
    Table {
        name: "balances",
        key: &["account_id", "kind"],
        of_tenant: "account_id IN (SELECT id FROM accounts WHERE tenant_id = $1)",
        of_user: "account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
        after: Some((
            "account_id IN (SELECT id FROM accounts WHERE tenant_id = $1 AND id >= $2)",
            "account_id IN (SELECT id FROM accounts WHERE user_id = $1 AND id >= $2)",
        )),
    },
    Table {
        name: "transactions",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "account_id IN (SELECT id FROM accounts WHERE user_id = $1)",
        after: None,
    },
    Table {
        name: "transaction_changes",
        key: &["connection_id", "seq"],
        of_tenant: "connection_id IN (SELECT id FROM connections WHERE tenant_id = $1)",
        of_user: "connection_id IN (SELECT id FROM connections WHERE user_id = $1)",
        after: Some((
            "connection_id IN (SELECT id FROM connections WHERE tenant_id = $1 AND id >= $2)",
            "connection_id IN (SELECT id FROM connections WHERE user_id = $1 AND id >= $2)",
        )),
    },
    Table {
        name: "payments",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
    },
    Table {
        name: "payment_status_history",
        key: &["payment_id", "seq"],
        of_tenant: "payment_id IN (SELECT id FROM payments WHERE tenant_id = $1)",
        of_user: "payment_id IN (SELECT id FROM payments WHERE user_id = $1)",
        after: Some((
            "payment_id IN (SELECT id FROM payments WHERE tenant_id = $1 AND id >= $2)",
            "payment_id IN (SELECT id FROM payments WHERE user_id = $1 AND id >= $2)",
        )),
    },
    // An event about no user (`user_id` NULL) belongs to the tenant: it moves with the tenant,
    // never with a user.
    Table {
        name: "events",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
    },
    Table {
        name: "webhook_deliveries",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "event_id IN (SELECT id FROM events WHERE user_id = $1)",
        after: None,
    },
    Table {
        name: "webhook_attempts",
        key: &["delivery_id", "seq"],
        of_tenant: "delivery_id IN (SELECT id FROM webhook_deliveries WHERE tenant_id = $1)",
        of_user: "delivery_id IN (SELECT d.id FROM webhook_deliveries d \
                  JOIN events e ON e.id = d.event_id WHERE e.user_id = $1)",
        after: Some((
            "delivery_id IN (SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND id >= $2)",
            "delivery_id IN (SELECT d.id FROM webhook_deliveries d \
             JOIN events e ON e.id = d.event_id WHERE e.user_id = $1 AND d.id >= $2)",
        )),
    },
    Table {
        name: "erasures",
        key: &["user_id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
    },
    Table {
        name: "erasure_revocations",
        key: &["id"],
        of_tenant: "tenant_id = $1",
        of_user: "user_id = $1",
        after: None,
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

/// A value borrowed from a row as read: hashed and compared without a copy.
#[derive(Debug, Clone, Copy)]
enum ValueRef<'a> {
    Null,
    Integer(i64),
    Text(&'a str),
}

/// What every row of one page shares: its columns' names (in the table's order), which are
/// integers, the order the hash takes them in, and where the primary key's columns are. Made
/// once a page, so a row is hashed and keyed without a copy of its names or values.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    names: std::sync::Arc<[String]>,
    integer: Vec<bool>,
    /// Column positions by name order (the hash's order).
    sorted: Vec<usize>,
    /// The primary key's column positions, in key order.
    key: Vec<usize>,
}

impl Shape {
    pub(crate) fn of(table: &Table, row: &AnyRow) -> StoreResult<Self> {
        let names: Vec<String> = row.columns().iter().map(|c| c.name().to_owned()).collect();
        // A NULL's column kind is only needed to bind it for PostgreSQL, which reports every
        // column's declared type; SQLite takes a NULL of any kind.
        let integer = row
            .columns()
            .iter()
            .map(|c| {
                let kind: AnyTypeInfoKind = c.type_info().kind();
                kind.is_integer()
            })
            .collect();
        let mut sorted: Vec<usize> = (0..names.len()).collect();
        sorted.sort_by(|a, b| names[*a].cmp(&names[*b]));
        let key = table
            .key
            .iter()
            .map(|k| {
                names
                    .iter()
                    .position(|n| n == k)
                    .ok_or_else(|| StoreError::corrupt(format!("{}: no column {k}", table.name)))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            names: names.into(),
            integer,
            sorted,
            key,
        })
    }

    /// Column `at` of `row`, decoded by its declared kind first (a failed decode builds an
    /// error, and a frozen move decodes every row of the subject).
    fn value<'r>(&self, row: &'r AnyRow, at: usize) -> StoreResult<ValueRef<'r>> {
        let integer = || row.try_get::<Option<i64>, _>(at).ok();
        let text = || row.try_get::<Option<&str>, _>(at).ok();
        let value = if self.integer[at] {
            integer()
                .map(|v| v.map(ValueRef::Integer))
                .or_else(|| text().map(|v| v.map(ValueRef::Text)))
        } else {
            text()
                .map(|v| v.map(ValueRef::Text))
                .or_else(|| integer().map(|v| v.map(ValueRef::Integer)))
        };
        match value {
            Some(Some(value)) => Ok(value),
            Some(None) => Ok(ValueRef::Null),
            None => Err(StoreError::corrupt(format!(
                "column {} ({}) is neither an integer nor a text",
                self.names[at],
                row.columns()[at].type_info().name()
            ))),
        }
    }

    /// The row's primary key, encoded to compare and to look up ([`decode_key`] reverses it).
    pub(crate) fn key(&self, row: &AnyRow) -> StoreResult<Vec<u8>> {
        let mut out = Vec::with_capacity(40);
        for &at in &self.key {
            encode_ref(&mut out, self.value(row, at)?);
        }
        Ok(out)
    }

    /// SHA-256 of the row's canonical encoding: every column by name order, its name, kind and
    /// value. Backend-independent: values as decoded (an integer, a text or NULL), never the
    /// backend's bytes. `buf` is scratch space, reused across rows.
    pub(crate) fn hash(&self, row: &AnyRow, buf: &mut Vec<u8>) -> StoreResult<[u8; 32]> {
        buf.clear();
        for &at in &self.sorted {
            encode_text(buf, &self.names[at]);
            encode_ref(buf, self.value(row, at)?);
        }
        Ok(Sha256::digest(&buf[..]).into())
    }

    /// The row as owned values, to write into another cell.
    pub(crate) fn owned(&self, row: &AnyRow) -> StoreResult<StoredRow> {
        let mut values = Vec::with_capacity(self.names.len());
        for at in 0..self.names.len() {
            values.push(match self.value(row, at)? {
                ValueRef::Null => Value::Null {
                    integer: self.integer[at],
                },
                ValueRef::Integer(n) => Value::Integer(n),
                ValueRef::Text(s) => Value::Text(s.to_owned()),
            });
        }
        Ok(StoredRow {
            names: self.names.clone(),
            values,
        })
    }
}

/// One row: its columns' names (shared by the rows of a page) and values, in the table's order.
#[derive(Debug, Clone)]
pub(crate) struct StoredRow {
    pub names: std::sync::Arc<[String]>,
    pub values: Vec<Value>,
}

impl StoredRow {
    /// SHA-256 of the canonical encoding, as [`Shape::hash`] makes it of a row as read.
    #[cfg(test)]
    pub(crate) fn hash(&self) -> [u8; 32] {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|a, b| self.names[*a].cmp(&self.names[*b]));
        let mut bytes = Vec::new();
        for at in order {
            encode_text(&mut bytes, &self.names[at]);
            encode_value(&mut bytes, &self.values[at]);
        }
        Sha256::digest(&bytes).into()
    }
}

fn encode_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

fn encode_ref(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.push(b'N'),
        ValueRef::Integer(n) => {
            out.push(b'I');
            out.extend_from_slice(&n.to_be_bytes());
        }
        ValueRef::Text(s) => {
            out.push(b'T');
            encode_text(out, s);
        }
    }
}

#[cfg(test)]
fn encode_value(out: &mut Vec<u8>, value: &Value) {
    encode_ref(
        out,
        match value {
            Value::Null { .. } => ValueRef::Null,
            Value::Integer(n) => ValueRef::Integer(*n),
            Value::Text(s) => ValueRef::Text(s),
        },
    );
}

/// The key values of an encoded primary key (a key column is never NULL).
pub(crate) fn decode_key(table: &Table, mut bytes: &[u8]) -> StoreResult<Vec<Value>> {
    let bad = || StoreError::corrupt(format!("{}: a malformed row key", table.name));
    let mut out = Vec::with_capacity(table.key.len());
    while let Some((&tag, rest)) = bytes.split_first() {
        match tag {
            b'I' => {
                let (n, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
                out.push(Value::Integer(i64::from_be_bytes(*n)));
                bytes = rest;
            }
            b'T' => {
                let (len, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
                let len = usize::try_from(u64::from_be_bytes(*len)).map_err(|_| bad())?;
                if rest.len() < len {
                    return Err(bad());
                }
                let (text, rest) = rest.split_at(len);
                let text = std::str::from_utf8(text).map_err(|_| bad())?;
                out.push(Value::Text(text.to_owned()));
                bytes = rest;
            }
            _ => return Err(bad()),
        }
    }
    if out.len() != table.key.len() {
        return Err(bad());
    }
    Ok(out)
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
    let cond = match table.after {
        Some((of_tenant, of_user_after)) if after => {
            if of_user {
                of_user_after
            } else {
                of_tenant
            }
        }
        _ => condition(table, of_user),
    };
    let mut sql = format!("SELECT * FROM {} WHERE ({cond})", table.name);
    if after {
        sql.push_str(" AND ");
        sql.push_str(&keyset(table.key, 2));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&table.key.join(", "));
    sql.push_str(&format!(" LIMIT {limit}"));
    sql
}

/// `SELECT *` of the subject's rows with one of `keys` primary keys (`$2…`, the key's columns a
/// key after another): the rows a pass wrote or deleted, read back.
pub(crate) fn by_keys_sql(table: &Table, of_user: bool, keys: usize) -> String {
    let mut n = 1;
    let mut ors = Vec::with_capacity(keys);
    for _ in 0..keys {
        let ands: Vec<String> = table
            .key
            .iter()
            .map(|c| {
                n += 1;
                format!("{c} = ${n}")
            })
            .collect();
        ors.push(format!("({})", ands.join(" AND ")));
    }
    format!(
        "SELECT * FROM {} WHERE ({}) AND ({})",
        table.name,
        condition(table, of_user),
        ors.join(" OR ")
    )
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
    fn a_child_tables_page_takes_the_parents_from_its_position_on() {
        assert_eq!(
            page_sql(&TABLES[5], false, true, 500),
            "SELECT * FROM transaction_changes WHERE (connection_id IN (SELECT id FROM connections \
             WHERE tenant_id = $1 AND id >= $2)) AND ((connection_id > $2) OR (connection_id = $2 \
             AND seq > $3)) ORDER BY connection_id, seq LIMIT 500"
        );
        assert_eq!(
            page_sql(&TABLES[5], false, false, 500),
            "SELECT * FROM transaction_changes WHERE (connection_id IN (SELECT id FROM connections \
             WHERE tenant_id = $1)) ORDER BY connection_id, seq LIMIT 500"
        );
        for table in TABLES {
            let composite = table.key.len() > 1;
            assert_eq!(table.after.is_some(), composite, "{}", table.name);
        }
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
        let row = |columns: &[(&str, Value)]| StoredRow {
            names: columns.iter().map(|(n, _)| (*n).to_owned()).collect(),
            values: columns.iter().map(|(_, v)| v.clone()).collect(),
        };
        let columns = vec![
            ("id", Value::Text("x".into())),
            ("n", Value::Integer(1)),
            ("z", Value::Null { integer: true }),
        ];
        let a = row(&columns);
        let mut reversed = columns.clone();
        reversed.reverse();
        assert_eq!(a.hash(), row(&reversed).hash());
        let mut c = columns.clone();
        c[1].1 = Value::Integer(2);
        assert_ne!(a.hash(), row(&c).hash());
        let mut d = columns.clone();
        d[2].1 = Value::Text(String::new());
        assert_ne!(a.hash(), row(&d).hash());
    }

    #[test]
    fn an_encoded_key_decodes_to_its_values() {
        let mut bytes = Vec::new();
        encode_value(&mut bytes, &Value::Text("con_1".into()));
        encode_value(&mut bytes, &Value::Integer(-7));
        assert_eq!(
            decode_key(&TABLES[5], &bytes).unwrap(),
            vec![Value::Text("con_1".into()), Value::Integer(-7)]
        );
        assert!(decode_key(&TABLES[5], &bytes[..bytes.len() - 1]).is_err());
        assert!(
            decode_key(&TABLES[0], &bytes).is_err(),
            "one value too many"
        );
    }

    #[test]
    fn rows_are_read_back_by_key_within_the_subject() {
        assert_eq!(
            by_keys_sql(&TABLES[5], false, 2),
            "SELECT * FROM transaction_changes WHERE (connection_id IN (SELECT id FROM connections \
             WHERE tenant_id = $1)) AND ((connection_id = $2 AND seq = $3) OR (connection_id = $4 \
             AND seq = $5))"
        );
    }
}
