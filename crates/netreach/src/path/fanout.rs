//! A path's fan-out: its current status, its subscriptions' queues and its callbacks.
//!
//! The policy is the monitor's: subscribers get the current status first, then every change,
//! through bounded queues (`lagged` + the current status on overflow); callbacks have ids, can
//! be removed, run outside every lock, and a callback that panics is removed and reported as
//! an error event on the monitor.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::monitor::PathOwner;
use super::status::{PathEvent, PathEventKind, PathStatus};
use crate::subscription::{Item, Queue, Subscription};

/// Identifies a callback registered with [`crate::PathMonitor::on_change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathCallbackId(u64);

/// A status callback of a path.
type StatusCallback = Box<dyn FnMut(&PathStatus) + Send>;

/// The part of a path shared by its handle ([`crate::PathMonitor`]) and the engine.
pub(crate) struct PathShared {
    inner: Mutex<PathInner>,
    queue_capacity: usize,
}

struct PathInner {
    /// Cloning it is cheap (names are shared `Arc<str>`): no allocation per change.
    status: PathStatus,
    queues: Vec<Arc<Queue<PathEvent>>>,
    callbacks: Vec<Arc<Slot>>,
    next_id: u64,
}

impl PathShared {
    pub(crate) fn new(status: PathStatus, queue_capacity: usize) -> Self {
        let inner = PathInner { status, queues: Vec::new(), callbacks: Vec::new(), next_id: 0 };
        PathShared { inner: Mutex::new(inner), queue_capacity }
    }

    fn lock(&self) -> MutexGuard<'_, PathInner> {
        // No user code runs under this lock, so poisoning can only come from a bug mid-push;
        // the lists stay consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn status(&self) -> PathStatus {
        self.lock().status.clone()
    }

    pub(crate) fn is_reachable(&self) -> bool {
        self.lock().status.is_reachable()
    }

    fn changed(status: &PathStatus) -> PathEventKind {
        PathEventKind::Changed { status: status.clone() }
    }

    /// A new subscription, greeted with the current status under the lock, so no change can
    /// slip between the two.
    pub(crate) fn subscribe(&self) -> Subscription<PathEvent> {
        let queue = Queue::new(self.queue_capacity);
        let mut inner = self.lock();
        let status = inner.status.clone();
        queue.push(&[PathEvent::now(Self::changed(&status))], &|| Self::changed(&status));
        inner.queues.push(queue.clone());
        Subscription::new(queue)
    }

    /// Registers `callback` and makes its first call, with the current status, on this thread
    /// outside every lock. Changes that arrive meanwhile are delivered right after it, here.
    pub(crate) fn on_change(&self, callback: StatusCallback, owner: Weak<dyn PathOwner>) -> PathCallbackId {
        let slot = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let slot = Arc::new(Slot {
                id: PathCallbackId(inner.next_id),
                owner,
                // This thread delivers from the start: the engine only queues until it is done.
                state: Mutex::new(SlotState {
                    pending: VecDeque::from([inner.status.clone()]),
                    delivering: true,
                    callback: Some(callback),
                    removed: false,
                }),
            });
            inner.callbacks.push(slot.clone());
            slot
        };
        slot.deliver();
        slot.id
    }

    /// Removes a callback: no call starts after this returns. False if it was not registered
    /// (or already removed, e.g. after it panicked).
    pub(crate) fn remove_callback(&self, id: PathCallbackId) -> bool {
        let slot = {
            let mut inner = self.lock();
            let Some(at) = inner.callbacks.iter().position(|s| s.id == id) else { return false };
            inner.callbacks.remove(at)
        };
        slot.remove()
    }

    /// Records a new status and notifies; callbacks run on this thread after every lock is
    /// released (the engine calls this holding none).
    pub(crate) fn publish(&self, status: PathStatus) {
        let due: Vec<Arc<Slot>> = {
            let mut inner = self.lock();
            if inner.status == status {
                return;
            }
            inner.status = status.clone();
            if !inner.queues.is_empty() {
                let batch = [PathEvent::now(Self::changed(&status))];
                inner.queues.retain(|q| q.push(&batch, &|| Self::changed(&status)));
            }
            if inner.callbacks.is_empty() {
                return;
            }
            let mut due = Vec::new();
            inner.callbacks.retain(|slot| match slot.queue(&status, self.queue_capacity) {
                Queued::Removed => false,
                Queued::Deliver => {
                    due.push(slot.clone());
                    true
                }
                Queued::Pending => true,
            });
            due
        };
        due.iter().for_each(|slot| slot.deliver());
    }

    /// Ends the subscriptions (the monitor stopped).
    pub(crate) fn close(&self) {
        for q in &self.lock().queues {
            q.close();
        }
    }
}

/// One callback and the statuses it has yet to see. The thread that set `delivering` calls
/// it, outside every lock, until nothing is pending: calls never overlap and keep their order,
/// and no thread ever waits for another's callback to return.
struct Slot {
    id: PathCallbackId,
    /// Where a panic is reported; weak so a callback never keeps the monitor alive.
    owner: Weak<dyn PathOwner>,
    state: Mutex<SlotState>,
}

struct SlotState {
    pending: VecDeque<PathStatus>,
    delivering: bool,
    /// Taken out while it is being called; `None` for good once removed.
    callback: Option<StatusCallback>,
    removed: bool,
}

/// What [`Slot::queue`] asks of its caller.
enum Queued {
    /// Call [`Slot::deliver`]: no thread is delivering.
    Deliver,
    /// The delivering thread will get to it.
    Pending,
    /// The callback is gone: forget the slot.
    Removed,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // User code never runs under this lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn queue(&self, status: &PathStatus, capacity: usize) -> Queued {
        let mut s = self.lock();
        if s.removed {
            return Queued::Removed;
        }
        if s.pending.len() >= capacity.max(1) {
            // Each status is complete: the newest supersedes what a slow callback missed.
            s.pending.clear();
        }
        s.pending.push_back(status.clone());
        if s.delivering {
            return Queued::Pending;
        }
        s.delivering = true;
        Queued::Deliver
    }

    /// Calls the callback with each pending status; the caller holds the delivery turn.
    fn deliver(&self) {
        loop {
            let (status, mut callback) = {
                let mut s = self.lock();
                let next = if s.removed { None } else { s.pending.pop_front() };
                // The callback is only ever out of the slot in the delivering thread's hands.
                let callback = next.is_some().then(|| s.callback.take()).flatten();
                let (Some(status), Some(callback)) = (next, callback) else {
                    s.delivering = false;
                    return;
                };
                (status, callback)
            };
            let panicked = catch_unwind(AssertUnwindSafe(|| callback(&status))).is_err();
            let mut s = self.lock();
            if panicked {
                s.removed = true;
                s.pending.clear();
                drop(s);
                let message = format!(
                    "path callback {} of {} -> {} panicked and was removed",
                    self.id.0, status.local, status.remote
                );
                if let Some(owner) = self.owner.upgrade() {
                    owner.report(message);
                }
            } else if s.removed {
                drop(s);
                drop(callback); // removed meanwhile; its captures' destructors run outside the lock
            } else {
                s.callback = Some(callback);
            }
        }
    }

    /// Marks the slot removed and drops the callback unless it is being called (its
    /// delivering thread drops it then). True if it had not been removed before.
    fn remove(&self) -> bool {
        let mut s = self.lock();
        let was = !s.removed;
        s.removed = true;
        s.pending.clear();
        let callback = s.callback.take();
        drop(s);
        drop(callback); // its captures' destructors run outside the lock
        was
    }
}
