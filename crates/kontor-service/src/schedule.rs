//! When a connection is synced without the user: a consent allows `frequencyPerDay` unattended
//! reads a day (at most 4, RTS Art. 36(5)(b)), so each connection gets that many evenly spaced
//! slots per UTC day, shifted by an offset derived from its id so that connections spread over
//! the day instead of all syncing at midnight.

use kontor_domain::ConnectionId;
use kontor_domain::time::Timestamp;
use sha2::{Digest, Sha256};
use time::Date;

const DAY_MICROS: i64 = 86_400_000_000;
/// The regulatory ceiling of unattended reads a day.
pub const MAX_UNATTENDED_PER_DAY: u8 = 4;

/// Slots per day for a consent's frequency: 1..=4.
pub fn slots_per_day(frequency_per_day: u8) -> i64 {
    i64::from(frequency_per_day.clamp(1, MAX_UNATTENDED_PER_DAY))
}

/// Where in its slot a connection's syncs fall, in microseconds: stable per connection.
fn offset(connection: &ConnectionId, slot: i64) -> i64 {
    let digest = Sha256::digest(connection.as_str().as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes).rem_euclid(slot)
}

/// The first scheduled sync strictly after `now`.
pub fn next_sync(now: Timestamp, connection: &ConnectionId, frequency_per_day: u8) -> Timestamp {
    let slot = DAY_MICROS / slots_per_day(frequency_per_day);
    let offset = offset(connection, slot);
    let micros = now.unix_micros();
    let day_start = micros - micros.rem_euclid(DAY_MICROS);
    // Slots are day_start + offset + k * slot; the first after now.
    let since = micros - (day_start + offset);
    let k = since.div_euclid(slot) + 1;
    Timestamp::from_unix_micros(day_start + offset + k * slot)
}

/// The UTC day of an instant.
pub fn utc_day(at: Timestamp) -> Date {
    at.to_datetime().date()
}

/// Unattended reads still allowed today, given the stored counter.
pub fn allowance_left(reads_day: Option<Date>, reads: u32, today: Date, frequency: u8) -> u32 {
    let used = if reads_day == Some(today) { reads } else { 0 };
    u32::from(frequency.clamp(1, MAX_UNATTENDED_PER_DAY)).saturating_sub(used)
}

/// When to try again after `failures` failed syncs in a row: 5 minutes, doubling, at most 6
/// hours, with up to 20% random jitter so that a bank outage does not end in a thundering herd.
pub fn retry_after_failure(now: Timestamp, failures: u32) -> Timestamp {
    const BASE_SECONDS: i64 = 300;
    const CAP_SECONDS: i64 = 6 * 3600;
    let exponent = failures.saturating_sub(1).min(10);
    let delay = (BASE_SECONDS << exponent).min(CAP_SECONDS);
    let jitter = rand::random_range(0..=delay / 5);
    now.plus_seconds(delay + jitter)
}

/// The start of the next UTC day: when a used-up allowance comes back.
pub fn next_utc_day(now: Timestamp) -> Timestamp {
    let micros = now.unix_micros();
    Timestamp::from_unix_micros(micros - micros.rem_euclid(DAY_MICROS) + DAY_MICROS)
}

/// The connection's first slot of the next UTC day.
pub fn first_slot_tomorrow(
    now: Timestamp,
    connection: &ConnectionId,
    frequency_per_day: u8,
) -> Timestamp {
    let midnight = next_utc_day(now).unix_micros();
    next_sync(
        Timestamp::from_unix_micros(midnight - 1),
        connection,
        frequency_per_day,
    )
}

/// When the next unattended sync really happens after a successful one, with `reads_left`
/// unattended reads left today: the next slot, unless that is today and none are left.
pub fn next_attempt(
    now: Timestamp,
    connection: &ConnectionId,
    frequency_per_day: u8,
    reads_left: u32,
) -> Timestamp {
    let slot = next_sync(now, connection, frequency_per_day);
    if reads_left == 0 && utc_day(slot) == utc_day(now) {
        first_slot_tomorrow(now, connection, frequency_per_day)
    } else {
        slot
    }
}

