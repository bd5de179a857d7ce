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
use crate::model::{PathEvent, PathEventKind, PathStatus};
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
    callbacks: Vec<Slot>,
    next_id: u64,
}

/// One callback and the statuses it has yet to see. The thread that set `delivering` calls
/// it, outside every lock, until nothing is pending: calls never overlap and keep their order,
/// and no thread ever waits for another's callback to return. Kept inline (no allocation of
/// its own): a reaction touches thousands of paths.
struct Slot {
    id: PathCallbackId,
    /// Where a panic is reported; weak so a callback never keeps the monitor alive.
    owner: Weak<dyn PathOwner>,
    pending: VecDeque<PathStatus>,
    delivering: bool,
    /// Taken out by the delivering thread while it calls it.
    callback: Option<StatusCallback>,
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
        let (id, status) = {
            let mut inner = self.lock();
            inner.next_id += 1;
            let id = PathCallbackId(inner.next_id);
            // This thread holds the delivery turn from the start: the engine only queues
            // until the first call is done.
            let slot = Slot { id, owner, pending: VecDeque::new(), delivering: true, callback: None };
            inner.callbacks.push(slot);
            (id, inner.status.clone())
        };
        self.run(id, callback, &status);
        id
    }

    /// Removes a callback: no call starts after this returns. False if it was not registered
    /// (or already removed, e.g. after it panicked).
    pub(crate) fn remove_callback(&self, id: PathCallbackId) -> bool {
        let mut inner = self.lock();
        let Some(at) = inner.callbacks.iter().position(|s| s.id == id) else { return false };
        let slot = inner.callbacks.remove(at);
        drop(inner);
        drop(slot); // the callback's captures' destructors run outside the lock
        true
    }

    /// Records a new status and notifies; callbacks run on this thread after every lock is
    /// released (the engine calls this holding none).
    pub(crate) fn publish(&self, status: PathStatus) {
        // Most paths have one callback: the first due one needs no allocation.
        let (mut first, mut rest) = (None, Vec::new());
        {
            let mut inner = self.lock();
            if inner.status == status {
                return;
            }
            inner.status = status.clone();
            if !inner.queues.is_empty() {
                let batch = [PathEvent::now(Self::changed(&status))];
                inner.queues.retain(|q| q.push(&batch, &|| Self::changed(&status)));
            }
            for slot in &mut inner.callbacks {
                if slot.delivering {
                    if slot.pending.len() >= self.queue_capacity.max(1) {
                        // Each status is complete: the newest supersedes what a slow callback
                        // missed.
                        slot.pending.clear();
                    }
                    slot.pending.push_back(status.clone());
                } else if let Some(callback) = slot.callback.take() {
                    slot.delivering = true;
                    match first {
                        None => first = Some((slot.id, callback)),
                        Some(_) => rest.push((slot.id, callback)),
                    }
                }
            }
        }
        for (id, callback) in first.into_iter().chain(rest) {
            self.run(id, callback, &status);
        }
    }

    /// Calls callback `id` with `status`, then with whatever was queued for it meanwhile,
    /// outside the lock; the caller holds its delivery turn, which this gives back.
    fn run(&self, id: PathCallbackId, mut callback: StatusCallback, status: &PathStatus) {
        let mut queued = None;
        loop {
            let current = queued.as_ref().unwrap_or(status);
            let panicked = catch_unwind(AssertUnwindSafe(|| callback(current))).is_err();
            let mut inner = self.lock();
            let Some(at) = inner.callbacks.iter().position(|s| s.id == id) else {
                drop(inner);
                drop(callback); // removed meanwhile; dropped outside the lock
                return;
            };
            if panicked {
                let slot = inner.callbacks.remove(at);
                drop(inner);
                drop(callback);
                let message =
                    format!("path callback {} of {} -> {} panicked and was removed", id.0, status.local, status.remote);
                if let Some(owner) = slot.owner.upgrade() {
                    owner.report(message);
                }
                return;
            }
            let slot = &mut inner.callbacks[at];
            match slot.pending.pop_front() {
                Some(next) => queued = Some(next),
                None => {
                    slot.callback = Some(callback);
                    slot.delivering = false;
                    return;
                }
            }
        }
    }

    /// Ends the subscriptions (the monitor stopped).
    pub(crate) fn close(&self) {
        for q in &self.lock().queues {
            q.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::model::{PathState, Unreachable};
    use crate::path::registry::PathId;

    /// Collects what paths report to their monitor.
    #[derive(Default)]
    struct Owner(Mutex<Vec<String>>);
    impl PathOwner for Owner {
        fn forget(&self, _: PathId) {}
        fn report(&self, message: String) {
            self.0.lock().unwrap().push(message);
        }
    }

    fn status(reachable: bool) -> PathStatus {
        let (local, remote) = ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap());
        let state = if reachable {
            PathState::Reachable { interface: "eth0".into(), same_subnet: false }
        } else {
            PathState::Unreachable { reason: Unreachable::NoRoute, interface: Some("eth0".into()), same_subnet: false }
        };
        PathStatus { local, remote, options: Default::default(), state }
    }

    fn shared() -> (Arc<PathShared>, Arc<Owner>, Weak<dyn PathOwner>) {
        let owner = Arc::new(Owner::default());
        let weak: Weak<dyn PathOwner> = Arc::downgrade(&(owner.clone() as Arc<dyn PathOwner>));
        (Arc::new(PathShared::new(status(true), 4)), owner, weak)
    }

    #[test]
    fn first_call_is_here_and_outside_the_lock() {
        let (path, _owner, weak) = shared();
        let (tx, rx) = mpsc::channel();
        let inner = path.clone();
        // Reading the status from inside the callback would deadlock under the path's lock.
        path.on_change(Box::new(move |s: &PathStatus| tx.send((s.clone(), inner.status())).unwrap()), weak);
        assert_eq!(rx.try_recv().unwrap(), (status(true), status(true)), "called before on_change returned");
        path.publish(status(false));
        assert_eq!(rx.try_recv().unwrap(), (status(false), status(false)));
        path.publish(status(false)); // no change, no call
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn removed_callback_is_not_called_again() {
        let (path, _owner, weak) = shared();
        let (tx, rx) = mpsc::channel();
        let id = path.on_change(Box::new(move |s: &PathStatus| tx.send(s.is_reachable()).unwrap()), weak);
        assert_eq!(rx.try_recv(), Ok(true));
        assert!(path.remove_callback(id));
        assert!(!path.remove_callback(id), "only once");
        path.publish(status(false));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected), "dropped, never called again");
    }

    #[test]
    fn panic_is_reported_and_the_others_go_on() {
        let (path, owner, weak) = shared();
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let id = path.on_change(
            Box::new(move |s: &PathStatus| {
                assert!(s.is_reachable(), "panics on the first unreachable status");
            }),
            weak.clone(),
        );
        path.on_change(Box::new(move |_: &PathStatus| *counted.lock().unwrap() += 1), weak);
        path.publish(status(false));
        path.publish(status(true));
        assert_eq!(*calls.lock().unwrap(), 3, "the other callback saw every status");
        let reports = owner.0.lock().unwrap().clone();
        assert_eq!(reports, ["path callback 1 of 192.0.2.10 -> 198.51.100.1 panicked and was removed"]);
        assert!(!path.remove_callback(id), "it was removed");
    }

    #[test]
    fn changes_during_the_first_call_follow_it_in_order() {
        let (path, _owner, weak) = shared();
        let (tx, rx) = mpsc::channel();
        let publisher = path.clone();
        let mut first = true;
        path.on_change(
            Box::new(move |s: &PathStatus| {
                tx.send(s.is_reachable()).unwrap();
                if std::mem::take(&mut first) {
                    // The engine publishing on another thread must neither wait for this call
                    // nor overlap it: it queues, and this thread delivers right after.
                    let publisher = publisher.clone();
                    std::thread::spawn(move || publisher.publish(status(false))).join().unwrap();
                }
            }),
            weak,
        );
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [true, false]);
    }
}
