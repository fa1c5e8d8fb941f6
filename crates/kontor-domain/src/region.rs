//! Regions: where a user's data lives. The set of regions a deployment serves comes from
//! configuration; this type only guarantees the code is well formed, so it can be embedded in ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A region code such as `uk` or `de`: 2–10 characters, a lowercase ASCII letter first, then
/// lowercase letters or digits. No `_`, because ids use it as their separator.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid region code {0:?}: expected 2-10 lowercase letters or digits, starting with a letter"
)]
pub struct RegionError(pub String);

impl Region {
    pub const MIN_LEN: usize = 2;
    pub const MAX_LEN: usize = 10;

    pub fn parse(code: &str) -> Result<Self, RegionError> {
        let bytes = code.as_bytes();
        let well_formed = (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if well_formed {
            Ok(Self(code.to_owned()))
        } else {
            Err(RegionError(truncate_for_error(code)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Error messages echo input back; keep that bounded so a hostile value cannot bloat a response.
pub(crate) fn truncate_for_error(input: &str) -> String {
    const LIMIT: usize = 64;
    match input.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &input[..cut]),
        None => input.to_owned(),
    }
}

impl FromStr for Region {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.0)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Region {
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
    fn accepts_common_codes() {
        for code in ["uk", "de", "fr", "eu1", "apac"] {
            assert_eq!(
                Region::parse(code).map(|r| r.to_string()),
                Ok(code.to_owned())
            );
        }
    }

    #[test]
    fn rejects_malformed_codes() {
        for code in [
            "",
            "u",
            "UK",
            "u_k",
            "1uk",
            "uk-west",
            "abcdefghijk",
            "ü k",
            "de ",
        ] {
            assert!(Region::parse(code).is_err(), "{code:?} should be rejected");
        }
    }

    #[test]
    fn error_echo_is_bounded() {
        let long = "x".repeat(10_000);
        let err = Region::parse(&long).unwrap_err();
        assert!(err.0.chars().count() <= 65);
    }

    proptest! {
        #[test]
        fn well_formed_codes_round_trip(code in "[a-z][a-z0-9]{1,9}") {
            let region = Region::parse(&code).unwrap();
            prop_assert_eq!(region.as_str(), code.as_str());
            let json = serde_json::to_string(&region).unwrap();
            let back: Region = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, region);
        }

        #[test]
        fn anything_with_a_separator_is_rejected(a in "[a-z]{1,4}", b in "[a-z]{1,4}") {
            let code = format!("{a}_{b}");
            prop_assert!(Region::parse(&code).is_err());
        }
    }
}
