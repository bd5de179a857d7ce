//! The NetworkManager backend against the real daemon on a real dbus-daemon (testns::nm), with
//! GLib's `GNetworkMonitor` (NM backend, via python3-gi) on the same sandbox as the reference:
//! in every scenario both must reach the same connectivity.
#![cfg(target_os = "linux")] // NetworkManager, network namespaces

use std::time::{Duration, Instant};

use netreach::{BackendKind, Event, EventKind, Level, Monitor, Snapshot, Source, Subscription, Transport};
use testns::nm::{require_networkmanager, GlibMonitor, NmOptions, NmSandbox};
use testns::require_root;

/// Bound for one change to show: NM's own check and (re)activation take well under a second;
/// a loaded CI machine can stall, and a correct run never waits this long.
const TIMEOUT: Duration = Duration::from_secs(20);

fn ready(test: &str) -> bool {
    require_root(test) && require_networkmanager(test)
}

/// A monitor of NM's namespace using the sandbox's bus, subscribed past its baseline.
fn monitor(sandbox: &NmSandbox, settle: Option<Duration>) -> (Monitor, Subscription) {
    let mut builder = Monitor::builder()
        .netns_path(sandbox.netns_path())
        .backend(BackendKind::NetworkManager)
        .system_bus_address(sandbox.bus_address());
    if let Some(window) = settle {
        builder = builder.settle(window);
    }
    let monitor = builder.build().expect("monitor with the NetworkManager backend");
    let sub = monitor.subscribe();
    let first = sub.recv_timeout(TIMEOUT).expect("baseline");
    assert!(matches!(first.kind, EventKind::Baseline { .. }), "{first:?}");
    (monitor, sub)
}

/// What GLib's `connectivity` should be for a netreach state (GLib's NM backend uses NM's
/// global value: full, portal, limited; "local" and not available for none).
fn glib_word(state: &Snapshot) -> &'static str {
    match (state.reachability.overall, state.details.captive_portal) {
        (Level::Online, _) => "full",
        (Level::Site, Some(true)) => "portal",
        (Level::Site, _) => "limited",
        _ => "local",
    }
}

/// Receives until the monitor's state satisfies `want` (checked after every event, and once
/// first); returns the events seen on the way. Panics with them after [`TIMEOUT`].
fn until(monitor: &Monitor, sub: &Subscription, what: &str, want: impl Fn(&Snapshot) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while !want(&monitor.snapshot()) {
        match sub.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(event) => seen.push(event),
            Err(e) => panic!("waiting for {what}: {e}; now {:#?}; saw {seen:#?}", monitor.snapshot()),
        }
    }
    seen
}

/// Waits until netreach reports `word` (GLib's terms) as decided by NetworkManager, then until
/// GLib does too, and checks they agree on availability and metering as well.
fn both_reach(monitor: &Monitor, sub: &Subscription, glib: &mut GlibMonitor, word: &str) {
    until(monitor, sub, &format!("netreach: {word} from networkmanager"), |s| {
        glib_word(s) == word
            && s.verdicts.iter().any(|v| v.source == Source::NetworkManager)
            && (word == "local" || s.reachability.source == Source::NetworkManager)
    });
    let state = monitor.snapshot();
    let g = glib.wait_for(TIMEOUT, &format!("GLib: {word}"), |g| g.connectivity == word);
    assert_eq!(g.backend, "GNetworkMonitorNM");
    let available = state.reachability.overall > Level::Local;
    assert_eq!(g.available, available, "availability: netreach {state:#?} GLib {g:?}");
    if available {
        // GLib says "not metered" for NM's "unknown" too; NM may settle metering a moment
        // after connectivity, so netreach gets the same bounded time to agree.
        until(monitor, sub, &format!("netreach metered like GLib ({})", g.metered), |s| {
            s.details.metered.unwrap_or(false) == g.metered
        });
    }
}

fn nm_verdict(state: &Snapshot) -> Option<&netreach::Verdict> {
    state.verdicts.iter().find(|v| v.source == Source::NetworkManager)
}

/// Runs NM's check from outside netreach, so the change reaches netreach only as signals.
fn nm_checks(sandbox: &NmSandbox) {
    sandbox.exec(&[
        "busctl",
        "call",
        "org.freedesktop.NetworkManager",
        "/org/freedesktop/NetworkManager",
        "org.freedesktop.NetworkManager",
        "CheckConnectivity",
    ]);
}

