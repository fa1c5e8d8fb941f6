//! A TCP proxy in front of the sandbox that can lose an answer: the request reaches the bank and
//! is carried out, but the connection is closed before the answer gets back. The sandbox's own
//! faults strike before a request is handled; this is the other case, the one idempotency keys
//! exist for.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

#[derive(Debug, Default)]
struct Shared {
    /// Request-line fragments whose next answer is to be lost, one each.
    armed: Mutex<Vec<String>>,
    lost: AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct LossyProxy {
    shared: Arc<Shared>,
    /// `upstream` with the proxy's host and port.
    pub base_url: Url,
}

impl LossyProxy {
    /// Listens on a free port and forwards every connection to `upstream`'s host and port.
    pub async fn start(upstream: &Url) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = format!(
            "{}:{}",
            upstream.host_str().unwrap(),
            upstream.port_or_known_default().unwrap()
        );
        let shared = Arc::new(Shared::default());
        let accept = Arc::clone(&shared);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = Arc::clone(&accept);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        relay(client, server, shared).await;
                    }
                });
            }
        });
        let mut base_url = upstream.clone();
        base_url.set_port(Some(port)).unwrap();
        Self { shared, base_url }
    }

    /// The answer to the next request whose request line contains `fragment` (say
    /// `"POST /sonnenbank/v1/payments/"`) is swallowed and the connection closed.
    pub fn lose_next_answer(&self, fragment: &str) {
        self.shared.armed.lock().unwrap().push(fragment.to_owned());
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.shared.lost.load(Ordering::SeqCst)
    }
}

/// HTTP/1.1 without pipelining: a client sends its next request on a connection only after the
/// previous answer arrived, so once an armed request goes up, whatever comes down answers it.
async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let lose = Arc::new(AtomicBool::new(false));
    let lose_up = Arc::clone(&lose);
    let up_shared = Arc::clone(&shared);
    let up = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = String::from_utf8_lossy(&buffer[..n]).into_owned();
            {
                let mut armed = up_shared.armed.lock().unwrap();
                if let Some(at) = armed.iter().position(|f| chunk.contains(f.as_str())) {
                    armed.remove(at);
                    lose_up.store(true, Ordering::SeqCst);
                }
            }
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if lose.load(Ordering::SeqCst) {
            shared.lost.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = client_write.shutdown().await;
    up.abort();
}
