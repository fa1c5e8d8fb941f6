//! Captures what the connectors log during one test, with one subscriber for the whole test
//! binary.
//!
//! A subscriber per test (`tracing::subscriber::set_default`) is not reliable while other tests
//! run on other threads: tracing caches each callsite's interest globally, the first time the
//! callsite is reached. With one scoped subscriber registered, that interest is asked of the
//! *current thread's* subscriber only, so a callsite first reached on another test's thread
//! (none there) is cached as "never" for every thread, and this test's subscriber no longer
//! sees its events ("the fault is logged" failed in CI this way). Here the one subscriber is
//! the global default, installed before any connector runs; it answers "sometimes" for every
//! connector callsite and writes each event to the capture of the thread it happens on (each
//! `#[tokio::test]` runs its runtime, connector and sandbox on its own thread).

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing::subscriber::Interest;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

thread_local! {
    static ACTIVE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// The log lines written on one thread while its capture was active.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Ends the capture (on drop) of the thread that started it.
pub struct Capturing {
    capture: Capture,
}

impl Capturing {
    pub fn text(&self) -> String {
        self.capture.text()
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        ACTIVE.with(|active| active.borrow_mut().take());
    }
}

fn capturing() -> bool {
    ACTIVE.with(|active| active.borrow().is_some())
}

/// Writes to the capture of the current thread, if any.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        ACTIVE.with(|active| {
            if let Some(capture) = active.borrow().as_ref() {
                capture.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn is_connector(target: &str) -> bool {
    target == "kontor_banks" || target.starts_with("kontor_banks::")
}

/// Installs the binary's subscriber, once. Every fixture calls this before its connector runs.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // The answer depends on the thread, so every connector callsite is "sometimes":
        // tracing asks again at each event instead of caching one thread's answer for all.
        let filter = tracing_subscriber::filter::dynamic_filter_fn(|meta, _| {
            is_connector(meta.target()) && capturing()
        })
        .with_callsite_filter(|meta| {
            if is_connector(meta.target()) {
                Interest::sometimes()
            } else {
                Interest::never()
            }
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(|| ThreadWriter)
            .with_ansi(false)
            .with_filter(filter);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the test binary's only global subscriber");
    });
}

/// Captures the connector logs (every level) of the current thread until the guard drops.
pub fn start() -> Capturing {
    install();
    // Whatever a thread cached before the subscriber was installed is asked again.
    tracing::callsite::rebuild_interest_cache();
    let capture = Capture::default();
    ACTIVE.with(|active| *active.borrow_mut() = Some(capture.clone()));
    Capturing { capture }
}
