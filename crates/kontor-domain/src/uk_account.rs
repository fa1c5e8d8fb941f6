//! UK domestic account identifiers: the sort code (6 digits, the branch) and the account number
//! (8 digits). Parsed once here, for the API's validation and the connectors alike, so that one
//! set of rules decides what a sort code is. People write them `40-09-93` and `1146 3434`: a
//! hyphen or a space between digit groups is accepted, as spaces are in an IBAN, and the value is
//! kept as bare digits, the form UK Open Banking's `SortCodeAccountNumber` carries.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sort code: 6 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SortCode(String);

/// A UK account number: 8 digits. It identifies a person's account, so `Debug` shows only its
/// last two digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UkAccountNumber(String);

/// Why a sort code or account number was refused. Messages name the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UkAccountError {
    #[error("{what} has {expected} digits, not {got}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error(
        "{what} may contain only digits, with a hyphen or a space between groups; found \
         {character:?} at position {position}"
    )]
    InvalidCharacter {
        what: &'static str,
        position: usize,
        character: char,
    },
    #[error(
        "{what} separates its digit groups with one hyphen or space, and does not start or end with one"
    )]
    MisplacedSeparator { what: &'static str },
}

/// The digits of `raw`: a single hyphen or space allowed between digits (never two in a row, nor
/// at either end), anything else refused. The API document's patterns say the same
/// ([`SortCode::PATTERN`], [`UkAccountNumber::PATTERN`]).
fn digits(raw: &str, what: &'static str, expected: usize) -> Result<String, UkAccountError> {
    let mut out = String::with_capacity(expected);
    let mut after_separator = true; // no separator first
    for (position, character) in raw.chars().enumerate() {
        match character {
            '0'..='9' => {
                out.push(character);
                after_separator = false;
            }
            '-' | ' ' if !after_separator => after_separator = true,
            '-' | ' ' => return Err(UkAccountError::MisplacedSeparator { what }),
            _ => {
                return Err(UkAccountError::InvalidCharacter {
                    what,
                    position,
                    character,
                });
            }
        }
    }
    if after_separator && !out.is_empty() {
        return Err(UkAccountError::MisplacedSeparator { what });
    }
    if out.len() != expected {
        return Err(UkAccountError::WrongLength {
            what,
            expected,
            got: out.len(),
        });
    }
    Ok(out)
}

impl SortCode {
    pub const DIGITS: usize = 6;
    /// What [`SortCode::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[0-9](?:[- ]?[0-9]){5}$";

    /// `400993`, `40-09-93` or `40 09 93`.
    pub fn parse(raw: &str) -> Result<Self, UkAccountError> {
        digits(raw, "a sort code", Self::DIGITS).map(Self)
    }

    /// The 6 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl UkAccountNumber {
    pub const DIGITS: usize = 8;
    /// What [`UkAccountNumber::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[0-9](?:[- ]?[0-9]){7}$";

    /// `11463434` or `1146 3434`.
    pub fn parse(raw: &str) -> Result<Self, UkAccountError> {
        digits(raw, "an account number", Self::DIGITS).map(Self)
    }

    /// The 8 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SortCode({})", self.0)
    }
}

impl fmt::Debug for UkAccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.get(self.0.len().saturating_sub(2)..).unwrap_or("");
        write!(f, "UkAccountNumber(…{tail})")
    }
}

impl fmt::Display for SortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for UkAccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! serde_as_digits {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_digits!(SortCode);
serde_as_digits!(UkAccountNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sort_codes_are_written_in_several_ways() {
        for raw in ["400993", "40-09-93", "40 09 93", "4009-93"] {
            assert_eq!(SortCode::parse(raw).unwrap().as_str(), "400993", "{raw:?}");
        }
        for raw in ["11463434", "1146 3434", "1146-3434"] {
            assert_eq!(
                UkAccountNumber::parse(raw).unwrap().as_str(),
                "11463434",
                "{raw:?}"
            );
        }
    }

    #[test]
    fn bad_ones_say_why_without_the_value() {
        let cases = [
            ("40099", "a sort code has 6 digits, not 5"),
            ("4009933", "a sort code has 6 digits, not 7"),
            ("", "a sort code has 6 digits, not 0"),
            ("40--09-93", "separates its digit groups"),
            ("-400993", "separates its digit groups"),
            (" 400993", "separates its digit groups"),
            ("400993-", "separates its digit groups"),
            ("40.09.93", "found '.' at position 2"),
            ("４00993", "found '４' at position 0"),
        ];
        for (raw, expected) in cases {
            let message = SortCode::parse(raw).unwrap_err().to_string();
            assert!(message.contains(expected), "{raw:?}: {message}");
        }
        let message = UkAccountNumber::parse("1146343").unwrap_err().to_string();
        assert_eq!(message, "an account number has 8 digits, not 7");
    }

    #[test]
    fn debug_hides_the_account_number() {
        let number = UkAccountNumber::parse("11463434").unwrap();
        assert_eq!(format!("{number:?}"), "UkAccountNumber(…34)");
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let code: SortCode = serde_json::from_str("\"40-09-93\"").unwrap();
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"400993\"");
        assert!(serde_json::from_str::<UkAccountNumber>("\"abc\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_digits(raw in ".{0,20}") {
            if let Ok(code) = SortCode::parse(&raw) {
                prop_assert_eq!(code.as_str().len(), 6);
                prop_assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(SortCode::parse(code.as_str()), Ok(code));
            }
        }

        /// The pattern the API document publishes accepts exactly what the parser does.
        #[test]
        fn the_pattern_is_the_parser(raw in "[0-9 .-]{0,12}") {
            let pattern = regex::Regex::new(SortCode::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&raw), SortCode::parse(&raw).is_ok(), "{:?}", raw);
            let pattern = regex::Regex::new(UkAccountNumber::PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&raw), UkAccountNumber::parse(&raw).is_ok(), "{:?}", raw);
        }

        #[test]
        fn grouped_forms_parse_to_the_same(d in "[0-9]{6}", sep in "[- ]") {
            let grouped = format!("{}{sep}{}{sep}{}", &d[..2], &d[2..4], &d[4..]);
            let parsed = SortCode::parse(&grouped).unwrap();
            prop_assert_eq!(parsed.as_str(), d.as_str());
        }
    }
}
