//! `NetreachEvent`: what a subscription's callback receives, valid during the call.

use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

use netreach::{Event, EventKind};

use crate::args::{clear, object, put, Text};
use crate::error::{guard, guard_value, Failure, NetreachStatus};
use crate::state::{give, NetreachState};
use crate::vocab::{NetreachFamily, NetreachLevel, NetreachSource};

/// What happened. New kinds may be added: treat an unknown value like
/// `NETREACH_EVENT_TYPE_OTHER` (its JSON says what it is).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachEventType {
    /// The whole current state; first, and again after `NETREACH_EVENT_TYPE_LAGGED`.
    Baseline = 0,
    /// An interface appeared.
    InterfaceAdded = 1,
    /// An interface disappeared.
    InterfaceRemoved = 2,
    /// Link properties changed (up/down, carrier, name, ...).
    InterfaceChanged = 3,
    /// An address was added.
    AddressAdded = 4,
    /// An address was removed.
    AddressRemoved = 5,
    /// An address's flags changed.
    AddressChanged = 6,
    /// A default route appeared.
    DefaultRouteAdded = 7,
    /// A default route disappeared.
    DefaultRouteRemoved = 8,
    /// A reachability level changed: see `netreach_event_reachability()`.
    ReachabilityChanged = 9,
    /// Transport, metering or captive portal changed.
    DetailsChanged = 10,
    /// A source above the kernel gave a new verdict.
    VerdictChanged = 11,
    /// The monitor re-read the whole state (after an overrun).
    Resynced = 12,
    /// This subscriber fell behind; a fresh baseline follows.
    Lagged = 13,
    /// Something went wrong: see `netreach_event_error()`.
    Error = 14,
    /// A kind newer than this header.
    Other = 99,
}

/// One event, valid only during the callback that received it.
pub struct NetreachEvent {
    /// The library's event; it outlives the callback this wrapper is made for.
    event: *const Event,
    json: OnceLock<Text>,
    message: OnceLock<Text>,
}

impl NetreachEvent {
    /// Wraps an event for the duration of one callback.
    pub(crate) fn new(event: &Event) -> NetreachEvent {
        NetreachEvent { event, json: OnceLock::new(), message: OnceLock::new() }
    }

    fn event(&self) -> &Event {
        // SAFETY: a wrapper lives on the stack of the callback trampoline, inside the borrow of
        // the event it was made from; C may use it only during the callback (header).
        unsafe { &*self.event }
    }
}

/// The event behind a C pointer.
///
/// # Safety
/// `event` NULL or an event inside its callback.
unsafe fn unwrap_event<'a>(event: *const NetreachEvent) -> Result<&'a Event, Failure> {
    // SAFETY: as documented.
    Ok(unsafe { object(event, "event") }?.event())
}

/// The kind of event (`NETREACH_EVENT_TYPE_OTHER` for a NULL event).
///
/// ```c
/// if (netreach_event_type(event) == NETREACH_EVENT_TYPE_BASELINE) redraw_all();
/// ```
///
/// # Safety
/// `event` NULL or the event of the running callback.
#[no_mangle]
pub unsafe extern "C" fn netreach_event_type(event: *const NetreachEvent) -> NetreachEventType {
    guard_value(NetreachEventType::Other, || {
        // SAFETY: as documented for the caller.
        Ok(match &unsafe { unwrap_event(event) }?.kind {
            EventKind::Baseline { .. } => NetreachEventType::Baseline,
            EventKind::InterfaceAdded { .. } => NetreachEventType::InterfaceAdded,
            EventKind::InterfaceRemoved { .. } => NetreachEventType::InterfaceRemoved,
            EventKind::InterfaceChanged { .. } => NetreachEventType::InterfaceChanged,
            EventKind::AddressAdded { .. } => NetreachEventType::AddressAdded,
            EventKind::AddressRemoved { .. } => NetreachEventType::AddressRemoved,
            EventKind::AddressChanged { .. } => NetreachEventType::AddressChanged,
            EventKind::DefaultRouteAdded { .. } => NetreachEventType::DefaultRouteAdded,
            EventKind::DefaultRouteRemoved { .. } => NetreachEventType::DefaultRouteRemoved,
            EventKind::ReachabilityChanged { .. } => NetreachEventType::ReachabilityChanged,
            EventKind::DetailsChanged { .. } => NetreachEventType::DetailsChanged,
            EventKind::VerdictChanged { .. } => NetreachEventType::VerdictChanged,
            EventKind::Resynced { .. } => NetreachEventType::Resynced,
            EventKind::Lagged { .. } => NetreachEventType::Lagged,
            EventKind::Error { .. } => NetreachEventType::Error,
            _ => NetreachEventType::Other,
        })
    })
}

