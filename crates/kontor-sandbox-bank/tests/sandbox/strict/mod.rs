//! Strict mode (`--require-tpp-certificates`): HTTPS with TPP client certificates, Berlin Group
//! request signatures, UK FAPI client authentication, request objects and JWS — every refusal
//! the issue lists, in each standard's error format, and the happy paths of both standards.

mod bg;
mod pki_dir;
mod tpp;
mod uk;
mod uk_flows;
mod uk_refusals;

use std::sync::LazyLock;

use kontor_sandbox_bank::SandboxPki;

use crate::common::{Harness, builder};
use tpp::{Spec, TestCa, TestCert, client};

/// The sandbox's own PKI (server CA, its signing key), made once per test run: RSA key
/// generation takes a while.
static SANDBOX_PKI: LazyLock<SandboxPki> = LazyLock::new(|| SandboxPki::generate().unwrap());

/// The test TPP's CA, which the sandbox is told to trust, and one it is not.
pub static TEST_CA: LazyLock<TestCa> = LazyLock::new(|| TestCa::new("Kontor Test TPP CA"));
pub static OTHER_CA: LazyLock<TestCa> = LazyLock::new(|| TestCa::new("Somebody Else's CA"));

/// The test TPP's certificates with both roles.
pub static QWAC: LazyLock<TestCert> =
    LazyLock::new(|| TEST_CA.issue(&Spec::qwac(&["PSP_AI", "PSP_PI"])));
pub static QSEAL: LazyLock<TestCert> =
    LazyLock::new(|| TEST_CA.issue(&Spec::qseal(&["PSP_AI", "PSP_PI"])));

pub struct Strict {
    pub h: Harness,
}

impl Strict {
    /// A strict sandbox and a client presenting `QWAC`; `None` when the specs are missing.
    pub async fn start() -> Option<Strict> {
        let pki = SANDBOX_PKI.clone().trust_tpp_ca(TEST_CA.der.clone());
        let mut h = Harness::start_with(builder().require_tpp_certificates(pki)).await?;
        h.client = client(SANDBOX_PKI.server_ca_der(), Some(&QWAC));
        Some(Strict { h })
    }

    /// A client presenting another certificate (or none).
    pub fn client_with(&self, identity: Option<&TestCert>) -> reqwest::Client {
        client(SANDBOX_PKI.server_ca_der(), identity)
    }

    /// Makes the harness's client present `identity` (or no certificate) from now on.
    pub fn use_identity(&mut self, identity: Option<&TestCert>) {
        self.h.client = self.client_with(identity);
    }
}
