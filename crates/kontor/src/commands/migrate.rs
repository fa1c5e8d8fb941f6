//! `kontor migrate`: apply pending migrations to the control database and every cell.

use std::io::Write;

use crate::config::Config;
use crate::wiring::Stores;

pub async fn run(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    let applied = stores.migrate().await?;
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let report: serde_json::Map<String, serde_json::Value> = applied
            .into_iter()
            .map(|(name, versions)| (name, serde_json::json!(versions)))
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(report))?;
    } else {
        for (name, versions) in applied {
            if versions.is_empty() {
                writeln!(out, "{name}: up to date")?;
            } else {
                let list: Vec<String> = versions.iter().map(i64::to_string).collect();
                writeln!(out, "{name}: applied {}", list.join(", "))?;
            }
        }
    }
    Ok(())
}
