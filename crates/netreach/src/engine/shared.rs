//! What the monitor's handle, its engine thread and its sources' sinks share: the state, the
//! fan-out, the engine's command queue and its waker, the refiners; and the one way to lock
//! them.

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use super::fanout::Dispatch;
use super::Refiner;
use crate::model::{Error, Snapshot};
use crate::path::{PathId, PathOwner, PathShared, Query};
use crate::sys::{self, Input};

/// Work for the engine thread, which owns the source that path evaluation asks.
pub(crate) enum Command {
    AddPath {
        query: Query,
        reply: mpsc::SyncSender<(PathId, Arc<PathShared>)>,
    },
    RemovePath(PathId),
    /// An input from a source's own thread (a verdict, a fault).
    Input(Input),
    /// Answered once every earlier command has run.
    Sync(mpsc::SyncSender<()>),
}

/// State shared by the monitor's handle, its engine thread and its sources' sinks. Lock order:
/// dispatch, then state.
pub(crate) struct Shared {
    pub(super) dispatch: Mutex<Dispatch>,
    /// Replaced (or changed in place when no snapshot is out) only by the engine thread.
    pub(super) state: Mutex<Arc<Snapshot>>,
    pub(super) stopping: AtomicBool,
    /// Pending work for the engine thread; `None` once it has stopped.
    pub(super) commands: Mutex<Option<Vec<Command>>>,
    pub(super) wake: sys::Waker,
    pub(super) queue_capacity: usize,
    /// Sources above the kernel; emptied (and so stopped) when the monitor drops.
    pub(super) refiners: Mutex<Vec<Arc<dyn Refiner>>>,
}

/// The error of asking a monitor whose engine has stopped.
pub(crate) fn stopped() -> Error {
    Error::stopped("the monitor has stopped")
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Callbacks and sources run outside these locks, so a poisoned lock means a bug in
    // netreach itself mid-update; the data (lists, an Arc) is still consistent.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(super) fn new(initial: Snapshot, wake: sys::Waker, queue_capacity: usize) -> Arc<Shared> {
        Arc::new(Shared {
            dispatch: Mutex::new(Dispatch::default()),
            state: Mutex::new(Arc::new(initial)),
            stopping: AtomicBool::new(false),
            commands: Mutex::new(Some(Vec::new())),
            wake,
            queue_capacity,
            refiners: Mutex::new(Vec::new()),
        })
    }

    /// Queues work for the engine thread and wakes it.
    pub(crate) fn command(&self, command: Command) -> Result<(), Error> {
        lock(&self.commands).as_mut().ok_or_else(stopped)?.push(command);
        self.wake.wake();
        Ok(())
    }

    /// The current state (an `Arc`: cheap).
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        lock(&self.state).clone()
    }

    /// The sources above the kernel, for a `check()` that must not hold their lock.
    pub(crate) fn refiners(&self) -> Vec<Arc<dyn Refiner>> {
        lock(&self.refiners).clone()
    }
}

impl PathOwner for Shared {
    fn forget(&self, id: PathId) {
        let _ = self.command(Command::RemovePath(id)); // fails only once the engine stopped
    }

    fn report(&self, message: String) {
        // A path callback's panic, reported like a source's fault; nobody to tell once the
        // engine stopped.
        let _ = self.command(Command::Input(Input::Fault(message)));
    }
}
