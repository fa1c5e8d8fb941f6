//! The accept loop. It is hand-written (rather than `axum::serve`) for one fault: closing a
//! connection without any response, which needs the handler to reach its own connection; and
//! for strict mode's HTTPS, which hands each connection's client certificates to the requests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tpp::PeerCertificates;

/// Put into every request's extensions: notifying it drops the connection the request came on.
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub Arc<Notify>);

/// How long shutdown waits for requests in flight before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take over the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection (plain or TLS) until it ends or its kill switch is pulled.
fn spawn_connection<S>(watcher: Watcher, router: Router, stream: S, peer: Option<PeerCertificates>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = Arc::new(Notify::new());
    let tagged = ConnectionKill(kill.clone());
    let service = router.map_request(move |mut request: Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(tagged.clone());
        if let Some(peer) = &peer {
            request.extensions_mut().insert(peer.clone());
        }
        request
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    let connection = watcher.watch(connection);
    tokio::spawn(async move {
        tokio::select! {
            _ = connection => {}
            () = kill.notified() => {}
        }
    });
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains connections. With
/// `tls`, every connection is HTTPS and its client certificates go into each request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Some(acceptor) = tls.clone() else {
                    spawn_connection(graceful.watcher(), router.clone(), stream, None);
                    continue;
                };
                let watcher = graceful.watcher();
                let router = router.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let chain = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    spawn_connection(watcher, router, stream, Some(PeerCertificates(Arc::new(chain))));
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("connections still open after the drain timeout; closing them");
        }
    }
}
