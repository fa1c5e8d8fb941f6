//! `/domestic-payment-consents`: create (client token, `x-idempotency-key`), read, and the
//! funds confirmation; plus the checks of `Initiation` and `Risk` that payments repeat.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::PISP;
use super::auth::{
    check_fapi_headers, client_token, idempotency_key, json_body, jws_signature, psu_token,
};
use super::error::{UkError, UkResult};
use super::payments::IDEMPOTENCY_WINDOW;
use super::wire::{DomesticConsentRequest, FundsAvailableResult, Initiation, Links, Meta};
use crate::core::dates::timestamp;
use crate::core::{iban, money};
use crate::state::uk::{IdempotencyRecord, IdempotentOp, UkConsentStatus, UkPaymentConsent};
use crate::state::{Bank, BankState};
use crate::web::extract::{Params, read_body};

const LOCAL_INSTRUMENTS: [&str; 3] = ["UK.OBIE.FPS", "UK.OBIE.BACS", "UK.OBIE.CHAPS"];

pub(super) fn invalid(path: &str, message: impl Into<String>) -> UkError {
    UkError::bad_request("UK.OBIE.Field.Invalid", message).at(path)
}

/// Checks an `Initiation` as this bank would; returns the amount and the debtor (if named).
fn check_initiation(
    init: &Initiation,
    state: &BankState,
    currency: &str,
) -> UkResult<(i64, Option<(usize, usize)>)> {
    let p = "Data.Initiation";
    for (value, name, max) in [
        (
            &init.instruction_identification,
            "InstructionIdentification",
            35,
        ),
        (
            &init.end_to_end_identification,
            "EndToEndIdentification",
            35,
        ),
    ] {
        if value.is_empty() || value.chars().count() > max {
            return Err(invalid(
                &format!("{p}.{name}"),
                format!("{name} must be 1..{max} characters"),
            ));
        }
    }
    if let Some(instrument) = &init.local_instrument
        && !LOCAL_INSTRUMENTS.contains(&instrument.as_str())
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Unsupported.LocalInstrument",
            format!("{instrument} is not offered; use one of {LOCAL_INSTRUMENTS:?}"),
        )
        .at(format!("{p}.LocalInstrument")));
    }
    if init.instructed_amount.currency != currency {
        return Err(UkError::bad_request(
            "UK.OBIE.Unsupported.Currency",
            format!("domestic payments here are in {currency}"),
        )
        .at(format!("{p}.InstructedAmount.Currency")));
    }
    let amount = money::parse_minor(&init.instructed_amount.amount)
        .map_err(|e| invalid(&format!("{p}.InstructedAmount.Amount"), e.to_string()))?;
    if amount <= 0 || init.instructed_amount.amount.starts_with('-') {
        return Err(invalid(
            &format!("{p}.InstructedAmount.Amount"),
            "Amount must be positive",
        ));
    }
    let creditor = &init.creditor_account;
    match creditor.scheme_name.as_str() {
        "UK.OBIE.SortCodeAccountNumber"
            if creditor.identification.len() == 14
                && creditor.identification.bytes().all(|b| b.is_ascii_digit()) => {}
        "UK.OBIE.SortCodeAccountNumber" => {
            return Err(invalid(
                &format!("{p}.CreditorAccount.Identification"),
                "a sort code and account number are 14 digits",
            ));
        }
        "UK.OBIE.IBAN" if iban::is_valid(&creditor.identification) => {}
        "UK.OBIE.IBAN" => {
            return Err(invalid(
                &format!("{p}.CreditorAccount.Identification"),
                "not a valid IBAN",
            ));
        }
        other => {
            return Err(UkError::bad_request(
                "UK.OBIE.Unsupported.Scheme",
                format!("creditor scheme {other} is not supported"),
            )
            .at(format!("{p}.CreditorAccount.SchemeName")));
        }
    }
    if creditor
        .name
        .as_deref()
        .is_none_or(|n| n.is_empty() || n.chars().count() > 350)
    {
        return Err(UkError::bad_request(
            "UK.OBIE.Field.Missing",
            "CreditorAccount.Name is required",
        )
        .at(format!("{p}.CreditorAccount.Name")));
    }
    let debtor = match &init.debtor_account {
        None => None,
        Some(d) => Some(state.find_by_identifier(&d.identification).ok_or_else(|| {
            UkError::bad_request(
                "UK.OBIE.Resource.NotFound",
                "DebtorAccount is not an account at this bank",
            )
            .at(format!("{p}.DebtorAccount.Identification"))
        })?),
    };
    Ok((amount, debtor))
}

