//! Read/Write API 3.1.11 bodies as `account-info-openapi-3.1.11.json` and
//! `payment-initiation-openapi-3.1.11.json` define them, and the OAuth2/OpenID documents around
//! them (only the fields the hub uses), written from the specs and shared with nothing else.

use serde::{Deserialize, Serialize};

/// `OBReadConsent1`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadConsent {
    pub data: ReadConsentData,
    /// `OBRisk2` has no properties for account access.
    pub risk: Empty,
}

#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadConsentData {
    pub permissions: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<String>,
}

/// `OBReadConsentResponse1`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadConsentResponse {
    pub data: ConsentData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ConsentData {
    pub consent_id: String,
    pub status: String,
    pub expiration_date_time: Option<String>,
}

/// OpenID Connect Discovery 1.0 provider metadata.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub issuer: Option<String>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// Where the bank publishes the keys its `id_token`s are signed with.
    #[serde(default)]
    pub jwks_uri: Option<String>,
}

/// RFC 6749 §5.1 access token response.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: Option<i64>,
    pub refresh_token: Option<String>,
    /// With `openid` in the scope of an authorization-code grant.
    #[serde(default)]
    pub id_token: Option<String>,
}

/// `Links`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Links {
    pub next: Option<String>,
}

/// `OBReadAccount6`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadAccount {
    pub data: AccountData,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AccountData {
    #[serde(default)]
    pub account: Vec<Account>,
}

/// `OBAccount6`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Account {
    pub account_id: String,
    pub currency: Option<String>,
    pub account_sub_type: Option<String>,
    pub description: Option<String>,
    pub nickname: Option<String>,
    #[serde(default)]
    pub account: Vec<CashAccount>,
}

/// `OBCashAccount6_0` / `_1` and the items of `OBAccount6.Account`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CashAccount {
    pub scheme_name: Option<String>,
    pub identification: Option<String>,
    pub name: Option<String>,
}

/// `OBActiveOrHistoricCurrencyAndAmount_*`; an initiation's `InstructedAmount`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Amount {
    pub amount: String,
    pub currency: String,
}

/// `OBReadBalance1`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadBalance {
    pub data: BalanceData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BalanceData {
    pub balance: Vec<Balance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Balance {
    pub credit_debit_indicator: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub date_time: String,
    pub amount: Amount,
    #[serde(default)]
    pub credit_line: Vec<CreditLine>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct CreditLine {
    pub included: bool,
}

/// `OBReadTransaction6`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReadTransaction {
    pub data: TransactionData,
    #[serde(default)]
    pub links: Links,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct TransactionData {
    #[serde(default)]
    pub transaction: Vec<Transaction>,
}

/// `OBTransaction6`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Transaction {
    pub transaction_id: Option<String>,
    pub transaction_reference: Option<String>,
    pub credit_debit_indicator: String,
    pub status: String,
    pub booking_date_time: String,
    pub value_date_time: Option<String>,
    pub transaction_information: Option<String>,
    pub amount: Amount,
    pub bank_transaction_code: Option<BankTransactionCode>,
    pub proprietary_bank_transaction_code: Option<ProprietaryCode>,
    pub merchant_details: Option<MerchantDetails>,
    pub creditor_account: Option<CashAccount>,
    pub debtor_account: Option<CashAccount>,
}

/// `OBBankTransactionCodeStructure1`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BankTransactionCode {
    pub code: String,
    pub sub_code: String,
}

/// `ProprietaryBankTransactionCodeStructure1`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ProprietaryCode {
    pub code: String,
}

/// `OBMerchantDetails1`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct MerchantDetails {
    pub merchant_name: Option<String>,
    pub merchant_category_code: Option<String>,
}

/// `OBWriteDomesticConsent4`: the body of `POST /domestic-payment-consents`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticConsent<'a> {
    pub data: DomesticConsentRequestData<'a>,
    /// `OBRisk1`: every property optional; the hub knows nothing the bank could use.
    pub risk: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticConsentRequestData<'a> {
    /// `Yes`: the bank is to tell who pays (the consent's and the payment's `Debtor`, the
    /// payment's `Refund.Account`), so that the hub can name the account the user chose.
    pub read_refund_account: &'static str,
    pub initiation: &'a serde_json::Value,
}

/// `OBWriteDomestic2`: the body of `POST /domestic-payments`, repeating the consent's
/// `Initiation` and `Risk`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Domestic<'a> {
    pub data: DomesticData<'a>,
    pub risk: &'a serde_json::Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticData<'a> {
    pub consent_id: &'a str,
    pub initiation: &'a serde_json::Value,
}

/// `OBWriteDomesticConsent4.Data.Initiation` (the same object in `OBWriteDomestic2`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticInitiation {
    pub instruction_identification: String,
    pub end_to_end_identification: String,
    pub instructed_amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debtor_account: Option<PaymentAccount>,
    pub creditor_account: PaymentAccount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remittance_information: Option<RemittanceInformation>,
}

/// `DebtorAccount` / `CreditorAccount` of an initiation (`Name` is required of the creditor).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentAccount {
    /// `UK.OBIE.SortCodeAccountNumber` or `UK.OBIE.IBAN`.
    pub scheme_name: &'static str,
    pub identification: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `RemittanceInformation` of an initiation.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RemittanceInformation {
    pub unstructured: String,
}

/// `OBWriteDomesticConsentResponse5`, the fields the hub needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticConsentResponse {
    pub data: DomesticConsentData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticConsentData {
    pub consent_id: String,
    pub status: String,
    /// `OBCashAccountDebtor4`, once the user chose the account (kept raw: a malformed one is
    /// ignored, not a reason to fail the status).
    #[serde(default)]
    pub debtor: Option<serde_json::Value>,
}

/// `OBWriteDomesticResponse5`, the fields the hub needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticResponse {
    pub data: DomesticPaymentData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DomesticPaymentData {
    pub domestic_payment_id: String,
    pub consent_id: String,
    pub status: String,
    /// `Refund` (`Account` with `SchemeName`, `Identification`, `Name`), kept raw as `debtor`.
    #[serde(default)]
    pub refund: Option<serde_json::Value>,
    #[serde(default)]
    pub debtor: Option<serde_json::Value>,
}

/// `OBWritePaymentDetailsResponse1`: the payment's status on the rail, with a reason.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentDetailsResponse {
    pub data: PaymentDetailsData,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentDetailsData {
    #[serde(default)]
    pub payment_status: Vec<PaymentStatusEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PaymentStatusEntry {
    pub status_detail: Option<StatusDetail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StatusDetail {
    pub status_reason: Option<String>,
    pub status_reason_description: Option<String>,
}
