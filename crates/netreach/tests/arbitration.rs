//! Arbitration between a real NetworkManager (testns::nm: a real daemon on a real dbus-daemon)
//! and netreach's own probe, answered by a scripted server next to NM's check endpoint: NM
//! says `limited` or `portal` while the probe gets through, and the reverse. The outcome
//! follows the table in `arbitrate.rs`, and every disagreement is in the state and in an event.
#![cfg(target_os = "linux")] // NetworkManager, network namespaces

use std::time::{Duration, Instant};

use netreach::probe::{Endpoint, ProbeConfig};
use netreach::{
    ArbitrationRule, BackendKind, Details, Event, EventKind, Level, Monitor, Snapshot, Source, Subject, Subscription,
};
use testns::http::{Reply, Server};
use testns::nm::NmSandbox;

/// Bound for one change to show (NM's check and a probe take well under a second here).
const TIMEOUT: Duration = Duration::from_secs(20);

/// A scripted endpoint of our own on NM's server side (198.51.100.1; NM's check endpoint is
/// on 8080), answering every request with `reply`. Each endpoint of a test takes its own
/// `port`: a port just released may still be held by a connection closing down.
fn our_endpoint(sandbox: &NmSandbox, port: u16, reply: &str) -> Server {
    Server::start_at(&sandbox.server_netns_path(), &format!("198.51.100.1:{port}"), Reply::text(reply))
}

/// A monitor of NM's namespace with NM's verdict and the probe (our endpoint, expecting 204).
fn start(sandbox: &NmSandbox, server: &Server) -> (Monitor, Subscription) {
    let endpoint = Endpoint::new(&server.url("/generate_204")).unwrap().expect_status(204);
    let probe = ProbeConfig::new().endpoints(vec![endpoint]).total_timeout(Duration::from_secs(2));
    let monitor = Monitor::builder()
        .netns_path(sandbox.netns_path())
        .backend(BackendKind::NetworkManager)
        .system_bus_address(sandbox.bus_address())
        .probe(probe)
        .build()
        .expect("monitor with NetworkManager and the probe");
    let sub = monitor.subscribe();
    (monitor, sub)
}

fn said(state: &Snapshot, source: Source) -> Option<(Option<Level>, Option<bool>)> {
    state.verdicts.iter().find(|v| v.source == source).map(|v| (v.ipv4, v.captive_portal))
}

/// (about, decided_by, overruled, rule) of every disagreement.
fn named(d: &Details) -> Vec<(Subject, Source, Source, ArbitrationRule)> {
    d.disagreements.iter().map(|d| (d.about, d.decided_by, d.overruled, d.rule)).collect()
}

/// Receives until a `details_changed` event publishes `want` as the disagreements (the
/// snapshot may show a change before its event is read); panics after [`TIMEOUT`].
fn published(sub: &Subscription, want: &[(Subject, Source, Source, ArbitrationRule)]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match sub.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event { kind: EventKind::DetailsChanged { after, .. }, .. }) if named(&after) == want => return,
            Ok(_) => {}
            Err(e) => panic!("no details_changed with disagreements {want:?}: {e}"),
        }
    }
}

