//! Business Identifier Codes (ISO 9362), the BICs that name a bank and branch in payments and
//! in the bank directory.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::region::truncate_for_error;

/// A BIC in uppercase without spaces: institution code (4), country code (2), location
/// code (2), and optionally a branch code (3), e.g. `DEUTDEFF` or `DEUTDEFF500`.
///
/// The institution code may contain digits: ISO 9362:2014 (kept in the 2022 edition) allows
/// alphanumeric institution codes, and ISO 20022 messages validate against that
/// (`BICFIDec2014Identifier`). Older patterns, including the one in the Berlin Group 1.3.8
/// schema, still say four letters; accepting the newer form means a BIC that SWIFT issues is
/// never refused here. The location code is not restricted further for the same reason.
/// The country code is checked to be two letters, not looked up: BIC country codes include
/// codes such as XK that ISO 3166 has not assigned.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bic(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BicError {
    #[error("{got:?} is not a BIC: it must have 8 or 11 characters, not {len}")]
    WrongLength { got: String, len: usize },
    #[error("{got:?} is not a BIC: {problem}")]
    Malformed { got: String, problem: &'static str },
}

/// The primary office's branch code; a BIC8 means the same office.
const PRIMARY_OFFICE: &str = "XXX";

fn alphanumeric(part: &str) -> bool {
    part.bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Bic {
    /// Parses a BIC8 or BIC11, ignoring spaces and case (`deut de ff` is `DEUTDEFF`). A BIC8
    /// stays a BIC8: it is not padded with `XXX`, so what a bank sent is what is stored.
    pub fn parse(raw: &str) -> Result<Self, BicError> {
        let malformed = |problem| BicError::Malformed {
            got: truncate_for_error(raw),
            problem,
        };
        let bic: String = raw
            .chars()
            .filter(|&c| c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !alphanumeric(&bic) {
            return Err(malformed("only letters, digits and spaces are allowed"));
        }
        if bic.len() != 8 && bic.len() != 11 {
            return Err(BicError::WrongLength {
                got: truncate_for_error(raw),
                len: bic.len(),
            });
        }
        let country = bic.get(4..6).unwrap_or_default();
        if !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(malformed(
                "the country code (characters 5-6) must be letters",
            ));
        }
        Ok(Self(bic))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The party prefix: `DEUT` in `DEUTDEFF500`.
    pub fn institution_code(&self) -> &str {
        self.0.get(0..4).unwrap_or_default()
    }

    pub fn country_code(&self) -> &str {
        self.0.get(4..6).unwrap_or_default()
    }

    pub fn location_code(&self) -> &str {
        self.0.get(6..8).unwrap_or_default()
    }

    /// The branch code of a BIC11 (`XXX` included); `None` for a BIC8.
    pub fn branch_code(&self) -> Option<&str> {
        self.0.get(8..11)
    }

    /// Whether this names the institution's primary office: a BIC8, or a BIC11 ending `XXX`.
    pub fn is_primary_office(&self) -> bool {
        self.branch_code()
            .is_none_or(|branch| branch == PRIMARY_OFFICE)
    }

    /// The BIC11 form, with `XXX` for a BIC8; two BICs name the same office exactly when
    /// their BIC11 forms are equal.
    pub fn to_bic11(&self) -> String {
        match self.branch_code() {
            Some(_) => self.0.clone(),
            None => format!("{}{PRIMARY_OFFICE}", self.0),
        }
    }

    /// A test-and-training BIC: SWIFT marks those with `0` as the second location character.
    pub fn is_test(&self) -> bool {
        self.location_code().as_bytes().get(1) == Some(&b'0')
    }
}

impl FromStr for Bic {
    type Err = BicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bic({})", self.0)
    }
}

impl Serialize for Bic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_bic8_and_bic11() {
        for raw in [
            "DEUTDEFF",
            "DEUTDEFF500",
            "NWBKGB2L",
            "BNPAFRPPXXX",
            "AAAADEBBXXX",
            "1A2BDE3C",
        ] {
            let bic = Bic::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(bic.as_str(), raw);
        }
    }

    #[test]
    fn normalises_case_and_spaces() {
        let bic = Bic::parse("deut de ff 500").unwrap();
        assert_eq!(bic.as_str(), "DEUTDEFF500");
        assert_eq!(bic.institution_code(), "DEUT");
        assert_eq!(bic.country_code(), "DE");
        assert_eq!(bic.location_code(), "FF");
        assert_eq!(bic.branch_code(), Some("500"));
        assert!(!bic.is_primary_office());
    }

    #[test]
    fn bic8_and_xxx_name_the_primary_office() {
        let bic8 = Bic::parse("DEUTDEFF").unwrap();
        let bic11 = Bic::parse("DEUTDEFFXXX").unwrap();
        assert_eq!(bic8.branch_code(), None);
        assert_eq!(bic11.branch_code(), Some("XXX"));
        assert!(bic8.is_primary_office() && bic11.is_primary_office());
        assert_ne!(bic8, bic11);
        assert_eq!(bic8.to_bic11(), bic11.to_bic11());
    }

    #[test]
    fn recognises_test_bics() {
        assert!(Bic::parse("ABCDDEF0").unwrap().is_test());
        assert!(!Bic::parse("DEUTDEFF").unwrap().is_test());
    }

    #[test]
    fn rejects_malformed_bics() {
        for (raw, long_or_short) in [
            ("", true),
            ("DEUTDEF", true),
            ("DEUTDEFF5", true),
            ("DEUTDEFF50", true),
            ("DEUTDEFF5000", true),
            ("DEUTD1FF", false),
            ("DEUT-EFF", false),
            ("DEUTDEF_", false),
            ("DEUTDEFF50!", false),
            ("DEUTDEFFÜ00", false),
            ("DEUT\tDEFF", false),
        ] {
            let err = Bic::parse(raw).unwrap_err();
            assert_eq!(
                matches!(err, BicError::WrongLength { .. }),
                long_or_short,
                "{raw:?}: {err}"
            );
        }
    }

    #[test]
    fn error_echo_is_bounded() {
        let err = Bic::parse(&"A".repeat(10_000)).unwrap_err();
        assert!(err.to_string().chars().count() < 150, "{err}");
    }

    #[test]
    fn serialises_as_a_string() {
        let bic: Bic = serde_json::from_str("\"deutdeff\"").unwrap();
        assert_eq!(serde_json::to_string(&bic).unwrap(), "\"DEUTDEFF\"");
        assert!(serde_json::from_str::<Bic>("\"DEUT\"").is_err());
    }

    proptest! {
        #[test]
        fn well_formed_bics_round_trip(raw in "[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?") {
            let bic = Bic::parse(&raw).unwrap();
            prop_assert_eq!(bic.as_str(), raw.as_str());
            prop_assert_eq!(Bic::parse(&raw.to_ascii_lowercase()), Ok(bic.clone()));
            prop_assert_eq!(bic.to_bic11().len(), 11);
            let json = serde_json::to_string(&bic).unwrap();
            prop_assert_eq!(serde_json::from_str::<Bic>(&json).unwrap(), bic);
        }

        #[test]
        fn a_digit_in_the_country_code_is_rejected(
            head in "[A-Z0-9]{4}",
            country in "[A-Z][0-9]|[0-9][A-Z]",
            tail in "[A-Z0-9]{2}([A-Z0-9]{3})?",
        ) {
            let raw = format!("{head}{country}{tail}");
            let is_malformed = matches!(Bic::parse(&raw), Err(BicError::Malformed { .. }));
            prop_assert!(is_malformed, "{}", raw);
        }

        #[test]
        fn other_lengths_are_rejected(raw in "[A-Z0-9]{0,20}") {
            prop_assume!(raw.len() != 8 && raw.len() != 11);
            let wrong_length = matches!(Bic::parse(&raw), Err(BicError::WrongLength { .. }));
            prop_assert!(wrong_length);
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,20}") {
            if let Ok(bic) = Bic::parse(&raw) {
                prop_assert!(bic.as_str().len() == 8 || bic.as_str().len() == 11);
            }
        }
    }
}
