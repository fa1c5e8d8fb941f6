//! A small builder for queries whose conditions depend on the request (list filters): it numbers
//! the `$n` placeholders and binds the values in order, so filters never splice values into SQL.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
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

    pub(crate) fn build(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.as_str()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(value) => query.bind(value.as_str()),
                Arg::Int(value) => query.bind(*value),
            };
        }
        query
    }
}
