//! How long to wait before trying again: jittered exponential backoff, and the bank's own
//! `Retry-After` when it sends one.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use super::HttpSettings;

/// The pause after the `failed`-th failed attempt (1-based): the initial backoff doubled per
/// failure, capped, then drawn from its upper half so that many clients that failed together
/// do not come back together.
pub(crate) fn backoff(settings: &HttpSettings, failed: u32) -> Duration {
    let initial = millis(settings.initial_backoff);
    let cap = millis(settings.max_backoff).max(1);
    let doublings = failed.saturating_sub(1).min(30);
    let base = initial.saturating_mul(1u64 << doublings).min(cap);
    let half = base / 2;
    let jitter = if half == 0 {
        0
    } else {
        rand::rng().random_range(0..=half)
    };
    Duration::from_millis(base - half + jitter)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3). A date in the past means
/// "now"; anything unreadable is treated as absent.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = OffsetDateTime::parse(raw, &Rfc2822).ok()?;
    let wait = at - OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn settings(initial_ms: u64, max_ms: u64) -> HttpSettings {
        HttpSettings {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            ..HttpSettings::default()
        }
    }

    #[test]
    fn backoff_doubles_within_its_jitter_band_and_stays_capped() {
        let s = settings(100, 1_000);
        for _ in 0..200 {
            let first = backoff(&s, 1);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let third = backoff(&s, 3);
            assert!((200..=400).contains(&third.as_millis()), "{third:?}");
            let late = backoff(&s, 40);
            assert!((500..=1_000).contains(&late.as_millis()), "{late:?}");
        }
        assert_eq!(backoff(&settings(0, 0), 3), Duration::ZERO);
    }

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&with("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&with(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderMap::new()), None);
        assert_eq!(retry_after(&with("soon")), None);
        assert_eq!(retry_after(&with("-3")), None);
        assert_eq!(
            retry_after(&with("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO)
        );
        let later = OffsetDateTime::now_utc() + time::Duration::hours(2);
        let formatted = later.format(&Rfc2822).unwrap();
        let wait = retry_after(&with(&formatted)).unwrap();
        assert!(wait > Duration::from_secs(7_000) && wait <= Duration::from_secs(7_200));
    }
}
