//! The in-process API: build a sandbox, start it on a listener, and control it from tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::app::App;
use crate::config::{BankConfig, ConfigError, default_banks, load_banks_file, validate};
use crate::core::clock::{ClockError, SimClock};
use crate::running::RunningSandbox;
use crate::state::Bank;
use crate::state::persist::{self, StateFileError};
use crate::tpp::{SandboxPki, startup};

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
    #[error(transparent)]
    Pki(#[from] crate::tpp::PkiError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("strict mode is off: there are no client registrations to manage")]
    StrictModeOff,
    #[error("client registration refused: {0}")]
    Registration(String),
    #[error(transparent)]
    StateFile(#[from] crate::state::persist::StateFileError),
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
    pki: Option<SandboxPki>,
    tls_names: Vec<String>,
    state_file: Option<PathBuf>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            banks: default_banks(),
            start: None,
            frozen: true,
            public_url: None,
            pki: None,
            tls_names: Vec::new(),
            state_file: None,
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

    /// Strict mode: HTTPS with a certificate of `pki`'s server CA, TPP certificates of its TPP
    /// CA(s) on every API call, signed requests and FAPI client behaviour (see [`crate::tpp`]).
    pub fn require_tpp_certificates(mut self, pki: SandboxPki) -> Self {
        self.pki = Some(pki);
        self
    }

    /// More host names or IP addresses for the HTTPS certificate (besides `localhost`,
    /// `127.0.0.1`, `::1`, the listen address and the public URL's host).
    pub fn tls_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.tls_names.extend(names);
        self
    }

    /// Keeps the state (consents, authorisations, tokens, payments, the clock) in this file, so
    /// that a restarted sandbox goes on where it stopped: loaded at start if it exists, saved
    /// after every change (see [`crate::state::persist`]). The file's seed must match; its clock
    /// wins over [`Self::start_time`]. Without it (the default) the state lives in memory only.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
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
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        let root_url = match &self.public_url {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_string();
                match url::Url::parse(&trimmed) {
                    Ok(u) if u.scheme() == "http" || u.scheme() == "https" => trimmed,
                    _ => return Err(SandboxError::PublicUrl(url.clone())),
                }
            }
            None => format!("{scheme}://{}", reachable(addr)),
        };
        let mut saved = match &self.state_file {
            Some(path) => persist::load(path)?,
            None => None,
        };
        let state_error = |reason: String| {
            let path = self.state_file.as_deref().unwrap_or(Path::new(""));
            SandboxError::StateFile(StateFileError::new(path, reason))
        };
        if let Some(saved) = &saved {
            if saved.seed != self.seed {
                return Err(state_error(format!(
                    "it was written by a sandbox with seed {}, this one has seed {}",
                    saved.seed, self.seed
                )));
            }
            if let Some(gone) = saved
                .banks
                .keys()
                .find(|id| !self.banks.iter().any(|b| &b.id == *id))
            {
                return Err(state_error(format!(
                    "it holds bank `{gone}`, which this sandbox does not run"
                )));
            }
        }
        let clock = Arc::new(match &saved {
            Some(saved) => SimClock::restore(saved.clock, self.frozen),
            None => SimClock::new(
                self.start.unwrap_or_else(OffsetDateTime::now_utc),
                self.frozen,
            ),
        });
        let mut pki = self.pki;
        let (gate, tls) = match &pki {
            Some(pki) => {
                let (gate, tls) =
                    startup::prepare(pki, reachable(addr), &root_url, &self.tls_names)?;
                (Some(gate), Some(tls))
            }
            None => (None, None),
        };
        let banks: Vec<Arc<Bank>> = self
            .banks
            .into_iter()
            .map(|config| {
                let base = format!("{root_url}/{}", config.id);
                Arc::new(Bank::new(
                    config,
                    base,
                    clock.clone(),
                    self.seed,
                    gate.clone(),
                ))
            })
            .collect();
        if let Some(saved) = &mut saved {
            for bank in &banks {
                if let Some(state) = saved.banks.remove(bank.id()) {
                    bank.restore(state).map_err(&state_error)?;
                }
            }
        }
        if let (Some(pki), Some(gate)) = (&mut pki, &gate) {
            startup::register_demo_clients(pki, gate, &banks)?;
        }
        let app = Arc::new(App {
            clock,
            banks,
            seed: self.seed,
            root_url,
            traces: crate::web::traces::TraceLog::default(),
            state_file: self.state_file,
            save_lock: std::sync::Mutex::new(()),
        });
        // Written at once: a new file keeps the clock's origin (the generated history depends
        // on it), and an unwritable folder shows now rather than at the first change.
        app.save()?;
        let router = crate::web::router(&app);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::serve(listener, router, tls, async {
            let _ = rx.await;
        }));
        Ok(RunningSandbox {
            app,
            addr,
            pki,
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
