//! The fixture against the sandbox in strict mode (`--require-tpp-certificates`): HTTPS with
//! the sandbox's server CA, the demo TPP's QWAC on every connection, and connectors that sign
//! with its QSealC as the hub's configuration would make them.

use std::sync::{Arc, LazyLock};

use kontor_banks::seal::SealKey;
use kontor_banks::uk_open_banking::TokenAuth;
use kontor_banks::{BankConnector, BankProfile, HttpSettings, Signing};
use kontor_domain::bank::{BankId, Standard};
use kontor_sandbox_bank::tpp::TppIdentity;
use kontor_sandbox_bank::{SandboxBank, SandboxPki};
use url::Url;

use super::browser::Browser;
use super::{Fixture, UK_BANK, test_settings};

/// RSA keys take seconds to make in a debug build: one PKI for the whole test binary.
pub static PKI: LazyLock<SandboxPki> = LazyLock::new(|| SandboxPki::generate().expect("PKI"));

pub fn demo() -> &'static TppIdentity {
    PKI.demo_tpp().expect("demo TPP")
}

/// The hub's signing configuration for the demo TPP: its QSealC, `kid` and JWS issuer left to
/// their defaults (the key's thumbprint, `OU/CN` of the certificate), as the sandbox registers.
pub fn demo_signing() -> Signing {
    let seal = SealKey::from_pem(
        demo().qseal.cert_pem().as_bytes(),
        demo().qseal.key_pem().as_bytes(),
    )
    .expect("seal");
    Signing {
        seal: Arc::new(seal),
        kid: None,
        jws_issuer: None,
    }
}

/// A client trusting the sandbox's server CA and presenting `identity` (a PEM certificate and
/// key), or no certificate.
pub fn https_client(identity: Option<&TppIdentity>) -> reqwest::Client {
    let _ = kontor_banks::build_client(&HttpSettings::default());
    let ca = reqwest::Certificate::from_pem(PKI.server_ca_pem().as_bytes()).expect("CA");
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.qwac.cert_pem(), identity.qwac.key_pem());
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("QWAC"));
    }
    builder.build().expect("client")
}

impl Fixture {
    /// A strict sandbox, and a connector to `bank` over mutual TLS with the demo TPP's QWAC,
    /// signing as configured by `signing` and `token_auth`.
    pub async fn strict(
        bank: &'static str,
        user: &'static str,
        signing: Option<&Signing>,
        token_auth: Option<TokenAuth>,
    ) -> Self {
        super::capture::install();
        let sandbox = SandboxBank::builder()
            .seed(7)
            .require_tpp_certificates(PKI.clone())
            .start_local()
            .await
            .expect("strict sandbox starts");
        let info = sandbox.bank(bank).expect("bank exists");
        let standard = if bank == UK_BANK {
            Standard::UkOpenBanking
        } else {
            Standard::BerlinGroup
        };
        let profile = BankProfile {
            id: BankId::parse(bank).unwrap(),
            name: info.name.clone(),
            country: info.country.clone(),
            standard,
            base_url: Url::parse(&info.base_url).unwrap(),
            client_id: info.client_id.clone(),
            client_secret: info.client_secret.clone(),
            decoupled_sca: standard == Standard::BerlinGroup,
        };
        let connector = kontor_banks::connector_with(
            profile.clone(),
            https_client(Some(demo())),
            test_settings(),
            signing,
            token_auth,
        );
        Self {
            sandbox,
            bank,
            user,
            profile,
            connector,
            browser: Browser::with_client(https_client(None)),
            admin: https_client(None),
        }
    }

    /// The mutual-TLS client the strict fixture's connector uses, for connectors of its own.
    pub fn mtls(&self) -> reqwest::Client {
        https_client(Some(demo()))
    }

    /// Replaces the fixture's connector.
    pub fn use_connector(&mut self, connector: Arc<dyn BankConnector>) {
        self.connector = connector;
    }
}
