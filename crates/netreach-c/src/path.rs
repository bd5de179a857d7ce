//! `NetreachPath`: is one connection's path (local -> remote) still working, with a callback.

use std::ffi::{c_char, c_int, c_void};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use netreach::{PathCallbackId, PathMonitor, PathStatus};

use crate::args::{clear, object, put, text, Text};
use crate::error::{guard, guard_value, Failure, NetreachStatus};
use crate::monitor::NetreachMonitor;
use crate::slot::{Slot, UserData};

/// One reading of a path. Given to a path callback (valid during the call) or made by
/// `netreach_path_status()` (freed by `netreach_path_status_free()`).
pub struct NetreachPathStatus {
    status: PathStatus,
    json: OnceLock<Text>,
    reason: OnceLock<Option<Text>>,
    interface: OnceLock<Option<Text>>,
}

impl NetreachPathStatus {
    fn new(status: PathStatus) -> NetreachPathStatus {
        NetreachPathStatus { status, json: OnceLock::new(), reason: OnceLock::new(), interface: OnceLock::new() }
    }
}

/// Called with the path's status: first at once, on the thread calling
/// `netreach_monitor_watch_path()` (before it returns), then on every change, on the monitor's
/// thread; in order, never concurrently. `status` is valid only during the call. It may call
/// any netreach function except `netreach_monitor_check()` and `netreach_monitor_watch_path()` on
/// the same monitor, including freeing its own path or
/// the monitor.
pub type NetreachPathCallback = Option<unsafe extern "C" fn(status: *const NetreachPathStatus, user_data: *mut c_void)>;

/// A watched path; freed (watching stops) by `netreach_path_free()`.
pub struct NetreachPath {
    path: PathMonitor,
    callback: Option<(Arc<Slot>, PathCallbackId)>,
}

/// Watches the path from `local` to `remote` (IP address strings, IPv4 or IPv6; IPv4-mapped
/// IPv6 counts as IPv4) and, when `callback` is not NULL, calls it with every status. Refused
/// with `NETREACH_STATUS_INVALID_INPUT` and a message naming the problem: a NULL or
/// unparsable address, mixed families, an unspecified, loopback, multicast or broadcast
/// address, a local address no interface owns; also a call from inside a callback of the same
/// monitor (it waits for the monitor's thread, which is running that callback).
///
/// ```c
/// NetreachPath *path;
/// if (netreach_monitor_watch_path(monitor, "192.0.2.10", "198.51.100.1", on_path, NULL, &path) != NETREACH_STATUS_OK)
///     fprintf(stderr, "%s\n", netreach_last_error_message());
/// ```
///
/// # Safety
/// `monitor` NULL or a live monitor; `local`, `remote` NULL or NUL-terminated; `out` NULL
/// (refused) or writable; `callback` NULL or safe to call with `user_data` on another thread.
#[no_mangle]
pub unsafe extern "C" fn netreach_monitor_watch_path(
    monitor: *const NetreachMonitor,
    local: *const c_char,
    remote: *const c_char,
    callback: NetreachPathCallback,
    user_data: *mut c_void,
    out: *mut *mut NetreachPath,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let monitor = unsafe { object(monitor, "monitor") }?;
        let address = |p, what: &str| -> Result<IpAddr, Failure> {
            // SAFETY: as documented for the caller.
            let s = unsafe { text(p, what) }?;
            s.parse().map_err(|_| Failure::invalid(format!("{what} '{s}' is not an IP address")))
        };
        let (local, remote) = (address(local, "local")?, address(remote, "remote")?);
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        let core = &monitor.core;
        if crate::slot::inside(core.key()) {
            return Err(Failure::invalid(
                "netreach_monitor_watch_path called from inside a callback of the same monitor (it would wait for itself)",
            ));
        }
        let path = core.monitor().watch_path(local, remote)?;
        let callback = callback.map(|callback| {
            let slot = Arc::new(Slot::new(core.key()));
            core.adopt(&slot);
            let user_data = UserData(user_data);
            let in_callback = slot.clone();
            let id = path.on_change(move |status| {
                let user_data = user_data;
                in_callback.run(|| {
                    let wrapped = NetreachPathStatus::new(status.clone());
                    // SAFETY: the caller promised `callback` may be called with `user_data`
                    // on this thread; `wrapped` outlives the call.
                    unsafe { callback(&wrapped, user_data.0) };
                });
            });
            (slot, id)
        });
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { put(out, "out", Box::into_raw(Box::new(NetreachPath { path, callback }))) }
    })
}

