//! Slow and idle clients cannot hold the server's connections: a request head that does not
//! arrive in full within the header timeout, and a kept-alive connection idle past the idle
//! timeout, are closed, while everyone else keeps being answered; beyond the connection limit,
//! new connections wait until one closes. Timeouts are short here; the bounds the tests wait
//! for are generous.

use std::time::Duration;

use kontor_api::server::ServerSettings;
use kontor_test_support::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout configured below.
const BOUND: Duration = Duration::from_secs(30);

fn settings(connection_limit: usize) -> ServerSettings {
    ServerSettings {
        header_read_timeout: Duration::from_secs(1),
        keep_alive_timeout: Duration::from_secs(2),
        connection_limit,
    }
}

/// Waits until the server closes the connection (end of stream, or a reset).
async fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    waited.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_request_heads_are_closed_while_others_are_answered() {
    let app = TestApp::builder()
        .server_settings(settings(1000))
        .spawn()
        .await;
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: kontor\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // The server keeps answering everyone else meanwhile.
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let closed = futures_util::future::join_all(slow.into_iter().map(closed_by_server)).await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} of 500 slow connections still open");
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn idle_kept_alive_connections_are_closed() {
    let app = TestApp::builder()
        .server_settings(settings(1000))
        .spawn()
        .await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kontor\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(
        closed_by_server(stream).await,
        "an idle connection stayed open"
    );
}

#[tokio::test]
async fn beyond_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let app = TestApp::builder()
        .server_settings(settings(3))
        .spawn()
        .await;
    // Three silent clients take every slot (until the header timeout closes them).
    let mut silent = Vec::new();
    for _ in 0..3 {
        let stream = std::net::TcpStream::connect(app.address).unwrap();
        stream.set_nonblocking(true).unwrap();
        silent.push(stream);
    }
    let response = tokio::time::timeout(BOUND, app.http.get(app.url("/healthz")).send())
        .await
        .expect("the waiting connection was never served")
        .unwrap();
    assert_eq!(response.status(), 200);
    // It was served only once the silent ones had been closed: they are at their end already.
    for mut stream in silent {
        let mut buf = [0u8; 16];
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => {}
            Err(err) if err.kind() != std::io::ErrorKind::WouldBlock => {}
            other => panic!("a silent connection was still open: {other:?}"),
        }
    }
}
