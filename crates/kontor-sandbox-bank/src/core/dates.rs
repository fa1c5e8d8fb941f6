//! Date and time text formats of both standards: ISO dates and RFC 3339 instants in UTC.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

pub fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format).ok()
}

pub fn format_date(date: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    date.format(&format).unwrap_or_default()
}

/// RFC 3339 in UTC, whole seconds (`2026-03-01T09:05:07Z`).
pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Parses a UK query date-time the way the spec describes `fromBookingDateTime`: the time is
/// optional and a timezone, if present, is ignored (the value is taken as UTC).
pub fn parse_uk_query_datetime(text: &str) -> Option<OffsetDateTime> {
    let (date_part, time_part) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let date = parse_date(date_part)?;
    let Some(time_text) = time_part else {
        return Some(date.midnight().assume_utc());
    };
    // Drop a zone suffix: `Z`, `+01:00`, `-05:00`.
    let clock = time_text.trim_end_matches('Z');
    let clock = match clock.rfind(['+', '-']) {
        Some(pos) => &clock[..pos],
        None => clock,
    };
    let clock = clock.split('.').next().unwrap_or(clock);
    let mut parts = clock.split(':');
    let hour: u8 = parts.next()?.parse().ok()?;
    let minute: u8 = parts.next().unwrap_or("0").parse().ok()?;
    let second: u8 = parts.next().unwrap_or("0").parse().ok()?;
    Some(date.with_hms(hour, minute, second).ok()?.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_and_parses() {
        assert_eq!(
            timestamp(datetime!(2026-03-01 09:05:07 UTC)),
            "2026-03-01T09:05:07Z"
        );
        let day = parse_date("2026-02-28").unwrap();
        assert_eq!(format_date(day), "2026-02-28");
        assert!(parse_date("2026-02-30").is_none());
    }

    #[test]
    fn uk_query_datetimes_ignore_zones() {
        assert_eq!(
            parse_uk_query_datetime("2026-03-01"),
            Some(datetime!(2026-03-01 0:00 UTC))
        );
        assert_eq!(
            parse_uk_query_datetime("2026-03-01T10:30:00"),
            Some(datetime!(2026-03-01 10:30 UTC))
        );
        assert_eq!(
            parse_uk_query_datetime("2026-03-01T10:30:00+02:00"),
            Some(datetime!(2026-03-01 10:30 UTC))
        );
        assert_eq!(
            parse_uk_query_datetime("2026-03-01T10:30:00.123Z"),
            Some(datetime!(2026-03-01 10:30 UTC))
        );
        assert_eq!(parse_uk_query_datetime("yesterday"), None);
    }
}
