//! Dates and instants in bank answers (ISO 8601) and in requests.

use kontor_domain::time::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

use crate::BankError;

/// `YYYY-MM-DD`.
pub(crate) fn date(raw: &str, what: &str) -> Result<Date, BankError> {
    Date::parse(raw, format_description!("[year]-[month]-[day]"))
        .map_err(|_| BankError::protocol(format!("{what}: malformed date")))
}

/// An RFC 3339 date-time with its offset (both standards require one in answers).
pub(crate) fn date_time(raw: &str, what: &str) -> Result<OffsetDateTime, BankError> {
    OffsetDateTime::parse(raw, &Rfc3339)
        .map_err(|_| BankError::protocol(format!("{what}: malformed date-time")))
}

pub(crate) fn timestamp(raw: &str, what: &str) -> Result<Timestamp, BankError> {
    Timestamp::from_datetime(date_time(raw, what)?)
        .map_err(|_| BankError::protocol(format!("{what}: date-time out of range")))
}

pub(crate) fn format_date(date: Date) -> String {
    date.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date as d;

    #[test]
    fn parses_and_formats() {
        assert_eq!(date("2026-03-02", "t").unwrap(), d!(2026 - 03 - 02));
        assert_eq!(format_date(d!(2026 - 03 - 02)), "2026-03-02");
        assert_eq!(format_date(d!(0999 - 01 - 09)), "0999-01-09");
        for bad in ["2026-3-2", "2026-02-30", "02.03.2026", ""] {
            assert!(date(bad, "t").is_err(), "{bad}");
        }
        let at = date_time("2026-03-02T09:00:00+01:00", "t").unwrap();
        assert_eq!(at.date(), d!(2026 - 03 - 02));
        assert!(date_time("2026-03-02T09:00:00", "t").is_err());
        assert_eq!(
            timestamp("2026-03-02T09:00:00Z", "t").unwrap().to_rfc3339(),
            "2026-03-02T09:00:00Z"
        );
    }
}
