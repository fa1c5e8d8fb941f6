//! Berlin Group NextGenPSD2 XS2A 1.3.8, account information: consents with redirect or
//! decoupled SCA, accounts, balances and transactions, written from `psd2-api-1.3.8.yaml`.
//!
//! The bank identifies the hub by its eIDAS certificate (on the TLS connection), so there are
//! no tokens: a consent is its `consentId`, sent as `Consent-ID` on every read. Reads with the
//! user present carry `PSU-IP-Address`; reads without it count against the consent's
//! `frequencyPerDay`.
//!
//! The callback: the bank sends the user back to the request's `redirect_uri` with `state`
//! added, and on failure (when it honours `TPP-Nok-Redirect-URI`) with [`NOK_PARAM`]`=nok` too.
//!
//! Payment initiation: single SEPA credit transfers, plain and instant, authorised by redirect,
//! their status read from `transactionStatus` (see `payments`).

mod accounts;
mod consent;
mod payments;
mod signing;
mod transactions;
mod wire;

pub use payments::payment_request_id;
pub use signing::QsealSigner;

pub use crate::http::MessageSigner;

use std::net::IpAddr;

use async_trait::async_trait;
use kontor_domain::account::{Balance, BankAccount};
use kontor_domain::transaction::BankTransaction;
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue};
use url::Url;

use crate::http::{Dialect, HttpSettings, Outgoing, Transport, put};
use crate::support::ids::{is_uuid, uuid_v4};
use crate::support::urls::{endpoint, with_query};
use crate::{
    BankConnector, BankError, BankPaymentStatus, BankProfile, Callback, ConsentOutcome,
    ConsentRequest, ConsentSession, ConsentStarted, PaymentCancellation, PaymentRequest,
    PaymentSession, PaymentStarted, ReadContext, TransactionQuery,
};

/// The query parameter added to `TPP-Nok-Redirect-URI`, so that the callback can tell a
/// failed authorisation from a successful one without asking the bank first.
pub const NOK_PARAM: &str = "sca_result";

/// A bank speaking NextGenPSD2.
#[derive(Debug)]
pub struct BerlinGroup {
    profile: BankProfile,
    transport: Transport,
}

impl BerlinGroup {
    /// Uses `http` (see [`crate::build_client`]) with the default [`HttpSettings`] for retries
    /// and per-request timeouts.
    pub fn new(profile: BankProfile, http: reqwest::Client) -> Self {
        let transport = Transport::new(
            http,
            HttpSettings::default(),
            profile.id.clone(),
            Dialect::BerlinGroup,
        );
        Self { profile, transport }
    }

    pub fn with_settings(mut self, settings: HttpSettings) -> Self {
        self.transport = self.transport.with_settings(settings);
        self
    }

    /// Signs every request (`Digest`, `Signature`, `TPP-Signature-Certificate`), for a bank
    /// that requires signed requests; [`QsealSigner`] signs with the hub's QSealC.
    pub fn with_signer(mut self, signer: std::sync::Arc<dyn MessageSigner>) -> Self {
        self.transport = self.transport.with_signer(signer);
        self
    }

    fn url(&self, segments: &[&str]) -> Result<Url, BankError> {
        endpoint(&self.profile.base_url, segments)
    }

    /// Headers every request carries: `X-Request-ID` (the caller's, when it is a UUID as the
    /// spec requires, else a new one) and `PSU-IP-Address` when the user is present.
    fn headers(
        &self,
        psu_ip: Option<IpAddr>,
        request_id: Option<&str>,
    ) -> Result<HeaderMap, BankError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let request_id = request_id
            .filter(|id| is_uuid(id))
            .map_or_else(uuid_v4, str::to_owned);
        put(&mut headers, "x-request-id", &request_id)?;
        if let Some(ip) = psu_ip {
            put(&mut headers, "psu-ip-address", &psu_ip_address(ip))?;
        }
        Ok(headers)
    }

    /// Headers of the requests that start SCA: where the user comes back to (with the state,
    /// and marked on failure), and which approach the hub prefers.
    fn sca_headers(
        &self,
        redirect_uri: &Url,
        state: &str,
        psu_ip: Option<IpAddr>,
        request_id: Option<&str>,
        psu_id: Option<&str>,
    ) -> Result<HeaderMap, BankError> {
        let mut headers = self.headers(psu_ip, request_id)?;
        let ok = with_query(redirect_uri, &[("state", state)]);
        let nok = with_query(&ok, &[(NOK_PARAM, "nok")]);
        // Sent for decoupled too (the spec recommends it always): a bank that cannot do
        // decoupled for this user falls back to redirect.
        put(&mut headers, "tpp-redirect-uri", ok.as_str())?;
        put(&mut headers, "tpp-nok-redirect-uri", nok.as_str())?;
        match psu_id {
            Some(psu_id) => {
                put(&mut headers, "tpp-redirect-preferred", "false")?;
                put(&mut headers, "psu-id", psu_id)?;
            }
            None => put(&mut headers, "tpp-redirect-preferred", "true")?,
        }
        Ok(headers)
    }

    /// A GET of account data under the session's consent.
    fn read(
        &self,
        url: Url,
        template: &'static str,
        session: &ConsentSession,
        context: &ReadContext,
        request_id: Option<&str>,
    ) -> Result<Outgoing, BankError> {
        let mut out = Outgoing::get(url, template);
        out.headers = self.headers(context.psu_ip, request_id)?;
        put(&mut out.headers, "consent-id", &session.consent_id)?;
        out.unattended = context.psu_ip.is_none();
        Ok(out)
    }
}

/// The spec types `PSU-IP-Address` as IPv4; an IPv4 address that reached the hub over IPv6
/// (`::ffff:a.b.c.d`) is written as the IPv4 it is. A true IPv6 address is sent as it is: it is
/// still the user's address, and the user being present is what matters.
fn psu_ip_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[async_trait]
impl BankConnector for BerlinGroup {
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

    async fn complete_payment(
        &self,
        session: &mut PaymentSession,
        callback: &Callback,
        _idempotency_key: &str,
    ) -> Result<BankPaymentStatus, BankError> {
        self.complete_initiation(session, callback).await
    }

    async fn payment_status(
        &self,
        session: &mut PaymentSession,
    ) -> Result<BankPaymentStatus, BankError> {
        self.initiation_status(session).await
    }

    async fn cancel_payment(
        &self,
        session: &mut PaymentSession,
    ) -> Result<PaymentCancellation, BankError> {
        self.cancel(session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psu_ip_prefers_ipv4() {
        let mapped: IpAddr = "::ffff:192.168.8.78".parse().unwrap();
        assert_eq!(psu_ip_address(mapped), "192.168.8.78");
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(psu_ip_address(v4), "10.1.2.3");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(psu_ip_address(v6), "2001:db8::1");
    }
}
