//! One registered C callback (a subscription's or a path's) and the rules that make tearing
//! it down safe from anywhere, including from inside a callback.
//!
//! The library's own guarantees are not enough for C: a monitor callback removed from
//! another thread may still be running (C must be able to free its user data once the free
//! call returns), and a monitor dropped on its own thread would join itself. So every C
//! callback goes through a [`Slot`]: a call holds the slot's `running` lock, and killing the
//! slot clears `alive` and then takes that lock, which waits for a call running on another
//! thread; on the calling thread itself (a callback tearing down its own slot) it must not
//! wait, and a thread-local list of the slots and monitors whose callback this thread is
//! running says so.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

thread_local! {
    /// Keys (addresses) of the slots and monitors whose callback this thread is running.
    static RUNNING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Whether this thread is inside a callback of the slot or monitor with this key.
pub(crate) fn inside(key: usize) -> bool {
    RUNNING.try_with(|r| r.borrow().contains(&key)).unwrap_or(false)
}

/// The caller's `void *user_data`, handed back untouched on the monitor's thread.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: netreach never dereferences it; the header tells C that its callback runs on the
// monitor's thread with this pointer, so making it safe to use there is the caller's part.
unsafe impl Send for UserData {}
// SAFETY: as above; it is only copied, never dereferenced, by this library.
unsafe impl Sync for UserData {}

/// A registered C callback: alive until killed, and never called after.
pub(crate) struct Slot {
    alive: AtomicBool,
    running: Mutex<()>,
    /// The monitor it belongs to (key of its core), pushed with the slot's own key while the
    /// callback runs, so that freeing that monitor from inside knows not to join itself.
    monitor: usize,
}

impl Slot {
    /// A live slot of the monitor with key `monitor`.
    pub(crate) fn new(monitor: usize) -> Slot {
        Slot { alive: AtomicBool::new(true), running: Mutex::new(()), monitor }
    }

    fn key(&self) -> usize {
        self as *const Slot as usize
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A C callback cannot unwind through here (extern "C" aborts), so poison means only
        // that some Rust code panicked while holding it: the unit inside is still fine.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `call` unless the slot was killed, marked as running on this thread.
    pub(crate) fn run(&self, call: impl FnOnce()) {
        let _turn = self.lock();
        if !self.alive.load(Ordering::SeqCst) {
            return;
        }
        let keys = [self.key(), self.monitor];
        let _ = RUNNING.try_with(|r| r.borrow_mut().extend(keys));
        // Pops the keys even if `call` unwinds (it cannot for C code, but our own wrapping
        // code could panic).
        struct Pop;
        impl Drop for Pop {
            fn drop(&mut self) {
                let _ = RUNNING.try_with(|r| {
                    let mut r = r.borrow_mut();
                    let at = r.len().saturating_sub(2);
                    r.truncate(at);
                });
            }
        }
        let _pop = Pop;
        call();
    }

    /// No call starts after this returns, and none is running on another thread. From inside
    /// this slot's own callback it returns at once (that call is still finishing).
    pub(crate) fn kill(&self) {
        self.alive.store(false, Ordering::SeqCst);
        if !inside(self.key()) {
            drop(self.lock());
        }
    }
}
