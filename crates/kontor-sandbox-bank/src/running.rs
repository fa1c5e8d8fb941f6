//! A sandbox that is serving, as tests and the CLI control it: URLs and credentials, the clock,
//! faults, consents, decoupled approvals, the payment ledger, strict mode's PKI and clients.

use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::builder::SandboxError;
use crate::report::{self, AccountInfo, BankInfo, PaymentRecord};
use crate::state::Bank;
use crate::state::faults::FaultConfig;
use crate::tpp::{SandboxPki, UkClient, UkClientRegistration};
use crate::web::admin::{ConsentAction, change_consent, decide};

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
    pub(crate) app: Arc<App>,
    pub(crate) addr: SocketAddr,
    pub(crate) pki: Option<SandboxPki>,
    pub(crate) shutdown: Option<oneshot::Sender<()>>,
    pub(crate) task: Option<JoinHandle<()>>,
}

impl RunningSandbox {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Strict mode's PKI (server CA, TPP CA, demo TPP), if strict mode is on.
    pub fn pki(&self) -> Option<&SandboxPki> {
        self.pki.as_ref()
    }

    /// Registers (or replaces) a UK client at a bank in strict mode.
    pub fn register_uk_client(
        &self,
        bank_id: &str,
        registration: UkClientRegistration,
    ) -> Result<(), SandboxError> {
        let bank = self.bank_state(bank_id)?;
        let gate = bank.tpp.as_ref().ok_or(SandboxError::StrictModeOff)?;
        let client =
            UkClient::from_registration(gate, registration).map_err(SandboxError::Registration)?;
        gate.register(bank_id, client);
        Ok(())
    }

    /// The sandbox root URL (`http://127.0.0.1:PORT`, `https://…` in strict mode), without a
    /// trailing slash.
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

    /// The TPP's OAuth2 client credentials at a UK Open Banking bank (in strict mode the
    /// secret is not accepted: the client authenticates with its key or certificate).
    pub fn uk_credentials(&self, bank_id: &str) -> Option<TppCredentials> {
        let info = self.bank(bank_id)?;
        let secret = self.app.bank(bank_id)?.config.client_secret.clone();
        Some(TppCredentials {
            client_id: info.client_id?,
            client_secret: secret,
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
        let now = self.app.clock.advance(by)?;
        self.save_state()?;
        Ok(now)
    }

    /// The file the state is kept in ([`crate::SandboxBuilder::state_file`]), if any.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.app.state_file.as_deref()
    }

    /// Saves the state now if it changed (the HTTP API and the methods here save by
    /// themselves; this is for a caller that changed banks directly).
    pub fn save_state(&self) -> Result<(), SandboxError> {
        self.app.save_if_changed()?;
        Ok(())
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
            self.save_state()
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
        let redirect = decide(self.bank_state(bank_id)?, authorisation_id, true, psu)
            .map(|o| o.redirect)
            .map_err(SandboxError::Authorisation)?;
        self.save_state()?;
        Ok(redirect)
    }

    /// Rejects an authorisation as its PSU would.
    pub fn reject_authorisation(
        &self,
        bank_id: &str,
        authorisation_id: &str,
    ) -> Result<Option<String>, SandboxError> {
        let redirect = decide(self.bank_state(bank_id)?, authorisation_id, false, None)
            .map(|o| o.redirect)
            .map_err(SandboxError::Authorisation)?;
        self.save_state()?;
        Ok(redirect)
    }

    /// Stops accepting connections, lets requests in flight finish (up to 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Err(err) = self.app.save_if_changed() {
            tracing::error!(error = %err, "the sandbox could not save its state at shutdown");
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
