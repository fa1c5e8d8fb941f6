//! UK Open Banking JSON bodies, written from the 3.1.11 schemas (`OBReadConsent1`,
//! `OBReadAccount6`, `OBReadBalance1`, `OBReadTransaction6`, `OBWriteDomesticConsent4`, …).
//! Most UK schemas forbid additional properties, so requests deny unknown fields.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `Links`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Links {
    #[serde(rename = "Self")]
    pub self_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Links {
    pub fn only(url: String) -> Self {
        Self {
            self_: url,
            first: None,
            next: None,
            last: None,
        }
    }
}

/// `Meta`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_available_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_available_date_time: Option<String>,
}

impl Meta {
    pub fn one_page() -> Self {
        Self {
            total_pages: Some(1),
            ..Self::default()
        }
    }
}

/// `OBReadConsent1`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ReadConsentRequest {
    pub data: ReadConsentData,
    pub risk: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ReadConsentData {
    pub permissions: Vec<String>,
    pub expiration_date_time: Option<String>,
    pub transaction_from_date_time: Option<String>,
    pub transaction_to_date_time: Option<String>,
}

/// `OBReadConsentResponse1`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadConsentResponse {
    pub data: ReadConsentResponseData,
    pub risk: serde_json::Map<String, Value>,
    pub links: Links,
    pub meta: Meta,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadConsentResponseData {
    pub consent_id: String,
    pub creation_date_time: String,
    pub status: &'static str,
    pub status_update_date_time: String,
    pub permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_from_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_to_date_time: Option<String>,
}

/// An account identification (`OBCashAccount5`/`6`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct CashAccount {
    pub scheme_name: String,
    pub identification: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_identification: Option<String>,
}

/// `Servicer` (`OBBranchAndFinancialInstitutionIdentification5`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Servicer {
    pub scheme_name: &'static str,
    pub identification: String,
}

/// `OBAccount6`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    pub account_id: String,
    pub status: &'static str,
    pub status_update_date_time: String,
    pub currency: String,
    pub account_type: &'static str,
    pub account_sub_type: &'static str,
    pub description: String,
    pub nickname: String,
    pub opening_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Vec<CashAccount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servicer: Option<Servicer>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountData {
    pub account: Vec<Account>,
}

/// `OBReadAccount6`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadAccount {
    pub data: AccountData,
    pub links: Links,
    pub meta: Meta,
}

/// An amount with currency (`OBActiveOrHistoricCurrencyAndAmount`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Amount {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreditLine {
    pub included: bool,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub amount: Amount,
}

/// One entry of `OBReadBalance1.Data.Balance`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Balance {
    pub account_id: String,
    pub credit_debit_indicator: &'static str,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub date_time: String,
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_line: Option<Vec<CreditLine>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BalanceData {
    pub balance: Vec<Balance>,
}

/// `OBReadBalance1`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadBalance {
    pub data: BalanceData,
    pub links: Links,
    pub meta: Meta,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeAndSubCode {
    pub code: &'static str,
    pub sub_code: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProprietaryCode {
    pub code: &'static str,
    pub issuer: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionBalance {
    pub credit_debit_indicator: &'static str,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub amount: Amount,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MerchantDetails {
    pub merchant_name: String,
    pub merchant_category_code: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CardInstrument {
    pub card_scheme_name: &'static str,
    pub authorisation_type: &'static str,
    pub identification: String,
}

/// `OBTransaction6`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Transaction {
    pub account_id: String,
    pub transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_reference: Option<String>,
    pub credit_debit_indicator: &'static str,
    pub status: &'static str,
    pub transaction_mutability: &'static str,
    pub booking_date_time: String,
    pub value_date_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_information: Option<String>,
    pub amount: Amount,
    pub bank_transaction_code: CodeAndSubCode,
    pub proprietary_bank_transaction_code: ProprietaryCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<TransactionBalance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_details: Option<MerchantDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creditor_account: Option<CashAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debtor_account: Option<CashAccount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_instrument: Option<CardInstrument>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TransactionData {
    pub transaction: Vec<Transaction>,
}

/// `OBReadTransaction6`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReadTransaction {
    pub data: TransactionData,
    pub links: Links,
    pub meta: Meta,
}

/// `Initiation` of a domestic payment (consent and payment share it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Initiation {
    pub instruction_identification: String,
    pub end_to_end_identification: String,
    pub local_instrument: Option<String>,
    pub instructed_amount: InstructedAmount,
    pub debtor_account: Option<CashAccount>,
    pub creditor_account: CashAccount,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub creditor_postal_address: Option<Value>,
    pub remittance_information: Option<Remittance>,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub supplementary_data: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct InstructedAmount {
    pub amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Remittance {
    pub unstructured: Option<String>,
    pub reference: Option<String>,
}

/// `OBRisk1` (every field optional, nothing else allowed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Risk {
    pub payment_context_code: Option<String>,
    pub merchant_category_code: Option<String>,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub merchant_customer_identification: Option<String>,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub contract_present_indicator: Option<bool>,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub beneficiary_prepopulated_indicator: Option<bool>,
    pub payment_purpose_code: Option<String>,
    pub beneficiary_account_type: Option<String>,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub delivery_address: Option<Value>,
}

/// `OBWriteDomesticConsent4`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DomesticConsentRequest {
    pub data: DomesticConsentData,
    pub risk: Risk,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DomesticConsentData {
    pub read_refund_account: Option<String>,
    pub initiation: Initiation,
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub authorisation: Option<Value>,
    #[serde(rename = "SCASupportData")]
    #[expect(
        dead_code,
        reason = "parsed so the schema's field set is enforced; the raw JSON is what gets echoed"
    )]
    pub sca_support_data: Option<Value>,
}

/// `OBWriteDomestic2`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DomesticRequest {
    pub data: DomesticData,
    pub risk: Risk,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct DomesticData {
    pub consent_id: String,
    pub initiation: Initiation,
}

/// `OBWriteFundsConfirmationResponse1` data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FundsAvailableResult {
    pub funds_available_date_time: String,
    pub funds_available: bool,
}
