//! The recovery path of the kernel source: a socket that fails is reported, reopened after a
//! back-off that doubles while reopening fails, and the state is re-read with a resync
//! notice; a wake-up during the back-off is answered at once. Real sockets in this process's
//! own namespace (no root needed, nothing changed); only the failures are injected (see the
//! parent module for why).

use std::time::Instant;

use super::{OPENS, RECEIVE};
use crate::sys::linux::recover::BACKOFF_FIRST;
use crate::sys::linux::{Input, Kernel};
use crate::sys::KernelConfig;

/// The next input that is not a quiet re-read of the start-up state.
fn next(kernel: &mut Kernel) -> Input {
    loop {
        match kernel.next().expect("the source goes on") {
            Input::Reread { resync: None, .. } => continue,
            input => return input,
        }
    }
}

fn fault(input: Input) -> String {
    match input {
        Input::Fault(message) => message,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn a_failed_socket_is_reopened_with_backoff_then_resynced_and_wakes_are_answered_meanwhile() {
    let (mut kernel, _) = Kernel::open(&KernelConfig::default()).expect("netlink opens");
    RECEIVE.set(Some(libc::EIO));
    OPENS.set(2);
    kernel.budget = 1; // as if the event socket were readable
    let failed = Instant::now();
    let first = fault(next(&mut kernel));
    assert!(first.starts_with("netlink socket failed (") && first.ends_with("); reopening"), "{first}");

    // Two failed attempts, each announced with the next, doubled, wait.
    let second = fault(next(&mut kernel));
    assert!(second.contains("(EMFILE") || second.contains("Too many open files"), "{second}");
    assert!(second.ends_with(&format!("retrying in {:?}", BACKOFF_FIRST * 2)), "{second}");
    assert!(failed.elapsed() >= BACKOFF_FIRST, "the first attempt waited its back-off");
    let third = fault(next(&mut kernel));
    assert!(third.ends_with(&format!("retrying in {:?}", BACKOFF_FIRST * 4)), "{third}");
    assert!(failed.elapsed() >= BACKOFF_FIRST * 3, "the second attempt waited twice as long");

    // A wake-up in the middle of the back-off is answered before the next attempt: after an
    // attempt the re-read would come first, and the wake-up only with the next wait.
    kernel.waker().wake();
    assert!(matches!(next(&mut kernel), Input::Woken));

    // The third attempt succeeds: a full re-read that says why.
    match next(&mut kernel) {
        Input::Reread { state, resync: Some(reason) } => {
            assert!(reason.starts_with("netlink sockets reopened after a failure ("), "{reason}");
            assert!(state.interface_by_name("lo").is_some(), "the re-read is a real reading: {state:?}");
        }
        other => panic!("expected the resync, got {other:?}"),
    }
    assert!(failed.elapsed() >= BACKOFF_FIRST * 7, "the last back-off was waited in full");
    assert!(kernel.broken.is_none());
}
