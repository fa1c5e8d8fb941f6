//! The fields of a payment order, each parsed once, with its limits, into a type: the API parses
//! a request into them and the connectors take them as they are, so one set of rules decides
//! what an end-to-end id, a remittance line or a creditor's name may be. The limits are the
//! strictest of the two standards (Berlin Group 1.3.8's SEPA fields; UK Open Banking's
//! `EndToEndIdentification` is also `Max35Text`, its `RemittanceInformation.Unstructured`
//! `Max140Text`, and a UK creditor name of up to 350 characters includes every SEPA one).
//! Error messages name the rule, never the value: the values are personal data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::currency::Currency;
use crate::payment::PaymentScheme;

/// Why a payment field was refused. Messages name the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters, not {got}")]
    TooLong {
        field: &'static str,
        max: usize,
        got: usize,
    },
    #[error("{field} must not start or end with a space")]
    SurroundingSpace { field: &'static str },
    #[error("{field} must not contain control characters")]
    ControlCharacter { field: &'static str },
    #[error("{field} may contain only visible ASCII characters (no spaces)")]
    NotVisibleAscii { field: &'static str },
}

/// Free text as payment schemes carry it: 1 to `max` characters (characters, as JSON Schema's
/// `maxLength` counts them, not bytes), no control characters, no space at either end (a bank
/// trims it, and the hub would then record a different text than the one it sent).
fn text(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::Empty { field });
    }
    let got = raw.chars().count();
    if got > max {
        return Err(FieldError::TooLong { field, max, got });
    }
    if raw.chars().any(char::is_control) {
        return Err(FieldError::ControlCharacter { field });
    }
    if raw.trim() != raw {
        return Err(FieldError::SurroundingSpace { field });
    }
    Ok(raw.to_owned())
}

/// A token: 1 to `max` visible ASCII characters (`!` to `~`), which every HTTP stack and both
/// standards carry unchanged.
fn token(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    if raw.is_empty() {
        return Err(FieldError::Empty { field });
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldError::NotVisibleAscii { field });
    }
    if raw.len() > max {
        return Err(FieldError::TooLong {
            field,
            max,
            got: raw.len(),
        });
    }
    Ok(raw.to_owned())
}

/// A text regular expression for the API document: what [`text`] accepts, without the length.
pub const TEXT_PATTERN: &str =
    r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$";

