//! Fan-out: every subscriber's queue and every callback get the same events in the same
//! order, a baseline first. Events are queued under the dispatch lock; callbacks run on the
//! engine thread afterwards, outside every lock (so they may call back into the monitor).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use super::shared::{lock, Shared};
use crate::model::{Event, EventKind};
use crate::subscription::{Queue, Subscription};

/// A user callback (see `Monitor::on_events`; `Monitor::on_event` wraps a per-event one): it
/// gets everything queued for it at once, at least the whole of one change.
pub(crate) type Callback = Box<dyn FnMut(&[Event]) + Send>;

struct CallbackSlot {
    id: u64,
    queue: Arc<Queue>,
    callback: Mutex<Callback>,
}

#[derive(Default)]
pub(super) struct Dispatch {
    queues: Vec<Arc<Queue>>,
    callbacks: Vec<Arc<CallbackSlot>>,
    next_id: u64,
    /// Set when the engine stopped; with the fatal error if there was one.
    stopped: Option<Option<String>>,
}

impl Shared {
    pub(super) fn dispatch(&self) -> MutexGuard<'_, Dispatch> {
        lock(&self.dispatch)
    }

    /// Gives a new subscriber its baseline (and the end, if the monitor already stopped).
    /// Called with the dispatch lock held so no event can slip between baseline and stream.
    fn greet(&self, dispatch: &Dispatch, queue: &Queue) {
        let state = self.snapshot();
        let mut greeting = vec![Event::now(EventKind::Baseline { state: state.clone() })];
        if let Some(Some(message)) = &dispatch.stopped {
            greeting.push(Event::now(EventKind::Error { message: message.clone(), fatal: true }));
        }
        queue.push(&greeting, &|| EventKind::Baseline { state: state.clone() });
        if dispatch.stopped.is_some() {
            queue.close();
        }
    }

    /// A new subscription: a baseline, then every change.
    pub(crate) fn subscribe(&self) -> Subscription {
        let queue = Queue::new(self.queue_capacity);
        let mut dispatch = self.dispatch();
        self.greet(&dispatch, &queue);
        dispatch.queues.push(queue.clone());
        Subscription::new(queue)
    }

    /// Registers a callback; the engine thread delivers its baseline. Returns its id.
    pub(crate) fn add_callback(&self, callback: Callback) -> u64 {
        let id = {
            let mut dispatch = self.dispatch();
            dispatch.next_id += 1;
            let slot = Arc::new(CallbackSlot {
                id: dispatch.next_id,
                queue: Queue::new(self.queue_capacity),
                callback: Mutex::new(callback),
            });
            self.greet(&dispatch, &slot.queue);
            dispatch.callbacks.push(slot);
            dispatch.next_id
        };
        self.wake.wake();
        id
    }

    /// Removes a callback; false if it was not registered (or already removed).
    pub(crate) fn remove_callback(&self, id: u64) -> bool {
        let mut dispatch = self.dispatch();
        let before = dispatch.callbacks.len();
        dispatch.callbacks.retain(|c| c.id != id);
        before != dispatch.callbacks.len()
    }

    /// Queues events for everyone and runs the callbacks.
    pub(super) fn publish(&self, events: Vec<EventKind>) {
        self.push(&mut self.dispatch(), events);
        self.deliver_callbacks();
    }

    /// Queues events for everyone (the state lock must not be held: a lagging queue takes a
    /// fresh baseline).
    pub(super) fn push(&self, dispatch: &mut Dispatch, events: Vec<EventKind>) {
        let now = std::time::SystemTime::now();
        let batch: Vec<Event> = events.into_iter().map(|kind| Event { timestamp: now, kind }).collect();
        let baseline = || EventKind::Baseline { state: self.snapshot() };
        dispatch.queues.retain(|q| q.push(&batch, &baseline));
        dispatch.callbacks.retain(|c| c.queue.push(&batch, &baseline));
    }

    /// Runs callbacks for everything queued for them, outside every lock.
    pub(super) fn deliver_callbacks(&self) {
        let callbacks = self.dispatch().callbacks.clone();
        let mut panicked = Vec::new();
        for slot in callbacks {
            let mut callback = lock(&slot.callback);
            let events = slot.queue.drain();
            if !events.is_empty() && catch_unwind(AssertUnwindSafe(|| callback(&events))).is_err() {
                panicked.push(slot.id);
            }
        }
        for id in panicked {
            self.dispatch().callbacks.retain(|c| c.id != id);
            self.publish(vec![EventKind::Error {
                message: format!("callback {id} panicked and was removed"),
                fatal: false,
            }]);
        }
    }

    /// The engine stopped: every subscription ends (after the fatal error, if any), callbacks
    /// are dropped, and later subscribers get a baseline and the end.
    pub(super) fn close(&self, fatal: Option<String>) {
        let mut dispatch = self.dispatch();
        dispatch.stopped = Some(fatal);
        for q in &dispatch.queues {
            q.close();
        }
        dispatch.callbacks.clear();
    }
}