/// For a `NETREACH_EVENT_TYPE_REACHABILITY_CHANGED` event: which level changed, from what, to
/// what, decided by whom (each out-pointer may be NULL). Any other event (or NULL) gives
/// `NETREACH_STATUS_INVALID_INPUT`.
///
/// ```c
/// NetreachFamily family; NetreachLevel old_level, new_level; NetreachSource source;
/// if (netreach_event_reachability(event, &family, &old_level, &new_level, &source) == NETREACH_STATUS_OK)
///     printf("%d: %s -> %s\n", family, netreach_level_name(old_level), netreach_level_name(new_level));
/// ```
///
/// # Safety
/// `event` NULL or the event of the running callback; each out-pointer NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_event_reachability(
    event: *const NetreachEvent,
    family: *mut NetreachFamily,
    old_level: *mut NetreachLevel,
    new_level: *mut NetreachLevel,
    source: *mut NetreachSource,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: as documented for the caller.
        let EventKind::ReachabilityChanged { family: of, old, new, source: by, .. } =
            &unsafe { unwrap_event(event) }?.kind
        else {
            return Err(Failure::invalid("not a reachability_changed event"));
        };
        if !family.is_null() {
            // SAFETY: not NULL; writable as documented.
            unsafe { put(family, "family", (*of).into()) }?;
        }
        if !old_level.is_null() {
            // SAFETY: not NULL; writable as documented.
            unsafe { put(old_level, "old_level", (*old).into()) }?;
        }
        if !new_level.is_null() {
            // SAFETY: not NULL; writable as documented.
            unsafe { put(new_level, "new_level", (*new).into()) }?;
        }
        if !source.is_null() {
            // SAFETY: not NULL; writable as documented.
            unsafe { put(source, "source", (*by).into()) }?;
        }
        Ok(())
    })
}

/// For a `NETREACH_EVENT_TYPE_BASELINE` event: the state it carries, stored in `*out` (free it with
/// `netreach_state_free()`; it outlives the callback). For any other event, call
/// `netreach_monitor_state()` instead; this one gives `NETREACH_STATUS_INVALID_INPUT`.
///
/// ```c
/// NetreachState *state;
/// if (netreach_event_state(event, &state) == NETREACH_STATUS_OK) { use(state); netreach_state_free(state); }
/// ```
///
/// # Safety
/// `event` NULL or the event of the running callback; `out` NULL (refused) or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_event_state(
    event: *const NetreachEvent,
    out: *mut *mut NetreachState,
) -> NetreachStatus {
    // SAFETY: as documented for the caller.
    unsafe { clear(out) };
    guard(|| {
        // SAFETY: as documented for the caller.
        let EventKind::Baseline { state } = &unsafe { unwrap_event(event) }?.kind else {
            return Err(Failure::invalid("not a baseline event"));
        };
        // SAFETY: `out` is NULL (refused by `give`) or writable.
        unsafe { give(state.clone(), out) }
    })
}

/// For a `NETREACH_EVENT_TYPE_ERROR` event: its message (outside text possible: escape it for a
/// terminal) and, through `fatal` (may be NULL), 1 when the monitor stopped, else 0. NULL for
/// any other event. Valid during the callback.
///
/// ```c
/// int fatal;
/// const char *message = netreach_event_error(event, &fatal);
/// if (message) fprintf(stderr, "%s%s\n", fatal ? "stopped: " : "", message);
/// ```
///
/// # Safety
/// `event` NULL or the event of the running callback; `fatal` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_event_error(event: *const NetreachEvent, fatal: *mut c_int) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: as documented for the caller.
        let wrapper = unsafe { object(event, "event") }?;
        let EventKind::Error { message, fatal: stopped } = &wrapper.event().kind else { return Ok(std::ptr::null()) };
        if !fatal.is_null() {
            // SAFETY: not NULL; writable as documented.
            unsafe { put(fatal, "fatal", c_int::from(*stopped)) }?;
        }
        // SAFETY: a NULL length pointer is allowed.
        Ok(unsafe { wrapper.message.get_or_init(|| Text::new(message)).give(std::ptr::null_mut()) })
    })
}

/// The event as one JSON object (a line of `netreach watch --json`: `type`, `timestamp`,
/// and the kind's fields), valid during the callback; `len` (may be NULL) receives its length.
/// NULL only for a NULL event.
///
/// ```c
/// puts(netreach_event_json(event, NULL));
/// ```
///
/// # Safety
/// `event` NULL or the event of the running callback; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_event_json(event: *const NetreachEvent, len: *mut usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: as documented for the caller.
        let wrapper = unsafe { object(event, "event") }?;
        let json = wrapper.json.get_or_init(|| Text::new(&serde_json::to_string(wrapper.event()).unwrap_or_default()));
        // SAFETY: `len` is NULL or writable, as documented.
        Ok(unsafe { json.give(len) })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_event_is_refused_without_panic() {
        // SAFETY: NULL is a documented input.
        assert_eq!(unsafe { netreach_event_type(std::ptr::null()) }, NetreachEventType::Other);
        let mut out = std::ptr::null_mut();
        // SAFETY: NULL event, writable out.
        assert_eq!(unsafe { netreach_event_state(std::ptr::null(), &mut out) }, NetreachStatus::InvalidInput);
        assert!(out.is_null());
        // SAFETY: `clear` on a NULL pointer does nothing.
        unsafe { clear::<NetreachState>(std::ptr::null_mut()) };
    }
}
