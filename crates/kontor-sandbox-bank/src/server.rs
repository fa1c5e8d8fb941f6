//! The accept loop. It is hand-written (rather than `axum::serve`) for one fault: closing a
//! connection without any response, which needs the handler to reach its own connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

/// Put into every request's extensions: notifying it drops the connection the request came on.
#[derive(Debug, Clone)]
pub struct ConnectionKill(pub Arc<Notify>);

/// How long shutdown waits for requests in flight before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then drains connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
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
                let kill = Arc::new(Notify::new());
                let tagged = ConnectionKill(kill.clone());
                let service = router.clone().map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(tagged.clone());
                    request
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    tokio::select! {
                        _ = connection => {}
                        () = kill.notified() => {}
                    }
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
