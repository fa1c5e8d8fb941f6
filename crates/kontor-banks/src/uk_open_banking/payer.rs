//! Who pays a UK domestic payment, as the bank reports it. The consent asks for it
//! (`ReadRefundAccount: Yes`); the bank answers with `Debtor` on the authorised consent and on
//! the payment, and with `Refund.Account` on the payment. Only accounts the hub can name are
//! kept (sort code and account number, IBAN); anything malformed is left out, never an error.

use kontor_domain::iban::Iban;
use kontor_domain::uk_account::{SortCode, UkAccountNumber};
use serde_json::Value;

use crate::{AccountReference, PayerAccount};

/// `Name` of `OBCashAccountDebtor4` and of `Refund.Account`: at most 350 characters.
const MAX_NAME: usize = 350;

/// The payer named by a payment's `Refund.Account`, else by its (or its consent's) `Debtor`.
pub(super) fn payer(refund: Option<&Value>, debtor: Option<&Value>) -> Option<PayerAccount> {
    refund
        .and_then(|r| r.get("Account"))
        .and_then(reported)
        .or_else(|| debtor.and_then(reported))
}

/// `OBCashAccountDebtor4` or `Refund.Account`, read part by part: a `Name` that does not fit
/// is dropped, not the account.
fn reported(raw: &Value) -> Option<PayerAccount> {
    let text = |key: &str| raw.get(key).and_then(Value::as_str);
    let identification = text("Identification")?;
    let reference = match text("SchemeName")? {
        "UK.OBIE.SortCodeAccountNumber" => {
            let (sort_code, number) = identification
                .get(..6)
                .zip(identification.get(6..))
                .filter(|(_, number)| number.len() == 8)?;
            AccountReference::SortCode {
                sort_code: SortCode::parse(sort_code).ok()?,
                account_number: UkAccountNumber::parse(number).ok()?,
            }
        }
        "UK.OBIE.IBAN" => AccountReference::Iban(Iban::parse(identification).ok()?),
        _ => return None,
    };
    let name = text("Name").map(|n| n.trim().to_owned()).filter(|n| {
        (1..=MAX_NAME).contains(&n.chars().count()) && !n.chars().any(char::is_control)
    });
    Some(PayerAccount {
        account: reference,
        name,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sort_code(raw: &str, number: &str) -> AccountReference {
        AccountReference::SortCode {
            sort_code: SortCode::parse(raw).unwrap(),
            account_number: UkAccountNumber::parse(number).unwrap(),
        }
    }

    #[test]
    fn the_refund_account_comes_first_then_the_debtor() {
        let refund = json!({"Account": {"SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": "40099330971327", "Name": "Bob Smith"}});
        let debtor = json!({"SchemeName": "UK.OBIE.IBAN",
            "Identification": "GB33BUKB20201555555555", "Name": "Someone Else"});
        let from_refund = payer(Some(&refund), Some(&debtor)).unwrap();
        assert_eq!(from_refund.account, sort_code("400993", "30971327"));
        assert_eq!(from_refund.name.as_deref(), Some("Bob Smith"));
        let from_debtor = payer(None, Some(&debtor)).unwrap();
        assert_eq!(
            from_debtor.account,
            AccountReference::Iban(Iban::parse("GB33BUKB20201555555555").unwrap())
        );
    }

    #[test]
    fn what_cannot_be_named_is_left_out() {
        for bad in [
            json!({"SchemeName": "UK.OBIE.PAN", "Identification": "5555555555554444"}),
            json!({"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "4009933097132"}),
            json!({"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "40099é3097132"}),
            json!({"SchemeName": "UK.OBIE.IBAN", "Identification": "GB00NOTANIBAN"}),
            json!({"Identification": "40099330971327"}),
            json!("40099330971327"),
        ] {
            assert_eq!(payer(None, Some(&bad)), None, "{bad}");
        }
        // A refund account that cannot be named falls back to the debtor.
        let refund =
            json!({"Account": {"SchemeName": "UK.OBIE.Paym", "Identification": "+447700900123"}});
        let debtor = json!({"SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "40099330971327"});
        assert_eq!(
            payer(Some(&refund), Some(&debtor)).map(|p| p.account),
            Some(sort_code("400993", "30971327"))
        );
    }

    #[test]
    fn a_name_that_does_not_fit_is_dropped_not_the_account() {
        for name in [
            json!(""),
            json!("x".repeat(351)),
            json!("Bob\u{7}"),
            json!(42),
        ] {
            let debtor = json!({"SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": "40099330971327", "Name": name});
            let found = payer(None, Some(&debtor)).unwrap();
            assert_eq!(found.account, sort_code("400993", "30971327"));
            assert_eq!(found.name, None, "{debtor}");
        }
    }
}
