//! `NetreachSubscription`: a C callback receiving the monitor's events.

use std::ffi::c_void;
use std::sync::{Arc, Weak};

use netreach::CallbackId;

use crate::args::{clear, object, put};
use crate::error::{guard, Failure, NetreachStatus};
use crate::event::NetreachEvent;
use crate::monitor::{Core, NetreachMonitor};
use crate::slot::{Slot, UserData};

/// Called with each event, on the monitor's thread, in order, never concurrently for one
/// monitor. `event` is valid only during the call. It may call any netreach function
/// except `netreach_monitor_check()` and `netreach_monitor_watch_path()` on the same monitor, including freeing its own
/// subscription or the monitor. It should return quickly: it delays the next event.
pub type NetreachEventCallback = Option<unsafe extern "C" fn(event: *const NetreachEvent, user_data: *mut c_void)>;

/// A C callback registered with `netreach_monitor_subscribe()`; freed (unsubscribed) by
/// `netreach_subscription_free()`.
pub struct NetreachSubscription {
    slot: Arc<Slot>,
    core: Weak<Core>,
    id: CallbackId,
}

/// Calls `callback(event, user_data)` with a baseline event (the whole state), then with
/// every change, on the monitor's thread. Stores the subscription in `*out`. A NULL
/// `callback` is refused. `user_data` is handed back untouched.
///
/// ```c
/// static void on_event(const NetreachEvent *event, void *user_data) {
///     NetreachFamily family; NetreachLevel old_level, new_level;
///     if (netreach_event_reachability(event, &family, &old_level, &new_level, NULL) == NETREACH_STATUS_OK)
///         printf("%s -> %s\n", netreach_level_name(old_level), netreach_level_name(new_level));
/// }
/// NetreachSubscription *subscription;
/// netreach_monitor_subscribe(monitor, on_event, NULL, &subscription);
/// ```
///
/// # Safety
/// `monitor` NULL or a live monitor; `out` NULL (refused) or writable; `callback` a function
/// safe to call with `user_data` on another thread.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_subscribe(
    monitor: *const NetreachMonitor,
    callback: NetreachEventCallback,
    user_data: *mut c_void,
    out: *mut *mut NetreachSubscription,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let monitor = unsafe { object(monitor, "monitor") }?;
        let callback = callback.ok_or_else(|| Failure::invalid("callback is NULL"))?;
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        let core = &monitor.core;
        let slot = Arc::new(Slot::new(core.key()));
        core.adopt(&slot);
        let user_data = UserData(user_data);
        let in_callback = slot.clone();
        let id = core.monitor().on_event(move |event| {
            let user_data = user_data;
            in_callback.run(|| {
                let wrapped = NetreachEvent::new(event);
                // SAFETY: the caller promised `callback` may be called with `user_data` on
                // this thread; `wrapped` outlives the call.
                unsafe { callback(&wrapped, user_data.0) };
            });
        });
        let subscription = NetreachSubscription { slot, core: Arc::downgrade(core), id };
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, "out", Box::into_raw(Box::new(subscription))) }
    })
}

/// Unsubscribes and frees (NULL is allowed and does nothing). After it returns the callback
/// is never called again and no call of it is running on another thread, so `user_data` may
/// be freed. From inside its own callback it returns at once (that call finishes normally).
/// Valid also after the monitor was freed.
///
/// ```c
/// netreach_subscription_free(subscription);
/// ```
///
/// # Safety
/// `subscription` NULL or a subscription not yet freed.
#[no_mangle]
pub unsafe extern "C" fn netreach_subscription_free(subscription: *mut NetreachSubscription) {
    if subscription.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `netreach_monitor_subscribe`, freed once by the caller.
    let owned = unsafe { Box::from_raw(subscription) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        owned.slot.kill();
        if let Some(core) = owned.core.upgrade() {
            core.monitor().remove_callback(owned.id);
        }
    }));
}
