//! Histogram samples must not pile up in memory when nobody scrapes `/metrics`. A test binary of
//! its own, because it counts every byte the process holds through a counting allocator.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::alloc::System;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes the process holds now.
fn held() -> i64 {
    let stats = ALLOCATOR.stats();
    i64::try_from(stats.bytes_allocated).unwrap() - i64::try_from(stats.bytes_deallocated).unwrap()
}

const SAMPLES: u64 = 1_000_000;
/// Raw samples take at least 8 bytes each (8 MB here); drained into buckets they take nothing.
const BOUND: i64 = 1_000_000;

#[test]
fn a_million_latency_samples_without_a_scrape_leave_memory_flat() {
    let handle = kontor_api::prometheus().expect("the recorder");
    let histogram = metrics::histogram!(
        "kontor_http_request_duration_seconds",
        "method" => "GET",
        "route" => "/memory-test",
    );
    histogram.record(0.001);
    let before = held();
    for _ in 0..SAMPLES {
        histogram.record(0.002);
    }
    let grown = held() - before;
    assert!(
        grown > 4 * BOUND,
        "recording should hold the raw samples at first (grew by {grown} bytes)"
    );

    // Without any render, while requests keep coming at a trickle, the memory comes back. (The
    // drained blocks are freed through epoch-based reclamation, which the recording threads'
    // own activity drives; a process under no load at all frees them later.)
    let mut trickle = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let grown = held() - before;
        if grown < BOUND {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{grown} bytes still held for {SAMPLES} unscraped samples"
        );
        for _ in 0..200 {
            histogram.record(0.003);
        }
        trickle += 200;
        std::thread::sleep(Duration::from_millis(20));
    }

    // And the samples are counted. (The recorder may drop the odd sample written while it
    // drains, a race inside metrics-util; a scrape has the same.)
    let page = handle.render();
    let count: u64 = page
        .lines()
        .find(|line| {
            line.starts_with("kontor_http_request_duration_seconds_count")
                && line.contains("/memory-test")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the histogram's count");
    let recorded = SAMPLES + 1 + trickle;
    assert!(
        count <= recorded && count >= recorded - recorded / 1000,
        "{count} of {recorded}"
    );
}