/// Stops watching and frees (NULL is allowed and does nothing). After it returns the
/// callback is never called again and no call of it runs on another thread. Safe from inside
/// its own callback and after the monitor was freed.
///
/// ```c
/// netreach_path_free(path);
/// ```
///
/// # Safety
/// `path` NULL or a path not yet freed.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_free(path: *mut NetreachPath) {
    if path.is_null() {
        return;
    }
    // SAFETY: made by `Box::into_raw` in `netreach_monitor_watch_path`, freed once.
    let owned = unsafe { Box::from_raw(path) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some((slot, id)) = &owned.callback {
            slot.kill();
            owned.path.remove_callback(*id);
        }
        drop(owned);
    }));
}

/// The path's current status, stored in `*out`; free it with `netreach_path_status_free()`.
///
/// ```c
/// NetreachPathStatus *status;
/// if (netreach_path_status(path, &status) == NETREACH_STATUS_OK) {
///     printf("%s\n", netreach_path_status_reachable(status) ? "up" : netreach_path_status_reason(status));
///     netreach_path_status_free(status);
/// }
/// ```
///
/// # Safety
/// `path` NULL or a live path; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status(
    path: *const NetreachPath,
    out: *mut *mut NetreachPathStatus,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let path = unsafe { object(path, "path") }?;
        if out.is_null() {
            return Err(Failure::invalid("out is NULL"));
        }
        let boxed = Box::into_raw(Box::new(NetreachPathStatus::new(path.path.status())));
        // SAFETY: checked not NULL; the caller promises it is writable.
        unsafe { out.write(boxed) };
        Ok(())
    })
}

/// Frees a status made by `netreach_path_status()` (NULL does nothing). Never pass the one a
/// callback received.
///
/// ```c
/// netreach_path_status_free(status);
/// ```
///
/// # Safety
/// `status` NULL or a status from `netreach_path_status()` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status_free(status: *mut NetreachPathStatus) {
    if !status.is_null() {
        // SAFETY: made by `Box::into_raw` in `netreach_path_status`, freed once.
        let owned = unsafe { Box::from_raw(status) };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(owned)));
    }
}

/// 1 when the path works as far as this machine can tell, 0 when not (or for NULL).
///
/// ```c
/// if (!netreach_path_status_reachable(status)) reconnect();
/// ```
///
/// # Safety
/// `status` NULL or a live status.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status_reachable(status: *const NetreachPathStatus) -> c_int {
    guard_value(0, || {
        // SAFETY: as documented for the caller.
        Ok(c_int::from(unsafe { object(status, "status") }?.status.is_reachable()))
    })
}

/// Why the path is unreachable, as a code (`"no_carrier"`, `"no_route"`, ... as in
/// `netreach check --json`), or NULL when it is reachable. Owned by `status`.
///
/// ```c
/// const char *why = netreach_path_status_reason(status);
/// if (why) printf("path down: %s\n", why);
/// ```
///
/// # Safety
/// `status` NULL or a live status.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status_reason(status: *const NetreachPathStatus) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: as documented for the caller.
        let status = unsafe { object(status, "status") }?;
        let reason = status.reason.get_or_init(|| {
            let value = serde_json::to_value(&status.status).ok()?;
            value.get("reason")?.as_str().map(Text::new)
        });
        // SAFETY: a NULL length pointer is allowed.
        Ok(reason.as_ref().map_or(std::ptr::null(), |t| unsafe { t.give(std::ptr::null_mut()) }))
    })
}

/// The interface owning the local address (exact kernel name: may hold any bytes; `len`,
/// when not NULL, receives its length), or NULL when no interface owns it. Owned by `status`.
///
/// ```c
/// const char *via = netreach_path_status_interface(status, NULL);
/// ```
///
/// # Safety
/// `status` NULL or a live status; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status_interface(
    status: *const NetreachPathStatus,
    len: *mut usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: as documented for the caller.
        let status = unsafe { object(status, "status") }?;
        let name = status.interface.get_or_init(|| status.status.interface().map(Text::new));
        // SAFETY: `len` is NULL or writable, as documented.
        Ok(name.as_ref().map_or(std::ptr::null(), |t| unsafe { t.give(len) }))
    })
}

/// The status as JSON (the shape of `netreach check --json`); `len` may be NULL. Owned by
/// `status`; NULL only for a NULL status.
///
/// ```c
/// puts(netreach_path_status_json(status, NULL));
/// ```
///
/// # Safety
/// `status` NULL or a live status; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_path_status_json(
    status: *const NetreachPathStatus,
    len: *mut usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: as documented for the caller.
        let status = unsafe { object(status, "status") }?;
        let json = status.json.get_or_init(|| Text::new(&serde_json::to_string(&status.status).unwrap_or_default()));
        // SAFETY: `len` is NULL or writable, as documented.
        Ok(unsafe { json.give(len) })
    })
}
