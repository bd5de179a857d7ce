//! Bounded per-subscriber queues and the receiving ends handed to users, generic over what
//! they carry: the monitor's [`Event`]s, a path's [`crate::PathEvent`]s. One policy for both:
//! a baseline first, then every change; on overflow a `lagged` notice and a fresh baseline.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::model::{Event, EventKind, PathEvent, PathEventKind};

/// What a [`Queue`] carries: a timestamped item whose kinds include a `lagged` notice.
pub(crate) trait Item: Clone {
    /// What happened, before the timestamp.
    type Kind;
    /// Stamps `kind` with the current time.
    fn now(kind: Self::Kind) -> Self;
    /// The notice that `missed` items were dropped (a fresh baseline follows it).
    fn lagged(missed: u64) -> Self::Kind;
}

impl Item for Event {
    type Kind = EventKind;
    fn now(kind: EventKind) -> Self {
        Event::now(kind)
    }
    fn lagged(missed: u64) -> EventKind {
        EventKind::Lagged { missed }
    }
}

impl Item for PathEvent {
    type Kind = PathEventKind;
    fn now(kind: PathEventKind) -> Self {
        PathEvent { timestamp: std::time::SystemTime::now(), kind }
    }
    fn lagged(missed: u64) -> PathEventKind {
        PathEventKind::Lagged { missed }
    }
}

/// A bounded queue. When a push would overflow it, everything queued is dropped and replaced
/// by a `lagged` notice and a fresh baseline (for the monitor [`EventKind::Lagged`] and
/// [`EventKind::Baseline`]): memory stays bounded and the subscriber can still rebuild the
/// exact current state.
pub(crate) struct Queue<T = Event> {
    inner: Mutex<QueueInner<T>>,
    ready: Condvar,
    capacity: usize,
}

struct QueueInner<T> {
    events: VecDeque<T>,
    /// The monitor stopped: nothing more will come after what is queued.
    closed: bool,
    /// The receiving end was dropped: the engine may forget this queue.
    receiver_gone: bool,
    waker: Option<Waker>,
    /// Receivers blocked on `ready`: a push wakes the condvar only when one waits. A condvar's
    /// notify is a futex syscall even with nobody waiting, and most queues never have a
    /// blocked receiver (callbacks drain theirs; streams use the waker).
    blocked: usize,
}

impl<T> Default for QueueInner<T> {
    fn default() -> Self {
        QueueInner { events: VecDeque::new(), closed: false, receiver_gone: false, waker: None, blocked: 0 }
    }
}

impl<T: Item> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Queue { inner: Mutex::default(), ready: Condvar::new(), capacity: capacity.max(1) })
    }

    /// Appends a batch; `baseline` (what a subscriber needs to start over: the whole state, or
    /// a path's status) is called only on overflow. Returns false when the receiver is gone and
    /// the queue can be dropped.
    pub(crate) fn push(&self, batch: &[T], baseline: &dyn Fn() -> T::Kind) -> bool {
        let mut q = self.lock();
        if q.receiver_gone {
            return false;
        }
        for (i, event) in batch.iter().enumerate() {
            if q.events.len() >= self.capacity {
                // The baseline already contains this item and the rest of the batch.
                let missed = (q.events.len() + batch.len() - i) as u64;
                q.events.clear();
                q.events.push_back(T::now(T::lagged(missed)));
                q.events.push_back(T::now(baseline()));
                break;
            }
            q.events.push_back(event.clone());
        }
        self.notify(q);
        true
    }

    /// Takes everything queued (used for callbacks, drained on the engine thread).
    pub(crate) fn drain(&self) -> Vec<T> {
        self.lock().events.drain(..).collect()
    }
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, QueueInner<T>> {
        // A panic while holding this lock cannot leave the queue half-updated in a way that
        // matters (every mutation is a single push/pop), so recover from poisoning.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the queue closed: receivers get what is queued, then the end.
    pub(crate) fn close(&self) {
        let mut q = self.lock();
        q.closed = true;
        self.notify(q);
    }

    fn notify(&self, mut q: MutexGuard<'_, QueueInner<T>>) {
        let waker = q.waker.take();
        // Read under the lock every receiver holds while it counts itself in: no lost wake-up.
        let blocked = q.blocked > 0;
        drop(q);
        if blocked {
            self.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Why [`Subscription::recv_timeout`] or [`Subscription::try_recv`] returned no event.
///
/// ```no_run
/// use netreach::RecvError;
/// let events = netreach::Monitor::new()?.subscribe();
/// loop {
///     match events.recv_timeout(std::time::Duration::from_secs(1)) {
///         Ok(event) => println!("{:?}", event.kind),
///         Err(RecvError::Timeout) => println!("quiet"),
///         Err(RecvError::Closed) => break,
///     }
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time (or, for `try_recv`, nothing is queued).
    Timeout,
    /// The monitor stopped (dropped, or a fatal error was reported) and everything has been
    /// received.
    Closed,
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecvError::Timeout => "no event within the timeout",
            RecvError::Closed => "the monitor has stopped",
        })
    }
}

