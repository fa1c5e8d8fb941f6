//! `kontor migrate`: apply pending migrations to the control database and every cell, seal
//! the key canary with the configured key-encryption keys, and convert what earlier releases
//! stored in plaintext and only the keys can convert (users' `external_id`, idempotency keys).

use std::io::Write;

use anyhow::bail;

use crate::config::{Config, security};
use crate::wiring::{self, Stores};

pub async fn run(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    let applied = stores.migrate().await?;
    // The key canary is sealed with the keys of the deployment; without them here (a migration
    // job given only database credentials), the first `serve` or `worker` seals it.
    if security::require_shared_keys(config).is_ok()
        && security::require_kek_outside_data_dir(config).is_ok()
    {
        let hub = wiring::hub(config, &stores)?;
        let status = wiring::seal_key_canary(&hub).await?;
        if !status.is_ok() {
            stores.close().await;
            bail!("migrations applied, but {}", status.explain());
        }
        let converted = convert_plaintext(&hub).await;
        if let Err(err) = converted {
            stores.close().await;
            return Err(err);
        }
    } else {
        tracing::info!(
            "no keys configured here: the key canary is sealed, and plaintext left by earlier \
             releases converted, by a `kontor migrate` with the keys"
        );
    }
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

/// `kontor migrate --plan`: the migrations each database lacks, read from its migration table;
/// nothing is applied, no lease is taken and the key canary is left alone.
pub async fn plan(config: &Config, json: bool) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    let mut plan = Vec::new();
    for (name, db) in stores.all() {
        let status = db
            .migration_status()
            .await
            .map_err(|e| anyhow::anyhow!("reading the migrations of the {name} database: {e}"))?;
        let pending: Vec<(i64, String)> = status
            .pending()
            .into_iter()
            .map(|v| (v, db.migration_description(v).unwrap_or_default()))
            .collect();
        plan.push((name, pending));
    }
    stores.close().await;
    let mut out = std::io::stdout().lock();
    if json {
        let report: serde_json::Map<String, serde_json::Value> = plan
            .into_iter()
            .map(|(name, pending)| {
                let list = pending
                    .into_iter()
                    .map(|(version, description)| {
                        serde_json::json!({"version": version, "description": description})
                    })
                    .collect();
                (name, serde_json::Value::Array(list))
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Object(report))?;
    } else {
        for (name, pending) in plan {
            if pending.is_empty() {
                writeln!(out, "{name}: up to date")?;
            } else {
                writeln!(out, "{name}: would apply")?;
                for (version, description) in pending {
                    writeln!(out, "  {version} {description}")?;
                }
            }
        }
    }
    Ok(())
}

/// The data steps that need the keys. Each is resumable: a run that stops is carried on by the
/// next `kontor migrate`.
pub async fn convert_plaintext(hub: &kontor_service::Hub) -> anyhow::Result<()> {
    let users = hub
        .seal_external_ids()
        .await
        .map_err(|e| anyhow::anyhow!("sealing external ids: {e}"))?;
    let keys = hub
        .convert_idempotency_keys()
        .await
        .map_err(|e| anyhow::anyhow!("converting idempotency keys: {e}"))?;
    let statuses = hub.merge_legacy_payment_statuses().await.map_err(|e| {
        anyhow::anyhow!("merging the payment status executing into authorised: {e}")
    })?;
    if users + keys + statuses > 0 {
        tracing::info!(
            users_sealed = users,
            idempotency_keys_converted = keys,
            payment_statuses_merged = statuses,
            "plaintext left by an earlier release converted"
        );
    }
    Ok(())
}
