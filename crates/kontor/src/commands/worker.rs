//! `kontor worker`: the background jobs on their own (scheduled syncs, expiry, notices, payment
//! progress, webhook delivery), for deployments that run them apart from the API. With
//! `worker.listen` set it serves `/healthz`, `/readyz` and `/metrics` there, so that it can be
//! probed and scraped like the API. Stops on SIGTERM after the current round and the webhook
//! attempts in flight.

use std::time::Duration;

use anyhow::{Context, bail};
use kontor_api::OpsState;
use kontor_service::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, security};
use crate::wiring::{self, Stores};
use kontor_worker::Worker;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    security::require_reachable_public_url(config)?;
    security::require_shared_keys(config)?;
    security::require_kek_outside_data_dir(config)?;
    security::warn_if_development(config);
    let stores = Stores::open(config)?;
    if config.database.migrate_on_start {
        stores.migrate().await?;
    }
    let hub = wiring::hub(config, &stores)?;
    // With keys that cannot open the data the worker does not start (its /readyz would only
    // say so; a worker that started would fail on every sealed record).
    match wiring::seal_key_canary(&hub).await {
        Ok(status) if !status.is_ok() => bail!("{}", status.explain()),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %format!("{err:#}"), "key canary not checked"),
    }
    super::serve::trim_memory_when_idle();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ops = match config.worker.listen {
        Some(address) => Some(serve_ops(config, hub.clone(), address, stop_rx.clone()).await?),
        None => None,
    };
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    Worker::new(hub, wiring::worker_settings(config))
        .run(stop_rx)
        .await;
    if let Some(ops) = ops {
        let _ = tokio::time::timeout(Duration::from_secs(5), ops).await;
    }
    stores.close().await;
    Ok(())
}

/// Binds `address` and serves the operations endpoints until `stop` turns true.
async fn serve_ops(
    config: &Config,
    hub: Hub,
    address: std::net::SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding worker.listen {address}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "serving /healthz, /readyz and /metrics");
    let app = kontor_api::ops_router(OpsState {
        hub,
        readiness_timeout: Duration::from_millis(config.server.readiness_timeout_ms),
    });
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "the worker's operations listener failed");
        }
    }))
}
