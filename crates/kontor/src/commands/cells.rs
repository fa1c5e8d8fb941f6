//! `kontor cells list`: every configured cell with its region, state, dedicated tenants, users,
//! the row counts of its big tables and its size on disk where the backend tells. Reads only;
//! a cell that cannot be read is shown with its error, and the command then exits non-zero.

use std::io::Write;

use kontor_store::GaugeStore;

use crate::config::Config;
use crate::wiring::Stores;

pub async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let resolved = config.resolved_cells()?;
    let stores = Stores::open(config)?;
    let mut rows = Vec::new();
    let mut failed = 0;
    for cell in &resolved {
        let store = stores
            .cell_list
            .iter()
            .find(|(id, _)| id == &cell.id)
            .map(|(_, store)| store.clone());
        let size = match store {
            Some(store) => store.size().await.map_err(|err| {
                stores
                    .site(&format!("cell:{}", cell.id.segment()))
                    .explain(&err)
            }),
            None => Err(anyhow::anyhow!("not opened")),
        };
        if size.is_err() {
            failed += 1;
        }
        rows.push((cell, size));
    }
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(cell, size)| {
                let mut row = serde_json::json!({
                    "cell": cell.id.to_string(),
                    "region": cell.id.region().to_string(),
                    "state": cell.policy.state.as_str(),
                    "tenants": cell.policy.tenants,
                });
                match size {
                    Ok(size) => {
                        row["users"] = size.users.into();
                        row["rows"] = size
                            .rows
                            .iter()
                            .map(|(table, n)| ((*table).to_owned(), serde_json::json!(n)))
                            .collect::<serde_json::Map<_, _>>()
                            .into();
                        row["bytes"] = size.bytes.into();
                    }
                    Err(err) => row["error"] = format!("{err:#}").into(),
                }
                row
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else {
        writeln!(
            out,
            "{:<10} {:<7} {:<9} {:>9} {:>12} {:>14} {:>10} {:>12}  tenants",
            "cell", "region", "state", "users", "connections", "transactions", "payments", "bytes"
        )?;
        for (cell, size) in &rows {
            let tenants = if cell.policy.tenants.is_empty() {
                "(shared)".to_owned()
            } else {
                cell.policy
                    .tenants
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            match size {
                Ok(size) => {
                    let count = |table: &str| {
                        size.rows
                            .iter()
                            .find(|(t, _)| *t == table)
                            .map_or(0, |(_, n)| *n)
                    };
                    let bytes = size.bytes.map_or("-".to_owned(), |b| b.to_string());
                    writeln!(
                        out,
                        "{:<10} {:<7} {:<9} {:>9} {:>12} {:>14} {:>10} {:>12}  {tenants}",
                        cell.id.to_string(),
                        cell.id.region().to_string(),
                        cell.policy.state.as_str(),
                        size.users,
                        count("connections"),
                        count("transactions"),
                        count("payments"),
                        bytes,
                    )?;
                }
                Err(err) => writeln!(
                    out,
                    "{:<10} {:<7} {:<9} unavailable: {err:#}  {tenants}",
                    cell.id.to_string(),
                    cell.id.region().to_string(),
                    cell.policy.state.as_str(),
                )?,
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} cell(s) could not be read");
    }
    Ok(())
}
