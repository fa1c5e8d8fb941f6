//! Exact amounts of money: an integer count of a currency's minor units, parsed from and written
//! as decimal strings. There are no floats anywhere on the way, so no amount is ever rounded.

use std::fmt;
use std::ops::Neg;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::currency::Currency;
use crate::region::truncate_for_error;

/// The Berlin Group `amountValue` allows at most 14 digits before the decimal point; Kontor
/// holds every amount to that limit, so anything it accepts can be sent on to a bank.
pub const MAX_INTEGER_DIGITS: u8 = 14;

/// An amount in one currency, counted in that currency's minor units (cents for EUR, yen for
/// JPY, fils for BHD). Its magnitude always fits [`MAX_INTEGER_DIGITS`] integer digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "{got:?} is not an amount: expected digits with an optional leading '-' and an \
         optional '.' followed by decimal places, such as \"12.30\""
    )]
    Malformed { got: String },
    #[error("{got:?} has more than 14 digits before the decimal point")]
    TooManyIntegerDigits { got: String },
    #[error("{got:?} has more decimal places than {currency} allows ({})", .currency.minor_units())]
    TooManyDecimals { got: String, currency: Currency },
    #[error(
        "amount out of range: {currency} amounts have at most 14 digits before the decimal point"
    )]
    OutOfRange { currency: Currency },
    #[error("cannot combine an amount in {left} with an amount in {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
}

/// `10^exponent` for the exponents this module uses (at most 14 + 4 = 18, below `i64::MAX`).
fn power_of_ten(exponent: u8) -> i64 {
    10_i64.pow(u32::from(exponent))
}

/// The smallest magnitude, in minor units, that no longer fits 14 integer digits.
fn exclusive_limit(currency: Currency) -> i64 {
    power_of_ten(MAX_INTEGER_DIGITS + currency.minor_units())
}

fn all_digits(part: &str) -> bool {
    part.bytes().all(|b| b.is_ascii_digit())
}

impl Money {
    /// Parses the Berlin Group amount syntax `-?[0-9]{1,14}(\.[0-9]{1,n})?`, where `n` is the
    /// currency's number of minor units instead of a fixed 3: `"12.3"` EUR is 12.30, `"12.345"`
    /// EUR is an error, and any `.` is an error for currencies without minor units (JPY).
    ///
    /// Decisions the standard leaves open:
    /// - leading zeros are accepted (`"007.50"`) because the pattern allows them; they count
    ///   towards the 14 digits, as the pattern counts them;
    /// - `"-0"` and `"-0.00"` are accepted as zero: the pattern allows them, so a bank may
    ///   send them, and refusing would break a sync; the value is plain zero, written `"0.00"`;
    /// - no `+`, whitespace, exponent, thousands separator or `,` decimal separator.
    pub fn parse(value: &str, currency: Currency) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed {
            got: truncate_for_error(value),
        };
        let (negative, unsigned) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let (integer, fraction) = match unsigned.split_once('.') {
            Some((integer, fraction)) => (integer, Some(fraction)),
            None => (unsigned, None),
        };
        if integer.is_empty() || !all_digits(integer) {
            return Err(malformed());
        }
        let fraction = match fraction {
            Some(digits) if digits.is_empty() || !all_digits(digits) => return Err(malformed()),
            Some(digits) => digits,
            None => "",
        };
        if integer.len() > usize::from(MAX_INTEGER_DIGITS) {
            return Err(MoneyError::TooManyIntegerDigits {
                got: truncate_for_error(value),
            });
        }
        let exponent = currency.minor_units();
        if fraction.len() > usize::from(exponent) {
            return Err(MoneyError::TooManyDecimals {
                got: truncate_for_error(value),
                currency,
            });
        }

