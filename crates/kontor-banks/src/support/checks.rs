//! What a payment request must satisfy before a connector sends it, beyond what its typed
//! fields already guarantee (the domain parses the end-to-end id, remittance, creditor name,
//! sort code and account number once, with their limits: `kontor_domain::payment`): the key's
//! length at the strictest bank, the amount's sign and size. A request the spec forbids is
//! refused with the field named, instead of reaching the bank. Error texts name the rule, never
//! the value.

use kontor_domain::money::Money;
use kontor_domain::payment::IdempotencyKey;

use crate::{BankError, PaymentRequest};

/// The checks every payment passes, whatever the standard. Each connector adds its own.
pub(crate) fn common(request: &PaymentRequest) -> Result<(), BankError> {
    idempotency_key(request.idempotency_key.as_str())?;
    if !request.amount.is_positive() {
        return Err(BankError::invalid_request("amount", "must be positive"));
    }
    if request.state.is_empty() {
        return Err(BankError::invalid_request("state", "is empty"));
    }
    Ok(())
}

/// An idempotency key every bank takes: the domain's rule (visible ASCII) within the UK header's
/// `maxLength` ([`IdempotencyKey::MAX_BANK_LEN`]; its pattern `^(?!\s)(.*)(\S)$` admits it).
pub(crate) fn idempotency_key(key: &str) -> Result<(), BankError> {
    let parsed = IdempotencyKey::parse(key)
        .map_err(|e| BankError::invalid_request("idempotency_key", &e.to_string()))?;
    if !parsed.fits_banks() {
        return Err(BankError::invalid_request(
            "idempotency_key",
            &format!(
                "must be at most {} characters",
                IdempotencyKey::MAX_BANK_LEN
            ),
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
    fn integer_digits_of_amounts() {
        let eur = Currency::parse("EUR").unwrap();
        let max13 = Money::parse("9999999999999.99", eur).unwrap();
        assert!(integer_digits(max13, 13).is_ok());
        let fourteen = Money::parse("10000000000000", eur).unwrap();
        assert!(integer_digits(fourteen, 13).is_err());
        assert!(integer_digits(fourteen, 14).is_ok());
    }
}
