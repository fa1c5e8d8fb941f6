//! Instants as stored: microseconds since the Unix epoch, UTC. Both storage backends keep them in
//! a `BIGINT`, which sorts correctly everywhere and survives any SQL engine unchanged.

use std::fmt;

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp out of range")]
pub struct TimestampOutOfRange;

impl Timestamp {
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc()).unwrap_or(Self(i64::MAX))
    }

    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn from_datetime(at: OffsetDateTime) -> Result<Self, TimestampOutOfRange> {
        i64::try_from(at.unix_timestamp_nanos() / 1_000)
            .map(Self)
            .map_err(|_| TimestampOutOfRange)
    }

    pub fn to_datetime(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-26T18:54:59.123456Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .format(&Rfc3339)
            .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
    }

    pub fn parse_rfc3339(raw: &str) -> Result<Self, TimestampOutOfRange> {
        let at = OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| TimestampOutOfRange)?;
        Self::from_datetime(at)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_as_rfc3339_utc() {
        let t = Timestamp::from_unix_micros(1_764_183_299_123_456);
        assert_eq!(t.to_rfc3339(), "2025-11-26T18:54:59.123456Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999i64) {
            let t = Timestamp::from_unix_micros(micros);
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t));
        }
    }
}
