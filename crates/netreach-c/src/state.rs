//! `NetreachState`: one reading of the network, with typed getters for what most programs
//! need and the full state as JSON for everything else.

use std::ffi::{c_char, c_int};
use std::sync::{Arc, OnceLock};

use netreach::{Family, FamilyReachability, Snapshot};

use crate::args::{object, put, Text};
use crate::error::{guard, guard_value, Failure, NetreachStatus};
use crate::vocab::{parse_family, NetreachFamily, NetreachLevel, NetreachSource, NetreachTransport, NetreachTristate};

/// One reading of the network (immutable). Made by `netreach_monitor_state()`,
/// `netreach_monitor_check()` or `netreach_event_state()`; freed by `netreach_state_free()`.
/// Independent of the monitor (it may outlive it) and safe to read from any thread.
pub struct NetreachState {
    state: Arc<Snapshot>,
    /// Built on first ask and kept, so the pointers handed out live as long as the state.
    json: OnceLock<Text>,
    reasons: OnceLock<[Option<Text>; 3]>,
    portal_url: OnceLock<Option<Text>>,
}

impl NetreachState {
    /// Wraps a reading for C (ownership goes to the caller).
    pub(crate) fn boxed(state: Arc<Snapshot>) -> *mut NetreachState {
        let wrapped =
            NetreachState { state, json: OnceLock::new(), reasons: OnceLock::new(), portal_url: OnceLock::new() };
        Box::into_raw(Box::new(wrapped))
    }

    fn json(&self) -> &Text {
        self.json.get_or_init(|| Text::new(&serde_json::to_string(&*self.state).unwrap_or_default()))
    }

    /// The typed reason of each level, read from the state's JSON (`reasons.ipv4.code`, ...)
    /// so that reasons netreach adds need no change of this ABI. The overall level's reason
    /// is that of the family that gives it (the better one; IPv4 when they are equal).
    fn reasons(&self) -> &[Option<Text>; 3] {
        self.reasons.get_or_init(|| {
            let value = serde_json::to_value(&*self.state).unwrap_or_default();
            let code = |family: &str| value.get("reasons").and_then(|r| r.get(family)).and_then(reason_code);
            let (ipv4, ipv6) = (code("ipv4"), code("ipv6"));
            let r = &self.state.reachability;
            let overall = if r.ipv4.reachability >= r.ipv6.reachability { ipv4 } else { ipv6 };
            [overall.map(Text::new), ipv4.map(Text::new), ipv6.map(Text::new)]
        })
    }

    fn entry(&self, which: NetreachFamily) -> FamilyReachability {
        let r = &self.state.reachability;
        match which {
            NetreachFamily::Overall => FamilyReachability { reachability: r.overall, source: r.source },
            NetreachFamily::Ipv4 => r.family(Family::Ipv4),
            NetreachFamily::Ipv6 => r.family(Family::Ipv6),
        }
    }
}

/// The code of one family's reason in netreach's JSON: a string, or an object with a `code`.
fn reason_code(reason: &serde_json::Value) -> Option<&str> {
    reason.as_str().or_else(|| reason.get("code")?.as_str())
}

/// The level of `family` (`NETREACH_FAMILY_OVERALL`, `_IPV4`, `_IPV6`) and the source that
/// decided it. `level` and `source` may each be NULL when not wanted.
///
/// ```c
/// NetreachLevel level; NetreachSource source;
/// if (netreach_state_level(state, NETREACH_FAMILY_IPV6, &level, &source) == NETREACH_STATUS_OK)
///     printf("ipv6: %s (%s)\n", netreach_level_name(level), netreach_source_name(source));
/// ```
///
/// # Safety
/// `state` must be NULL or a live state; `level` and `source` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_level(
    state: *const NetreachState,
    family: c_int,
    level: *mut NetreachLevel,
    source: *mut NetreachSource,
) -> NetreachStatus {
    guard(|| {
        // SAFETY: the caller passes NULL or a live state.
        let state = unsafe { object(state, "state") }?;
        let entry = state.entry(parse_family(family)?);
        if !level.is_null() {
            // SAFETY: not NULL; the caller promises it is writable.
            unsafe { put(level, "level", entry.reachability.into()) }?;
        }
        if !source.is_null() {
            // SAFETY: not NULL; the caller promises it is writable.
            unsafe { put(source, "source", entry.source.into()) }?;
        }
        Ok(())
    })
}

/// Why `family`'s level is what it is, as a code string (snake_case, as in netreach's JSON),
/// or NULL when the state carries no reason for it (a level that needs none, or a netreach
/// that gives none). Owned by `state`. NULL `state` or a bad family also give NULL (and set the
/// last error).
///
/// ```c
/// const char *why = netreach_state_reason(state, NETREACH_FAMILY_IPV4);
/// if (why) printf("ipv4: %s\n", why);
/// ```
///
/// # Safety
/// `state` must be NULL or a live state.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_reason(state: *const NetreachState, family: c_int) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live state.
        let state = unsafe { object(state, "state") }?;
        let index = match parse_family(family)? {
            NetreachFamily::Overall => 0,
            NetreachFamily::Ipv4 => 1,
            NetreachFamily::Ipv6 => 2,
        };
        // SAFETY: a NULL length pointer is allowed.
        Ok(state.reasons()[index].as_ref().map_or(std::ptr::null(), |t| unsafe { t.give(std::ptr::null_mut()) }))
    })
}