        // At most 14 + 4 digits, so the accumulation stays below 10^18 and cannot overflow;
        // the checked arithmetic is there so that a future change to the limits cannot panic.
        let out_of_range = || MoneyError::OutOfRange { currency };
        let mut minor: i64 = 0;
        for digit in integer.bytes().chain(fraction.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit - b'0')))
                .ok_or_else(out_of_range)?;
        }
        let missing_places = exponent.saturating_sub(u8::try_from(fraction.len()).unwrap_or(0));
        minor = minor
            .checked_mul(power_of_ten(missing_places))
            .ok_or_else(out_of_range)?;
        Self::from_minor(if negative { -minor } else { minor }, currency)
    }

    /// An amount from a count of minor units (`1230` EUR is 12.30 EUR), refused when its
    /// magnitude needs more than 14 integer digits.
    pub fn from_minor(minor_units: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor_units.unsigned_abs() < exclusive_limit(currency).unsigned_abs() {
            Ok(Self {
                minor_units,
                currency,
            })
        } else {
            Err(MoneyError::OutOfRange { currency })
        }
    }

    pub fn zero(currency: Currency) -> Self {
        Self {
            minor_units: 0,
            currency,
        }
    }

    pub fn minor_units(self) -> i64 {
        self.minor_units
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn is_positive(self) -> bool {
        self.minor_units > 0
    }

    pub fn is_negative(self) -> bool {
        self.minor_units < 0
    }

    pub fn is_zero(self) -> bool {
        self.minor_units == 0
    }

    /// The canonical decimal form, with exactly the currency's number of decimal places:
    /// `"12.30"` EUR, `"5"` JPY, `"1.000"` BHD, `"-0.01"` EUR. It parses back to the same value.
    pub fn to_decimal_string(self) -> String {
        let exponent = self.currency.minor_units();
        let scale = power_of_ten(exponent).unsigned_abs();
        let magnitude = self.minor_units.unsigned_abs();
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let (integer, fraction) = (magnitude / scale, magnitude % scale);
        if exponent == 0 {
            format!("{sign}{integer}")
        } else {
            let width = usize::from(exponent);
            format!("{sign}{integer}.{fraction:0width$}")
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let sum = self.minor_units.checked_add(other.minor_units);
        sum.ok_or(MoneyError::OutOfRange { currency })
            .and_then(|sum| Self::from_minor(sum, currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.checked_add(-other)
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// Negation cannot fail: the accepted range is symmetric around zero.
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money {
            minor_units: -self.minor_units,
            currency: self.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// `{"value": "12.30", "currency": "EUR"}`: the value is a string so no JSON parser on the way
/// can turn it into a float.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut state = s.serialize_struct("Money", 2)?;
        state.serialize_field("value", &self.to_decimal_string())?;
        state.serialize_field("currency", &self.currency)?;
        state.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyWire {
    value: AmountText,
    currency: Currency,
}

/// The `value` of a money object. JSON numbers are refused outright rather than converted:
/// by the time serde sees `12.3` as a number it may already have been rounded to a float.
struct AmountText(String);

const NUMBER_GIVEN: &str = "amount values must be JSON strings such as \"12.30\", not numbers, so that no precision is lost";

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AmountVisitor;

        impl Visitor<'_> for AmountVisitor {
            type Value = AmountText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a decimal amount as a JSON string, such as \"12.30\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<AmountText, E> {
                Ok(AmountText(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AmountText, E> {
                Err(E::custom(NUMBER_GIVEN))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AmountText, E> {
                Err(E::custom(NUMBER_GIVEN))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AmountText, E> {
                Err(E::custom(NUMBER_GIVEN))
            }
        }

        // `deserialize_any`, not `deserialize_str`: only then does a JSON number reach the
        // visitor, so the caller gets the explanation above instead of a generic type error.
        d.deserialize_any(AmountVisitor)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = MoneyWire::deserialize(d)?;
        Money::parse(&wire.value.0, wire.currency).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn minor(value: &str, code: &str) -> i64 {
        Money::parse(value, currency(code)).unwrap().minor_units()
    }

    #[test]
    fn parses_berlin_group_examples() {
        assert_eq!(minor("1056", "EUR"), 105_600);
        assert_eq!(minor("5768.2", "EUR"), 576_820);
        assert_eq!(minor("-1.50", "EUR"), -150);
        assert_eq!(minor("5877.78", "EUR"), 587_778);
        assert_eq!(minor("12.3", "EUR"), 1230);
        assert_eq!(minor("0.01", "EUR"), 1);
        assert_eq!(minor("007.50", "EUR"), 750);
    }

    #[test]
    fn respects_each_currencys_minor_units() {
        assert_eq!(minor("5", "JPY"), 5);
        assert_eq!(minor("1.000", "BHD"), 1000);
        assert_eq!(minor("1.5", "BHD"), 1500);
        assert_eq!(minor("12345678901234.1234", "CLF"), 123_456_789_012_341_234);
        for (value, code) in [
            ("12.345", "EUR"),
            ("5.0", "JPY"),
            ("5.", "JPY"),
            ("1.0001", "BHD"),
        ] {
            let err = Money::parse(value, currency(code)).unwrap_err();
            assert!(
                matches!(
                    err,
                    MoneyError::TooManyDecimals { .. } | MoneyError::Malformed { .. }
                ),
                "{value} {code}: {err}"
            );
        }
        assert!(matches!(
            Money::parse("12.345", Currency::EUR),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse("5.0", currency("JPY")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn rejects_malformed_amounts() {
        for bad in [
            "", "-", ".", "12.", ".5", "-.5", "+12", "+12.30", " 12", "12 ", "1 000", "1,50",
            "1e3", "1E3", "0x10", "--1", "1-", "1.2.3", "12.3a", "NaN", "inf", "١٢", "12.-3",
        ] {
            assert!(
                matches!(
                    Money::parse(bad, Currency::EUR),
                    Err(MoneyError::Malformed { .. })
                ),
                "{bad:?} should be malformed"
            );
        }
    }

    #[test]
    fn the_fourteen_digit_limit_is_exact() {
        let max = Money::parse("99999999999999.99", Currency::EUR).unwrap();
        assert_eq!(max.minor_units(), 9_999_999_999_999_999);
        assert_eq!(max.to_decimal_string(), "99999999999999.99");
        assert_eq!(
            Money::parse(&max.to_decimal_string(), Currency::EUR),
            Ok(max)
        );
        assert_eq!((-max).to_decimal_string(), "-99999999999999.99");
        assert!(matches!(
            Money::parse("100000000000000.00", Currency::EUR),
            Err(MoneyError::TooManyIntegerDigits { .. })
        ));
        assert!(Money::from_minor(9_999_999_999_999_999, Currency::EUR).is_ok());
        assert!(Money::from_minor(10_000_000_000_000_000, Currency::EUR).is_err());
        assert!(Money::from_minor(-10_000_000_000_000_000, Currency::EUR).is_err());
        assert!(Money::from_minor(i64::MIN, Currency::EUR).is_err());
        assert!(Money::from_minor(i64::MAX, currency("CLF")).is_err());
        assert!(Money::from_minor(99_999_999_999_999, currency("JPY")).is_ok());
        assert!(Money::from_minor(100_000_000_000_000, currency("JPY")).is_err());
    }

    #[test]
    fn negative_zero_is_zero() {
        for value in ["-0", "-0.00", "-0.0", "0", "0.00"] {
            let zero = Money::parse(value, Currency::EUR).unwrap();
            assert!(zero.is_zero() && !zero.is_positive() && !zero.is_negative());
            assert_eq!(zero.to_decimal_string(), "0.00");
            assert_eq!(zero, Money::zero(Currency::EUR));
        }
    }

    #[test]
    fn canonical_strings_have_exactly_the_currencys_places() {
        let cases = [
            (1230, "EUR", "12.30"),
            (5, "JPY", "5"),
            (-5, "JPY", "-5"),
            (1000, "BHD", "1.000"),
            (-1, "EUR", "-0.01"),
            (0, "EUR", "0.00"),
            (0, "JPY", "0"),
            (1, "CLF", "0.0001"),
            (-123_456_789_012_341_234, "CLF", "-12345678901234.1234"),
        ];
        for (minor_units, code, text) in cases {
            let money = Money::from_minor(minor_units, currency(code)).unwrap();
            assert_eq!(money.to_decimal_string(), text);
            assert_eq!(Money::parse(text, currency(code)), Ok(money));
        }
        assert_eq!(
            Money::from_minor(1230, Currency::EUR).unwrap().to_string(),
            "12.30 EUR"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let eur = |v: &str| Money::parse(v, Currency::EUR).unwrap();
        assert_eq!(eur("12.30").checked_add(eur("0.70")), Ok(eur("13.00")));
        assert_eq!(eur("12.30").checked_sub(eur("20")), Ok(eur("-7.70")));
        assert_eq!(-eur("5.5"), eur("-5.50"));
        assert!(eur("-0.01").is_negative() && eur("0.01").is_positive());
        let max = eur("99999999999999.99");
        assert_eq!(
            max.checked_add(eur("0.01")),
            Err(MoneyError::OutOfRange {
                currency: Currency::EUR
            })
        );
        assert!((-max).checked_sub(eur("0.01")).is_err());
        assert_eq!(max.checked_sub(max), Ok(Money::zero(Currency::EUR)));
        assert_eq!(
            eur("1").checked_add(Money::parse("1", Currency::GBP).unwrap()),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::EUR,
                right: Currency::GBP
            })
        );
    }

    #[test]
    fn json_shape_is_value_string_and_currency() {
        let money = Money::parse("12.3", Currency::EUR).unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"value":"12.30","currency":"EUR"}"#);
        let back: Money = serde_json::from_str(r#"{"currency":"EUR","value":"12.30"}"#).unwrap();
        assert_eq!(back, money);
    }

    #[test]
    fn json_numbers_and_bad_objects_are_refused() {
        for number in ["12.3", "12", "-1", "1e2"] {
            let json = format!(r#"{{"value":{number},"currency":"EUR"}}"#);
            let err = serde_json::from_str::<Money>(&json)
                .unwrap_err()
                .to_string();
            assert!(err.contains("must be JSON strings"), "{json}: {err}");
        }
        for bad in [
            r#"{"value":"12.345","currency":"EUR"}"#,
            r#"{"value":"12.30","currency":"eur"}"#,
            r#"{"value":"12.30"}"#,
            r#"{"currency":"EUR"}"#,
            r#"{"value":"12.30","currency":"EUR","extra":1}"#,
            r#"{"value":null,"currency":"EUR"}"#,
            r#""12.30 EUR""#,
        ] {
            assert!(serde_json::from_str::<Money>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_echo_is_bounded() {
        let long = "1".repeat(10_000);
        let err = Money::parse(&long, Currency::EUR).unwrap_err();
        assert!(err.to_string().chars().count() < 200, "{err}");
    }

    /// A currency together with a minor-unit count anywhere in its accepted range.
    fn in_range_money() -> impl Strategy<Value = (Currency, i64)> {
        proptest::sample::select(Currency::all().collect::<Vec<_>>()).prop_flat_map(|currency| {
            let limit = exclusive_limit(currency);
            (Just(currency), (1 - limit)..limit)
        })
    }

    proptest! {
        #[test]
        fn decimal_strings_round_trip((currency, minor_units) in in_range_money()) {
            let money = Money::from_minor(minor_units, currency).unwrap();
            let text = money.to_decimal_string();
            prop_assert_eq!(Money::parse(&text, currency), Ok(money));
            let json = serde_json::to_string(&money).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        }

        #[test]
        fn out_of_range_values_are_refused(
            currency in proptest::sample::select(Currency::all().collect::<Vec<_>>()),
            excess in 0..i64::MAX / 2,
            negative: bool,
        ) {
            let magnitude = exclusive_limit(currency).saturating_add(excess);
            let value = if negative { -magnitude } else { magnitude };
            prop_assert!(Money::from_minor(value, currency).is_err());
        }

        #[test]
        fn acceptance_matches_the_pattern(
            currency in proptest::sample::select(Currency::all().collect::<Vec<_>>()),
            raw in "-?[0-9]{0,16}(\\.[0-9]{0,6})?",
        ) {
            let unsigned = raw.trim_start_matches('-');
            let (integer, fraction) = match unsigned.split_once('.') {
                Some((i, f)) => (i, Some(f)),
                None => (unsigned, None),
            };
            let expected = (1..=14).contains(&integer.len())
                && fraction.is_none_or(|f| (1..=usize::from(currency.minor_units())).contains(&f.len()));
            prop_assert_eq!(Money::parse(&raw, currency).is_ok(), expected, "{}", raw);
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,40}") {
            for currency in Currency::all() {
                if let Ok(money) = Money::parse(&raw, currency) {
                    prop_assert!(money.minor_units().unsigned_abs()
                        < exclusive_limit(currency).unsigned_abs());
                }
            }
        }
    }
}