#[test]
fn connectivity_follows_networkmanager_like_glib() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let (monitor, sub) = monitor(&sandbox, None);
    // The baseline already has NM's word: full on IPv4; IPv6 is off on nm0 (NM: none).
    let state = monitor.snapshot();
    let r = &state.reachability;
    assert_eq!((r.ipv4.reachability, r.ipv4.source), (Level::Online, Source::NetworkManager), "{state:#?}");
    assert_eq!(r.ipv6.reachability, Level::Disconnected);
    assert_eq!(state.details.transport, Some(Transport::Ethernet));
    assert_eq!(state.details.captive_portal, Some(false));
    assert_eq!(state.details.metered, Some(false), "NM guesses not metered for Ethernet");
    let mut glib = sandbox.glib_monitor();
    both_reach(&monitor, &sub, &mut glib, "full");

    // Portal, wrong body: seen through NM's signals (someone else ran the check).
    sandbox.set_mode("wrong");
    nm_checks(&sandbox);
    both_reach(&monitor, &sub, &mut glib, "portal");
    let state = monitor.snapshot();
    assert_eq!((state.reachability.overall, state.reachability.source), (Level::Site, Source::NetworkManager));
    assert_eq!(state.details.captive_portal, Some(true));

    // Back to full, then a portal that redirects: through netreach's own check().
    sandbox.set_mode("ok");
    let state = monitor.check().expect("check");
    assert_eq!(glib_word(&state), "full", "check() returns NM's fresh verdict: {state:#?}");
    both_reach(&monitor, &sub, &mut glib, "full");
    sandbox.set_mode("redirect");
    let state = monitor.check().expect("check");
    assert_eq!(glib_word(&state), "portal", "{state:#?}");
    both_reach(&monitor, &sub, &mut glib, "portal");

    // The check endpoint stopped: limited.
    sandbox.set_mode("ok");
    sandbox.control("kill-http");
    nm_checks(&sandbox);
    both_reach(&monitor, &sub, &mut glib, "limited");
    assert_eq!(monitor.snapshot().details.captive_portal, Some(false));
    sandbox.control("start-http");
    monitor.check().expect("check");
    both_reach(&monitor, &sub, &mut glib, "full");

    // The device disconnected by NM: disconnected, then full again.
    sandbox.nmcli(&["device", "disconnect", "nm0"]);
    both_reach(&monitor, &sub, &mut glib, "local");
    assert_eq!(monitor.snapshot().reachability.overall, Level::Disconnected);
    sandbox.nmcli(&["connection", "up", "sandbox-nm0"]);
    both_reach(&monitor, &sub, &mut glib, "full");

    // The link down: disconnected; up again: NM reactivates on its own, full.
    sandbox.ip(&["link", "set", "nm0", "down"]);
    both_reach(&monitor, &sub, &mut glib, "local");
    sandbox.ip(&["link", "set", "nm0", "up"]);
    both_reach(&monitor, &sub, &mut glib, "full");
}

#[test]
fn metered_follows_networkmanager_like_glib() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let (monitor, sub) = monitor(&sandbox, None);
    let mut glib = sandbox.glib_monitor();
    for (setting, metered) in [("yes", true), ("no", false)] {
        sandbox.nmcli(&["connection", "modify", "sandbox-nm0", "connection.metered", setting]);
        sandbox.nmcli(&["device", "reapply", "nm0"]);
        until(&monitor, &sub, &format!("metered {metered}"), |s| s.details.metered == Some(metered));
        glib.wait_for(TIMEOUT, &format!("GLib metered {metered}"), |g| g.metered == metered);
        both_reach(&monitor, &sub, &mut glib, "full");
    }
}

#[test]
fn networkmanager_leaving_withdraws_at_once_and_returning_resumes() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    // One monitor with a settle window far longer than the wait: leaving is never delayed.
    let (settled, settled_sub) = monitor(&sandbox, Some(Duration::from_secs(60)));
    let (monitor, sub) = monitor(&sandbox, None);
    assert!(nm_verdict(&monitor.snapshot()).is_some());
    sandbox.control("kill-nm");
    for (monitor, sub) in [(&settled, &settled_sub), (&monitor, &sub)] {
        // The withdrawal is an event (an empty verdict), and the kernel decides again.
        let withdrawn = |e: &Event| {
            matches!(&e.kind, EventKind::VerdictChanged { verdict }
                if verdict.source == Source::NetworkManager && verdict.ipv4.is_none() && verdict.transport.is_none())
        };
        assert!(std::iter::from_fn(|| sub.recv_timeout(TIMEOUT).ok()).any(|e| withdrawn(&e)), "no withdrawal event");
        let state = monitor.snapshot();
        assert!(nm_verdict(&state).is_none(), "{state:#?}");
        assert_eq!((state.reachability.overall, state.reachability.source), (Level::Online, Source::Kernel));
    }
    sandbox.control("start-nm");
    until(&monitor, &sub, "NM's verdict back", |s| s.reachability.source == Source::NetworkManager);
}

#[test]
fn the_bus_vanishing_is_reported_and_survived() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let (monitor, sub) = monitor(&sandbox, None);
    sandbox.control("kill-bus");
    let mut seen = until(&monitor, &sub, "NM's verdict withdrawn", |s| nm_verdict(s).is_none());
    // Checks while the bus is gone answer at once with the kernel's view; check() also syncs
    // with the engine, so the source's error report is queued by then.
    assert_eq!(monitor.check().expect("check without a bus").reachability.source, Source::Kernel);
    seen.extend(std::iter::from_fn(|| sub.recv_timeout(Duration::ZERO).ok()));
    assert!(
        seen.iter().any(
            |e| matches!(&e.kind, EventKind::Error { message, fatal: false } if message.contains("lost the system bus"))
        ),
        "{seen:#?}"
    );
    // A new bus; NM does not reconnect to a new bus by itself, so it is restarted too.
    sandbox.control("start-bus");
    sandbox.control("kill-nm");
    sandbox.control("start-nm");
    until(&monitor, &sub, "NM's verdict back on the new bus", |s| s.reachability.source == Source::NetworkManager);
    assert!(monitor.check().is_ok());
}

