//! Read-only views of the sandbox for tests and operators: bank endpoints and credentials, the
//! payment ledger, and the users' accounts.

use serde::Serialize;

use crate::config::Standard;
use crate::core::{dates, money};
use crate::state::Bank;
use crate::state::payment::PaymentStatus;

/// Where a bank lives and how a TPP talks to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BankInfo {
    pub id: String,
    pub name: String,
    pub country: String,
    pub standard: Standard,
    pub currency: String,
    /// The bank's root URL; Berlin Group paths (`/v1/consents`) hang directly off it.
    pub base_url: String,
    /// UK: `{base_url}/open-banking/v3.1/aisp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aisp_url: Option<String>,
    /// UK: `{base_url}/open-banking/v3.1/pisp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pisp_url: Option<String>,
    /// UK: OAuth2 token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// UK: OAuth2 authorization endpoint (PSU redirect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// UK: the TPP's client id and (outside strict mode) secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// UK: how that client authenticates at the token endpoint (`client_secret_basic`;
    /// in strict mode `private_key_jwt` or `tls_client_auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// UK: the OpenID issuer (`aud` of request objects) and its discovery document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    /// UK, strict mode: the JWKS with the key of ID tokens and response signatures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The decoupled-SCA "banking app" page.
    pub app_url: String,
    /// Sandbox users with accounts here.
    pub customers: Vec<String>,
}

pub fn bank_info(bank: &Bank) -> BankInfo {
    let uk = bank.config.standard == Standard::UkOpenBanking;
    let strict = bank.tpp.is_some();
    let uk_url = |path: &str| uk.then(|| bank.url(path));
    BankInfo {
        id: bank.config.id.clone(),
        name: bank.config.name.clone(),
        country: bank.config.country.clone(),
        standard: bank.config.standard,
        currency: bank.config.currency.clone(),
        base_url: bank.base_url.clone(),
        aisp_url: uk_url("/open-banking/v3.1/aisp"),
        pisp_url: uk_url("/open-banking/v3.1/pisp"),
        token_url: uk_url("/oauth2/token"),
        authorize_url: uk_url("/oauth2/authorize"),
        client_id: uk.then(|| bank.config.client_id.clone()),
        client_secret: (uk && !strict).then(|| bank.config.client_secret.clone()),
        token_endpoint_auth_method: uk.then(|| {
            if strict {
                bank.config.token_endpoint_auth_method.as_str().to_string()
            } else {
                "client_secret_basic".to_string()
            }
        }),
        issuer: uk.then(|| bank.base_url.clone()),
        discovery_url: uk_url("/.well-known/openid-configuration"),
        jwks_url: if strict { uk_url("/jwks") } else { None },
        app_url: bank.url("/app"),
        customers: bank.config.customers.clone(),
    }
}

/// One payment as the bank's ledger sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentRecord {
    pub bank_id: String,
    pub payment_id: String,
    pub standard: Standard,
    /// `sepa-credit-transfers`, `instant-sepa-credit-transfers` or `uk-domestic`.
    pub product: String,
    /// UK `x-idempotency-key`, or the Berlin Group `X-Request-ID` of the initiation.
    pub idempotency_key: Option<String>,
    pub uk_consent_id: Option<String>,
    pub status: PaymentStatus,
    /// True once money moved (accepted or settled); never true twice for one key.
    pub executed: bool,
    pub amount: String,
    pub currency: String,
    pub debtor_iban: Option<String>,
    pub creditor_name: String,
    pub creditor_account: String,
    pub psu: Option<String>,
    pub created_at: String,
}

pub fn payment_records(bank: &Bank) -> Vec<PaymentRecord> {
    let now = bank.now();
    let state = bank.lock();
    let mut records: Vec<PaymentRecord> = state
        .payments
        .values()
        .map(|p| PaymentRecord {
            bank_id: bank.config.id.clone(),
            payment_id: p.id.clone(),
            standard: p.standard,
            product: p.product.as_str().to_string(),
            idempotency_key: p.idempotency_key.clone(),
            uk_consent_id: p.uk_consent_id.clone(),
            status: p.status_at(now),
            executed: p.executed(),
            amount: money::format_unsigned(p.amount),
            currency: p.currency.clone(),
            debtor_iban: p
                .debtor
                .and_then(|(u, a)| {
                    state
                        .books
                        .get(u)?
                        .accounts
                        .get(a)
                        .map(|acc| acc.iban.clone())
                })
                .or_else(|| p.debtor_iban.clone()),
            creditor_name: p.creditor.name.clone(),
            creditor_account: p.creditor.identification.clone(),
            psu: p.psu.map(str::to_string),
            created_at: dates::timestamp(p.created_at),
        })
        .collect();
    records.sort_by(|a, b| (&a.created_at, &a.payment_id).cmp(&(&b.created_at, &b.payment_id)));
    records
}

/// One account of a sandbox user, with its balances now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountInfo {
    pub bank_id: String,
    pub username: String,
    pub resource_id: String,
    pub kind: String,
    pub product: String,
    pub iban: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    pub currency: String,
    pub booked_balance: String,
    pub available_balance: String,
    pub entries: usize,
}

pub fn accounts(bank: &Bank) -> Vec<AccountInfo> {
    let now = bank.now();
    let state = bank.lock();
    let mut out = Vec::new();
    for book in &state.books {
        for (i, a) in book.accounts.iter().enumerate() {
            let b = book.balances(i, now);
            out.push(AccountInfo {
                bank_id: bank.config.id.clone(),
                username: book.user.username.to_string(),
                resource_id: a.resource_id.clone(),
                kind: format!("{:?}", a.kind),
                product: a.product.clone(),
                iban: a.iban.clone(),
                sort_code: a.sort_code.clone(),
                account_number: a.account_number.clone(),
                currency: a.currency.clone(),
                booked_balance: money::format_signed(b.booked),
                available_balance: money::format_signed(b.available),
                entries: book.visible_entries(i, now).len(),
            });
        }
    }
    out
}