/// The `Risk` codes the sandbox checks (the rest of `OBRisk1` only has to be well-formed).
pub(super) fn check_risk(risk: &super::wire::Risk) -> UkResult<()> {
    const CONTEXTS: [&str; 12] = [
        "BillingGoodsAndServicesInAdvance",
        "BillingGoodsAndServicesInArrears",
        "PispPayee",
        "EcommerceMerchantInitiatedPayment",
        "FaceToFacePointOfSale",
        "TransferToSelf",
        "TransferToThirdParty",
        "BillPayment",
        "EcommerceGoods",
        "EcommerceServices",
        "Other",
        "PartyToParty",
    ];
    if let Some(context) = &risk.payment_context_code
        && !CONTEXTS.contains(&context.as_str())
    {
        return Err(invalid(
            "Risk.PaymentContextCode",
            format!("{context} is not a PaymentContextCode"),
        ));
    }
    for (value, path) in [
        (&risk.merchant_category_code, "Risk.MerchantCategoryCode"),
        (&risk.payment_purpose_code, "Risk.PaymentPurposeCode"),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| !(3..=4).contains(&v.chars().count()))
        {
            return Err(invalid(path, "must be 3 or 4 characters"));
        }
    }
    if risk.beneficiary_account_type.as_deref().is_some_and(|t| {
        ![
            "Personal",
            "JointPersonal",
            "PersonalSavingsAccount",
            "Business",
            "BusinessSavingsAccount",
            "Charity",
            "Collection",
            "Corporate",
            "Government",
            "Ewallet",
            "Investment",
            "ISA",
            "Premier",
            "Wealth",
            "Pension",
        ]
        .contains(&t)
    }) {
        return Err(invalid(
            "Risk.BeneficiaryAccountType",
            "not a BeneficiaryAccountType",
        ));
    }
    Ok(())
}

/// Whether the TPP asked to learn who pays (`Data.ReadRefundAccount: Yes` on the consent):
/// only then do the consent and its payment carry `Debtor`, and the payment `Refund`.
pub(super) fn reads_refund_account(consent: &UkPaymentConsent) -> bool {
    consent
        .data_extra
        .get("ReadRefundAccount")
        .and_then(Value::as_str)
        == Some("Yes")
}

/// The payer's account as `OBCashAccountDebtor4` (and `Refund.Account`): by sort code and
/// account number where it has them, else by IBAN, with its owner's name.
pub(super) fn debtor_json(state: &BankState, debtor: Option<(usize, usize)>) -> Option<Value> {
    let (u, a) = debtor?;
    let account = state.books.get(u)?.accounts.get(a)?;
    let (scheme, identification) = match (&account.sort_code, &account.account_number) {
        (Some(s), Some(n)) => ("UK.OBIE.SortCodeAccountNumber", format!("{s}{n}")),
        _ => ("UK.OBIE.IBAN", account.iban.clone()),
    };
    Some(
        json!({ "SchemeName": scheme, "Identification": identification, "Name": account.owner_name }),
    )
}

fn consent_body(bank: &Bank, state: &BankState, c: &UkPaymentConsent) -> Value {
    let mut data = serde_json::Map::new();
    data.insert("ConsentId".into(), json!(c.id));
    data.insert("CreationDateTime".into(), json!(timestamp(c.created_at)));
    data.insert("Status".into(), json!(c.status.as_str()));
    data.insert(
        "StatusUpdateDateTime".into(),
        json!(timestamp(c.status_updated_at)),
    );
    for (k, v) in &c.data_extra {
        data.insert(k.clone(), v.clone());
    }
    data.insert("Initiation".into(), c.initiation.clone());
    if matches!(
        c.status,
        UkConsentStatus::Authorised | UkConsentStatus::Consumed
    ) && reads_refund_account(c)
        && let Some(debtor) = debtor_json(state, c.debtor)
    {
        data.insert("Debtor".into(), debtor);
    }
    json!({ "Data": data, "Risk": c.risk, "Links": Links::only(bank.url(&format!("{PISP}/domestic-payment-consents/{}", c.id))), "Meta": Meta::one_page() })
}

/// The resource an idempotency key made within the last 24 hours, if any.
pub(super) fn replay(
    state: &BankState,
    client: &str,
    op: IdempotentOp,
    key: &str,
    now: OffsetDateTime,
) -> Option<String> {
    state
        .idempotency
        .get(&(client.to_string(), op, key.to_string()))
        .filter(|r| now - r.created_at < IDEMPOTENCY_WINDOW)
        .map(|r| r.resource_id.clone())
}

