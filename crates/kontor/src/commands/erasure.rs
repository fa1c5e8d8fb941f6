//! `kontor erasure replay`: applies the erasure ledger to every cell and key store again, so
//! that a cell or key store restored from a backup holds no erased user. Needs no keys: it reads
//! ids from the control database and deletes.

use std::io::Write;

use crate::config::Config;
use crate::wiring::Stores;
use anyhow::Context;

pub async fn replay(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    if config.database.migrate_on_start {
        // Restored databases may be behind the binary (and `migrate` replays the ledger too).
        stores.migrate().await?;
    } else {
        for (name, db) in stores.all() {
            let status = db
                .migration_status()
                .await
                .with_context(|| format!("reading the {name} database's migrations"))?;
            if !status.is_current() {
                anyhow::bail!(
                    "the {name} database has migrations pending: run `kontor migrate` (which replays the ledger as well)"
                );
            }
        }
    }
    let report =
        kontor_service::replay_erasures(stores.control.as_ref(), &stores.cells, &stores.key_stores)
            .await
            .context("replaying the erasure ledger")?;
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let body = serde_json::json!({
            "entries": report.entries,
            "keys_shredded": report.keys_shredded,
            "users_erased": report.users_erased,
            "unserved": report.unserved,
        });
        writeln!(out, "{body}")?;
    } else {
        writeln!(out, "ledger entries:           {}", report.entries)?;
        writeln!(out, "keys found and shredded:  {}", report.keys_shredded)?;
        writeln!(out, "users found and erased:   {}", report.users_erased)?;
        writeln!(out, "entries of other regions: {}", report.unserved)?;
    }
    Ok(())
}
