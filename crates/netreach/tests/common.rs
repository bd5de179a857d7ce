//! Shared helpers for the kernel tests: a monitor on a test namespace and bounded waits for
//! events.
#![cfg(target_os = "linux")] // network namespaces
#![allow(dead_code)] // each test file uses its own subset

use std::time::Duration;

use netreach::{Event, EventKind, Level, Monitor, PathEvent, PathEventKind, PathStatus, ReachabilityOf, Subscription};
use testns::kit::{until, TIMEOUT};
use testns::NetNs;

/// Bound for one kernel change to reach a subscriber (the kit's).
pub const EVENT_TIMEOUT: Duration = TIMEOUT;

/// A monitor on `ns`, subscribed, with the baseline already taken.
pub fn watch(ns: &NetNs) -> (Monitor, Subscription) {
    let monitor = Monitor::builder().netns(ns.name()).build().expect("monitor on test namespace");
    let sub = monitor.subscribe();
    let first = sub.recv_timeout(EVENT_TIMEOUT).expect("baseline");
    assert!(matches!(first.kind, EventKind::Baseline { .. }), "first event must be the baseline: {first:?}");
    (monitor, sub)
}

/// Receives until an event satisfies `want`; returns it and the events before it. Panics
/// with everything seen if it does not come within [`EVENT_TIMEOUT`].
pub fn expect(sub: &Subscription, what: &str, want: impl Fn(&EventKind) -> bool) -> (Event, Vec<EventKind>) {
    let (event, before) = until(EVENT_TIMEOUT, what, |left| sub.recv_timeout(left), |e: &Event| want(&e.kind));
    (event, before.into_iter().map(|e| e.kind).collect())
}

/// Waits for a reachability change of `family` to `level`.
pub fn expect_level(sub: &Subscription, family: ReachabilityOf, level: Level) -> Vec<EventKind> {
    let what = format!("{family:?} reachability -> {level}");
    expect(
        sub,
        &what,
        |k| matches!(k, EventKind::ReachabilityChanged { family: f, new, .. } if *f == family && *new == level),
    )
    .1
}

/// The next event, which must come within the timeout.
pub fn next(sub: &Subscription) -> EventKind {
    sub.recv_timeout(EVENT_TIMEOUT).expect("an event").kind
}

/// A namespace with a veth pair `va`/`vb`, both up, and IPv6 DAD off on `va` so addresses
/// are usable at once (tests that want DAD turn it back on).
pub fn ns_with_veth(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns
}

/// The next status of a path (the first is its current one).
pub fn next_status(sub: &Subscription<PathEvent>) -> PathStatus {
    match sub.recv_timeout(EVENT_TIMEOUT).expect("a path event").kind {
        PathEventKind::Changed { status } => status,
        other => panic!("expected a path status, got {other:?}"),
    }
}

/// Waits for the path's status to satisfy `want` (bounded), returning it.
pub fn status_until(sub: &Subscription<PathEvent>, what: &str, want: impl Fn(&PathStatus) -> bool) -> PathStatus {
    let recv = |left| {
        sub.recv_timeout(left).map(|e| match e.kind {
            PathEventKind::Changed { status } => status,
            other => panic!("expected a path status, got {other:?}"),
        })
    };
    until(EVENT_TIMEOUT, what, recv, want).0
}

/// The kernel's answer to `ip route get ARGS`: `Some("lo")` for a local route, the `dev` it
/// leaves through otherwise, `None` when it refuses (no route, unreachable).
pub fn kernel_route(ns: &NetNs, args: &str) -> Option<String> {
    let out = ns.try_ip(&format!("route get {args}")).ok()?;
    if out.starts_with("local ") {
        return Some("lo".into());
    }
    let mut words = out.split_whitespace();
    words.by_ref().find(|w| *w == "dev")?;
    words.next().map(str::to_owned)
}
