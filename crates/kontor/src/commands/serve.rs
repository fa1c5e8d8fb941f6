//! `kontor serve`: the API server. On SIGTERM or Ctrl-C it first drains: `/readyz` answers 503
//! `draining` and every response closes its connection, while requests are still served, for
//! `server.drain_seconds` (a second signal cuts it short); the embedded worker starts no new
//! round. Then it stops accepting connections, lets in-flight requests and the worker's current
//! steps finish (up to `server.shutdown_grace_seconds`; a step cut off is resumed by another
//! worker when its lease lapses), and exits 0.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kontor_api::server::tls::TlsReloader;
use kontor_worker::Worker;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{Config, security};
use crate::wiring::{self, Stores};

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
    let draining = state.draining().clone();
    let app = kontor_api::router(state);

    let tls = match &config.server.tls {
        Some(tls) => {
            let (reloader, summary) =
                TlsReloader::load(tls.files()).context("server.tls: the certificate files")?;
            tracing::info!(
                serial = %summary.serial,
                subject = %summary.subject,
                not_after = summary.not_after,
                client_ca = tls.client_ca.is_some(),
                client_auth = ?tls.client_auth,
                "TLS certificate loaded"
            );
            let reloader = Arc::new(reloader);
            tokio::spawn(watch_certificate(
                reloader.clone(),
                Duration::from_secs(tls.reload_interval_seconds),
            ));
            Some(reloader)
        }
        None => None,
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, tls = tls.is_some(), regions = ?stores.cells.regions().collect::<Vec<_>>(), "serving");
    trim_memory_when_idle();

    // `drain`: readiness fails and the worker stops taking work; `stop`: the listener closes.
    let (drain_tx, drain_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let drain_time = Duration::from_secs(config.server.drain_seconds);
    let options = kontor_api::server::Options {
        draining: draining.clone(),
        tls,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        draining.start();
        let _ = drain_tx.send(true);
        if !drain_time.is_zero() {
            tracing::info!(
                drain_seconds = drain_time.as_secs(),
                "draining: /readyz fails while requests are still served"
            );
            tokio::select! {
                () = tokio::time::sleep(drain_time) => {}
                () = shutdown_signal() => tracing::info!("a second signal: the drain is cut short"),
            }
        }
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
        tokio::spawn(worker.run(drain_rx))
    });
    let server =
        kontor_api::server::serve_with(listener, app, config.server.http(), options, graceful);
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

/// How often the memory trimmer looks whether requests came in, and how often it trims while
/// none do (see `kontor-memory`).
const TRIM_TICK: Duration = Duration::from_millis(500);
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Gives the memory the allocator holds free back to the system whenever the API went quiet
/// (`kontor serve`, `kontor worker` and `kontor demo`).
pub(crate) fn trim_memory_when_idle() {
    if let Err(error) =
        kontor_memory::spawn_idle_trimmer(kontor_api::requests_started, TRIM_TICK, TRIM_EVERY)
    {
        tracing::warn!(%error, "cannot start the memory trimmer; idle memory stays as high as it peaked");
    }
}

/// Reads the certificate files every `interval`, and at once on SIGHUP; new contents go into use
/// for new handshakes, bad ones are refused (logged, counted) and the certificate in use stays.
async fn watch_certificate(reloader: Arc<TlsReloader>, interval: Duration) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGHUP");
            None
        }
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let force = tokio::select! {
            _ = tick.tick() => false,
            () = hup => {
                tracing::info!("SIGHUP: reading the TLS certificate files");
                true
            }
        };
        let reloader = reloader.clone();
        // File reads and key parsing: off the async threads.
        let _ = tokio::task::spawn_blocking(move || reloader.reload(force)).await;
    }
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
