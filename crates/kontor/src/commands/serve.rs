//! `kontor serve`: the API server. On SIGTERM or Ctrl-C it stops accepting connections, lets
//! in-flight requests finish (up to `server.shutdown_grace_seconds`), and exits.

use std::time::Duration;

use anyhow::Context;
use kontor_worker::Worker;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, security};
use crate::wiring::{self, Stores};

pub async fn run(config: &Config) -> anyhow::Result<()> {
    security::require_shared_keys(config)?;
    security::warn_if_development(config);
    let stores = Stores::open(config)?;
    if config.database.migrate_on_start {
        stores.migrate().await?;
    }
    let hub = wiring::hub(config, &stores)?;
    // Wrong keys keep the process up, not ready: `/readyz` says why.
    match wiring::seal_key_canary(&hub).await {
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "the key canary is checked again by /readyz");
        }
        // Plaintext an earlier release left (external ids, idempotency keys) is converted in the
        // background once the keys are known to be right; `kontor migrate` does the same.
        Ok(status) if status.is_ok() && config.database.migrate_on_start => {
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(err) = super::migrate::convert_plaintext(&hub).await {
                    tracing::warn!(error = %format!("{err:#}"), "converting plaintext; `kontor migrate` retries");
                }
            });
        }
        Ok(_) => {}
    }
    let state = wiring::app_state(config, hub.clone())?;
    let app = kontor_api::router(state);

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, regions = ?stores.cells.regions().collect::<Vec<_>>(), "serving");

    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let graceful = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            tracing::info!("shutting down: finishing in-flight requests");
        }
    };
    let worker = config.worker.embedded.then(|| {
        let worker = Worker::new(hub.clone(), wiring::worker_settings(config));
        tokio::spawn(worker.run(stop_rx.clone()))
    });
    let server = kontor_api::server::serve(listener, app, config.server.http(), graceful);
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    tokio::select! {
        () = server => {},
        () = async {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(grace_seconds = grace.as_secs(), "grace period over; exiting with requests in flight"),
    }
    if let Some(worker) = worker {
        let _ = tokio::time::timeout(grace, worker).await;
    }
    stores.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM (how Kubernetes stops a pod) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
