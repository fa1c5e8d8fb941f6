//! NextGenPSD2 1.3.8 bodies as `psd2-api-1.3.8.yaml` defines them (only the fields the hub
//! uses), written from the spec and shared with nothing else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `consents`: the body of `POST /v1/consents`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Consents {
    pub access: AccountAccess,
    pub recurring_indicator: bool,
    pub valid_until: String,
    pub frequency_per_day: u8,
    pub combined_service_indicator: bool,
}

/// `accountAccess`. Empty arrays ask for a bank-offered consent: the PSU picks the accounts on
/// the bank's pages.
#[derive(Debug, Serialize)]
pub(crate) struct AccountAccess {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountReference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<AccountReference>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<AccountReference>>,
}

/// `hrefType`.
#[derive(Debug, Deserialize)]
pub(crate) struct Href {
    pub href: String,
}

/// Every `_links*` object: named hyperlinks.
pub(crate) type Links = BTreeMap<String, Href>;

/// `consentsResponse-201`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsentCreated {
    pub consent_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    pub psu_message: Option<String>,
}

/// `startScaprocessResponse`, the answer to `POST /v1/consents/{id}/authorisations`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthorisationStarted {
    pub authorisation_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    pub psu_message: Option<String>,
}

/// `consentStatusResponse-200`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsentStatus {
    pub consent_status: String,
}

/// `consentInformationResponse-200_json`, the fields the hub needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConsentInformation {
    pub valid_until: String,
    pub consent_status: String,
}

/// `accountReference`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountReference {
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
}

/// `accountList`.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountList {
    pub accounts: Vec<AccountDetails>,
}

/// `accountDetails`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountDetails {
    pub resource_id: Option<String>,
    pub iban: Option<String>,
    pub bban: Option<String>,
    pub msisdn: Option<String>,
    pub currency: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub product: Option<String>,
    pub cash_account_type: Option<String>,
    pub owner_name: Option<String>,
}

/// `amount`; `amount` is an `amountValue`, decimal text.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Amount {
    pub currency: String,
    pub amount: String,
}

/// `balance`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Balance {
    pub balance_amount: Amount,
    pub balance_type: String,
    pub credit_limit_included: Option<bool>,
    pub last_change_date_time: Option<String>,
    pub reference_date: Option<String>,
}

/// `readAccountBalanceResponse-200`.
#[derive(Debug, Deserialize)]
pub(crate) struct Balances {
    pub balances: Vec<Balance>,
}

/// `transactionsResponse-200_json`.
#[derive(Debug, Deserialize)]
pub(crate) struct TransactionsResponse {
    pub transactions: Option<AccountReport>,
}

/// `accountReport`.
#[derive(Debug, Deserialize)]
pub(crate) struct AccountReport {
    #[serde(default)]
    pub booked: Vec<Transaction>,
    #[serde(default)]
    pub pending: Vec<Transaction>,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `transactions`: one entry of a transaction list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Transaction {
    pub transaction_id: Option<String>,
    pub entry_reference: Option<String>,
    pub end_to_end_id: Option<String>,
    pub mandate_id: Option<String>,
    pub creditor_id: Option<String>,
    pub booking_date: Option<String>,
    pub value_date: Option<String>,
    pub transaction_amount: Amount,
    pub creditor_name: Option<String>,
    pub creditor_account: Option<AccountReference>,
    pub debtor_name: Option<String>,
    pub debtor_account: Option<AccountReference>,
    pub remittance_information_unstructured: Option<String>,
    pub remittance_information_unstructured_array: Option<Vec<String>>,
    pub remittance_information_structured: Option<String>,
    pub bank_transaction_code: Option<String>,
    pub proprietary_bank_transaction_code: Option<String>,
    /// Defined for card transactions (`cardTransaction`); some banks send it on account
    /// transactions too.
    pub merchant_category_code: Option<String>,
}

/// `paymentInitiation_json`: the body of `POST /v1/payments/{payment-product}` for the JSON
/// products (`sepa-credit-transfers`, `instant-sepa-credit-transfers`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentInitiation {
    pub end_to_end_identification: String,
    pub debtor_account: AccountReference,
    pub instructed_amount: Amount,
    pub creditor_account: AccountReference,
    pub creditor_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remittance_information_unstructured: Option<String>,
}

/// `paymentInitationRequestResponse-201` (sic).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentInitiated {
    pub transaction_status: String,
    pub payment_id: String,
    #[serde(rename = "_links")]
    pub links: Links,
    pub psu_message: Option<String>,
}

/// `paymentInitiationCancelResponse-202`: the cancellation was received; a
/// `startAuthorisation*` link means the user has to authorise it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentCancelled {
    pub transaction_status: String,
    #[serde(rename = "_links", default)]
    pub links: Links,
}

/// `paymentInitiationStatusResponse-200_json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentStatus {
    pub transaction_status: String,
    pub funds_available: Option<bool>,
}
