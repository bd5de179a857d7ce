//! The NetworkManager backend when NM or the bus stops answering (SIGSTOP, continued by a guard
//! even when a test fails), and NM's verdicts through a device disconnect, against the real
//! daemon on a real dbus-daemon (testns::nm).
#![cfg(target_os = "linux")] // NetworkManager, network namespaces

use std::time::{Duration, Instant};

use netreach::{BackendKind, Event, EventKind, Level, Monitor, MonitorBuilder, Source, Subscription, Verdict};
use testns::nm::NmSandbox;

/// Bound for one change to show on a loaded machine; a correct run takes milliseconds (or one
/// 2 s call bound where NM is frozen).
const TIMEOUT: Duration = Duration::from_secs(20);
/// Bound for a call that used to never return: a few 2 s call bounds, far below "never".
const BOUNDED: Duration = Duration::from_secs(10);

fn builder(sandbox: &NmSandbox) -> MonitorBuilder {
    Monitor::builder()
        .netns_path(sandbox.netns_path())
        .backend(BackendKind::NetworkManager)
        .system_bus_address(sandbox.bus_address())
}

fn nm_verdict(monitor: &Monitor) -> Option<Verdict> {
    monitor.snapshot().verdicts.iter().find(|v| v.source == Source::NetworkManager).cloned()
}

/// Receives events until `want` holds for one; returns all seen. Panics after [`TIMEOUT`].
fn until(sub: &Subscription, what: &str, want: impl Fn(&Event) -> bool) -> Vec<Event> {
    let (event, mut seen) = testns::kit::until(TIMEOUT, what, |left| sub.recv_timeout(left), want);
    seen.push(event);
    seen
}

#[test]
fn start_is_bounded_when_networkmanager_or_the_bus_is_frozen() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    for (who, says) in [("nm", "NetworkManager did not answer within 2 s"), ("bus", "the system bus did not answer")] {
        let _frozen = sandbox.freeze(who);
        let start = Instant::now();
        let err = builder(&sandbox).build().expect_err("NetworkManager backend with a frozen daemon");
        assert!(start.elapsed() < BOUNDED, "{who}: building took {:?}", start.elapsed());
        assert!(err.to_string().contains(says), "{who}: {err}");
    }
}

#[test]
fn frozen_networkmanager_is_withdrawn_reported_and_resumed() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let monitor = builder(&sandbox).build().expect("monitor");
    let sub = monitor.subscribe();
    assert!(nm_verdict(&monitor).is_some_and(|v| v.ipv4 == Some(Level::Online)));
    {
        let _frozen = sandbox.freeze("nm");
        // check() asks NM (Ping): bounded, then NM's stale word is withdrawn and reported.
        let start = Instant::now();
        let state = monitor.check().expect("check with NM frozen");
        assert!(start.elapsed() < BOUNDED, "check() took {:?}", start.elapsed());
        assert_eq!(state.reachability.source, Source::Kernel, "{state:#?}");
        let seen: Vec<Event> = std::iter::from_fn(|| sub.recv_timeout(Duration::ZERO).ok()).collect();
        let reported = |e: &Event| {
            matches!(&e.kind, EventKind::Error { message, fatal: false }
                if message.contains("NetworkManager did not answer within 2 s"))
        };
        assert_eq!(seen.iter().filter(|e| reported(e)).count(), 1, "{seen:#?}");
        // Later checks answer at once with what is known, and report nothing new.
        let start = Instant::now();
        monitor.check().expect("check");
        assert!(start.elapsed() < BOUNDED, "second check() took {:?}", start.elapsed());
    }
    // Continued: NM answers the pending re-read and its verdict is back, unasked.
    until(&sub, "NM's verdict back", |e| {
        matches!(&e.kind, EventKind::VerdictChanged { verdict }
            if verdict.source == Source::NetworkManager && verdict.ipv4 == Some(Level::Online))
    });
    assert_eq!(monitor.snapshot().reachability.source, Source::NetworkManager);
}

#[test]
fn disconnect_never_says_online_for_a_family_networkmanager_has_no_connectivity_for() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let monitor = builder(&sandbox).build().expect("monitor");
    let sub = monitor.subscribe();
    for round in 0..3 {
        // IPv6 is off on nm0: NM never has IPv6 connectivity here.
        let v = nm_verdict(&monitor).expect("NM's verdict");
        assert_eq!((v.ipv4, v.ipv6), (Some(Level::Online), Some(Level::Disconnected)), "round {round}");
        // Events of the previous reconnect may still be queued: only later ones count.
        let since = std::time::SystemTime::now();
        sandbox.nmcli(&["device", "disconnect", "nm0"]);
        let mut seen = until(&sub, "NM's disconnected verdict", |e| {
            matches!(&e.kind, EventKind::VerdictChanged { verdict }
                if verdict.source == Source::NetworkManager && verdict.ipv4 == Some(Level::Disconnected))
        });
        seen.retain(|e| e.timestamp >= since);
        let verdicts: Vec<&Verdict> = seen
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::VerdictChanged { verdict } if verdict.source == Source::NetworkManager => Some(verdict),
                _ => None,
            })
            .collect();
        assert!(verdicts.iter().all(|v| v.ipv6 != Some(Level::Online)), "round {round}: {verdicts:#?}");
        let raised = seen.iter().any(|e| matches!(&e.kind, EventKind::ReachabilityChanged { new: Level::Online, .. }));
        assert!(!raised, "round {round}: online during a disconnect: {seen:#?}");
        // NM's word lowers the levels at once: by its disconnected verdict the state says so.
        assert_eq!(monitor.snapshot().reachability.overall, Level::Disconnected, "round {round}");
        sandbox.nmcli(&["connection", "up", "sandbox-nm0"]);
        until(&sub, "NM online again", |_| {
            nm_verdict(&monitor).is_some_and(|v| v.ipv4 == Some(Level::Online))
                && monitor.snapshot().reachability.overall == Level::Online
        });
    }
}
