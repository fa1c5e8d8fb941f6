//! The in-process API: build a sandbox, start it on a listener, and control it from tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::{BankConfig, ConfigError, default_banks, load_banks_file, validate};
use crate::core::clock::{ClockError, SimClock};
use crate::report::{self, AccountInfo, BankInfo, PaymentRecord};
use crate::state::Bank;
use crate::state::faults::FaultConfig;
use crate::web::admin::{ConsentAction, change_consent, decide};

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 42;

/// What can go wrong starting or controlling a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("no bank `{0}` in this sandbox")]
    UnknownBank(String),
    #[error("no consent `{0}` at this bank")]
    UnknownConsent(String),
    #[error("invalid faults: {0}")]
    Faults(String),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error("authorisation: {0}")]
    Authorisation(String),
    #[error("public URL `{0}` is not an absolute http(s) URL")]
    PublicUrl(String),
}

/// Entry point: `SandboxBank::builder()`.
#[derive(Debug)]
pub struct SandboxBank;

impl SandboxBank {
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }
}

/// Configures a sandbox before it starts. Defaults: the three built-in banks, seed 42, a
/// frozen clock starting now.
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    seed: u64,
    banks: Vec<BankConfig>,
    start: Option<OffsetDateTime>,
    frozen: bool,
    public_url: Option<String>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            banks: default_banks(),
            start: None,
            frozen: true,
            public_url: None,
        }
    }
}

impl SandboxBuilder {
    /// Seed of the generated transactions, ids and fault decisions.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Replaces the banks (the built-in ones are in [`crate::config::default_banks`]).
    pub fn banks(mut self, banks: Vec<BankConfig>) -> Self {
        self.banks = banks;
        self
    }

    /// Adds one bank to those configured so far.
    pub fn add_bank(mut self, bank: BankConfig) -> Self {
        self.banks.push(bank);
        self
    }

    /// Uses the banks of a `--banks` TOML file (with or without the built-in ones, as it says).
    pub fn banks_file(mut self, path: impl AsRef<Path>) -> Result<Self, SandboxError> {
        self.banks = load_banks_file(path.as_ref())?;
        Ok(self)
    }

    /// The simulated instant the sandbox starts at; the 24 months of history end here.
    pub fn start_time(mut self, at: OffsetDateTime) -> Self {
        self.start = Some(at);
        self
    }

    /// A frozen clock (the default here) only moves through `advance_clock`; an unfrozen one
    /// also follows wall time.
    pub fn frozen_clock(mut self, frozen: bool) -> Self {
        self.frozen = frozen;
        self
    }

    /// The URL clients use to reach the sandbox, if not `http://<bound address>`
    /// (behind a proxy, in a container).
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Binds `addr` and starts.
    pub async fn start(self, addr: SocketAddr) -> Result<RunningSandbox, SandboxError> {
        let listener = TcpListener::bind(addr).await?;
        self.start_on(listener).await
    }

