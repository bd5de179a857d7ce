//! Status codes, the thread-local last error, and the guard that keeps panics on this side.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use netreach::{Error, ErrorKind};

/// What a call returned. `NETREACH_STATUS_OK` is 0; every other value is an error whose
/// message `netreach_last_error_message()` gives on the same thread. New codes may be added:
/// treat an unknown non-zero value as a generic error.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachStatus {
    /// Success.
    Ok = 0,
    /// An argument was wrong: a NULL pointer, a bad address, URL, enum value or namespace
    /// name, mixed address families, a local address no interface owns, a string that is
    /// not UTF-8.
    InvalidInput = 1,
    /// Something named does not exist (e.g. no such network namespace).
    NotFound = 2,
    /// Not allowed (e.g. entering a namespace without CAP_SYS_ADMIN).
    PermissionDenied = 3,
    /// Not available on this platform.
    Unsupported = 4,
    /// A source that was asked for (NetworkManager) is not running or not answering.
    SourceUnavailable = 5,
    /// The monitor has stopped (e.g. its namespace was deleted).
    Stopped = 6,
    /// An operating-system I/O error.
    Io = 7,
    /// A bug inside netreach (a Rust panic, caught at the boundary). Please report it.
    Internal = 8,
}

/// A status and its message, as the functions of this crate return them internally.
pub(crate) struct Failure {
    pub(crate) status: NetreachStatus,
    pub(crate) message: String,
}

impl Failure {
    /// An invalid argument, with a message naming it.
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure { status: NetreachStatus::InvalidInput, message: message.into() }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let status = match error.kind() {
            ErrorKind::InvalidInput => NetreachStatus::InvalidInput,
            ErrorKind::NotFound => NetreachStatus::NotFound,
            ErrorKind::PermissionDenied => NetreachStatus::PermissionDenied,
            ErrorKind::Unsupported => NetreachStatus::Unsupported,
            ErrorKind::SourceUnavailable => NetreachStatus::SourceUnavailable,
            ErrorKind::Stopped => NetreachStatus::Stopped,
            _ => NetreachStatus::Io,
        };
        Failure { status, message: error.to_string() }
    }
}

thread_local! {
    /// The last failure on this thread: its status and message (NUL-terminated; an interior
    /// NUL from outside text is written `\0` so the C string is whole).
    static LAST: RefCell<(NetreachStatus, CString)> = RefCell::new((NetreachStatus::Ok, CString::default()));
}

/// Records a failure as this thread's last error and returns its status.
pub(crate) fn record(failure: Failure) -> NetreachStatus {
    let message = CString::new(failure.message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`: a call during thread teardown has nowhere to keep a message; the status
    // still says what happened.
    let _ = LAST.try_with(|last| *last.borrow_mut() = (failure.status, message));
    failure.status
}

/// Runs `body` with panics caught: its failure (or a caught panic, as `Internal`) is
/// recorded as the thread's last error and its status returned.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> NetreachStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => NetreachStatus::Ok,
        Ok(Err(failure)) => record(failure),
        Err(_) => record(Failure { status: NetreachStatus::Internal, message: "internal error (a panic)".into() }),
    }
}

/// Runs a getter with panics caught: on failure (or a panic) records it and returns
/// `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Result<T, Failure>) -> T {
    let mut out = None;
    guard(|| {
        out = Some(body()?);
        Ok(())
    });
    out.unwrap_or(fallback)
}

/// The status of the last failed call on the calling thread (`NETREACH_STATUS_OK` if none
/// failed yet). A successful call does not reset it (like `errno`).
///
/// ```c
/// if (netreach_monitor_new(NULL, &monitor) != NETREACH_STATUS_OK)
///     fprintf(stderr, "%d: %s\n", netreach_last_error_code(), netreach_last_error_message());
/// ```
#[no_mangle]
pub extern "C" fn netreach_last_error_code() -> NetreachStatus {
    LAST.try_with(|last| last.borrow().0).unwrap_or(NetreachStatus::Ok)
}

/// The message of the last failed call on the calling thread, UTF-8, never NULL (empty if
/// none failed yet). It names the problem, e.g. `network namespace /run/netns/x: not found`.
/// It may quote outside text (interface names, URLs): escape it before writing it to a
/// terminal. Valid until the next failing call on this thread; copy it to keep it.
///
/// ```c
/// fprintf(stderr, "netreach: %s\n", netreach_last_error_message());
/// ```
#[no_mangle]
pub extern "C" fn netreach_last_error_message() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    // The thread-local outlives every call on its thread; the pointer stays valid until the
    // next `record` on this thread replaces the CString, as documented.
    LAST.try_with(|last| last.borrow().1.as_ptr()).unwrap_or(EMPTY.as_ptr().cast())
}
