//! The HTTP server: an accept loop over hyper's HTTP/1 connections, written out (rather than
//! `axum::serve`) for what slow or idle clients must not be able to do — hold connections and
//! file descriptors for ever. Each connection has a watchdog ([`activity`]): a request head must
//! arrive in full within the header timeout (counted from the connection's start or the first
//! byte of the next request), and a kept-alive connection that carries nothing for the idle
//! timeout is closed. At most `connection_limit` connections are open at once; beyond it the
//! loop stops accepting, so new connections wait in the kernel's listen backlog (holding no
//! descriptor of ours) until one closes. Handlers see the peer address as
//! `ConnectInfo<SocketAddr>`, as with `into_make_service_with_connect_info`.
//!
//! While the process drains before stopping ([`Draining`]), every response says
//! `Connection: close`, so that kept-alive connections end one by one while this node still
//! answers, instead of all at once when it stops accepting.

mod activity;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Whether this process is draining: told to stop, it first fails `/readyz` (so that load
/// balancers and Kubernetes take it out of rotation) while it goes on serving. Shared by the
/// readiness check and the accept loop; once started, a drain does not end.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        if !self.0.swap(true, Ordering::AcqRel) {
            metrics::gauge!("kontor_draining").set(1.0);
        }
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What a server has beyond its settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// While draining, responses close their connections.
    pub draining: Draining,
    /// Terminate TLS with the reloader's current configuration. The handshake must complete
    /// within the header timeout; handlers see the client's certificate, when it presented one,
    /// as a [`tls::ClientCertificate`] extension.
    pub tls: Option<Arc<tls::TlsReloader>>,
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
    serve_with(listener, router, settings, Options::default(), shutdown).await;
}

/// [`serve`], with [`Options`].
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    options: Options,
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
            options.clone(),
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
    options: Options,
    watcher: Watcher,
) {
    let _ = stream.set_nodelay(true);
    metrics::gauge!("kontor_http_connections_open").increment(1);
    let draining = options.draining;
    match options.tls {
        None => {
            let connection = Connection {
                peer,
                certificate: None,
                router,
                settings,
                draining,
            };
            connection.serve(stream, watcher).await;
        }
        Some(tls) => {
            // A client that never finishes its handshake is a slow client like any other.
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
            match tokio::time::timeout(settings.header_read_timeout, acceptor.accept(stream)).await
            {
                Ok(Ok(stream)) => {
                    let certificate = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| tls::ClientCertificate::of(leaf.as_ref()));
                    let connection = Connection {
                        peer,
                        certificate,
                        router,
                        settings,
                        draining,
                    };
                    connection.serve(stream, watcher).await;
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    metrics::counter!("kontor_http_connections_closed_total", "reason" => "tls_handshake_failed")
                        .increment(1);
                }
                Err(_) => {
                    tracing::debug!("closing a connection whose TLS handshake took too long");
                    metrics::counter!("kontor_http_connections_closed_total", "reason" => "tls_handshake_timeout")
                        .increment(1);
                }
            }
        }
    }
    metrics::gauge!("kontor_http_connections_open").decrement(1);
    drop(permit);
}

/// One accepted connection, after its TLS handshake if any.
struct Connection {
    peer: SocketAddr,
    certificate: Option<tls::ClientCertificate>,
    router: Router,
    settings: Arc<ServerSettings>,
    draining: Draining,
}

impl Connection {
    async fn serve<I>(self, io: I, watcher: Watcher)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Self {
            peer,
            certificate,
            router,
            settings,
            draining,
        } = self;
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched::new(io, activity.clone()));
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(certificate) = certificate {
                request.extensions_mut().insert(certificate);
            }
            let busy = requests.begin_request();
            let router = router.clone();
            let draining = draining.clone();
            async move {
                let mut response = router.oneshot(request).await;
                drop(busy);
                if draining.is_draining()
                    && let Ok(response) = &mut response
                {
                    response.headers_mut().insert(
                        hyper::header::CONNECTION,
                        hyper::header::HeaderValue::from_static("close"),
                    );
                }
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
    }
}
