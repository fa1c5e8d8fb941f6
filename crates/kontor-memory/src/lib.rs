//! Idle memory. glibc's allocator keeps what the program frees in its arenas for reuse (each
//! runtime thread has an arena of its own) and gives back on its own only the free top of each
//! heap; the free pages in between stay resident. After a burst of requests an idle `kontor
//! serve` held 3.5 MiB of such pages (docs/BENCHMARKS.md, issue 12). [`spawn_idle_trimmer`]
//! watches an activity counter and, on the first tick it stood still after moving (and every
//! so often while it stays still), asks glibc for those pages back. Never while the counter
//! moves: `malloc_trim` locks each arena in turn while it walks it, and pages given back are
//! faulted in again by the next allocations.

use std::time::{Duration, Instant};

/// Gives the allocator's free pages back to the system; whether any came back. Does nothing
/// (false) with another C library than glibc.
pub fn release_free_memory() -> bool {
    glibc::release()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "the project's one call into the C library")]
mod glibc {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }

    pub(super) fn release() -> bool {
        // SAFETY: malloc_trim takes no pointers and touches only glibc's own arenas, under their
        // locks; any thread may call it at any time.
        unsafe { malloc_trim(0) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    pub(super) fn release() -> bool {
        false
    }
}

/// When to give memory back, from an activity counter read at every tick: on the first tick the
/// counter stood still after it moved, and every `every` while it stays still.
#[derive(Debug)]
pub struct IdleTrim {
    every: Duration,
    last_seen: u64,
    trimmed_at: Option<u64>,
    last_trim: Option<Instant>,
}

impl IdleTrim {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last_seen: 0,
            trimmed_at: None,
            last_trim: None,
        }
    }

    /// Whether to trim now, the counter reading `activity` at `now`.
    pub fn due(&mut self, activity: u64, now: Instant) -> bool {
        let still = activity == self.last_seen;
        self.last_seen = activity;
        if !still {
            return false;
        }
        // The first still tick after activity, or `every` since the last trim.
        let trim = self.trimmed_at != Some(activity)
            || self
                .last_trim
                .is_none_or(|at| now.saturating_duration_since(at) >= self.every);
        if trim {
            self.trimmed_at = Some(activity);
            self.last_trim = Some(now);
        }
        trim
    }
}

/// Starts a thread that reads `activity` every `tick` and gives free memory back when
/// [`IdleTrim`] says so (once soon after start, too: start-up allocates and frees a lot).
pub fn spawn_idle_trimmer(
    activity: fn() -> u64,
    tick: Duration,
    every: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("memory-trim".to_owned())
        .spawn(move || {
            let mut trim = IdleTrim::new(every);
            loop {
                std::thread::sleep(tick);
                if trim.due(activity(), Instant::now()) {
                    let released = release_free_memory();
                    tracing::debug!(released, "gave free memory back to the system");
                }
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_when_activity_stops_and_then_only_now_and_then() {
        let every = Duration::from_secs(30);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut trim = IdleTrim::new(every);
        assert!(trim.due(0, at(1)), "the first still tick after start");
        assert!(!trim.due(0, at(2)), "still, and trimmed a second ago");
        assert!(!trim.due(5, at(3)), "requests came in");
        assert!(!trim.due(9, at(4)), "and more");
        assert!(trim.due(9, at(5)), "the first still tick after them");
        assert!(!trim.due(9, at(6)));
        assert!(!trim.due(9, at(34)));
        assert!(trim.due(9, at(35)), "30 s after the last trim");
        assert!(!trim.due(9, at(36)));
    }

    #[test]
    fn never_trims_while_activity_goes_on() {
        let start = Instant::now();
        let mut trim = IdleTrim::new(Duration::from_secs(1));
        for tick in 1..100u64 {
            assert!(
                !trim.due(tick * 3, start + Duration::from_secs(tick)),
                "{tick}"
            );
        }
    }

    /// Many small blocks freed below one that stays: glibc cannot give them back from the top of
    /// its heap, and `malloc_trim` can.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn freed_pages_below_a_live_block_come_back() {
        let blocks: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| vec![u8::try_from(i % 251).unwrap_or(0); 1000])
            .collect();
        let keep = vec![1u8; 1000];
        drop(blocks);
        assert!(release_free_memory());
        assert_eq!(keep[999], 1);
    }
}
