//! `NetreachMonitor`: create, read, check, destroy; the core that subscriptions and paths
//! point at weakly, so that destroying the monitor first is safe.

use std::sync::{Arc, Mutex, Weak};

use netreach::Monitor;

use crate::args::{clear, object};
use crate::error::{guard, NetreachStatus};
use crate::options::{builder, NetreachOptions};
use crate::slot::{inside, Slot};
use crate::state::{give, NetreachState};

/// A running monitor of one network namespace. Made by `netreach_monitor_new()`, freed by
/// `netreach_monitor_free()`. Every function taking it may be called from any thread,
/// including from inside its callbacks.
pub struct NetreachMonitor {
    pub(crate) core: Arc<Core>,
}

/// The monitor and the C callbacks registered on it.
pub(crate) struct Core {
    monitor: Option<Monitor>,
    slots: Mutex<Vec<Weak<Slot>>>,
}

impl Core {
    /// The library's monitor (present until drop).
    pub(crate) fn monitor(&self) -> &Monitor {
        self.monitor.as_ref().expect("present until drop")
    }

    /// Identifies this monitor to [`Slot`]s and to [`inside`].
    pub(crate) fn key(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// Remembers a slot, to kill it when the monitor is freed.
    pub(crate) fn adopt(&self, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(slot));
    }

    /// Kills every slot: after this no C callback of this monitor starts, and none runs on
    /// another thread.
    fn kill_all(&self) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|p| p.into_inner()));
        for slot in slots.iter().filter_map(Weak::upgrade) {
            slot.kill();
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let monitor = self.monitor.take();
        if inside(self as *const Core as usize) {
            // On the monitor's own thread (its last reference dropped inside one of its
            // callbacks): dropping here would join the thread we are on. A short-lived thread
            // stops it once the callback has returned; no C callback runs any more (killed).
            let _ = std::thread::Builder::new().name("netreach-c-drop".into()).spawn(move || drop(monitor));
        } else {
            drop(monitor);
        }
    }
}

/// Creates a monitor and reads the initial state: `options` may be NULL (defaults). On
/// success stores it in `*out` and returns `NETREACH_STATUS_OK`; on failure stores NULL and
/// returns the error (an unknown namespace is `NETREACH_STATUS_NOT_FOUND`, NetworkManager
/// asked for but absent `NETREACH_STATUS_SOURCE_UNAVAILABLE`, ...). There is no half-built
/// monitor.
///
/// ```c
/// NetreachMonitor *monitor;
/// if (netreach_monitor_new(options, &monitor) != NETREACH_STATUS_OK) {
///     fprintf(stderr, "%s\n", netreach_last_error_message());
///     return 1;
/// }
/// ```
///
/// # Safety
/// `options` NULL or live options; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_new(
    options: *const NetreachOptions,
    out: *mut *mut NetreachMonitor,
) -> NetreachStatus {
    // SAFETY: `out` is NULL or writable, as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        if out.is_null() {
            return Err(crate::error::Failure::invalid("out is NULL"));
        }
        // SAFETY: `options` is NULL or live, as documented for the caller.
        let monitor = unsafe { builder(options) }.build()?;
        let core = Arc::new(Core { monitor: Some(monitor), slots: Mutex::new(Vec::new()) });
        let handle = Box::into_raw(Box::new(NetreachMonitor { core }));
        // SAFETY: checked not NULL above; the caller promises it is writable.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Stops and frees a monitor (NULL is allowed and does nothing). Its subscriptions and
/// paths stay valid objects that will never call back again; free them as usual, before or
/// after. Safe from inside one of the monitor's own callbacks (the monitor's thread then
/// ends just after that callback returns); from any other thread it returns once the
/// monitor's thread has stopped and no callback of it is running.
///
/// ```c
/// netreach_monitor_free(monitor);
/// ```
///
/// # Safety
/// `monitor` NULL or a monitor not yet freed, not used by any other call after this.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_free(monitor: *mut NetreachMonitor) {
    if monitor.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `netreach_monitor_new`, freed once by the caller.
    let owned = unsafe { Box::from_raw(monitor) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        owned.core.kill_all();
        drop(owned);
    }));
}

/// The current state, at once (never waits for the network). Store in `*out`; free it with
/// `netreach_state_free()`.
///
/// ```c
/// NetreachState *state;
/// if (netreach_monitor_state(monitor, &state) == NETREACH_STATUS_OK) {
///     puts(netreach_state_json(state, NULL));
///     netreach_state_free(state);
/// }
/// ```
///
/// # Safety
/// `monitor` NULL or a live monitor; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_state(
    monitor: *const NetreachMonitor,
    out: *mut *mut NetreachState,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let monitor = unsafe { object(monitor, "monitor") }?;
        // SAFETY: `out` is NULL (refused by `give`) or writable.
        unsafe { give(monitor.core.monitor().snapshot(), out) }
    })
}

/// Asks every source above the kernel (probe, NetworkManager) for a fresh verdict now, waits
/// for the answers (bounded by the probe's timeouts) and stores the resulting state in
/// `*out`. With no such source it returns the current state at once. Do not call it from
/// inside a callback: it waits for the monitor's thread, which is running that callback
/// (it then fails with `NETREACH_STATUS_INVALID_INPUT` rather than hang).
///
/// ```c
/// NetreachState *state;
/// if (netreach_monitor_check(monitor, &state) == NETREACH_STATUS_OK) netreach_state_free(state);
/// ```
///
/// # Safety
/// `monitor` NULL or a live monitor; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_check(
    monitor: *const NetreachMonitor,
    out: *mut *mut NetreachState,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let monitor = unsafe { object(monitor, "monitor") }?;
        if inside(monitor.core.key()) {
            return Err(crate::error::Failure::invalid(
                "netreach_monitor_check called from inside a callback of the same monitor (it would wait for itself)",
            ));
        }
        if out.is_null() {
            return Err(crate::error::Failure::invalid("out is NULL"));
        }
        let state = monitor.core.monitor().check()?;
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { give(state, out) }
    })
}
