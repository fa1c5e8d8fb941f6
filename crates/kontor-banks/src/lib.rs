//! Bank connectors. The hub talks to every bank through [`BankConnector`]; each standard has its
//! own implementation, written from the standard's specification: [`berlin_group`] for
//! NextGenPSD2 XS2A 1.3.8 and [`uk_open_banking`] for Read/Write API 3.1.11.
//!
//! A connector is stateless between calls: what it must remember about a consent (the bank's
//! consent id, OAuth tokens, a PKCE verifier) lives in a [`ConsentSession`], which the caller
//! keeps sealed at rest and hands back on every call. A connector may change the session (a
//! refreshed access token); the caller persists it when it changed. Payments work the same way
//! with a [`PaymentSession`]: initiation ([`BankConnector::initiate_payment`]), the user's
//! return ([`BankConnector::complete_payment`]) and polling
//! ([`BankConnector::payment_status`]), exactly once through the hub's idempotency key (see
//! [`PaymentRequest`]).
//!
//! Every call has a connect and a total timeout. Reads (and token requests, and consent
//! deletion, which is idempotent) are retried with jittered exponential backoff on connection
//! failures, timeouts, 5xx and short 429s, honouring `Retry-After` up to a cap; a request that
//! creates something at the bank is sent once. A caller with a person waiting bounds all of it
//! with [`deadline::within`]. What still fails comes back as a [`BankError`]
//! the hub can act on: transient ([`BankError::is_transient`]), the consent's state
//! (`ConsentExpired`, `ConsentInvalid`, `AccessExceeded`), or a bug on one side (`Rejected`,
//! `Protocol`). Logs name the bank, method, path template, status and duration, never tokens,
//! consent ids, account numbers, names or bodies.

pub mod deadline;
mod error;
mod http;
mod observed;
mod payments;
pub mod seal;
mod support;
mod types;

pub mod berlin_group;
pub mod uk_open_banking;

pub use error::{BankError, INVALID_REQUEST};
pub use http::certificate::{CertificateInfo, Psd2Attributes, PspRole};
pub use http::identity::{
    ClientIdentity, EXPIRY_METRIC, EXPIRY_WARNING_DAYS, ExpiryStatus, IdentityError, IdentityFiles,
    IdentityLabel, record_expiry,
};
pub use http::{
    BankTls, HttpSettings, TlsSetupError, build_client, build_client_with_identity,
    build_client_with_tls, read_ca_bundle,
};
pub use payments::{
    AccountReference, BankPaymentStatus, PayerAccount, PaymentCancellation, PaymentProduct,
    PaymentRequest, PaymentSession, PaymentStarted,
};
pub use types::*;

use async_trait::async_trait;
use kontor_domain::account::{Balance, BankAccount};
use kontor_domain::transaction::BankTransaction;

/// What a connector that offers account information only answers to payment calls.
fn payments_unsupported() -> BankError {
    BankError::Rejected {
        status: 501,
        code: "PAYMENTS_UNSUPPORTED".into(),
        message: "this bank connection does not initiate payments".into(),
    }
}

/// One bank, reached over one standard. Payment initiation is optional: a connector that does
/// not offer it keeps the default methods, which refuse.
#[async_trait]
pub trait BankConnector: Send + Sync + std::fmt::Debug {
    /// Creates the consent at the bank and says how the user authorises it.
    async fn start_consent(&self, request: &ConsentRequest) -> Result<ConsentStarted, BankError>;

    /// The user came back from the bank (`callback` holds the query of the redirect): finish the
    /// authorisation (exchange the code, check the consent's status).
    async fn complete_consent(
        &self,
        session: &mut ConsentSession,
        callback: &Callback,
    ) -> Result<ConsentOutcome, BankError>;

    /// The consent's state at the bank now: for decoupled SCA (polled until final) and to notice
    /// expiry or revocation at the bank.
    async fn consent_status(
        &self,
        session: &mut ConsentSession,
    ) -> Result<ConsentOutcome, BankError>;

