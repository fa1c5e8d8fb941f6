//! Payments in the fixture: requests the sandbox's customers can make, the user authorising them
//! in the browser, waiting for settlement with the sandbox's clock, and the sandbox's ledger.

use kontor_banks::berlin_group::payment_request_id;
use kontor_banks::{
    AccountReference, BankPaymentStatus, PaymentProduct, PaymentRequest, PaymentSession,
    PaymentStarted, ScaStep,
};
use kontor_domain::currency::Currency;
use kontor_domain::iban::Iban;
use kontor_domain::money::Money;
use kontor_domain::payment::{
    CreditorName, EndToEndId, IdempotencyKey, Iso20022Status, RemittanceInfo,
};
use kontor_sandbox_bank::PaymentRecord;
use url::Url;

use super::browser::HUB_CALLBACK;
use super::{Fixture, PSU_IP, UK_BANK, rand_suffix};

/// Carol's current account at Sonnenbank, and at Thames Bank: a creditor the sandbox credits.
pub const CAROL_SONNENBANK: &str = "DE58642494690503350226";
pub const CAROL_THAMES: (&str, &str) = ("400993", "30971327");
pub const CREDITOR_NAME: &str = "Carol Dubois";
pub const REMITTANCE: &str = "Invoice 2026-117 flowers";

/// A fresh idempotency key, as the hub makes them (a UUID v4 shape).
pub fn new_key() -> String {
    let a = rand_suffix();
    let b = rand_suffix().rotate_left(17) ^ a;
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl Fixture {
    pub fn is_uk(&self) -> bool {
        self.bank == UK_BANK
    }

    /// The user's current account, as the sandbox knows it.
    pub fn current_account(&self) -> kontor_sandbox_bank::AccountInfo {
        self.sandbox_accounts()
            .into_iter()
            .find(|a| a.kind == "Current")
            .expect("a current account")
    }

    /// A payment of `amount` to Carol, with a fresh key: a SEPA credit transfer from the user's
    /// current account (Berlin Group), or a domestic payment whose account the user picks at
    /// the bank (UK).
    pub fn payment(&self, amount: &str) -> PaymentRequest {
        let (product, currency, debtor, creditor) = if self.is_uk() {
            (
                PaymentProduct::UkDomestic,
                "GBP",
                None,
                AccountReference::SortCode {
                    sort_code: kontor_domain::SortCode::parse(CAROL_THAMES.0).unwrap(),
                    account_number: kontor_domain::UkAccountNumber::parse(CAROL_THAMES.1).unwrap(),
                },
            )
        } else {
            (
                PaymentProduct::SepaCreditTransfer,
                "EUR",
                Some(AccountReference::Iban(
                    Iban::parse(&self.current_account().iban).unwrap(),
                )),
                AccountReference::Iban(Iban::parse(CAROL_SONNENBANK).unwrap()),
            )
        };
        PaymentRequest {
            product,
            debtor,
            creditor_name: CreditorName::parse(CREDITOR_NAME).unwrap(),
            creditor,
            amount: Money::parse(amount, Currency::parse(currency).unwrap()).unwrap(),
            remittance: Some(RemittanceInfo::parse(REMITTANCE).unwrap()),
            end_to_end_id: EndToEndId::parse(&format!("E2E-{}", rand_suffix() % 1_000_000_000))
                .unwrap(),
            idempotency_key: IdempotencyKey::parse(&new_key()).unwrap(),
            redirect_uri: Url::parse(HUB_CALLBACK).unwrap(),
            state: format!("st-{}", rand_suffix()),
            psu_ip: Some(PSU_IP),
        }
    }

    /// The user authorises the payment at the bank, as in a browser; the callback that brings
    /// them back.
    pub async fn authorise_payment(&self, started: &PaymentStarted) -> kontor_banks::Callback {
        let ScaStep::Redirect { url } = &started.sca else {
            panic!("expected a redirect, got {:?}", started.sca);
        };
        self.browser.authorise(url.clone(), self.user).await
    }

    /// Initiated, authorised and completed.
    pub async fn pay(&self, request: &PaymentRequest) -> (PaymentSession, BankPaymentStatus) {
        let started = self.connector.initiate_payment(request).await.unwrap();
        let callback = self.authorise_payment(&started).await;
        assert_eq!(callback.get("state"), Some(request.state.as_str()));
        let mut session = started.session;
        let status = self
            .connector
            .complete_payment(&mut session, &callback, &request.idempotency_key)
            .await
            .unwrap();
        (session, status)
    }

    /// Polls the payment's status, moving the sandbox's clock by `step` between polls, until
    /// the status is final.
    pub async fn settle(
        &self,
        session: &mut PaymentSession,
        step: time::Duration,
    ) -> BankPaymentStatus {
        for _ in 0..20 {
            let status = self.connector.payment_status(session).await.unwrap();
            if status.iso.is_some_and(|iso| iso.kontor_status().is_final()) {
                return status;
            }
            self.sandbox.advance_clock(step).unwrap();
        }
        panic!("no final status after 20 polls");
    }

    /// The key the bank saw for the hub's `key`: Berlin Group's `X-Request-ID`, UK's
    /// `x-idempotency-key` of the payment itself.
    pub fn bank_key(&self, key: &str) -> String {
        if self.is_uk() {
            key.to_owned()
        } else {
            payment_request_id(key)
        }
    }

    /// The sandbox's ledger entries carrying the bank's key for `key`.
    pub fn ledger(&self, key: &str) -> Vec<PaymentRecord> {
        let bank_key = self.bank_key(key);
        self.sandbox
            .payments()
            .into_iter()
            .filter(|p| p.bank_id == self.bank && p.idempotency_key.as_deref() == Some(&bank_key))
            .collect()
    }

    /// The one ledger entry for `key`.
    pub fn only_payment(&self, key: &str) -> PaymentRecord {
        let mut entries = self.ledger(key);
        assert_eq!(entries.len(), 1, "one payment at the bank: {entries:#?}");
        entries.remove(0)
    }
}

pub fn iso(status: &BankPaymentStatus) -> Option<&'static str> {
    status.iso.map(Iso20022Status::code)
}
