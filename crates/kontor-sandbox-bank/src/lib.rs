//! Kontor's sandbox bank: simulated banks that speak Berlin Group NextGenPSD2 1.3.8 and UK Open
//! Banking Read/Write 3.1.11 as the specs in `shared/specs` define them.
//!
//! One process serves several banks under their own base paths (by default `sonnenbank` (DE) and
//! `banque-lumiere` (FR), both Berlin Group, and `thames-bank` (GB), UK Open Banking), with
//! consents, redirect and decoupled SCA on real HTML pages, accounts, balances and 24 months of
//! deterministic transactions, payments that move money through RCVD → ACTC → ACSC, the rules a
//! real bank enforces (consent expiry, daily limits, idempotency), and faults on demand. The
//! crate's `README.md` lists banks, users, endpoints, page element ids and the admin API.
//!
//! # Using it from tests
//!
//! Connector tests start a sandbox in-process on a free port and talk HTTP to it:
//!
//! ```no_run
//! use kontor_sandbox_bank::{FaultConfig, SandboxBank};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = SandboxBank::builder()
//!     .seed(7)
//!     .start_time(time::macros::datetime!(2026-03-02 09:00 UTC))
//!     .start_local()
//!     .await?;
//!
//! // Berlin Group: append `/v1/...` to the base URL.
//! let consents_url = format!("{}/v1/consents", sandbox.base_url("sonnenbank").unwrap());
//! // UK: the bank's endpoints and the TPP's OAuth2 client credentials.
//! let uk = sandbox.bank("thames-bank").unwrap();
//! let creds = sandbox.uk_credentials("thames-bank").unwrap();
//! # let _ = (consents_url, uk, creds);
//!
//! // Users `alice`, `bob`, `carol`; password `sandbox`; one-time code `123456`.
//! // Their accounts (IBANs and resource ids do not depend on the seed):
//! let accounts = sandbox.accounts("sonnenbank")?;
//! # let _ = accounts;
//!
//! // Time only moves when told to (the builder freezes the clock by default).
//! sandbox.advance_clock(time::Duration::hours(4))?;
//!
//! // Faults, consent expiry and revocation, decoupled approvals.
//! sandbox.set_faults("sonnenbank", FaultConfig { fail_next: 1, ..FaultConfig::default() })?;
//! # let (consent_id, authorisation_id) = ("cns-…", "auth-…");
//! sandbox.expire_consent("sonnenbank", consent_id)?;
//! sandbox.approve_authorisation("sonnenbank", authorisation_id, None)?;
//!
//! // The payment ledger: one record per payment, with its idempotency key and whether it
//! // moved money.
//! let executed = sandbox.payments().iter().filter(|p| p.executed).count();
//! # let _ = executed;
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Redirect SCA is driven like a browser would: follow `_links.scaRedirect` (Berlin Group) or
//! `/oauth2/authorize` (UK), post the forms `#login-form` (`username`, `password`),
//! `#otp-form` (`otp`) and, where shown, `#accounts-form` (`account`), and read the `303` back
//! to the TPP's URL. Decoupled SCA is approved at `{base}/app` or with
//! [`RunningSandbox::approve_authorisation`].
//!
//! # Strict mode
//!
//! [`SandboxBuilder::require_tpp_certificates`] (`--require-tpp-certificates`) serves HTTPS and
//! makes every bank refuse what a licensed third party would not send: no or foreign or expired
//! TLS client certificates, missing PSD2 roles, unsigned or tampered Berlin Group requests, UK
//! clients without `private_key_jwt`/`tls_client_auth`, unsigned or replayed request objects,
//! tokens used over another certificate, bad `x-jws-signature`s. See [`tpp`] and the README.
//!
//! # State across restarts
//!
//! [`SandboxBuilder::state_file`] (`--state-file`) keeps consents, authorisations, tokens,
//! payments and the clock in a JSON file, loaded at start and replaced crash-safely after every
//! change, so that a restarted sandbox still knows what its clients hold; see
//! [`state::persist`]. Without it the state lives in memory only.
//!
//! # Running it as a program
//!
//! The `kontor` binary exposes [`SandboxArgs`] as `kontor sandbox-bank` and calls [`run`], which
//! prints `<bank-id> <standard> <base-url>` per bank (or one JSON line with `--json`) and serves
//! until its shutdown future resolves.

mod app;
mod bg;
mod builder;
mod cli;
pub mod config;
pub mod core;
pub mod data;
pub mod report;
mod running;
mod server;
pub mod state;
pub mod tpp;
mod uk;
mod web;

pub use builder::{DEFAULT_SEED, SandboxBank, SandboxBuilder, SandboxError};
pub use cli::{SandboxArgs, run};
pub use config::{BankConfig, Standard, Theme, default_banks};
pub use data::users::{ONE_TIME_CODE, PASSWORD, SandboxUser, USERS};
pub use report::{AccountInfo, BankInfo, PaymentRecord};
pub use running::{RunningSandbox, TppCredentials};
pub use state::faults::FaultConfig;
pub use state::payment::PaymentStatus;
pub use tpp::{SandboxPki, TokenAuthMethod, UkClientRegistration};
