//! What a connection's watchdog watches: when bytes last moved, whether a request head is being
//! received (and since when), and whether a request is being handled. The socket wrapper and
//! the service record it; [`Activity::expired`] resolves when the connection overstayed.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// `head_since` when no request head is being awaited.
const NONE: u64 = u64::MAX;

#[derive(Debug)]
pub(super) struct Activity {
    started: Instant,
    /// Milliseconds from `started` to the last read or write that moved bytes.
    last: AtomicU64,
    /// Milliseconds from `started` to when the current request head began (the connection's
    /// start for the first one), or [`NONE`].
    head_since: AtomicU64,
    /// Requests being handled.
    busy: AtomicUsize,
    /// Wakes the watchdog when its deadline may have moved earlier: a request head began, or a
    /// handler finished.
    changed: Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    /// A request head took too long to arrive (a slowloris client, or a silent one).
    HeaderTimeout,
    /// A kept-alive connection carried nothing for too long.
    Idle,
}

impl Expiry {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Expiry::HeaderTimeout => "header_timeout",
            Expiry::Idle => "idle",
        }
    }
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn bytes_read(&self) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0 {
            // The first bytes of a request on an idle connection start its header clock.
            let began = self
                .head_since
                .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
            if began {
                self.changed.notify_one();
            }
        }
    }

    fn bytes_written(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// A request's head has arrived and its handler runs until the guard drops.
    pub(super) fn begin_request(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Release);
        Busy(self.clone())
    }

    /// Resolves once the connection has overstayed; never while a request is being handled.
    pub(super) async fn expired(&self, header: Duration, idle: Duration) -> Expiry {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let (header, idle) = (millis(header), millis(idle));
        loop {
            let now = self.now();
            let head_since = self.head_since.load(Ordering::Acquire);
            let (deadline, expiry) = if self.busy.load(Ordering::Acquire) > 0 {
                // A handler's own time is bounded elsewhere; look again when it is done.
                (now.saturating_add(idle), None)
            } else if head_since != NONE {
                (
                    head_since.saturating_add(header),
                    Some(Expiry::HeaderTimeout),
                )
            } else {
                let last = self.last.load(Ordering::Relaxed);
                (last.saturating_add(idle), Some(Expiry::Idle))
            };
            if let Some(expiry) = expiry
                && now >= deadline
            {
                return expiry;
            }
            tokio::select! {
                () = tokio::time::sleep_until(self.started + Duration::from_millis(deadline)) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

/// Held while a request is handled.
#[derive(Debug)]
pub(super) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last.store(self.0.now(), Ordering::Relaxed);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A socket that reports to its [`Activity`] whenever bytes move.
#[derive(Debug)]
pub(super) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(50);
    const LONG: Duration = Duration::from_secs(3600);
    /// Far more than any expiry below should take: reaching it means the wrong rule applied.
    const BOUND: Duration = Duration::from_secs(30);

    async fn expiry(activity: &Activity, header: Duration, idle: Duration) -> Expiry {
        tokio::time::timeout(BOUND, activity.expired(header, idle))
            .await
            .expect("the connection should have expired")
    }

    #[tokio::test]
    async fn a_silent_connection_expires_by_the_header_timeout() {
        let activity = Activity::new();
        assert_eq!(expiry(&activity, SHORT, LONG).await, Expiry::HeaderTimeout);
    }

    #[tokio::test]
    async fn a_busy_connection_never_expires_and_an_idle_one_does() {
        let activity = Arc::new(Activity::new());
        let busy = activity.begin_request();
        let watch = activity.expired(SHORT, SHORT);
        tokio::pin!(watch);
        // Many timeouts' worth of handling: still open.
        assert!(tokio::time::timeout(SHORT * 10, &mut watch).await.is_err());
        drop(busy);
        let expired = tokio::time::timeout(BOUND, watch).await.unwrap();
        assert_eq!(expired, Expiry::Idle);
    }

    #[tokio::test]
    async fn a_request_head_begun_on_an_idle_connection_gets_the_header_timeout() {
        let activity = Arc::new(Activity::new());
        drop(activity.begin_request());
        let watch = activity.expired(SHORT, LONG);
        tokio::pin!(watch);
        assert!(tokio::time::timeout(SHORT * 4, &mut watch).await.is_err());
        activity.bytes_read();
        let expired = tokio::time::timeout(BOUND, watch).await.unwrap();
        assert_eq!(expired, Expiry::HeaderTimeout);
    }
}
