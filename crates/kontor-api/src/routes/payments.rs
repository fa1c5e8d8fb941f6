//! `/v1/payments`: initiate a payment from a user's account (exactly once per Idempotency-Key),
//! and follow it. The user authorises it at `authorize_url`; the hub then follows the bank's
//! status until it is final.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::account_reference::AccountReference;
use kontor_domain::bank::{BankId, Standard};
use kontor_domain::currency::Currency;
use kontor_domain::iban::Iban;
use kontor_domain::money::Money;
use kontor_domain::payment::{
    CreditorName, EndToEndId, FieldError, IdempotencyKey, PaymentScheme, RemittanceInfo,
};
use kontor_domain::{PaymentId, RedirectUri, SortCode, UkAccountError, UkAccountNumber, UserId};
use kontor_service::{PaymentOrder, PaymentView, StoredAccount, hash_token};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Scoped, scoped};
use crate::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use crate::extract::{ApiJson, PathId};
use crate::openapi::schemas;
use crate::routes::accounts::Amount;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    #[schema(
        example = "DE89370400440532013000",
        pattern = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
    )]
    pub iban: Option<String>,
    /// UK: with `account_number`, instead of an IBAN. 6 digits, with a hyphen or a space
    /// between groups if you like (`40-09-93`); answered as bare digits.
    #[schema(example = "40-09-93", pattern = "^[0-9](?:[- ]?[0-9]){5}$")]
    pub sort_code: Option<String>,
    /// UK: 8 digits, with a hyphen or a space between groups if you like.
    #[schema(example = "11463434", pattern = "^[0-9](?:[- ]?[0-9]){7}$")]
    pub account_number: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditorInput {
    #[schema(
        example = "Hausverwaltung Müller",
        min_length = 1,
        max_length = 70,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name: String,
    #[schema(
        example = "DE89370400440532013000",
        pattern = "^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
    )]
    pub iban: Option<String>,
    /// UK: 6 digits, with a hyphen or a space between groups if you like (`40-09-93`).
    #[schema(pattern = "^[0-9](?:[- ]?[0-9]){5}$")]
    pub sort_code: Option<String>,
    /// UK: 8 digits, with a hyphen or a space between groups if you like.
    #[schema(pattern = "^[0-9](?:[- ]?[0-9]){7}$")]
    pub account_number: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountInput {
    /// A decimal string, never a number: `"12.34"`.
    #[schema(example = "12.34", pattern = "^[0-9]{1,15}(\\.[0-9]{1,4})?$")]
    pub value: String,
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    #[schema(value_type = schemas::UserIdString, example = "usr_de_01h8x3k4q9c2m7v5t6r8w0y1z2")]
    pub user_id: String,
    #[schema(value_type = schemas::BankIdString)]
    pub bank_id: String,
    /// The account to pay from. Required at Berlin Group banks; at UK banks, when absent, the user
    /// picks it at the bank.
    pub debtor_account: Option<AccountInput>,
    pub creditor: CreditorInput,
    pub amount: AmountInput,
    /// Unstructured remittance information, at most 140 characters.
    #[schema(
        example = "Rent November",
        min_length = 1,
        max_length = 140,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub remittance: Option<String>,
    /// At most 35 characters; generated when absent.
    #[schema(pattern = "^[\\x21-\\x7e]{1,35}$")]
    pub end_to_end_id: Option<String>,
    /// SEPA Instant (Berlin Group banks that offer it).
    pub instant: Option<bool>,
    /// Where the user is sent back to, with `payment_id` and `status`.
    #[schema(value_type = schemas::HttpsUrl)]
    pub redirect_uri: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusEntry {
    #[schema(value_type = schemas::PaymentStatusWord)]
    pub status: String,
    /// What the bank said, verbatim (an ISO 20022 code, or a UK status name).
    pub bank_status: Option<String>,
    /// Why, when the bank said: for a rejection, the bank's reason (its error code, or what
    /// its status answer stated, such as insufficient funds).
    pub reason: Option<String>,
    pub at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOutput {
    pub iban: Option<String>,
    pub sort_code: Option<String>,
    pub account_number: Option<String>,
}

/// The account a payment is made from: the one the request named, or, when it named none (UK
/// banks), the one the user chose at the bank, as the bank reported it once they authorised.
#[derive(Debug, Serialize, ToSchema)]
pub struct DebtorAccountOutput {
    pub iban: Option<String>,
    pub sort_code: Option<String>,
    pub account_number: Option<String>,
    /// The account's name as the bank holds it (its owner or owners), when the bank said.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    #[schema(value_type = schemas::PaymentIdString)]
    pub id: String,
    #[schema(value_type = schemas::PaymentStatusWord)]
    pub status: String,
    #[schema(value_type = schemas::UserIdString)]
    pub user_id: String,
    pub bank_id: String,
    #[schema(value_type = schemas::PaymentSchemeWord)]
    pub scheme: String,
    pub amount: Amount,
    pub creditor_name: String,
    pub creditor_account: AccountOutput,
    /// Null until known: a UK payment whose request named no account has one once the user
    /// authorised it at the bank.
    pub debtor_account: Option<DebtorAccountOutput>,
    pub remittance: Option<String>,
    pub end_to_end_id: String,
    /// The bank's id for the payment, once it has one.
    pub bank_payment_id: Option<String>,
    /// Where the user authorises the payment; present until they have.
    pub authorize_url: Option<String>,
    /// Why the payment has its status, when the bank said: for `rejected`, the bank's reason
    /// (`PRODUCT_INVALID`, `insufficient funds (fundsAvailable: false)`, …).
    pub status_reason: Option<String>,
    pub history: Vec<StatusEntry>,
    pub created_at: String,
    pub updated_at: String,
}

fn account_output(account: &StoredAccount) -> AccountOutput {
    match account {
        StoredAccount::Iban(iban) => AccountOutput {
            iban: Some(iban.clone()),
            sort_code: None,
            account_number: None,
        },
        StoredAccount::SortCode {
            sort_code,
            account_number,
        } => AccountOutput {
            iban: None,
            sort_code: Some(sort_code.clone()),
            account_number: Some(account_number.clone()),
        },
    }
}

impl From<PaymentView> for PaymentResponse {
    fn from(view: PaymentView) -> Self {
        let PaymentView {
            payment: p,
            details,
            history,
            authorize_url,
        } = view;
        Self {
            id: p.id.to_string(),
            status: p.status.as_str().to_owned(),
            user_id: p.user_id.to_string(),
            bank_id: p.bank_id.to_string(),
            scheme: p.scheme.as_str().to_owned(),
            amount: p.amount.into(),
            creditor_name: details.creditor_name,
            creditor_account: account_output(&details.creditor),
            debtor_account: details.debtor.as_ref().map(|debtor| {
                let AccountOutput {
                    iban,
                    sort_code,
                    account_number,
                } = account_output(debtor);
                DebtorAccountOutput {
                    iban,
                    sort_code,
                    account_number,
                    name: details.debtor_name.clone(),
                }
            }),
            remittance: details.remittance,
            end_to_end_id: p.end_to_end_id,
            bank_payment_id: p.bank_payment_id,
            authorize_url: authorize_url.map(|u| u.to_string()),
            status_reason: p.status_reason,
            history: history
                .into_iter()
                .map(|h| StatusEntry {
                    status: h.status.as_str().to_owned(),
                    bank_status: h.bank_status,
                    reason: h.reason,
                    at: h.at.to_rfc3339(),
                })
                .collect(),
            created_at: p.created_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentList {
    pub data: Vec<PaymentResponse>,
    pub next_cursor: Option<String>,
}

fn invalid(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<IdempotencyKey> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        invalid(
            ErrorCode::MissingIdempotencyKey,
            "send an Idempotency-Key header",
        )
    })?;
    let refused = || {
        invalid(
            ErrorCode::InvalidIdempotencyKey,
            format!(
                "an Idempotency-Key is 1-{} visible ASCII characters",
                IdempotencyKey::MAX_LEN
            ),
        )
    };
    let raw = value.to_str().map_err(|_| refused())?;
    IdempotencyKey::parse(raw).map_err(|_| refused())
}

/// A field's parse error as the answer with the field's code.
fn field(code: ErrorCode) -> impl Fn(FieldError) -> ApiError {
    move |err| invalid(code, err.to_string())
}

fn account(
    iban: Option<&String>,
    sort_code: Option<&String>,
    account_number: Option<&String>,
    what: &str,
) -> ApiResult<AccountReference> {
    match (iban, sort_code, account_number) {
        (Some(iban), None, None) => Iban::parse(iban)
            .map(AccountReference::Iban)
            .map_err(|e| invalid(ErrorCode::InvalidIban, format!("{what}: {e}"))),
        (None, Some(sort), Some(number)) => {
            let refused = |e: UkAccountError| {
                invalid(ErrorCode::InvalidAccountNumber, format!("{what}: {e}"))
            };
            Ok(AccountReference::SortCode {
                sort_code: SortCode::parse(sort).map_err(refused)?,
                account_number: UkAccountNumber::parse(number).map_err(refused)?,
            })
        }
        _ => Err(invalid(
            ErrorCode::InvalidAccountNumber,
            format!("{what}: give an iban, or a sort_code with an account_number"),
        )),
    }
}

/// Checks everything the request says against the rules and the bank, before anything is stored.
fn order(state: &AppState, body: &CreatePaymentRequest) -> ApiResult<PaymentOrder> {
    let user_id =
        UserId::parse(&body.user_id).map_err(|e| invalid(ErrorCode::InvalidId, e.to_string()))?;
    let bank_id =
        BankId::parse(&body.bank_id).map_err(|e| invalid(ErrorCode::UnknownBank, e.to_string()))?;
    let bank = state.hub().directory().get(&bank_id).ok_or_else(|| {
        invalid(
            ErrorCode::UnknownBank,
            format!("no bank {bank_id} in the directory"),
        )
    })?;
    let currency = Currency::parse(&body.amount.currency)
        .map_err(|e| invalid(ErrorCode::InvalidCurrency, e.to_string()))?;
    let amount = Money::parse(&body.amount.value, currency)
        .map_err(|e| invalid(ErrorCode::InvalidAmount, e.to_string()))?;
    if !amount.is_positive() {
        return Err(invalid(
            ErrorCode::InvalidAmount,
            "amount.value must be greater than zero",
        ));
    }
    let standard = bank.profile.standard;
    let scheme = match (standard, body.instant.unwrap_or(false)) {
        (Standard::BerlinGroup, false) => PaymentScheme::Sepa,
        (Standard::BerlinGroup, true) => PaymentScheme::SepaInstant,
        (Standard::UkOpenBanking, _) => PaymentScheme::UkDomestic,
    };
    if currency != scheme.currency() {
        return Err(invalid(
            ErrorCode::CurrencyNotSupported,
            format!("{bank_id} pays in {} only", scheme.currency().code()),
        ));
    }
    let creditor_name =
        CreditorName::parse(&body.creditor.name).map_err(field(ErrorCode::InvalidCreditorName))?;
    let creditor = account(
        body.creditor.iban.as_ref(),
        body.creditor.sort_code.as_ref(),
        body.creditor.account_number.as_ref(),
        "creditor",
    )?;
    let debtor = body
        .debtor_account
        .as_ref()
        .map(|d| {
            account(
                d.iban.as_ref(),
                d.sort_code.as_ref(),
                d.account_number.as_ref(),
                "debtor_account",
            )
        })
        .transpose()?;
    if standard == Standard::BerlinGroup
        && (matches!(creditor, AccountReference::SortCode { .. })
            || matches!(debtor, Some(AccountReference::SortCode { .. })))
    {
        return Err(invalid(
            ErrorCode::SchemeNotSupported,
            "SEPA payments need IBANs",
        ));
    }
    if standard == Standard::BerlinGroup && debtor.is_none() {
        return Err(invalid(
            ErrorCode::DebtorAccountRequired,
            "give debtor_account: SEPA payments at this bank name the account to pay from",
        ));
    }
    let remittance = body
        .remittance
        .as_deref()
        .map(RemittanceInfo::parse)
        .transpose()
        .map_err(field(ErrorCode::InvalidRemittance))?;
    let end_to_end_id = body
        .end_to_end_id
        .as_deref()
        .map(EndToEndId::parse)
        .transpose()
        .map_err(field(ErrorCode::InvalidEndToEndId))?;
    let redirect_uri = RedirectUri::parse(
        &body.redirect_uri,
        state.hub().settings().allow_http_redirects,
    )
    .map_err(|e| invalid(ErrorCode::InvalidRedirectUri, e.to_string()))?;
    Ok(PaymentOrder {
        user_id,
        bank_id,
        scheme,
        debtor,
        creditor_name,
        creditor,
        amount,
        remittance,
        end_to_end_id,
        redirect_uri,
    })
}

/// Initiate a payment, exactly once per Idempotency-Key.
#[utoipa::path(
    post, path = "/v1/payments", tag = "payments", operation_id = "createPayment",
    request_body = CreatePaymentRequest,
    params(("Idempotency-Key" = String, Header, pattern = "^[\\x21-\\x7e]{1,255}$",
        description = "1-255 visible ASCII characters, unique per payment; retries with the same key and body get the first answer again")),
    security(("bearer" = ["payments:write"])),
    responses(
        (status = 201, description = "Accepted; send the user to authorize_url. A replay carries `Idempotent-Replayed: true`.", body = PaymentResponse),
        (status = 400, description = "Invalid body, amount, account, currency or key", body = ErrorEnvelope),
        (status = 404, description = "No such user", body = ErrorEnvelope),
        (status = 409, description = "A request with this key is in flight", body = ErrorEnvelope),
        (status = 422, description = "The key was used with a different request", body = ErrorEnvelope),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    auth: Scoped<scoped::PaymentsWrite>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreatePaymentRequest>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let order = order(&state, &body)?;
    let canonical = serde_json::to_string(&body).map_err(|e| ApiError::internal(&e))?;
    let accepted = state
        .hub()
        .accept_payment(&auth.tenant, &key, &hash_token(&canonical), order)
        .await?;
    let mut response = (
        StatusCode::CREATED,
        Json(PaymentResponse::from(accepted.view)),
    )
        .into_response();
    if accepted.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Read a payment: status, history, bank references.
#[utoipa::path(
    get, path = "/v1/payments/{id}", tag = "payments", operation_id = "getPayment",
    params(("id" = schemas::PaymentIdString, Path, description = "A payment id, e.g. pay_de_…")),
    security(("bearer" = ["payments:read"])),
    responses(
        (status = 200, description = "The payment", body = PaymentResponse),
        (status = 404, description = "No such payment for this tenant", body = ErrorEnvelope),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Scoped<scoped::PaymentsRead>,
    PathId(id): PathId<PaymentId>,
) -> ApiResult<Json<PaymentResponse>> {
    Ok(Json(
        state.hub().payment_view(&auth.tenant, &id).await?.into(),
    ))
}

/// Cancel a payment. Before the user authorised it, the hub cancels it (its `authorize_url`
/// stops working). After, it is cancelled at the bank where the standard allows: a Berlin
/// Group SEPA credit transfer until the bank settles it (`DELETE` on the payment); a UK
/// domestic payment cannot be cancelled once authorised, nor an instant or settled payment,
/// which is refused with `payment_not_cancellable` and changes nothing. A cancelled payment
/// emits `payment.status_changed` (status `cancelled`, reason `tenant_cancelled`). Repeating
/// the call answers the cancelled payment again, so it needs no Idempotency-Key.
#[utoipa::path(
    post, path = "/v1/payments/{id}/cancel", tag = "payments", operation_id = "cancelPayment",
    params(("id" = schemas::PaymentIdString, Path, description = "A payment id, e.g. pay_de_…")),
    security(("bearer" = ["payments:write"])),
    responses(
        (status = 200, description = "The payment, cancelled", body = PaymentResponse),
        (status = 404, description = "No such payment for this tenant", body = ErrorEnvelope),
        (status = 409, description = "`payment_not_cancellable`: final already, refused by the bank, or a UK payment the user authorised; `payment_busy`: the payment is being sent to the bank right now", body = ErrorEnvelope),
        (status = 503, description = "The bank did not answer; nothing changed at the hub", body = ErrorEnvelope),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Scoped<scoped::PaymentsWrite>,
    PathId(id): PathId<PaymentId>,
) -> ApiResult<Json<PaymentResponse>> {
    Ok(Json(
        state
            .hub()
            .cancel_payment_for_tenant(&auth.tenant, &id)
            .await?
            .into(),
    ))
}
