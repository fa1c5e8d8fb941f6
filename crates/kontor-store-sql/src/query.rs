//! A small builder for queries whose conditions depend on the request (list filters): it numbers
//! the `$n` placeholders and binds the values in order, so filters never splice values into SQL.

use kontor_store::{ListFilter, Page, PageKey, StoreResult};
use sqlx::Any;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;

use crate::database::SqlDatabase;
use crate::dialect::Dialect;
use crate::reads::{Decoder, Param};

/// A `LIMIT` argument.
pub(crate) fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// `LIMIT` for a page of `limit` rows: one more, so that [`Page::from_rows`] can tell whether
/// another page follows.
pub(crate) fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// `items` cut into runs of at most `most` (a power of two), then of half that, a quarter, … 1:
/// the text of a multi-row statement depends only on its run's length, so batches of any size
/// share a few texts per statement, which stay in sqlx's per-connection cache of prepared
/// statements instead of being prepared anew for every batch size.
pub(crate) fn runs<T>(mut items: &[T], most: usize) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut size = most.max(1);
    while !items.is_empty() {
        while size > items.len() {
            size /= 2;
        }
        let (run, rest) = items.split_at(size);
        runs.push(run);
        items = rest;
    }
    runs
}

/// Rows per multi-row statement of `params` bound parameters a row on `dialect`: a power of two
/// (see [`runs`]), at most `most`, within the backend's limit on bound parameters.
pub(crate) fn rows_per_statement(dialect: Dialect, params: usize, most: usize) -> usize {
    let fit = (dialect.max_bound_params() / params.max(1)).clamp(1, most.max(1));
    1 << fit.ilog2()
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

#[derive(Debug, Default)]
pub(crate) struct Filtered {
    sql: String,
    args: Vec<Arg>,
}

impl Filtered {
    pub(crate) fn new(base: &str) -> Self {
        Self {
            sql: base.to_owned(),
            args: Vec::new(),
        }
    }

    /// The placeholder for a new argument.
    pub(crate) fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// Appends SQL text; values only ever go through [`Filtered::arg`].
    pub(crate) fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Appends `$a, $b, …` for `values`, bound in order (the inside of an `IN (…)` list).
    pub(crate) fn push_list(&mut self, values: impl IntoIterator<Item = String>) {
        for (i, value) in values.into_iter().enumerate() {
            let p = self.arg(Arg::Text(value));
            self.push(if i == 0 { "" } else { ", " });
            self.push(&p);
        }
    }

    pub(crate) fn build(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(value) => query.bind(value.as_str()),
                Arg::Int(value) => query.bind(*value),
                Arg::OptText(value) => query.bind(value.as_deref()),
                Arg::OptInt(value) => query.bind(*value),
            };
        }
        query
    }

    /// Runs the query on the database's typed read path (`reads.rs`).
    pub(crate) async fn typed_rows<T>(
        &self,
        db: &SqlDatabase,
        decode: &Decoder<T>,
    ) -> StoreResult<Vec<T>> {
        let params: Vec<Param<'_>> = self
            .args
            .iter()
            .map(|arg| match arg {
                Arg::Text(value) => Param::Text(value),
                Arg::Int(value) => Param::Int(*value),
                Arg::OptText(value) => value.as_deref().map_or(Param::Null, Param::Text),
                Arg::OptInt(value) => value.map_or(Param::Null, Param::Int),
            })
            .collect();
        db.typed_rows(&self.sql, &params, decode).await
    }

    /// Adds the conditions of a list filter on a table with `user_id`, `status`, `bank_id` and
    /// `created_at`; `status` is the filter's status as stored.
    pub(crate) fn list_filter<S>(&mut self, filter: &ListFilter<S>, status: Option<&str>) {
        if let Some(user) = &filter.user {
            let p = self.arg(Arg::Text(user.to_string()));
            self.push(&format!(" AND user_id = {p}"));
        }
        if let Some(status) = status {
            let p = self.arg(Arg::Text(status.to_owned()));
            self.push(&format!(" AND status = {p}"));
        }
        if let Some(bank) = &filter.bank {
            let p = self.arg(Arg::Text(bank.to_string()));
            self.push(&format!(" AND bank_id = {p}"));
        }
        if let Some(after) = filter.created_after {
            let p = self.arg(Arg::Int(after.unix_micros()));
            self.push(&format!(" AND created_at >= {p}"));
        }
        if let Some(before) = filter.created_before {
            let p = self.arg(Arg::Int(before.unix_micros()));
            self.push(&format!(" AND created_at < {p}"));
        }
    }

    /// Ends the query with keyset paging in `(created_at, id)` order, `prefix` naming the
    /// table (`""` or `"d."`): rows after `after`, at most one more than `limit`.
    pub(crate) fn page_by_creation(&mut self, prefix: &str, after: Option<&PageKey>, limit: usize) {
        if let Some(key) = after {
            let sort = self.arg(Arg::Int(key.sort));
            let id = self.arg(Arg::Text(key.id.clone()));
            self.push(&format!(
                " AND ({prefix}created_at, {prefix}id) > ({sort}, {id})"
            ));
        }
        let fetch = self.arg(Arg::Int(page_limit(limit)));
        self.push(&format!(
            " ORDER BY {prefix}created_at, {prefix}id LIMIT {fetch}"
        ));
    }

    /// Runs a query ended by [`Filtered::page_by_creation`] and makes the page.
    pub(crate) async fn fetch_page<T>(
        &self,
        db: &SqlDatabase,
        limit: usize,
        from_row: impl Fn(&AnyRow) -> StoreResult<T>,
        key_of: impl Fn(&T) -> PageKey,
    ) -> StoreResult<Page<T>> {
        let items = db
            .fetch_all(|| self.build())
            .await?
            .iter()
            .map(from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, limit, key_of))
    }
}

#[cfg(test)]
mod tests {
    use super::{rows_per_statement, runs};
    use crate::dialect::Dialect;

    #[test]
    fn statements_stay_within_each_backends_bound_parameters() {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            for params in [1usize, 6, 14, 999, 5000] {
                let rows = rows_per_statement(dialect, params, 256);
                assert!(rows.is_power_of_two() && rows <= 256, "{rows}");
                assert!(rows * params <= dialect.max_bound_params() || rows == 1);
            }
        }
        assert_eq!(rows_per_statement(Dialect::Sqlite, 14, 256), 64);
        assert_eq!(rows_per_statement(Dialect::Postgres, 14, 256), 256);
    }

    #[test]
    fn runs_have_few_lengths_and_cover_everything_in_order() {
        for most in [1usize, 64, 128] {
            for n in 0..300usize {
                let items: Vec<usize> = (0..n).collect();
                let cut = runs(&items, most);
                let lengths: Vec<usize> = cut.iter().map(|r| r.len()).collect();
                assert!(
                    lengths.iter().all(|l| l.is_power_of_two() && *l <= most),
                    "{n}: {lengths:?}"
                );
                assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "{n}: {lengths:?}");
                assert_eq!(cut.concat(), items);
            }
        }
    }
}
