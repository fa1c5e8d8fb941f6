//! Berlin Group JSON bodies, written from the spec's schemas (`consents`, `accountDetails`,
//! `transactions`, `paymentInitiation_json`, …). Field names follow the spec verbatim.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `hrefType`.
#[derive(Debug, Clone, Serialize)]
pub struct Href {
    pub href: String,
}

/// Any `_links…` object: the spec allows additional `hrefType` properties on all of them.
pub type Links = BTreeMap<&'static str, Href>;

pub fn links<const N: usize>(items: [(&'static str, String); N]) -> Links {
    items
        .into_iter()
        .map(|(name, href)| (name, Href { href }))
        .collect()
}

/// `accountReference`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bban: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked_pan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cash_account_type: Option<String>,
}

impl AccountReference {
    pub fn iban(iban: &str, currency: Option<&str>) -> Self {
        Self {
            iban: Some(iban.to_string()),
            currency: currency.map(str::to_string),
            ..Self::default()
        }
    }
}

/// `amount`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Amount {
    pub currency: String,
    pub amount: String,
}

/// `accountAccess`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAccess {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<AccountReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<AccountReference>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_information: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_accounts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_accounts_with_balance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_psd2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_to: Option<Vec<String>>,
}

/// `consents` (request body of `POST /v1/consents`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRequest {
    pub access: AccountAccess,
    pub recurring_indicator: bool,
    pub valid_until: String,
    pub frequency_per_day: i64,
    pub combined_service_indicator: bool,
}

/// `consentsResponse-201`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentCreated {
    pub consent_status: &'static str,
    pub consent_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psu_message: Option<String>,
}

/// `consentInformationResponse-200_json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentInformation {
    pub access: AccountAccess,
    pub recurring_indicator: bool,
    pub valid_until: String,
    pub frequency_per_day: u32,
    pub last_action_date: String,
    pub consent_status: &'static str,
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

/// `consentStatusResponse-200`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentStatusResponse {
    pub consent_status: &'static str,
}

/// `startScaprocessResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartScaProcess {
    pub sca_status: &'static str,
    pub authorisation_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psu_message: Option<String>,
}

/// `scaStatusResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaStatusResponse {
    pub sca_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psu_message: Option<String>,
}

/// `authorisations`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorisationList {
    pub authorisation_ids: Vec<String>,
}

/// `balance`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub balance_amount: Amount,
    pub balance_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_limit_included: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_change_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_date: Option<String>,
}

/// `accountDetails`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountDetails {
    pub resource_id: String,
    pub iban: String,
    pub bban: String,
    pub currency: String,
    pub name: String,
    pub display_name: String,
    pub product: String,
    pub cash_account_type: &'static str,
    pub status: &'static str,
    pub bic: String,
    pub usage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<Balance>>,
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
}

/// `accountList`.
#[derive(Debug, Serialize)]
pub struct AccountList {
    pub accounts: Vec<AccountDetails>,
}

/// Body of `GET /v1/accounts/{account-id}`.
#[derive(Debug, Serialize)]
pub struct AccountDetailsResponse {
    pub account: AccountDetails,
}

/// `readAccountBalanceResponse-200`.
#[derive(Debug, Serialize)]
pub struct BalancesResponse {
    pub account: AccountReference,
    pub balances: Vec<Balance>,
}

/// `transactions` (one entry of a transaction list).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    pub transaction_id: String,
    pub entry_reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mandate_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_date: Option<String>,
    pub value_date: String,
    pub transaction_amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_account: Option<AccountReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debtor_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debtor_account: Option<AccountReference>,
    pub remittance_information_unstructured: String,
    pub bank_transaction_code: &'static str,
    pub proprietary_bank_transaction_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after_transaction: Option<Balance>,
}

/// `accountReport`.
#[derive(Debug, Serialize)]
pub struct AccountReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booked: Option<Vec<Transaction>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<Vec<Transaction>>,
    #[serde(rename = "_links")]
    pub links: Links,
}

/// `transactionsResponse-200_json`.
#[derive(Debug, Serialize)]
pub struct TransactionsResponse {
    pub account: AccountReference,
    pub transactions: AccountReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<Balance>>,
}

/// `paymentInitiation_json` (single payments).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInitiation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_to_end_identification: Option<String>,
    pub debtor_account: AccountReference,
    pub instructed_amount: Amount,
    pub creditor_account: AccountReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_agent_name: Option<String>,
    pub creditor_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_address: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance_information_unstructured: Option<String>,
}

/// `paymentInitationRequestResponse-201`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreated {
    pub transaction_status: &'static str,
    pub payment_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psu_message: Option<String>,
}

/// `paymentInitiationStatusResponse-200_json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentStatusResponse {
    pub transaction_status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funds_available: Option<bool>,
}

/// `paymentInitiationWithStatusResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentWithStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_to_end_identification: Option<String>,
    pub debtor_account: AccountReference,
    pub instructed_amount: Amount,
    pub creditor_account: AccountReference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_agent: Option<String>,
    pub creditor_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_address: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remittance_information_unstructured: Option<String>,
    pub transaction_status: &'static str,
}
