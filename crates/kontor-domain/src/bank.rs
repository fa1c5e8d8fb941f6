//! Banks (ASPSPs) as the directory knows them: an id chosen by the operator, and the standard
//! the bank's API speaks.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::region::truncate_for_error;

/// A bank's id in the directory, e.g. `sandbox-de` or `hsbc-uk`: 2-40 lowercase letters, digits
/// and `-`, starting with a letter.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid bank id {0:?}: expected 2-40 lowercase letters, digits or '-', starting with a letter"
)]
pub struct BankIdError(pub String);

impl BankId {
    pub fn parse(raw: &str) -> Result<Self, BankIdError> {
        let bytes = raw.as_bytes();
        let ok = (2..=40).contains(&bytes.len())
            && bytes[0].is_ascii_lowercase()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(BankIdError(truncate_for_error(raw)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankId({})", self.0)
    }
}

impl Serialize for BankId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BankId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

crate::words!(
    /// The API standard a bank speaks.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Standard as "standard" {
        /// Berlin Group NextGenPSD2 XS2A.
        BerlinGroup => "berlin-group",
        /// UK Open Banking Read/Write.
        UkOpenBanking => "uk-open-banking",
    }
    display
);

impl Standard {
    /// How long a consent may run before the user must authenticate or reconfirm again: 180
    /// days under the EU rules (Reg. 2022/2360), 90 days for reconfirmation in the UK
    /// (FCA PS21/19).
    pub fn max_consent_days(self) -> i64 {
        match self {
            Standard::BerlinGroup => 180,
            Standard::UkOpenBanking => 90,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_ids_are_slugs() {
        for ok in ["sandbox-de", "hsbc-uk", "n26", "ab"] {
            assert!(BankId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Sandbox",
            "1bank",
            "bank_de",
            "bank de",
            &"x".repeat(41),
        ] {
            assert!(BankId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn standards_use_the_directory_names() {
        assert_eq!(
            serde_json::to_string(&Standard::BerlinGroup).unwrap(),
            "\"berlin-group\""
        );
        assert_eq!(
            serde_json::from_str::<Standard>("\"uk-open-banking\"").unwrap(),
            Standard::UkOpenBanking
        );
        assert_eq!(Standard::UkOpenBanking.max_consent_days(), 90);
    }
}