/// When to try again after the `failures`-th failed sync in a row, with `reads_left` unattended
/// reads left today: the backoff, unless it falls on today and none are left — then the first
/// slot of tomorrow. Either way, the attempt that will really be made.
pub fn next_attempt_after_failure(
    now: Timestamp,
    failures: u32,
    connection: &ConnectionId,
    frequency_per_day: u8,
    reads_left: u32,
) -> Timestamp {
    let retry = retry_after_failure(now, failures);
    if reads_left == 0 && utc_day(retry) == utc_day(now) {
        first_slot_tomorrow(now, connection, frequency_per_day)
    } else {
        retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::Region;
    use proptest::prelude::*;

    fn id() -> ConnectionId {
        ConnectionId::generate(&Region::parse("de").unwrap())
    }

    proptest! {
        /// Walking from slot to slot through a day never takes more unattended syncs than the
        /// consent allows, and every step moves forward by exactly one slot.
        #[test]
        fn a_day_never_holds_more_slots_than_allowed(
            start in 1_700_000_000_000_000i64..1_900_000_000_000_000i64,
            frequency in 1u8..=10,
        ) {
            let connection = id();
            let now = Timestamp::from_unix_micros(start);
            let mut next = next_sync(now, &connection, frequency);
            prop_assert!(next > now);
            prop_assert!(next.unix_micros() - now.unix_micros() <= DAY_MICROS / slots_per_day(frequency));
            let mut per_day = std::collections::HashMap::new();
            for _ in 0..20 {
                *per_day.entry(utc_day(next)).or_insert(0i64) += 1;
                let after = next_sync(next, &connection, frequency);
                prop_assert_eq!(after.unix_micros() - next.unix_micros(), DAY_MICROS / slots_per_day(frequency));
                next = after;
            }
            for count in per_day.values() {
                prop_assert!(*count <= i64::from(frequency.min(MAX_UNATTENDED_PER_DAY)));
            }
        }
    }

    #[test]
    fn connections_spread_over_the_day() {
        let now = Timestamp::from_unix_micros(1_764_115_200_000_000); // midnight UTC
        let times: std::collections::HashSet<i64> = (0..50)
            .map(|_| next_sync(now, &id(), 4).unix_micros())
            .collect();
        assert!(
            times.len() > 40,
            "offsets should differ between connections"
        );
    }

    #[test]
    fn allowance_resets_each_day() {
        let today = time::macros::date!(2026 - 11 - 26);
        let yesterday = time::macros::date!(2026 - 11 - 25);
        assert_eq!(allowance_left(Some(today), 3, today, 4), 1);
        assert_eq!(allowance_left(Some(today), 4, today, 4), 0);
        assert_eq!(allowance_left(Some(yesterday), 4, today, 4), 4);
        assert_eq!(
            allowance_left(None, 0, today, 9),
            4,
            "never above the regulatory ceiling"
        );
    }

    #[test]
    fn the_next_attempt_waits_for_tomorrow_only_when_no_read_is_left() {
        let connection = id();
        let noon = Timestamp::from_unix_micros(1_764_115_200_000_000 + DAY_MICROS / 2);
        let tomorrow = first_slot_tomorrow(noon, &connection, 4);
        assert_eq!(utc_day(tomorrow), utc_day(next_utc_day(noon)));
        assert!(tomorrow.unix_micros() - next_utc_day(noon).unix_micros() < DAY_MICROS / 4);

        let retry = next_attempt_after_failure(noon, 1, &connection, 4, 1);
        assert!(
            retry.unix_seconds() - noon.unix_seconds() <= 360,
            "a retry, today"
        );
        assert_eq!(
            next_attempt_after_failure(noon, 1, &connection, 4, 0),
            tomorrow
        );
        // Late in the day the backoff itself reaches tomorrow, where reads are fresh.
        let late = Timestamp::from_unix_micros(next_utc_day(noon).unix_micros() - 60_000_000);
        let after = next_attempt_after_failure(late, 1, &connection, 4, 0);
        assert!(after > next_utc_day(noon) && after.unix_seconds() - late.unix_seconds() <= 360);

        let slot = next_sync(noon, &connection, 4);
        let expected = if utc_day(slot) == utc_day(noon) {
            tomorrow
        } else {
            slot
        };
        assert_eq!(next_attempt(noon, &connection, 4, 0), expected);
        assert_eq!(next_attempt(noon, &connection, 4, 1), slot);
    }

    #[test]
    fn failures_back_off_up_to_a_cap() {
        let now = Timestamp::from_unix_micros(0);
        let first = retry_after_failure(now, 1).unix_seconds();
        assert!((300..=360).contains(&first), "{first}");
        let many = retry_after_failure(now, 30).unix_seconds();
        assert!((21_600..=25_920).contains(&many), "{many}");
        assert_eq!(
            next_utc_day(Timestamp::from_unix_micros(1)).unix_micros(),
            DAY_MICROS
        );
    }
}
