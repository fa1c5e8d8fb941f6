//! Strict mode (`--require-tpp-certificates`): what a bank demands of a licensed third party.
//! HTTPS with client certificates chained to the sandbox's TPP CA and carrying the PSD2 role
//! for the service; Berlin Group request signatures; UK FAPI client authentication
//! (`private_key_jwt`, `tls_client_auth`), signed request objects, certificate-bound tokens,
//! `x-jws-signature`; and the sandbox's own PS256 `id_token`s with a JWKS. Off by default.
//!
//! Times here are wall-clock time, not the simulated clock: certificates, JWT `exp`/`nbf`/`iat`
//! and `http://openbanking.org.uk/iat` are real-world artefacts the TPP makes with its own
//! clock.

pub mod bg_guard;
pub mod certs;
pub mod clients;
mod der;
pub mod dn;
mod http_signature;
mod issue;
pub mod jose;
pub mod pki;
mod pki_dir;
pub mod qc;
pub mod request_object;
mod rsa_keygen;
pub(crate) mod startup;
pub mod tls;
pub mod uk_guard;
mod uk_jws;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use rustls_pki_types::UnixTime;

pub use certs::{CertProblem, TppCertificate, TrustStore, Usage};
pub use clients::{TokenAuthMethod, UkClient, UkClientRegistration};
pub use issue::{Issued, TppSubject};
pub use jose::SigningKey;
pub use pki::{PkiError, SandboxPki, TppIdentity, TppInfo};
pub use qc::PspRole;
pub use rsa_keygen::{KeyGenError, generate_rsa_pkcs8};
pub use tls::PeerCertificates;

/// How far a TPP's clock may run ahead of the sandbox's, in seconds.
pub const CLOCK_SKEW: i64 = 60;

/// Wall-clock time in Unix seconds.
pub fn wall_now() -> i64 {
    UnixTime::now().as_secs().try_into().unwrap_or(i64::MAX)
}

/// Strict mode's shared state: whom to trust, the sandbox's signing key, the UK client
/// registrations of every bank, and the one-time identifiers (`jti`) already seen.
#[derive(Debug)]
pub struct TppGate {
    pub trust: TrustStore,
    pub signing_key: SigningKey,
    clients: Mutex<BTreeMap<(String, String), UkClient>>,
    seen: Mutex<BTreeMap<String, i64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl TppGate {
    pub fn new(trust: TrustStore, signing_key: SigningKey) -> Self {
        Self {
            trust,
            signing_key,
            clients: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// The TLS client certificate of a request, judged now.
    pub fn judge_tls(
        &self,
        peer: Option<&PeerCertificates>,
    ) -> Result<TppCertificate, CertProblem> {
        let chain = peer.map(|p| p.0.as_slice()).unwrap_or_default();
        self.trust.judge(chain, Usage::TlsClient, UnixTime::now())
    }

    /// A signing certificate (DER), judged now.
    pub fn judge_seal(&self, der: &[u8]) -> Result<TppCertificate, CertProblem> {
        let chain = [rustls_pki_types::CertificateDer::from(der)];
        self.trust.judge(&chain, Usage::Seal, UnixTime::now())
    }

    /// Records a one-time identifier until `until` (Unix seconds); false if it was seen
    /// before (a replay). Expired records are dropped as new ones come.
    pub fn first_use(&self, key: String, until: i64) -> bool {
        let now = wall_now();
        let mut seen = lock(&self.seen);
        seen.retain(|_, expiry| *expiry >= now - CLOCK_SKEW);
        if seen.contains_key(&key) {
            return false;
        }
        seen.insert(key, until.max(now) + CLOCK_SKEW);
        true
    }

    pub fn client(&self, bank_id: &str, client_id: &str) -> Option<UkClient> {
        lock(&self.clients)
            .get(&(bank_id.to_string(), client_id.to_string()))
            .cloned()
    }

    pub fn clients(&self, bank_id: &str) -> Vec<UkClient> {
        lock(&self.clients)
            .iter()
            .filter(|((bank, _), _)| bank == bank_id)
            .map(|(_, client)| client.clone())
            .collect()
    }

    /// Adds or replaces a client registration at a bank.
    pub fn register(&self, bank_id: &str, client: UkClient) {
        lock(&self.clients).insert((bank_id.to_string(), client.client_id.clone()), client);
    }

    pub fn unregister(&self, bank_id: &str, client_id: &str) -> bool {
        lock(&self.clients)
            .remove(&(bank_id.to_string(), client_id.to_string()))
            .is_some()
    }
}
