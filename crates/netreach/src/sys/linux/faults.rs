//! Fault injection for the socket-recovery path, in test builds only.
//!
//! Why injected: no real part here makes an open rtnetlink socket fail with anything but
//! ENOBUFS (an overrun, which a test causes for real and which is recovered from by a re-read,
//! not a reopen), and reopening in the monitor's own namespace does not fail on demand. The
//! recovery itself (reopen, back off, resync) then runs for real against real sockets.
//! Outside tests both functions return `None` and compile to nothing.

use std::io;

#[cfg(test)]
thread_local! {
    /// The errno the next receive on the event socket fails with.
    static RECEIVE: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
    /// How many of the next reopening attempts fail (with EMFILE, as a full descriptor table
    /// would make them).
    static OPENS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The injected failure of this receive, if any.
#[cfg(test)]
pub(super) fn receive_failure() -> Option<io::Error> {
    RECEIVE.take().map(io::Error::from_raw_os_error)
}

/// The injected failure of this reopening attempt, if any.
#[cfg(test)]
pub(super) fn open_failure() -> Option<io::Error> {
    let left = OPENS.get();
    OPENS.set(left.saturating_sub(1));
    (left > 0).then(|| io::Error::from_raw_os_error(libc::EMFILE))
}

#[cfg(not(test))]
#[inline(always)]
pub(super) fn receive_failure() -> Option<io::Error> {
    None
}

#[cfg(not(test))]
#[inline(always)]
pub(super) fn open_failure() -> Option<io::Error> {
    None
}

#[cfg(test)]
#[path = "faults_tests.rs"]
mod tests;
