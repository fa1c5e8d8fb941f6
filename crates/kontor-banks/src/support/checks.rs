//! What a payment request must satisfy before a connector sends it: the limits both standards
//! put on its fields, checked here so that a request the spec forbids is refused with the field
//! named, instead of reaching the bank. Error texts name the rule, never the value.

use kontor_domain::money::Money;

use crate::{BankError, PaymentRequest};

/// The longest `x-idempotency-key` (UK Read/Write API, header schema `maxLength: 40`); the hub's
/// keys have to fit the strictest standard.
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 40;

/// The checks every payment passes, whatever the standard: the key, the amount's sign, the
/// end-to-end id, and text fields free of control characters. Each connector adds its own.
pub(crate) fn common(request: &PaymentRequest) -> Result<(), BankError> {
    idempotency_key(&request.idempotency_key)?;
    if !request.amount.is_positive() {
        return Err(BankError::invalid_request("amount", "must be positive"));
    }
    // Both standards: `maxLength: 35`; UK also `minLength: 1`, and an empty one says nothing.
    text("end_to_end_id", &request.end_to_end_id, 35)?;
    if request.creditor_name.trim().is_empty() {
        return Err(BankError::invalid_request("creditor_name", "is empty"));
    }
    if let Some(remittance) = &request.remittance {
        text("remittance", remittance, 140)?;
    }
    if request.state.is_empty() {
        return Err(BankError::invalid_request("state", "is empty"));
    }
    Ok(())
}

/// 1 to 40 visible ASCII characters: the UK header pattern `^(?!\s)(.*)(\S)$` within 40, and a
/// value every HTTP stack carries unchanged.
pub(crate) fn idempotency_key(key: &str) -> Result<(), BankError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(BankError::invalid_request(
            "idempotency_key",
            "must be 1 to 40 characters",
        ));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(BankError::invalid_request(
            "idempotency_key",
            "must be visible ASCII characters without spaces",
        ));
    }
    Ok(())
}

/// A text field: not empty, at most `max` characters (JSON Schema `maxLength` counts characters,
/// not bytes), and no control characters, which no payment scheme carries.
pub(crate) fn text(field: &str, value: &str, max: usize) -> Result<(), BankError> {
    if value.trim().is_empty() {
        return Err(BankError::invalid_request(field, "is empty"));
    }
    if value.chars().count() > max {
        return Err(BankError::invalid_request(
            field,
            &format!("is longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(BankError::invalid_request(
            field,
            "contains control characters",
        ));
    }
    Ok(())
}

/// The amount's integer part fits `digits` digits (UK: `\d{1,13}`; Berlin Group 14, which
/// [`Money`] never exceeds).
pub(crate) fn integer_digits(amount: Money, digits: u32) -> Result<(), BankError> {
    let scale = 10_i64.pow(u32::from(amount.currency().minor_units()));
    let integer = amount.minor_units().unsigned_abs() / scale.unsigned_abs();
    if integer >= 10_u64.pow(digits) {
        return Err(BankError::invalid_request(
            "amount",
            &format!("has more than {digits} integer digits"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::currency::Currency;

    #[test]
    fn idempotency_keys() {
        assert!(idempotency_key("pay-1").is_ok());
        assert!(idempotency_key(&"k".repeat(40)).is_ok());
        for bad in ["", " a", "a b", "é", &"k".repeat(41)] {
            let err = idempotency_key(bad).unwrap_err();
            assert!(err.is_invalid_request(), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn text_limits_count_characters() {
        assert!(text("f", &"é".repeat(70), 70).is_ok());
        assert!(text("f", &"é".repeat(71), 70).is_err());
        assert!(text("f", "  ", 70).is_err());
        assert!(text("f", "a\nb", 70).is_err());
        let message = text("creditor_name", &"Jane Doe ".repeat(10), 70)
            .unwrap_err()
            .to_string();
        assert!(message.contains("creditor_name"), "{message}");
        assert!(!message.contains("Jane"), "{message}");
    }

    #[test]
    fn integer_digits_of_amounts() {
        let eur = Currency::parse("EUR").unwrap();
        let max13 = Money::parse("9999999999999.99", eur).unwrap();
        assert!(integer_digits(max13, 13).is_ok());
        let fourteen = Money::parse("10000000000000", eur).unwrap();
        assert!(integer_digits(fourteen, 13).is_err());
        assert!(integer_digits(fourteen, 14).is_ok());
    }
}