    /// Starts on `127.0.0.1:0`, a free port, for tests.
    pub async fn start_local(self) -> Result<RunningSandbox, SandboxError> {
        self.start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts serving on an already bound listener.
    pub async fn start_on(self, listener: TcpListener) -> Result<RunningSandbox, SandboxError> {
        validate(&self.banks)?;
        let addr = listener.local_addr()?;
        let root_url = match self.public_url {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_string();
                match url::Url::parse(&trimmed) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => trimmed,
                    _ => return Err(SandboxError::PublicUrl(url)),
                }
            }
            None => format!("http://{}", reachable(addr)),
        };
        let clock = Arc::new(SimClock::new(
            self.start.unwrap_or_else(OffsetDateTime::now_utc),
            self.frozen,
        ));
        let banks = self
            .banks
            .into_iter()
            .map(|config| {
                let base = format!("{root_url}/{}", config.id);
                Arc::new(Bank::new(config, base, clock.clone(), self.seed))
            })
            .collect();
        let app = Arc::new(App {
            clock,
            banks,
            seed: self.seed,
            root_url,
        });
        let router = crate::web::router(&app);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::serve(listener, router, async {
            let _ = rx.await;
        }));
        Ok(RunningSandbox {
            app,
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// An address clients can connect to (`0.0.0.0` is where one listens, not where one goes).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// UK Open Banking client credentials of the TPP at one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TppCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    pub authorize_url: String,
}

/// A sandbox that is serving. Dropping it stops the server too; `shutdown` waits for it.
#[derive(Debug)]
pub struct RunningSandbox {
    app: Arc<App>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sandbox root URL (`http://127.0.0.1:PORT`), without a trailing slash.
    pub fn url(&self) -> &str {
        &self.app.root_url
    }

    /// The admin API root.
    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.app.root_url)
    }

    /// A bank's base URL (Berlin Group: append `/v1/...`; UK: see [`BankInfo`]).
    pub fn base_url(&self, bank_id: &str) -> Option<String> {
        self.app.bank(bank_id).map(|b| b.base_url.clone())
    }

    pub fn bank(&self, bank_id: &str) -> Option<BankInfo> {
        self.app.bank(bank_id).map(|b| report::bank_info(b))
    }

    pub fn banks(&self) -> Vec<BankInfo> {
        self.app
            .banks
            .iter()
            .map(|b| report::bank_info(b))
            .collect()
    }

    /// The TPP's OAuth2 client credentials at a UK Open Banking bank.
    pub fn uk_credentials(&self, bank_id: &str) -> Option<TppCredentials> {
        let info = self.bank(bank_id)?;
        Some(TppCredentials {
            client_id: info.client_id?,
            client_secret: info.client_secret?,
            token_url: info.token_url?,
            authorize_url: info.authorize_url?,
        })
    }

    /// Every payment of every bank, oldest first.
    pub fn payments(&self) -> Vec<PaymentRecord> {
        self.app
            .banks
            .iter()
            .flat_map(|b| report::payment_records(b))
            .collect()
    }

    /// The accounts of all users at one bank, with current balances.
    pub fn accounts(&self, bank_id: &str) -> Result<Vec<AccountInfo>, SandboxError> {
        Ok(report::accounts(self.bank_state(bank_id)?))
    }

    /// The simulated time now.
    pub fn now(&self) -> OffsetDateTime {
        self.app.clock.now()
    }

    /// Moves the simulated clock forward: payments settle, consents expire, new card payments
    /// appear, daily limits reset.
    pub fn advance_clock(&self, by: time::Duration) -> Result<OffsetDateTime, SandboxError> {
        Ok(self.app.clock.advance(by)?)
    }

    fn bank_state(&self, bank_id: &str) -> Result<&Arc<Bank>, SandboxError> {
        self.app
            .bank(bank_id)
            .ok_or_else(|| SandboxError::UnknownBank(bank_id.to_string()))
    }

    /// Replaces the faults of one bank (an empty `FaultConfig` clears them).
    pub fn set_faults(&self, bank_id: &str, faults: FaultConfig) -> Result<(), SandboxError> {
        faults.validate().map_err(SandboxError::Faults)?;
        self.bank_state(bank_id)?.faults().set(faults);
        Ok(())
    }

    pub fn clear_faults(&self, bank_id: &str) -> Result<(), SandboxError> {
        self.set_faults(bank_id, FaultConfig::default())
    }

    /// Ends a consent's validity now (Berlin Group `expired`; UK: its expiry passes).
    pub fn expire_consent(&self, bank_id: &str, consent_id: &str) -> Result<(), SandboxError> {
        self.consent_action(bank_id, consent_id, ConsentAction::Expire)
    }

    /// Revokes a consent as the PSU would at the bank (`revokedByPsu` / `Revoked`).
    pub fn revoke_consent(&self, bank_id: &str, consent_id: &str) -> Result<(), SandboxError> {
        self.consent_action(bank_id, consent_id, ConsentAction::Revoke)
    }

    fn consent_action(
        &self,
        bank_id: &str,
        consent_id: &str,
        action: ConsentAction,
    ) -> Result<(), SandboxError> {
        if change_consent(self.bank_state(bank_id)?, consent_id, action) {
            Ok(())
        } else {
            Err(SandboxError::UnknownConsent(consent_id.to_string()))
        }
    }

    /// Approves an authorisation as its PSU (decoupled: as if in the app). `psu` names the
    /// customer when nobody logged in yet. Returns the URL the PSU would be sent to, if any.
    pub fn approve_authorisation(
        &self,
        bank_id: &str,
        authorisation_id: &str,
        psu: Option<&str>,
    ) -> Result<Option<String>, SandboxError> {
        decide(self.bank_state(bank_id)?, authorisation_id, true, psu)
            .map(|o| o.redirect)
            .map_err(SandboxError::Authorisation)
    }

    /// Rejects an authorisation as its PSU would.
    pub fn reject_authorisation(
        &self,
        bank_id: &str,
        authorisation_id: &str,
    ) -> Result<Option<String>, SandboxError> {
        decide(self.bank_state(bank_id)?, authorisation_id, false, None)
            .map(|o| o.redirect)
            .map_err(SandboxError::Authorisation)
    }

    /// Stops accepting connections, lets requests in flight finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
