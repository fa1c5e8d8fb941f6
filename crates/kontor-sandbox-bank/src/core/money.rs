//! Exact money: integer minor units inside, decimal strings on the wire.
//!
//! Both standards carry amounts as strings; parsing them here (never through a float) is what
//! keeps a `0.10 + 0.20` from ever becoming `0.30000000000000004` in a ledger.

use thiserror::Error;

/// Why a decimal amount string was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must be a plain decimal number like 12.50")]
    Syntax,
    #[error("amount has more decimal places than the currency allows")]
    TooPrecise,
    #[error("amount is too large")]
    TooLarge,
}

/// Minor-unit exponent of the currencies the sandbox keeps accounts in.
pub const EXPONENT: u32 = 2;
const SCALE: i64 = 100;

/// Parses an unsigned or signed decimal string (`"12"`, `"12.5"`, `"-0.99"`) into minor units.
///
/// Extra decimal places are accepted only when they are zeros (`"12.500"`), as a bank would.
pub fn parse_minor(text: &str) -> Result<i64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.is_empty()
        || !all_digits(int_part)
        || !all_digits(frac_part)
        || (digits.contains('.') && frac_part.is_empty())
    {
        return Err(AmountError::Syntax);
    }
    if int_part.len() > 15 {
        return Err(AmountError::TooLarge);
    }
    let mut frac_minor: i64 = 0;
    for (i, b) in frac_part.bytes().enumerate() {
        let digit = i64::from(b - b'0');
        if i < EXPONENT as usize {
            frac_minor = frac_minor * 10 + digit;
        } else if digit != 0 {
            return Err(AmountError::TooPrecise);
        }
    }
    for _ in frac_part.len()..EXPONENT as usize {
        frac_minor *= 10;
    }
    let int_value: i64 = int_part.parse().map_err(|_| AmountError::TooLarge)?;
    let magnitude = int_value
        .checked_mul(SCALE)
        .and_then(|v| v.checked_add(frac_minor))
        .ok_or(AmountError::TooLarge)?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// Formats minor units with sign, as Berlin Group amounts are written (`-12.50`).
pub fn format_signed(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}", format_unsigned(minor))
}

/// Formats the magnitude only, as UK amounts are written next to a `CreditDebitIndicator`.
pub fn format_unsigned(minor: i64) -> String {
    let magnitude = minor.unsigned_abs();
    let scale = SCALE.unsigned_abs();
    format!("{}.{:02}", magnitude / scale, magnitude % scale)
}

/// Formats an amount for people, with the currency's symbol (`€1,234.50`), for the SCA pages.
pub fn display(minor: i64, currency: &str) -> String {
    let symbol = match currency {
        "EUR" => "€",
        "GBP" => "£",
        other => other,
    };
    let sign = if minor < 0 { "-" } else { "" };
    let plain = format_unsigned(minor);
    let (int_part, frac) = plain.split_once('.').unwrap_or((plain.as_str(), "00"));
    let mut grouped = String::new();
    for (i, ch) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{symbol}{grouped}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_amounts() {
        assert_eq!(parse_minor("12"), Ok(1200));
        assert_eq!(parse_minor("12.5"), Ok(1250));
        assert_eq!(parse_minor("12.50"), Ok(1250));
        assert_eq!(parse_minor("12.500"), Ok(1250));
        assert_eq!(parse_minor("-0.99"), Ok(-99));
        assert_eq!(parse_minor("0.1"), Ok(10));
    }

    #[test]
    fn refuses_bad_amounts() {
        assert_eq!(parse_minor(""), Err(AmountError::Empty));
        assert_eq!(parse_minor("12.505"), Err(AmountError::TooPrecise));
        assert_eq!(parse_minor("1e3"), Err(AmountError::Syntax));
        assert_eq!(parse_minor("12."), Err(AmountError::Syntax));
        assert_eq!(parse_minor(".5"), Err(AmountError::Syntax));
        assert_eq!(parse_minor("+5"), Err(AmountError::Syntax));
        assert_eq!(parse_minor("1234567890123456"), Err(AmountError::TooLarge));
    }

    #[test]
    fn formats_round_trip() {
        for minor in [0, 1, 99, 100, 1250, -1250, 123_456_789] {
            assert_eq!(parse_minor(&format_signed(minor)), Ok(minor));
        }
        assert_eq!(format_unsigned(-1250), "12.50");
        assert_eq!(display(123_456_789, "EUR"), "€1,234,567.89");
        assert_eq!(display(-5, "GBP"), "-£0.05");
    }
}