/// Runs NM's check from outside netreach, so the change reaches it only as NM's signals.
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
fn a_probe_that_gets_through_beats_networkmanager_saying_limited_or_portal() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let ours = our_endpoint(&sandbox, 8081, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    let (monitor, sub) = start(&sandbox, &ours);
    let state = monitor.check().expect("check");
    assert_eq!(said(&state, Source::NetworkManager), Some((Some(Level::Online), Some(false))), "{state:#?}");
    assert_eq!(said(&state, Source::Probe), Some((Some(Level::Online), Some(false))), "{state:#?}");
    assert!(state.details.disagreements.is_empty(), "they agree: {:#?}", state.details.disagreements);

    // NM's check endpoint dies: NM says limited; our endpoint answers the probe, which
    // re-checks because of NM's new claim (only a probe newer than the claim overrules it).
    let probes = ours.requests();
    sandbox.control("kill-http");
    nm_checks(&sandbox);
    let limited = [(Subject::Ipv4, Source::Probe, Source::NetworkManager, ArbitrationRule::ProbeGotThrough)];
    published(&sub, &limited);
    let state = monitor.snapshot();
    assert_eq!(said(&state, Source::NetworkManager), Some((Some(Level::Site), Some(false))), "NM: limited");
    assert_eq!(
        (state.reachability.ipv4.reachability, state.reachability.ipv4.source),
        (Level::Online, Source::Probe),
        "{state:#?}"
    );
    assert_eq!(named(&state.details), limited);
    assert_eq!(
        state.details.disagreements[0].note,
        "networkmanager says ipv4 site; probe says ipv4 online: a probe that got through is direct evidence"
    );
    testns::wait_until(TIMEOUT, "the probe re-checking NM's claim", || ours.requests() > probes);
    monitor.check().expect("check");
    assert_eq!(named(&monitor.snapshot().details), limited, "the fresh probe still gets through");

    // NM's endpoint back with a login page: NM says portal; the probe still gets through.
    sandbox.set_mode("wrong");
    sandbox.control("start-http");
    nm_checks(&sandbox);
    let portal = [
        (Subject::Ipv4, Source::Probe, Source::NetworkManager, ArbitrationRule::ProbeGotThrough),
        (Subject::CaptivePortal, Source::Probe, Source::NetworkManager, ArbitrationRule::ProbeGotThrough),
    ];
    published(&sub, &portal);
    let state = monitor.snapshot();
    assert_eq!(said(&state, Source::NetworkManager), Some((Some(Level::Site), Some(true))), "{state:#?}");
    assert_eq!((state.reachability.overall, state.reachability.source), (Level::Online, Source::Probe));
    assert_eq!(state.details.captive_portal, Some(false), "a probe got through: no portal");
    assert_eq!(named(&state.details), portal);
    // The long-running monitor says what a fresh one says.
    let (fresh, _) = start(&sandbox, &ours);
    let now = fresh.check().expect("check");
    assert_eq!((now.reachability, &now.details), (state.reachability, &state.details), "fresh {now:#?}");
    drop(fresh);

    // NM agrees again: the disagreements are gone, and an event says so.
    sandbox.set_mode("ok");
    nm_checks(&sandbox);
    published(&sub, &[]);
    assert_eq!(monitor.snapshot().reachability.ipv4.reachability, Level::Online);
}

#[test]
fn networkmanager_saying_full_stands_over_a_failed_probe_but_not_over_a_portal() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();

    // Our endpoint fails (500): the probe says limited; NM's full check outranks it.
    let failing = our_endpoint(&sandbox, 8082, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
    let (monitor, _sub) = start(&sandbox, &failing);
    let state = monitor.check().expect("check");
    assert_eq!(said(&state, Source::Probe).and_then(|s| s.0), Some(Level::Site), "{state:#?}");
    assert_eq!(
        (state.reachability.ipv4.reachability, state.reachability.ipv4.source),
        (Level::Online, Source::NetworkManager),
        "{state:#?}"
    );
    assert_eq!(named(&state.details), [(Subject::Ipv4, Source::NetworkManager, Source::Probe, ArbitrationRule::Rank)]);
    drop((monitor, failing));

    // Our endpoint redirects (a portal): it stands although NM says full.
    let portal = our_endpoint(
        &sandbox,
        8083,
        "HTTP/1.1 302 Found\r\nLocation: http://198.51.100.1:8081/login\r\nContent-Length: 0\r\n\r\n",
    );
    let (monitor, _sub) = start(&sandbox, &portal);
    let state = monitor.check().expect("check");
    assert_eq!(said(&state, Source::NetworkManager), Some((Some(Level::Online), Some(false))), "{state:#?}");
    assert_eq!(
        (state.reachability.ipv4.reachability, state.reachability.ipv4.source),
        (Level::Site, Source::Probe),
        "{state:#?}"
    );
    assert_eq!(state.details.captive_portal, Some(true));
    assert_eq!(state.details.portal_url.as_deref(), Some("http://198.51.100.1:8081/login"));
    assert_eq!(
        named(&state.details),
        [
            (Subject::Ipv4, Source::Probe, Source::NetworkManager, ArbitrationRule::PortalStands),
            (Subject::CaptivePortal, Source::Probe, Source::NetworkManager, ArbitrationRule::PortalStands),
        ]
    );
    // JSON carries them, exactly.
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["disagreements"][1]["rule"], "portal_stands");
    assert_eq!(json["disagreements"][1]["note"], state.details.disagreements[1].note.as_str());
}
