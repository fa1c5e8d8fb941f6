//! A domestic payment in the Read/Write API's words: the consent's `Initiation` built from the
//! hub's request (after the checks the spec's schema implies), and the payment's and the
//! consent's `Status` with their ISO 20022 meaning.

use kontor_domain::payment::{Iso20022Status, PaymentScheme};

use super::wire::{Amount, DomesticInitiation, PaymentAccount, RemittanceInformation};
use crate::support::checks;
use crate::support::ids::{digest_token, is_uuid};
use crate::{AccountReference, BankError, BankPaymentStatus, PaymentProduct, PaymentRequest};

/// `InstructionIdentification` (1 to 35 characters), the same for every attempt with a key:
/// the key when it fits, a UUID key without its hyphens, else 35 characters of its hash.
fn instruction_identification(idempotency_key: &str) -> String {
    if idempotency_key.len() <= 35 {
        idempotency_key.to_owned()
    } else if is_uuid(idempotency_key) {
        idempotency_key.replace('-', "")
    } else {
        digest_token(idempotency_key, 35)
    }
}

/// The consent's `Initiation`, after the checks the spec's schema implies: GBP (a domestic
/// payment), an amount of at most 13 integer digits, `CreditorAccount.Name` 1 to 350
/// characters, `RemittanceInformation.Unstructured` at most 140, `EndToEndIdentification` 1 to
/// 35, accounts by sort code and account number or IBAN.
pub(super) fn initiation(request: &PaymentRequest) -> Result<DomesticInitiation, BankError> {
    checks::common(request)?;
    if request.product != PaymentProduct::UkDomestic {
        return Err(BankError::invalid_request(
            "product",
            "a UK bank initiates domestic payments, not SEPA credit transfers",
        ));
    }
    if request.amount.currency() != PaymentScheme::UkDomestic.currency() {
        return Err(BankError::invalid_request(
            "amount",
            "a UK domestic payment is in GBP",
        ));
    }
    checks::integer_digits(request.amount, 13)?;
    let mut creditor = account(&request.creditor);
    creditor.name = Some(request.creditor_name.to_string());
    Ok(DomesticInitiation {
        instruction_identification: instruction_identification(request.idempotency_key.as_str()),
        end_to_end_identification: request.end_to_end_id.to_string(),
        instructed_amount: Amount {
            amount: request.amount.to_decimal_string(),
            currency: request.amount.currency().code().to_owned(),
        },
        debtor_account: request.debtor.as_ref().map(account),
        creditor_account: creditor,
        remittance_information: request.remittance.as_ref().map(|unstructured| {
            RemittanceInformation {
                unstructured: unstructured.to_string(),
            }
        }),
    })
}

fn account(reference: &AccountReference) -> PaymentAccount {
    match reference {
        AccountReference::Iban(iban) => PaymentAccount {
            scheme_name: "UK.OBIE.IBAN",
            identification: iban.as_str().to_owned(),
            name: None,
        },
        AccountReference::SortCode {
            sort_code,
            account_number,
        } => PaymentAccount {
            scheme_name: "UK.OBIE.SortCodeAccountNumber",
            identification: format!("{sort_code}{account_number}"),
            name: None,
        },
    }
}

/// A domestic payment's `Status`, by the ISO 20022 name it spells out.
pub(super) fn payment_status(status: &str) -> BankPaymentStatus {
    use Iso20022Status as I;
    let iso = match status {
        "Pending" => Some(I::Pending),
        "AcceptedSettlementInProcess" => Some(I::AcceptedSettlementInProcess),
        "AcceptedSettlementCompleted" => Some(I::AcceptedSettlementCompleted),
        "AcceptedCreditSettlementCompleted" => Some(I::AcceptedCreditSettlementCompleted),
        "AcceptedWithoutPosting" => Some(I::AcceptedWithoutPosting),
        "Rejected" => Some(I::Rejected),
        _ => None,
    };
    BankPaymentStatus {
        verbatim: status.to_owned(),
        iso,
        reason: None,
    }
}

/// A payment consent's `Status`, as where the payment stands: waiting for the user (RCVD),
/// authorised by them and not yet submitted (ACTC), refused (RJCT). `Consumed` says a payment
/// was submitted and nothing about how it fares, so it has no ISO meaning: the payment's own
/// status has (call `complete_payment` again to learn the payment's id if it was lost).
pub(super) fn consent_status(status: &str) -> BankPaymentStatus {
    use Iso20022Status as I;
    let (iso, reason) = match status {
        "AwaitingAuthorisation" => (Some(I::Received), None),
        "Authorised" => (Some(I::AcceptedTechnicalValidation), None),
        "Rejected" => (
            Some(I::Rejected),
            Some("the bank rejected the payment consent".to_owned()),
        ),
        _ => (None, None),
    };
    BankPaymentStatus {
        verbatim: status.to_owned(),
        iso,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_ids_fit_35_characters() {
        assert_eq!(instruction_identification("pay-1"), "pay-1");
        assert_eq!(
            instruction_identification("7f1f6f4e-3d0b-4e5c-9a51-2b8f0c1d2e3f"),
            "7f1f6f4e3d0b4e5c9a512b8f0c1d2e3f"
        );
        let long = instruction_identification(&"k".repeat(40));
        assert_eq!(long.len(), 35);
        assert_eq!(long, instruction_identification(&"k".repeat(40)));
    }

    #[test]
    fn payment_statuses_map_by_name() {
        for (uk, iso) in [
            ("Pending", "PDNG"),
            ("AcceptedSettlementInProcess", "ACSP"),
            ("AcceptedSettlementCompleted", "ACSC"),
            ("AcceptedCreditSettlementCompleted", "ACCC"),
            ("AcceptedWithoutPosting", "ACWP"),
            ("Rejected", "RJCT"),
        ] {
            let status = payment_status(uk);
            assert_eq!(status.verbatim, uk);
            assert_eq!(status.iso.map(Iso20022Status::code), Some(iso), "{uk}");
        }
        assert_eq!(payment_status("Exploded").iso, None);
    }

    #[test]
    fn consent_statuses_say_where_the_payment_stands() {
        assert_eq!(
            consent_status("AwaitingAuthorisation").iso,
            Some(Iso20022Status::Received)
        );
        assert_eq!(
            consent_status("Authorised").iso,
            Some(Iso20022Status::AcceptedTechnicalValidation)
        );
        assert_eq!(
            consent_status("Rejected").iso,
            Some(Iso20022Status::Rejected)
        );
        let consumed = consent_status("Consumed");
        assert_eq!(
            (consumed.verbatim.as_str(), consumed.iso),
            ("Consumed", None)
        );
    }
}