macro_rules! field_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr, $parse:ident, debug: $debug:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The longest value accepted.
            pub const MAX_LEN: usize = $max;
            /// The field's name, as errors name it.
            pub const FIELD: &'static str = $field;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                $parse($field, raw, Self::MAX_LEN).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        /// Read as the string it is (it cannot be changed into one that breaks the rules).
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let debug: fn(&str, &mut fmt::Formatter<'_>) -> fmt::Result = $debug;
                write!(f, concat!(stringify!($name), "("))?;
                debug(&self.0, f)?;
                f.write_str(")")
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn shown(value: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{value:?}")
}

fn hidden(value: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(f, "{} characters", value.chars().count())
}

field_type!(
    /// The end-to-end id the creditor receives with the money (`Max35Text` in both standards;
    /// Faster Payments carries the first 31): 1 to 35 visible ASCII characters.
    EndToEndId, "end_to_end_id", 35, token, debug: shown
);

field_type!(
    /// Unstructured remittance information (`Max140Text`): 1 to 140 characters.
    RemittanceInfo, "remittance", 140, text, debug: hidden
);

field_type!(
    /// The creditor's name (SEPA `creditorName`, `Max70Text`): 1 to 70 characters.
    CreditorName, "creditor.name", 70, text, debug: hidden
);

field_type!(
    /// An idempotency key: the tenant's `Idempotency-Key` header, and the key the hub sends a
    /// bank for a payment. 1 to 255 visible ASCII characters; a bank may take fewer (UK
    /// Open Banking's `x-idempotency-key` at most [`IdempotencyKey::MAX_BANK_LEN`]), which the
    /// hub's own keys for banks respect.
    IdempotencyKey, "Idempotency-Key", 255, token, debug: shown
);

impl IdempotencyKey {
    /// The longest key every bank takes: UK Open Banking's `x-idempotency-key` has
    /// `maxLength: 40`.
    pub const MAX_BANK_LEN: usize = 40;

    /// Whether every standard's bank takes the key as it is.
    pub fn fits_banks(&self) -> bool {
        self.0.len() <= Self::MAX_BANK_LEN
    }
}

impl PaymentScheme {
    /// The one currency the scheme moves: SEPA moves euros, UK Faster Payments pounds.
    pub fn currency(self) -> Currency {
        match self {
            PaymentScheme::Sepa | PaymentScheme::SepaInstant => Currency::EUR,
            PaymentScheme::UkDomestic => Currency::GBP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_are_at_n_characters_not_n_plus_one() {
        assert!(EndToEndId::parse(&"E".repeat(35)).is_ok());
        assert_eq!(
            EndToEndId::parse(&"E".repeat(36)),
            Err(FieldError::TooLong {
                field: "end_to_end_id",
                max: 35,
                got: 36
            })
        );
        assert!(RemittanceInfo::parse(&"r".repeat(140)).is_ok());
        assert!(RemittanceInfo::parse(&"r".repeat(141)).is_err());
        assert!(CreditorName::parse(&"n".repeat(70)).is_ok());
        assert!(CreditorName::parse(&"n".repeat(71)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }

    /// Text limits count characters, as JSON Schema does: 70 two-byte letters are a name.
    #[test]
    fn text_counts_characters_not_bytes() {
        let name = "Zoë Ångström-Müller ".repeat(3);
        let name = name.trim();
        assert!(name.len() > 70 && name.chars().count() <= 70);
        assert!(CreditorName::parse(name).is_ok());
        assert!(CreditorName::parse(&"é".repeat(70)).is_ok());
        assert!(CreditorName::parse(&"é".repeat(71)).is_err());
        assert!(RemittanceInfo::parse(&"日".repeat(140)).is_ok());
        assert!(RemittanceInfo::parse("Miete 🏠 November").is_ok());
    }

    #[test]
    fn tokens_are_visible_ascii() {
        for bad in ["", " a", "a b", "é", "a\tb", "pay\u{7f}"] {
            assert!(EndToEndId::parse(bad).is_err(), "{bad:?}");
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EndToEndId::parse("INV-2026/11#7").is_ok());
        let key = IdempotencyKey::parse(&"k".repeat(40)).unwrap();
        assert!(key.fits_banks());
        assert!(!IdempotencyKey::parse(&"k".repeat(41)).unwrap().fits_banks());
    }

    #[test]
    fn text_refuses_blank_control_and_surrounding_space() {
        let cases = [
            (
                "",
                FieldError::Empty {
                    field: "creditor.name",
                },
            ),
            (
                " ",
                FieldError::SurroundingSpace {
                    field: "creditor.name",
                },
            ),
            (
                " Jane",
                FieldError::SurroundingSpace {
                    field: "creditor.name",
                },
            ),
            (
                "Jane\u{a0}",
                FieldError::SurroundingSpace {
                    field: "creditor.name",
                },
            ),
            (
                "Jane\nDoe",
                FieldError::ControlCharacter {
                    field: "creditor.name",
                },
            ),
            (
                "Jane\u{85}Doe",
                FieldError::ControlCharacter {
                    field: "creditor.name",
                },
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(CreditorName::parse(raw), Err(expected), "{raw:?}");
        }
        assert!(CreditorName::parse("Jane  Doe").is_ok());
    }

    #[test]
    fn messages_name_the_rule_never_the_value() {
        let message = CreditorName::parse("Jane Doe ".repeat(10).trim())
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "creditor.name must be at most 70 characters, not 89"
        );
        let debug = format!("{:?}", RemittanceInfo::parse("Rent for Jane").unwrap());
        assert!(!debug.contains("Jane"), "{debug}");
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let id: EndToEndId = serde_json::from_str("\"E2E-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"E2E-1\"");
        assert!(serde_json::from_str::<EndToEndId>("\"has space\"").is_err());
        assert!(serde_json::from_str::<CreditorName>("\"\"").is_err());
    }

    #[test]
    fn each_scheme_moves_one_currency() {
        assert_eq!(PaymentScheme::Sepa.currency().code(), "EUR");
        assert_eq!(PaymentScheme::SepaInstant.currency().code(), "EUR");
        assert_eq!(PaymentScheme::UkDomestic.currency().code(), "GBP");
    }

    proptest! {
        /// The pattern the API document publishes accepts exactly what the text parser does.
        #[test]
        fn the_text_pattern_is_the_parser(raw in "[ a\u{e9}\n\u{85}\u{a0}-]{0,6}") {
            let pattern = regex::Regex::new(TEXT_PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&raw), RemittanceInfo::parse(&raw).is_ok(), "{:?}", raw);
        }

        #[test]
        fn parse_never_panics_and_round_trips(raw in ".{0,40}") {
            if let Ok(id) = EndToEndId::parse(&raw) {
                prop_assert_eq!(EndToEndId::parse(id.as_str()), Ok(id));
            }
            if let Ok(name) = CreditorName::parse(&raw) {
                prop_assert_eq!(name.as_str(), raw.as_str());
            }
        }
    }
}
