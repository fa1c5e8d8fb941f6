//! How many round trips a cell's typed read costs, counted on the wire: a proxy between the
//! store and PostgreSQL counts the `Sync` messages the client sends (each ends one exchange the
//! client waits for). PostgreSQL only, without TLS between the store and the proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kontor_domain::{Region, TenantId};
use kontor_store::{StoredUser, UserStore};
use kontor_store_sql::{PoolSettings, SqlCell};
use kontor_test_support::{Backend, TestStores};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::users::new_user;

/// The frontend messages a client sent, as far as this counter needs them: the first message is
/// the startup packet (no type byte), every later one a type byte and a length.
#[derive(Default)]
struct Frontend {
    buffer: Vec<u8>,
    started: bool,
}

impl Frontend {
    /// Takes `bytes` in and answers how many `Sync` messages they completed.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.buffer.extend_from_slice(bytes);
        let mut syncs = 0;
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.buffer.len() < header {
                return syncs;
            }
            let at = header - 4;
            let length = u32::from_be_bytes([
                self.buffer[at],
                self.buffer[at + 1],
                self.buffer[at + 2],
                self.buffer[at + 3],
            ]) as usize;
            let whole = at + length;
            if self.buffer.len() < whole {
                return syncs;
            }
            if self.started && self.buffer[0] == b'S' {
                syncs += 1;
            }
            self.started = true;
            self.buffer.drain(..whole);
        }
    }
}

/// A TCP proxy to `upstream` counting the `Sync` messages of every client.
pub struct SyncCounter {
    pub address: String,
    syncs: Arc<AtomicUsize>,
}

impl SyncCounter {
    async fn start(upstream: String) -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), upstream)
    }

    /// The proxy on `listener`.
    pub fn serve(listener: TcpListener, upstream: String) -> Self {
        let address = listener.local_addr().unwrap().to_string();
        let syncs = Arc::new(AtomicUsize::new(0));
        let counted = syncs.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let mut frontend = Frontend::default();
                    let mut chunk = vec![0u8; 16 * 1024];
                    while let Ok(n) = client_read.read(&mut chunk).await {
                        if n == 0 {
                            break;
                        }
                        counted.fetch_add(frontend.feed(&chunk[..n]), Ordering::SeqCst);
                        if server_write.write_all(&chunk[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { address, syncs }
    }

    fn syncs(&self) -> usize {
        self.syncs.load(Ordering::SeqCst)
    }
}

/// The `host:port` of a PostgreSQL URL.
pub fn server_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .to_owned()
}

/// `url` with its server replaced by `address`, and TLS off (the proxy reads the bytes).
pub fn through(url: &str, address: &str) -> String {
    let server = server_of(url);
    let url = url.split('?').next().unwrap_or(url);
    format!("{}?sslmode=disable", url.replacen(&server, address, 1))
}

/// The `uk` cell's URL, and a user of a new tenant created in it.
pub async fn uk_user(stores: &TestStores, external: &str) -> (String, TenantId, StoredUser) {
    let url = stores.url("uk").to_owned();
    let tenant = TenantId::generate();
    let user = stores
        .cell("uk")
        .create_user(&new_user(&tenant, external, "uk"))
        .await
        .unwrap();
    (url, tenant, user)
}

/// A typed read (`reads.rs`) is one exchange with the server once its statement is prepared: its
/// connection goes back to the pool without a ping. (sqlx's pool pings every connection it takes
/// back, a second exchange per read.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_read_is_one_round_trip() {
    let Some(stores) = TestStores::new(Backend::Postgres, "round_trips::typed", &["uk"]).await
    else {
        return;
    };
    let (url, tenant, user) = &uk_user(&stores, "counted").await;

    let proxy = SyncCounter::start(server_of(url)).await;
    let cell = SqlCell::open(
        Region::parse("uk").unwrap(),
        &through(url, &proxy.address),
        &PoolSettings::default(),
    )
    .unwrap();
    // The first read connects and prepares the statement.
    cell.user(tenant, &user.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proxy.syncs();
    for _ in 0..10 {
        assert_eq!(cell.user(tenant, &user.id).await.unwrap().id, user.id);
    }
    // Anything the pool sends after a read (sqlx's ping on release runs in a task of its own).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(proxy.syncs() - before, 10, "exchanges for 10 reads");
}
