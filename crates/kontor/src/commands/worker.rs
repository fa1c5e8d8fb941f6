//! `kontor worker`: the background jobs on their own (scheduled syncs, expiry, notices, payment
//! progress, webhook delivery), for deployments that run them apart from the API. Stops on
//! SIGTERM after the current round and the webhook attempts in flight.

use tokio::sync::watch;

use anyhow::bail;

use crate::config::{Config, security};
use crate::wiring::{self, Stores};
use kontor_worker::Worker;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    security::require_shared_keys(config)?;
    security::require_kek_outside_data_dir(config)?;
    security::warn_if_development(config);
    let stores = Stores::open(config)?;
    if config.database.migrate_on_start {
        stores.migrate().await?;
    }
    let hub = wiring::hub(config, &stores)?;
    // A worker has no readiness probe: with keys that cannot open the data it does not start.
    match wiring::seal_key_canary(&hub).await {
        Ok(status) if !status.is_ok() => bail!("{}", status.explain()),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %format!("{err:#}"), "key canary not checked"),
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    Worker::new(hub, wiring::worker_settings(config))
        .run(stop_rx)
        .await;
    stores.close().await;
    Ok(())
}
