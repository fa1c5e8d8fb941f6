//! UK Open Banking Read/Write API 3.1.11, account and transaction information: account-access
//! consents, the user's authorisation through OAuth2 (authorization code with PKCE and a
//! request object naming the consent), tokens, accounts, balances and transactions, written from
//! `account-info-openapi-3.1.11.json` and the OpenID/OAuth2 RFCs.
//!
//! The hub's client-credentials token manages consents; the user's token (in the
//! [`ConsentSession`]) reads data and is refreshed when it expires. Reads with the user present
//! carry `x-fapi-customer-ip-address`; reads without it count against the bank's daily
//! allowance. The callback is the OAuth2 redirect: `code` and `state`, or `error`.
//!
//! Payment initiation, from `payment-initiation-openapi-3.1.11.json`: domestic payments through
//! a payment consent the user authorises (`openid payments`), submitted with the user's token
//! and an idempotency key, every body signed (`x-jws-signature`); see `payments`.

mod client_auth;
mod consent;
mod details;
mod domestic;
mod id_token;
mod oauth;
mod payer;
mod payments;
mod reads;
mod signing;
mod transactions;
mod wire;

pub use client_auth::TokenAuth;
pub use payments::consent_idempotency_key;
pub use signing::{ClientSecretSigner, RequestObjectSigner, SealSigner, Unsigned};

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kontor_domain::account::{Balance, BankAccount};
use kontor_domain::transaction::BankTransaction;
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use crate::http::{Dialect, HttpSettings, Transport};
use crate::support::ids::{is_uuid, uuid_v4};
use crate::support::urls::endpoint;
use crate::{
    BankConnector, BankError, BankPaymentStatus, BankProfile, Callback, ConsentOutcome,
    ConsentRequest, ConsentSession, ConsentStarted, PaymentRequest, PaymentSession, PaymentStarted,
    ReadContext, TransactionQuery,
};

/// A bank speaking the UK Open Banking Read/Write API.
#[derive(Debug)]
pub struct UkOpenBanking {
    profile: BankProfile,
    /// The Read/Write API (`OBErrorResponse1` errors).
    transport: Transport,
    /// The OAuth2 endpoints (RFC 6749 errors).
    oauth: Transport,
    discovery: OnceCell<wire::Discovery>,
    /// The hub's client-credentials tokens, one per scope.
    client_tokens: Mutex<BTreeMap<&'static str, oauth::CachedToken>>,
    signer: Arc<dyn RequestObjectSigner>,
    /// How the hub authenticates at the token endpoint.
    token_auth: TokenAuth,
    /// Whether `id_token`s are checked against the bank's JWKS (FAPI).
    validate_id_tokens: bool,
    jwks: Mutex<Option<client_auth::CachedJwks>>,
}

impl UkOpenBanking {
    /// Uses `http` (see [`crate::build_client`]) with the default [`HttpSettings`] for retries
    /// and per-request timeouts, and signs with the client secret ([`ClientSecretSigner`]), or
    /// not at all ([`Unsigned`]) when the profile has none; production banks need
    /// [`UkOpenBanking::with_signer`].
    pub fn new(profile: BankProfile, http: reqwest::Client) -> Self {
        let signer: Arc<dyn RequestObjectSigner> = match &profile.client_secret {
            Some(secret) => Arc::new(ClientSecretSigner::new(secret.clone())),
            None => Arc::new(Unsigned),
        };
        let transport = Transport::new(
            http,
            HttpSettings::default(),
            profile.id.clone(),
            Dialect::UkOpenBanking,
        );
        Self {
            oauth: transport.speaking(Dialect::OAuth),
            transport,
            profile,
            discovery: OnceCell::new(),
            client_tokens: Mutex::new(BTreeMap::new()),
            signer,
            token_auth: TokenAuth::ClientSecretBasic,
            validate_id_tokens: false,
            jwks: Mutex::new(None),
        }
    }

    /// FAPI 1.0 Advanced with the hub's seal: request objects, client assertions and
    /// `x-jws-signature` signed PS256 by `signer`, the token endpoint reached with
    /// `token_auth` (`private_key_jwt` or `tls_client_auth`), and every `id_token` checked
    /// against the bank's JWKS.
    pub fn with_fapi(mut self, signer: SealSigner, token_auth: TokenAuth) -> Self {
        self.signer = Arc::new(signer);
        self.token_auth = token_auth;
        self.validate_id_tokens = true;
        self
    }

    /// How the hub authenticates at the token endpoint (default `client_secret_basic`).
    pub fn with_token_auth(mut self, token_auth: TokenAuth) -> Self {
        self.token_auth = token_auth;
        self
    }

    pub fn with_settings(mut self, settings: HttpSettings) -> Self {
        self.transport = self.transport.with_settings(settings);
        self.oauth = self.transport.speaking(Dialect::OAuth);
        self
    }

    /// Signs the request object and the payment requests' `x-jws-signature` with the hub's
    /// registered key instead of leaving them unsigned.
    pub fn with_signer(mut self, signer: Arc<dyn RequestObjectSigner>) -> Self {
        self.signer = signer;
        self
    }

    /// `{base}/open-banking/v3.1/aisp/…`.
    fn aisp(&self, segments: &[&str]) -> Result<Url, BankError> {
        let mut all = vec!["open-banking", "v3.1", "aisp"];
        all.extend_from_slice(segments);
        endpoint(&self.profile.base_url, &all)
    }
}

/// `x-fapi-interaction-id` for one operation: the caller's request id when it is the RFC 4122
/// UUID the header asks for, else a new one.
fn interaction_id(request_id: Option<&str>) -> String {
    request_id
        .filter(|id| is_uuid(id))
        .map_or_else(uuid_v4, str::to_owned)
}

#[async_trait]
impl BankConnector for UkOpenBanking {
    async fn start_consent(&self, request: &ConsentRequest) -> Result<ConsentStarted, BankError> {
        self.start(request).await
    }

    async fn complete_consent(
        &self,
        session: &mut ConsentSession,
        callback: &Callback,
    ) -> Result<ConsentOutcome, BankError> {
        self.complete(session, callback).await
    }

    async fn consent_status(
        &self,
        session: &mut ConsentSession,
    ) -> Result<ConsentOutcome, BankError> {
        self.status(session).await
    }

    async fn accounts(
        &self,
        session: &mut ConsentSession,
        context: &ReadContext,
    ) -> Result<Vec<BankAccount>, BankError> {
        self.read_accounts(session, context).await
    }

    async fn balances(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        context: &ReadContext,
    ) -> Result<Vec<Balance>, BankError> {
        self.read_balances(session, bank_account_id, context).await
    }

    async fn transactions(
        &self,
        session: &mut ConsentSession,
        bank_account_id: &str,
        query: &TransactionQuery,
        context: &ReadContext,
    ) -> Result<Vec<BankTransaction>, BankError> {
        self.read_transactions(session, bank_account_id, query, context)
            .await
    }

    async fn revoke(&self, session: &mut ConsentSession) -> Result<(), BankError> {
        self.delete(session).await
    }

    async fn initiate_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<PaymentStarted, BankError> {
        self.initiate(request).await
    }

    fn submits_after_authorisation(&self) -> bool {
        true
    }

    async fn exchange_payment_code(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
    ) -> Result<bool, BankError> {
        self.take_user_token(session, callback).await
    }

    async fn complete_payment(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
        idempotency_key: &str,
    ) -> Result<BankPaymentStatus, BankError> {
        self.complete_submission(session, callback, idempotency_key)
            .await
    }

    async fn payment_status(
        &self,
        session: &mut PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        self.submission_status(session).await
    }
}
