//! Amounts from bank answers, exact: parsed as decimal text into [`Money`], never through a
//! float, and refused (as a protocol error, not a panic) when malformed.

use kontor_domain::currency::Currency;
use kontor_domain::money::Money;

use crate::BankError;

pub(crate) fn currency(code: &str, what: &str) -> Result<Currency, BankError> {
    Currency::parse(code).map_err(|_| BankError::protocol(format!("{what}: unknown currency")))
}

/// A Berlin Group `amountValue`: signed, `-?[0-9]{1,14}(\.[0-9]{1,3})?`.
pub(crate) fn signed(amount: &str, currency_code: &str, what: &str) -> Result<Money, BankError> {
    let currency = currency(currency_code, what)?;
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let magnitude = parse_magnitude(digits, currency, what)?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// A UK `OBActiveCurrencyAndAmount_SimpleType` (`^\d{1,13}$|^\d{1,13}\.\d{1,5}$`, never signed)
/// with its `CreditDebitIndicator`: a debit is money out, so negative.
pub(crate) fn with_indicator(
    amount: &str,
    currency_code: &str,
    indicator: &str,
    what: &str,
) -> Result<Money, BankError> {
    let currency = currency(currency_code, what)?;
    let magnitude = parse_magnitude(amount, currency, what)?;
    match indicator {
        "Credit" => Ok(magnitude),
        "Debit" => Ok(-magnitude),
        _ => Err(BankError::protocol(format!(
            "{what}: CreditDebitIndicator is neither Credit nor Debit"
        ))),
    }
}

/// An unsigned decimal. Both standards allow more decimal places than a currency has (BG 3, UK
/// 5); extra places are accepted when they are zeros ("12.300" EUR is 12.30) and refused
/// otherwise, since dropping them would change the amount.
fn parse_magnitude(raw: &str, currency: Currency, what: &str) -> Result<Money, BankError> {
    let malformed = || BankError::protocol(format!("{what}: malformed amount"));
    if raw.starts_with(['-', '+']) {
        return Err(malformed());
    }
    let normalised = match raw.split_once('.') {
        Some((integer, fraction)) => {
            let places = usize::from(currency.minor_units());
            if fraction.len() > places && fraction.bytes().skip(places).all(|b| b == b'0') {
                let kept = &fraction[..places];
                if kept.is_empty() {
                    integer.to_owned()
                } else {
                    format!("{integer}.{kept}")
                }
            } else {
                raw.to_owned()
            }
        }
        None => raw.to_owned(),
    };
    Money::parse(&normalised, currency).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minor(money: Result<Money, BankError>) -> i64 {
        money.unwrap().minor_units()
    }

    #[test]
    fn berlin_group_amounts_are_signed() {
        assert_eq!(minor(signed("-17.32", "EUR", "t")), -1732);
        assert_eq!(minor(signed("1056", "EUR", "t")), 105_600);
        assert_eq!(minor(signed("5768.2", "EUR", "t")), 576_820);
        assert_eq!(minor(signed("12.300", "EUR", "t")), 1230);
        assert_eq!(minor(signed("-0.00", "EUR", "t")), 0);
        assert_eq!(minor(signed("12", "JPY", "t")), 12);
        assert_eq!(minor(signed("12.0", "JPY", "t")), 12);
        assert_eq!(signed("12.5", "EUR", "t").unwrap().currency().code(), "EUR");
    }

    #[test]
    fn malformed_amounts_are_protocol_errors() {
        for bad in [
            "",
            "-",
            "12,30",
            "1e3",
            "12.305",
            "+1",
            "--1",
            "NaN",
            " 1",
            "1.",
            ".5",
            "123456789012345",
        ] {
            assert!(
                matches!(signed(bad, "EUR", "t"), Err(BankError::Protocol { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            signed("1", "EURO", "t"),
            Err(BankError::Protocol { .. })
        ));
        assert!(matches!(
            signed("1", "eur", "t"),
            Err(BankError::Protocol { .. })
        ));
        assert!(matches!(
            signed("1", "XXX", "t"),
            Err(BankError::Protocol { .. })
        ));
    }

    #[test]
    fn uk_amounts_take_their_sign_from_the_indicator() {
        assert_eq!(minor(with_indicator("10.50", "GBP", "Debit", "t")), -1050);
        assert_eq!(
            minor(with_indicator("10.50000", "GBP", "Credit", "t")),
            1050
        );
        assert_eq!(minor(with_indicator("0", "GBP", "Debit", "t")), 0);
        for bad in ["-10.50", "10.50001", "abc"] {
            assert!(
                matches!(
                    with_indicator(bad, "GBP", "Credit", "t"),
                    Err(BankError::Protocol { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            with_indicator("1", "GBP", "Both", "t"),
            Err(BankError::Protocol { .. })
        ));
    }

    #[test]
    fn errors_do_not_echo_the_amount() {
        let err = signed("98765.4321", "EUR", "balance")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("98765"), "{err}");
    }
}