#[test]
fn disabled_check_leaves_the_decision_to_others_and_says_so() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let (monitor, sub) = monitor(&sandbox, None);
    let mut glib = sandbox.glib_monitor();
    sandbox.set_property("ConnectivityCheckEnabled", "b", "false");
    until(&monitor, &sub, "a note that NM's check is off", |s| {
        nm_verdict(s).and_then(|v| v.note.as_deref()).is_some_and(|n| n.contains("disabled"))
    });
    let state = monitor.snapshot();
    let v = nm_verdict(&state).unwrap();
    assert_eq!((v.ipv4, v.ipv6, v.captive_portal), (None, None, None), "{v:?}");
    assert_eq!(v.transport, Some(Transport::Ethernet), "the rest of NM's word still counts");
    assert_eq!(state.reachability.source, Source::Kernel);
    // NM now guesses "full" from the default route; GLib passes the guess on; netreach's kernel
    // view agrees here.
    glib.wait_for(TIMEOUT, "GLib full", |g| g.connectivity == "full");
    assert_eq!(glib_word(&state), "full");
    // check() does not ask NM for a check it will not run.
    sandbox.set_mode("wrong");
    assert_eq!(monitor.check().expect("check").reachability.source, Source::Kernel);
    sandbox.set_property("ConnectivityCheckEnabled", "b", "true");
    until(&monitor, &sub, "NM's check back: portal", |s| s.details.captive_portal == Some(true));
    both_reach(&monitor, &sub, &mut glib, "portal");
}

#[test]
fn refused_check_is_reported_once_then_left_to_the_probe() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::with(NmOptions { deny_check: true });
    let (monitor, sub) = monitor(&sandbox, None);
    let refusals = |sub: &Subscription| {
        std::iter::from_fn(|| sub.recv_timeout(Duration::ZERO).ok())
            .filter(|e| matches!(&e.kind, EventKind::Error { message, fatal: false } if message.contains("refused")))
            .count()
    };
    // check() runs the refiner's request and then syncs with the engine, so an error the
    // refiner reported is already queued when it returns.
    let state = monitor.check().expect("a refused check still answers");
    assert_eq!(state.reachability.source, Source::NetworkManager, "NM's signalled verdict stands");
    assert_eq!(refusals(&sub), 1);
    monitor.check().expect("check");
    monitor.check().expect("check");
    assert_eq!(refusals(&sub), 0, "reported once, not on every call");
}

#[test]
fn settle_window_hides_transients_and_passes_settled_values() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let (monitor, sub) = monitor(&sandbox, Some(Duration::from_secs(3)));
    // A portal for the time of two checks (well inside the window), then full again.
    sandbox.set_mode("wrong");
    nm_checks(&sandbox);
    sandbox.set_mode("ok");
    nm_checks(&sandbox);
    // A lasting change: metered. It comes out after the window; the portal never does.
    sandbox.nmcli(&["connection", "modify", "sandbox-nm0", "connection.metered", "yes"]);
    sandbox.nmcli(&["device", "reapply", "nm0"]);
    let seen = until(&monitor, &sub, "metered after the window", |s| s.details.metered == Some(true));
    assert!(
        !seen
            .iter()
            .any(|e| matches!(&e.kind, EventKind::VerdictChanged { verdict } if verdict.captive_portal == Some(true))),
        "a transient portal was reported: {seen:#?}"
    );
    assert_eq!(monitor.snapshot().details.captive_portal, Some(false));
}

#[test]
fn explicit_networkmanager_without_it_fails_clearly_and_auto_does_not() {
    let err = Monitor::builder()
        .backend(BackendKind::NetworkManager)
        .system_bus_address("unix:path=/nonexistent/netreach-test-bus")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("cannot connect to the system bus"), "{err}");
    assert_eq!(err.kind(), netreach::ErrorKind::SourceUnavailable, "{err}");
    let monitor = Monitor::builder().system_bus_address("unix:path=/nonexistent/netreach-test-bus").build();
    assert!(nm_verdict(&monitor.expect("auto without a bus is the kernel alone").snapshot()).is_none());

    if !ready("explicit_networkmanager_without_it_fails_clearly_and_auto_does_not (NM part)") {
        return;
    }
    let sandbox = NmSandbox::up();
    sandbox.control("kill-nm");
    let err = Monitor::builder()
        .netns_path(sandbox.netns_path())
        .backend(BackendKind::NetworkManager)
        .system_bus_address(sandbox.bus_address())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("org.freedesktop.NetworkManager is not running"), "{err}");
    assert_eq!(err.kind(), netreach::ErrorKind::SourceUnavailable, "{err}");
}
