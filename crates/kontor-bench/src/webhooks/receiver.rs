//! The webhook receiver the benchmark delivers to: a minimal HTTP/1.1 server in this process
//! (keep-alive, `Content-Length` bodies, an immediate `204`), which notes when each webhook-id
//! first arrived and how many requests came in all. It does as little as possible, so that what
//! the benchmark measures is the hub's side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const ANSWER: &[u8] = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
/// Refuses heads or bodies beyond this: the hub's are a few hundred bytes.
const LIMIT: usize = 1 << 20;

#[derive(Debug, Default)]
struct Seen {
    first: HashMap<String, SystemTime>,
    requests: u64,
}

#[derive(Debug)]
pub struct Receiver {
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the webhook receiver")?;
        let port = listener.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, shared.clone()));
            }
        });
        Ok(Self { port, seen, server })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Distinct webhook-ids received.
    pub fn distinct(&self) -> usize {
        self.seen.lock().map(|s| s.first.len()).unwrap_or(0)
    }

    pub fn requests(&self) -> u64 {
        self.seen.lock().map(|s| s.requests).unwrap_or(0)
    }

    /// When each webhook-id first arrived.
    pub fn arrivals(&self) -> HashMap<String, SystemTime> {
        self.seen
            .lock()
            .map(|s| s.first.clone())
            .unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn connection(stream: TcpStream, seen: Arc<Mutex<Seen>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        let mut id = None;
        let mut close = false;
        let mut head = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head += n,
            }
            if head > LIMIT {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "webhook-id" => id = Some(value.to_owned()),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        if length > LIMIT {
            return;
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let at = SystemTime::now();
        if let Ok(mut seen) = seen.lock() {
            seen.requests += 1;
            if let Some(id) = id {
                seen.first.entry(id).or_insert(at);
            }
        }
        if reader.get_mut().write_all(ANSWER).await.is_err() || close {
            return;
        }
    }
}
