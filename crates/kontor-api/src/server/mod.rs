//! The HTTP server: an accept loop over hyper's HTTP/1 connections, written out (rather than
//! `axum::serve`) for what slow or idle clients must not be able to do — hold connections and
//! file descriptors for ever. Each connection has a watchdog ([`activity`]): a request head must
//! arrive in full within the header timeout (counted from the connection's start or the first
//! byte of the next request), and a kept-alive connection that carries nothing for the idle
//! timeout is closed. At most `connection_limit` connections are open at once; beyond it the
//! loop stops accepting, so new connections wait in the kernel's listen backlog (holding no
//! descriptor of ours) until one closes. Handlers see the peer address as
//! `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.

mod activity;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use activity::{Activity, Watched};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// How long a client may take to send a request's head, from the connection's start or the
    /// first byte of the next request on it.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may carry nothing before it is closed. Keep it above the
    /// idle timeout of whatever reuses connections in front (an ingress, a load balancer), so
    /// that it never sends a request on a connection this side is closing.
    pub keep_alive_timeout: Duration,
    /// Connections open at once.
    pub connection_limit: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(75),
            connection_limit: 1000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets requests
/// in flight finish and closes idle connections, and returns when every connection is closed.
/// Callers bound that wait with their grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.connection_limit.max(1)));
    let graceful = GracefulShutdown::new();
    let mut full = false;
    tokio::pin!(shutdown);
    loop {
        if slots.available_permits() == 0 && !full {
            tracing::warn!(
                limit = settings.connection_limit,
                "connection limit reached; new connections wait until one closes"
            );
        }
        full = slots.available_permits() == 0;
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(
            stream,
            peer,
            permit,
            router.clone(),
            settings.clone(),
            graceful.watcher(),
        ));
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    settings: Arc<ServerSettings>,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!("kontor_http_connections_open").increment(1);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let busy = requests.begin_request();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .max_headers(crate::request_limits::HEADER_COUNT_BACKSTOP)
        .serve_connection(io, service);
    let connection = watcher.watch(connection);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        reason = activity.expired(settings.header_read_timeout, settings.keep_alive_timeout) => {
            tracing::debug!(reason = reason.as_str(), "closing a slow or idle connection");
            metrics::counter!("kontor_http_connections_closed_total", "reason" => reason.as_str())
                .increment(1);
        }
    }
    metrics::gauge!("kontor_http_connections_open").decrement(1);
    drop(permit);
}