    async fn accounts(
        &self,
        session: &mut ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError>;

    async fn balances(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError>;

    /// Every transaction matching `query`, following the bank's pages to the end.
    async fn transactions(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError>;

    /// Withdraws the consent at the bank. Succeeds if the bank no longer knows it.
    async fn revoke(&self, session: &mut ConsentSession) -> Result<(), BankError>;

    /// Creates the payment (Berlin Group) or the payment consent (UK) at the bank, with the
    /// request's idempotency key, and says how the user authorises it. Repeating the call with
    /// the same key returns the same payment: that is how a call whose answer was lost is
    /// recovered. The request is sent once (never retried by the connector): a timeout or a
    /// dropped connection comes back as [`BankError::Unavailable`] with the outcome unknown,
    /// and the answer is to call again with the same key. A request the standard forbids is
    /// refused before sending ([`BankError::is_invalid_request`]).
    async fn initiate_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, BankError> {
        let _ = request;
        Err(payments_unsupported())
    }

    /// Whether an authorised payment waits for the hub to submit it with the user's token
    /// (UK: the consent is authorised, the payment not yet made) rather than going ahead at
    /// the bank by itself (Berlin Group). Such a payment whose user never came back cannot go
    /// ahead: the code that would let the hub submit it never arrived.
    fn submits_after_authorisation(&self) -> bool {
        false
    }

    /// The user came back from the bank with a code to exchange for their token (UK): exchange
    /// it and keep the token in the session, before anything else is sent. The caller saves the
    /// session straight after, so that a crash between this and [`complete_payment`] resumes
    /// with the token rather than with a spent code. `false` when there is nothing to exchange
    /// (no code, a token already, or a standard without one, as Berlin Group). A callback whose
    /// `state` is not this payment's is refused.
    ///
    /// [`complete_payment`]: BankConnector::complete_payment
    async fn exchange_payment_code(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
    ) -> Result<bool, BankError> {
        let _ = (session, callback);
        Ok(false)
    }

    /// The user came back from the bank: finish the authorisation. UK: exchange the code and
    /// submit the domestic payment with `idempotency_key` (repeatable, as above); Berlin Group:
    /// read the status (`idempotency_key` is not used). A callback that says the user cancelled
    /// or failed authentication gives a status with a `reason`.
    ///
    /// This is also how an interrupted completion is resumed: save the session after every
    /// call, failed ones included (it may hold the user's token by then), and call again with
    /// the same key, and the same callback or an empty one ([`Callback::default`]). With the
    /// token in the session, a UK payment is (re)submitted under the same key, which the bank
    /// answers with the payment it made, if it made one; without it, and without a code, the
    /// status is read. A UK callback whose `state` is not this payment's is refused (its code
    /// is not exchanged); a Berlin Group one is only not trusted to say the user failed.
    async fn complete_payment(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
        idempotency_key: &str,
    ) -> Result<BankPaymentStatus, BankError> {
        let _ = (session, callback, idempotency_key);
        Err(payments_unsupported())
    }

    /// Asks the bank to cancel the payment (created at it; authorised or not). Repeatable: a
    /// payment cancelled already answers `Cancelled` again or `Refused`. The default, for a
    /// standard with no cancellation (UK Open Banking's domestic payments cannot be cancelled
    /// once made; an unsubmitted consent simply lapses, which the hub decides on its own), is
    /// `Refused`.
    async fn cancel_payment(
        &self,
        session: &mut PaymentSession,
    ) -> Result<PaymentCancellation, BankError> {
        let _ = session;
        Ok(PaymentCancellation::Refused {
            reason: "this standard does not cancel a payment once it is made".into(),
        })
    }

    /// The payment's status now (for polling until final). Before a UK payment is submitted,
    /// the consent's status. Reads only, retried like every read: it never submits a UK
    /// payment (see `complete_payment` for resuming one).
    async fn payment_status(
        &self,
        session: &mut PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        let _ = session;
        Err(payments_unsupported())
    }
}

/// How the hub signs what it sends one bank, for banks that require it: the seal (QSealC or
/// OBSeal) and, for UK banks, the key's `kid` at the bank and the JWS issuer (defaults: the
/// key's RFC 7638 thumbprint; `OU/CN` of the certificate).
#[derive(Debug, Clone)]
pub struct Signing {
    pub seal: std::sync::Arc<seal::SealKey>,
    pub kid: Option<String>,
    pub jws_issuer: Option<String>,
}

/// As [`connector`], for a bank that requires signed requests (`signing`: Berlin Group
/// message signatures; UK FAPI with `id_token` checks) and, at a UK bank, the token endpoint
/// authentication `token_auth` (default: `private_key_jwt` with `signing`, else
/// `client_secret_basic`).
pub fn connector_with(
    profile: BankProfile,
    http: reqwest::Client,
    settings: HttpSettings,
    signing: Option<&Signing>,
    token_auth: Option<uk_open_banking::TokenAuth>,
) -> std::sync::Arc<dyn BankConnector> {
    use uk_open_banking::TokenAuth;
    let bank = profile.id.clone();
    let inner: std::sync::Arc<dyn BankConnector> = match (profile.standard, signing) {
        (kontor_domain::bank::Standard::BerlinGroup, Some(signing)) => std::sync::Arc::new(
            berlin_group::BerlinGroup::new(profile, http)
                .with_settings(settings)
                .with_signer(std::sync::Arc::new(berlin_group::QsealSigner::new(
                    signing.seal.clone(),
                ))),
        ),
        (kontor_domain::bank::Standard::UkOpenBanking, Some(signing)) => {
            let signer = uk_open_banking::SealSigner::new(
                signing.seal.clone(),
                signing.kid.clone(),
                signing.jws_issuer.clone(),
            );
            std::sync::Arc::new(
                uk_open_banking::UkOpenBanking::new(profile, http)
                    .with_settings(settings)
                    .with_fapi(signer, token_auth.unwrap_or(TokenAuth::PrivateKeyJwt)),
            )
        }
        (kontor_domain::bank::Standard::UkOpenBanking, None) => std::sync::Arc::new(
            uk_open_banking::UkOpenBanking::new(profile, http)
                .with_settings(settings)
                .with_token_auth(token_auth.unwrap_or_default()),
        ),
        (kontor_domain::bank::Standard::BerlinGroup, None) => std::sync::Arc::new(
            berlin_group::BerlinGroup::new(profile, http).with_settings(settings),
        ),
    };
    std::sync::Arc::new(observed::Observed::new(bank, inner))
}

/// The connector for a bank profile, with the retry limits and per-request timeout of
/// `settings` (build `http` from the same settings with [`build_client`]). Its calls are
/// measured and traced by bank and operation (`kontor_bank_requests_total`,
/// `kontor_bank_request_duration_seconds`, a `bank call` span).
pub fn connector(
    profile: BankProfile,
    http: reqwest::Client,
    settings: HttpSettings,
) -> std::sync::Arc<dyn BankConnector> {
    let bank = profile.id.clone();
    let inner: std::sync::Arc<dyn BankConnector> = match profile.standard {
        kontor_domain::bank::Standard::BerlinGroup => std::sync::Arc::new(
            berlin_group::BerlinGroup::new(profile, http).with_settings(settings),
        ),
        kontor_domain::bank::Standard::UkOpenBanking => std::sync::Arc::new(
            uk_open_banking::UkOpenBanking::new(profile, http).with_settings(settings),
        ),
    };
    std::sync::Arc::new(observed::Observed::new(bank, inner))
}