pub async fn create_consent(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    body: Body,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let client = client_token(&bank.lock(), &headers, "payments", now)?;
    let key = idempotency_key(&headers)?;
    jws_signature(&headers)?;
    let bytes = read_body(body)
        .await
        .ok_or_else(|| invalid("Data", "body too large"))?;
    let mut state = bank.lock();
    if let Some(id) = replay(&state, &client, IdempotentOp::PaymentConsent, &key, now)
        && let Some(existing) = state.uk_payment_consents.get(&id)
    {
        return Ok((
            StatusCode::CREATED,
            Json(consent_body(&bank, &state, existing)),
        )
            .into_response());
    }
    let request: DomesticConsentRequest = json_body(&headers, &bytes)?;
    let raw: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (amount, debtor) =
        check_initiation(&request.data.initiation, &state, &bank.config.currency)?;
    check_risk(&request.risk)?;
    if request
        .data
        .read_refund_account
        .as_deref()
        .is_some_and(|r| r != "Yes" && r != "No")
    {
        return Err(invalid(
            "Data.ReadRefundAccount",
            "ReadRefundAccount is Yes or No",
        ));
    }
    let mut data_extra = raw
        .get("Data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    data_extra.remove("Initiation");
    let instant = request
        .data
        .initiation
        .local_instrument
        .as_deref()
        .is_none_or(|i| i == "UK.OBIE.FPS");
    let id = state.next_id("pdc-");
    let consent = UkPaymentConsent {
        id: id.clone(),
        client_id: client.clone(),
        initiation: raw
            .pointer("/Data/Initiation")
            .cloned()
            .unwrap_or(Value::Null),
        risk: raw.get("Risk").cloned().unwrap_or_else(|| json!({})),
        data_extra,
        status: UkConsentStatus::AwaitingAuthorisation,
        created_at: now,
        status_updated_at: now,
        psu: None,
        debtor,
        amount,
        currency: bank.config.currency.clone(),
        instant,
        payment_id: None,
    };
    let body = consent_body(&bank, &state, &consent);
    state.uk_payment_consents.insert(id.clone(), consent);
    state.idempotency.insert(
        (client, IdempotentOp::PaymentConsent, key),
        IdempotencyRecord {
            resource_id: id,
            created_at: now,
            request: None,
        },
    );
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) fn consent_not_found() -> UkError {
    UkError::bad_request(
        "UK.OBIE.Resource.NotFound",
        "no domestic-payment consent with this id",
    )
    .at("ConsentId")
}

pub async fn read_consent(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let state = bank.lock();
    let client = client_token(&state, &headers, "payments", now)?;
    let consent = state
        .uk_payment_consents
        .get(params.get(0))
        .filter(|c| c.client_id == client)
        .ok_or_else(consent_not_found)?;
    Ok(Json(consent_body(&bank, &state, consent)).into_response())
}

pub async fn funds_confirmation(
    State(bank): State<Arc<Bank>>,
    headers: HeaderMap,
    params: Params,
) -> UkResult<Response> {
    check_fapi_headers(&headers)?;
    let now = bank.now();
    let state = bank.lock();
    let (_, token_consent) = psu_token(&state, &headers, "payments", now)?;
    let id = params.get(0);
    if token_consent != id {
        return Err(UkError::forbidden(
            "UK.OBIE.Resource.ConsentMismatch",
            "the access token belongs to another consent",
        ));
    }
    let consent = state
        .uk_payment_consents
        .get(id)
        .ok_or_else(consent_not_found)?;
    if consent.status != UkConsentStatus::Authorised {
        return Err(UkError::forbidden(
            "UK.OBIE.Resource.InvalidConsentStatus",
            format!("the consent is {}", consent.status.as_str()),
        ));
    }
    let available = consent
        .debtor
        .and_then(|(u, a)| state.books.get(u).map(|b| b.balances(a, now).available))
        .unwrap_or(0);
    let result = FundsAvailableResult {
        funds_available_date_time: timestamp(now),
        funds_available: available >= consent.amount,
    };
    let body = json!({
        "Data": { "FundsAvailableResult": result },
        "Links": Links::only(bank.url(&format!("{PISP}/domestic-payment-consents/{id}/funds-confirmation"))),
        "Meta": Meta::one_page(),
    });
    Ok(Json(body).into_response())
}