impl std::error::Error for RecvError {}

/// A stream from a [`crate::Monitor`] (`Subscription<Event>`, the default: first a
/// [`EventKind::Baseline`] with the current state, then every change) or from a
/// [`crate::PathMonitor`] (`Subscription<PathEvent>`: first
/// [`crate::PathEventKind::Changed`] with the current status, then every
/// change). Receive by blocking ([`Subscription::recv`], [`Subscription::recv_timeout`]), by
/// polling ([`Subscription::try_recv`]) or as a [`futures_core::Stream`] under any executor.
/// Dropping it unsubscribes.
///
/// The queue is bounded (see [`crate::MonitorBuilder::queue_capacity`]): a subscriber that
/// falls behind gets a `lagged` notice ([`EventKind::Lagged`],
/// [`crate::PathEventKind::Lagged`]) and a fresh baseline instead of
/// unbounded memory.
///
/// ```no_run
/// let monitor = netreach::Monitor::new()?;
/// let events = monitor.subscribe();
/// while let Some(event) = events.recv() {
///     println!("{:?}", event.kind);
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[must_use = "dropping a Subscription unsubscribes"]
pub struct Subscription<T = Event> {
    queue: Arc<Queue<T>>,
}

impl<T> Subscription<T> {
    pub(crate) fn new(queue: Arc<Queue<T>>) -> Self {
        Subscription { queue }
    }

    /// Blocks until the next event; `None` once the monitor has stopped and all is received.
    pub fn recv(&self) -> Option<T> {
        let mut q = self.queue.lock();
        loop {
            if let Some(e) = q.events.pop_front() {
                return Some(e);
            }
            if q.closed {
                return None;
            }
            q.blocked += 1;
            q = self.queue.ready.wait(q).unwrap_or_else(|p| p.into_inner());
            q.blocked -= 1;
        }
    }

    /// Blocks for at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut q = self.queue.lock();
        loop {
            if let Some(e) = q.events.pop_front() {
                return Ok(e);
            }
            if q.closed {
                return Err(RecvError::Closed);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            q.blocked += 1;
            q = self.queue.ready.wait_timeout(q, left).unwrap_or_else(|p| p.into_inner()).0;
            q.blocked -= 1;
        }
    }

    /// Returns the next event if one is queued, without blocking.
    pub fn try_recv(&self) -> Result<T, RecvError> {
        let mut q = self.queue.lock();
        match q.events.pop_front() {
            Some(e) => Ok(e),
            None if q.closed => Err(RecvError::Closed),
            None => Err(RecvError::Timeout),
        }
    }

    /// A blocking iterator over the events; ends when the monitor stops.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv())
    }
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").field("queued", &self.queue.lock().events.len()).finish()
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let mut q = self.queue.lock();
        q.receiver_gone = true;
        q.events.clear();
    }
}

impl<T> futures_core::Stream for Subscription<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut q = self.queue.lock();
        if let Some(e) = q.events.pop_front() {
            return Poll::Ready(Some(e));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, Snapshot};

    fn event(n: u64) -> Event {
        Event::now(EventKind::Lagged { missed: n })
    }

    #[test]
    fn overflow_replaces_queue_with_lagged_and_baseline() {
        let queue: Arc<Queue> = Queue::new(3);
        let sub = Subscription::new(queue.clone());
        let baseline = || EventKind::Baseline { state: Arc::new(Snapshot::default()) };
        assert!(queue.push(&[event(1), event(2), event(3)], &baseline));
        assert!(queue.push(&[event(4), event(5)], &baseline));
        let got: Vec<_> = std::iter::from_fn(|| sub.try_recv().ok()).map(|e| e.kind).collect();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0], EventKind::Lagged { missed: 5 });
        assert!(matches!(got[1], EventKind::Baseline { .. }));
        assert_eq!(sub.try_recv(), Err(RecvError::Timeout));
    }

    #[test]
    fn closed_queue_drains_then_ends() {
        let queue: Arc<Queue> = Queue::new(8);
        let sub = Subscription::new(queue.clone());
        queue.push(&[event(1)], &|| EventKind::Lagged { missed: 0 });
        queue.close();
        assert!(sub.recv().is_some());
        assert!(sub.recv().is_none());
        assert_eq!(sub.recv_timeout(Duration::from_secs(5)), Err(RecvError::Closed));
    }

    #[test]
    fn recv_timeout_times_out() {
        let sub: Subscription = Subscription::new(Queue::new(8));
        assert_eq!(sub.recv_timeout(Duration::from_millis(1)), Err(RecvError::Timeout));
    }

    #[test]
    fn dropped_receiver_frees_queue() {
        let queue: Arc<Queue> = Queue::new(8);
        drop(Subscription::new(queue.clone()));
        assert!(!queue.push(&[event(1)], &|| EventKind::Lagged { missed: 0 }));
    }
}
