//! Business-day arithmetic for due dates (weekends only; the sandbox has no holidays).

use time::{Date, Duration, Month, OffsetDateTime, Weekday};

pub fn is_business_day(day: Date) -> bool {
    !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
}

pub fn next_business_day(mut day: Date) -> Date {
    while !is_business_day(day) {
        day = day.saturating_add(Duration::days(1));
    }
    day
}

pub fn previous_business_day(mut day: Date) -> Date {
    while !is_business_day(day) {
        day = day.saturating_sub(Duration::days(1));
    }
    day
}

/// The given day of the month, capped at the month's length.
pub fn day_in_month(year: i32, month: Month, day: u8) -> Option<Date> {
    let day = day.clamp(1, month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

pub fn last_day_of_month(year: i32, month: Month) -> Option<Date> {
    Date::from_calendar_date(year, month, month.length(year)).ok()
}

/// An instant on a day, UTC.
pub fn at(day: Date, hour: u8, minute: u8) -> OffsetDateTime {
    match day.with_hms(hour.min(23), minute.min(59), 0) {
        Ok(dt) => dt.assume_utc(),
        Err(_) => day.midnight().assume_utc(),
    }
}

/// The first day of the previous month.
pub fn previous_month(year: i32, month: Month) -> (i32, Month) {
    if month == Month::January {
        (year - 1, Month::December)
    } else {
        (year, month.previous())
    }
}