/// The transport medium (`NETREACH_TRANSPORT_UNKNOWN` when not known, or for a NULL state).
///
/// ```c
/// if (netreach_state_transport(state) == NETREACH_TRANSPORT_CELLULAR) defer_big_downloads();
/// ```
///
/// # Safety
/// `state` must be NULL or a live state.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_transport(state: *const NetreachState) -> NetreachTransport {
    guard_value(NetreachTransport::Unknown, || {
        // SAFETY: the caller passes NULL or a live state.
        Ok(unsafe { object(state, "state") }?.state.details.transport.into())
    })
}

/// Whether the connection is metered (`NETREACH_TRISTATE_UNKNOWN` when not known, or for a
/// NULL state).
///
/// ```c
/// if (netreach_state_metered(state) == NETREACH_TRISTATE_YES) defer_big_downloads();
/// ```
///
/// # Safety
/// `state` must be NULL or a live state.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_metered(state: *const NetreachState) -> NetreachTristate {
    guard_value(NetreachTristate::Unknown, || {
        // SAFETY: the caller passes NULL or a live state.
        Ok(unsafe { object(state, "state") }?.state.details.metered.into())
    })
}

/// Whether a captive portal intercepts traffic (`NETREACH_TRISTATE_UNKNOWN` when not known,
/// or for a NULL state).
///
/// ```c
/// if (netreach_state_captive_portal(state) == NETREACH_TRISTATE_YES) show_login();
/// ```
///
/// # Safety
/// `state` must be NULL or a live state.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_captive_portal(state: *const NetreachState) -> NetreachTristate {
    guard_value(NetreachTristate::Unknown, || {
        // SAFETY: the caller passes NULL or a live state.
        Ok(unsafe { object(state, "state") }?.state.details.captive_portal.into())
    })
}

/// The captive portal's URL, exactly as the network sent it (it may hold any bytes, even a
/// NUL: `len`, when not NULL, receives the exact length), or NULL when none is known. Owned by
/// `state`. Outside text: escape it before showing it in a terminal.
///
/// ```c
/// size_t len;
/// const char *url = netreach_state_portal_url(state, &len);
/// if (url) open_browser(url, len);
/// ```
///
/// # Safety
/// `state` must be NULL or a live state; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_portal_url(state: *const NetreachState, len: *mut usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live state.
        let state = unsafe { object(state, "state") }?;
        let url = state.portal_url.get_or_init(|| state.state.details.portal_url.as_deref().map(Text::new));
        // SAFETY: the caller passes NULL or a writable length.
        Ok(url.as_ref().map_or(std::ptr::null(), |t| unsafe { t.give(len) }))
    })
}

/// The whole state as one JSON object (UTF-8), the shape of `netreach status --json`:
/// interfaces, addresses, default routes, verdicts and everything the getters give. Strings
/// from outside are exact (JSON-escaped). Owned by `state`; `len` (when not NULL) receives the
/// length. NULL only for a NULL `state`.
///
/// ```c
/// puts(netreach_state_json(state, NULL));
/// ```
///
/// # Safety
/// `state` must be NULL or a live state; `len` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_json(state: *const NetreachState, len: *mut usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live state.
        let state = unsafe { object(state, "state") }?;
        // SAFETY: the caller passes NULL or a writable length.
        Ok(unsafe { state.json().give(len) })
    })
}

/// Frees a state (NULL is allowed and does nothing). Pointers it handed out die with it.
///
/// ```c
/// netreach_state_free(state);
/// ```
///
/// # Safety
/// `state` must be NULL or a state not yet freed.
#[no_mangle]
pub unsafe extern "C" fn netreach_state_free(state: *mut NetreachState) {
    if !state.is_null() {
        // SAFETY: made by `Box::into_raw` in `boxed`, and the caller frees it once.
        let owned = unsafe { Box::from_raw(state) };
        // Drop cannot panic here (plain data), but nothing may unwind into C.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(owned)));
    }
}

/// Wraps a state for an out-pointer (NULL is refused).
///
/// # Safety
/// `out` NULL or writable.
pub(crate) unsafe fn give(state: Arc<Snapshot>, out: *mut *mut NetreachState) -> Result<(), Failure> {
    let boxed = NetreachState::boxed(state);
    // SAFETY: `out` is NULL (refused) or writable; on failure the box is reclaimed below.
    if let Err(failure) = unsafe { put(out, "out", boxed) } {
        // SAFETY: just made by `boxed` and never handed out.
        drop(unsafe { Box::from_raw(boxed) });
        return Err(failure);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reason_code;
    use serde_json::json;

    #[test]
    fn reason_codes_are_read_in_either_shape() {
        assert_eq!(reason_code(&json!("no_route")), Some("no_route"));
        assert_eq!(reason_code(&json!({"code": "no_carrier", "route": {"interface": "eth0"}})), Some("no_carrier"));
        assert_eq!(reason_code(&json!({"reachability": "online"})), None);
        assert_eq!(reason_code(&json!(7)), None);
    }
}
