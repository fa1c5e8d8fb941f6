//! `kontor worker`: the background jobs on their own (scheduled syncs, expiry, notices, payment
//! progress, webhook delivery), for deployments that run them apart from the API. Stops on
//! SIGTERM after the current round and the webhook attempts in flight.

use tokio::sync::watch;

use crate::config::Config;
use crate::wiring::{self, Stores};
use kontor_worker::Worker;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let stores = Stores::open(config)?;
    if config.database.migrate_on_start {
        stores.migrate().await?;
    }
    let hub = wiring::hub(config, &stores)?;
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
