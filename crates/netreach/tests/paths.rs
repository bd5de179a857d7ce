//! Per-connection path monitoring against the real kernel: every reason flips the path and
//! flipping back restores it; unrelated changes are silent; IPv4 and IPv6; 10,000 paths.
#![cfg(target_os = "linux")] // network namespaces; Windows: src/sys/windows/tests*.rs (under Wine)

mod common;

use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc};

use common::*;
use netreach::{EventKind, Monitor, PathEvent, PathMonitor, Subscription, Unreachable};
use testns::{uplinks, NetNs};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn path(monitor: &Monitor, local: &str, remote: &str) -> (PathMonitor, Subscription<PathEvent>) {
    let path = monitor.watch_path(ip(local), ip(remote)).expect("watch path");
    let sub = path.subscribe();
    let first = next_status(&sub);
    assert_eq!(first, path.status(), "first event is the current status");
    (path, sub)
}

/// Runs the `break_it` commands (`ip` arguments), expects the path to become unreachable for
/// `reason`, then runs `fix_it` and expects it reachable again.
fn flips(ns: &NetNs, sub: &Subscription<PathEvent>, reason: Unreachable, break_it: &[&str], fix_it: &[&str]) {
    eprintln!("flip: {reason}");
    break_it.iter().for_each(|c| drop(ns.ip(c)));
    let status = next_status(sub);
    assert!(!status.is_reachable());
    assert_eq!(status.reason(), Some(&reason));
    fix_it.iter().for_each(|c| drop(ns.ip(c)));
    // Fixing can pass through intermediate states (e.g. tentative, then no route until the
    // prefix route returns): the path must end reachable.
    let mut status = next_status(sub);
    while !status.is_reachable() {
        eprintln!("  passing through {:?}", status.reason());
        status = next_status(sub);
    }
}

#[test]
fn each_reason_flips_the_path_and_back_v4() {
    testns::skip_unless_root!();
    let ns = uplinks("path4");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (p, sub) = path(&monitor, "192.0.2.10", "203.0.113.5");
    assert!(p.is_reachable(), "{:?}", p.status());
    assert_eq!(p.status().interface(), Some("va"));
    assert!(!p.status().same_subnet());

    let va = || "va".into();
    let default = "route replace default via 192.0.2.1"; // flushed with the address or the link
    let cases: [(Unreachable, &[&str], &[&str]); 5] = [
        (
            Unreachable::LocalAddressGone,
            &["addr del 192.0.2.10/24 dev va"],
            &["addr add 192.0.2.10/24 dev va", default],
        ),
        (Unreachable::InterfaceDown { interface: va() }, &["link set va down"], &["link set va up", default]),
        (Unreachable::NoCarrier { interface: va() }, &["link set vb down"], &["link set vb up"]),
        (Unreachable::NoRoute, &["route del default"], &["route add default via 192.0.2.1"]),
        (
            Unreachable::RouteViaOtherInterface { expected: va(), actual: "wa".into() },
            &["route add 203.0.113.0/24 via 198.51.100.1 dev wa"],
            &["route del 203.0.113.0/24"],
        ),
    ];
    for (reason, break_it, fix_it) in cases {
        flips(&ns, &sub, reason, break_it, fix_it);
    }
}

#[test]
fn each_reason_flips_the_path_and_back_v6() {
    testns::skip_unless_root!();
    let ns = uplinks("path6");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (p, sub) = path(&monitor, "2001:db8::10", "2001:db8:ffff::5");
    assert!(p.is_reachable(), "{:?}", p.status());
    let cases: [(Unreachable, &[&str], &[&str]); 3] = [
        (
            Unreachable::LocalAddressGone,
            &["addr del 2001:db8::10/64 dev va"],
            &["addr add 2001:db8::10/64 dev va nodad", "-6 route replace default via 2001:db8::1"],
        ),
        (Unreachable::NoCarrier { interface: "va".into() }, &["link set vb down"], &["link set vb up"]),
        (Unreachable::NoRoute, &["-6 route del default"], &["-6 route add default via 2001:db8::1"]),
    ];
    for (reason, break_it, fix_it) in cases {
        flips(&ns, &sub, reason, break_it, fix_it);
    }
    // A tentative address (DAD running) is not usable yet.
    let (q, qsub) = path(&monitor, "2001:db8::10", "2001:db8:ffff::6");
    assert!(q.is_reachable());
    ns.ip("addr del 2001:db8::10/64 dev va");
    assert_eq!(next_status(&qsub).reason(), Some(&Unreachable::LocalAddressGone));
    ns.ip("addr add 2001:db8::10/64 dev va");
    assert_eq!(next_status(&qsub).reason(), Some(&Unreachable::LocalAddressTentative));
}

#[test]
fn same_subnet_path_survives_default_route_removal() {
    testns::skip_unless_root!();
    let ns = uplinks("subnet");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (near, near_sub) = path(&monitor, "192.0.2.10", "192.0.2.77");
    let (far, far_sub) = path(&monitor, "192.0.2.10", "203.0.113.5");
    assert!(near.status().same_subnet() && near.is_reachable() && far.is_reachable());
    ns.ip("route del default");
    assert_eq!(next_status(&far_sub).reason(), Some(&Unreachable::NoRoute));
    // The same-subnet path stays reachable: its next event is the carrier loss below, not the route.
    ns.ip("link set vb down");
    assert_eq!(next_status(&near_sub).reason(), Some(&Unreachable::NoCarrier { interface: "va".into() }));
}

#[test]
fn unrelated_changes_produce_no_path_events() {
    testns::skip_unless_root!();
    let ns = uplinks("unrelated");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (_p, sub) = path(&monitor, "192.0.2.10", "203.0.113.5");
    let (_q, _) = path(&monitor, "198.51.100.10", "198.51.100.20");
    // Churn elsewhere: the other veth, its addresses, a route the path does not use.
    ns.ip("link set wb down");
    ns.ip("link set wb up");
    ns.ip("addr add 198.51.100.11/24 dev wa");
    ns.ip("route add 198.51.100.128/25 via 198.51.100.1 dev wa");
    ns.ip("-6 route del default");
    // Then the path's own link: this must be the very next event.
    ns.ip("link set vb down");
    assert_eq!(next_status(&sub).reason(), Some(&Unreachable::NoCarrier { interface: "va".into() }));
}

#[test]
fn ten_thousand_paths_flip_on_one_link_down_and_come_back() {
    testns::skip_unless_root!();
    let ns = uplinks("many");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let paths: Vec<PathMonitor> = (0..10_000u32)
        .map(|i| {
            let remote =
                if i % 2 == 0 { format!("203.0.113.{}", 1 + i % 250) } else { format!("192.0.2.{}", 100 + i % 100) };
            monitor.watch_path(ip("192.0.2.10"), ip(&remote)).unwrap()
        })
        .collect();
    assert!(paths.iter().all(PathMonitor::is_reachable));
    let (tx, rx) = std::sync::mpsc::channel();
    for p in &paths {
        let tx = tx.clone();
        p.on_change(move |s| {
            let _ = tx.send(s.is_reachable());
        });
    }
    assert_eq!(rx.try_iter().count(), 10_000, "every callback got the current status at once");
    ns.ip("link set vb down");
    for _ in 0..10_000 {
        assert!(!rx.recv_timeout(EVENT_TIMEOUT).expect("every path flips"));
    }
    ns.ip("link set vb up");
    for _ in 0..10_000 {
        assert!(rx.recv_timeout(EVENT_TIMEOUT).expect("every path comes back"));
    }
    assert!(paths.iter().all(PathMonitor::is_reachable));
}

#[test]
fn connected_tcp_stream_is_watched_and_bad_input_is_refused() {
    testns::skip_unless_root!();
    // Client and server in two namespaces joined by a veth pair.
    let (client, server) = (NetNs::new("tcp-c"), NetNs::new("tcp-s"));
    client.veth("va", "vb");
    client.move_link("vb", &server);
    client.ip("addr add 192.0.2.10/24 dev va");
    server.ip("addr add 192.0.2.20/24 dev vb");
    server.ip("link set vb up");
    let listener = server.run_inside(|| TcpListener::bind("192.0.2.20:0").unwrap());
    let port = listener.local_addr().unwrap().port();
    let stream = client.run_inside(|| TcpStream::connect(("192.0.2.20", port)).unwrap());
    let _accepted = listener.accept().unwrap();

    let monitor = Monitor::builder().netns(client.name()).build().unwrap();
    let path = monitor.watch_tcp(&stream).unwrap();
    let status = path.status();
    assert_eq!((status.local, status.remote), (ip("192.0.2.10"), ip("192.0.2.20")));
    assert!(status.is_reachable() && status.same_subnet(), "{status:?}");
    let sub = path.subscribe();
    next_status(&sub);
    server.ip("link set vb down");
    assert_eq!(next_status(&sub).reason(), Some(&Unreachable::NoCarrier { interface: "va".into() }));

    let refused = |l: &str, r: &str| monitor.watch_path(ip(l), ip(r)).unwrap_err().to_string();
    assert!(refused("192.0.2.99", "192.0.2.20").contains("no interface owns the local address 192.0.2.99"));
    assert!(refused("192.0.2.10", "192.0.2.255").contains("broadcast"));
    assert!(refused("192.0.2.10", "127.0.0.1").contains("loopback"));
    // IPv4-mapped IPv6 is normalised, not refused.
    let mapped = monitor.watch_path(ip("::ffff:192.0.2.10"), ip("::ffff:192.0.2.20")).unwrap();
    assert_eq!(mapped.status().local, ip("192.0.2.10"));
}

#[test]
fn paths_end_when_the_monitor_stops() {
    testns::skip_unless_root!();
    let ns = uplinks("stop");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (p, sub) = path(&monitor, "192.0.2.10", "203.0.113.5");
    drop(monitor);
    assert_eq!(sub.recv_timeout(EVENT_TIMEOUT), Err(netreach::RecvError::Closed));
    assert!(p.is_reachable(), "the last known status stays readable");
}

/// Path callbacks run outside every lock, first call included: a callback may read its path's
/// status and the monitor's snapshot, on this thread (the first call) and on the monitor's.
#[test]
fn path_callbacks_may_call_back_into_the_path_and_the_monitor() {
    testns::skip_unless_root!();
    let ns = uplinks("cb-locks");
    let monitor = Arc::new(Monitor::builder().netns(ns.name()).build().unwrap());
    let path = Arc::new(monitor.watch_path(ip("192.0.2.10"), ip("203.0.113.5")).unwrap());
    let (weak_monitor, weak_path) = (Arc::downgrade(&monitor), Arc::downgrade(&path));
    let (tx, rx) = mpsc::channel();
    // Registered on a thread of its own, so a deadlock fails this test instead of hanging it.
    let registrar = path.clone();
    let registering = std::thread::spawn(move || {
        let registering = std::thread::current().id();
        registrar.on_change(move |status| {
            let (Some(monitor), Some(path)) = (weak_monitor.upgrade(), weak_path.upgrade()) else { return };
            let va_listed = monitor.snapshot().interfaces.iter().any(|i| i.name == "va");
            let on_registering_thread = std::thread::current().id() == registering;
            let _ = tx.send((status.is_reachable(), path.status() == *status, va_listed, on_registering_thread));
        })
    });
    // With a lock held around the call, the callback above would deadlock instead of sending.
    let Ok(first) = rx.recv_timeout(EVENT_TIMEOUT) else {
        std::mem::forget((monitor, path)); // deadlocked: dropping would hang as well
        panic!("the first call did not complete");
    };
    assert_eq!(first, (true, true, true, true), "(reachable, same status, snapshot read, registering thread)");
    let id = registering.join().unwrap();
    ns.ip("link set vb down");
    let Ok(change) = rx.recv_timeout(EVENT_TIMEOUT) else {
        std::mem::forget((monitor, path));
        panic!("the monitor thread's call did not complete");
    };
    assert_eq!(change, (false, true, true, false), "(reachable, same status, snapshot read, registering thread)");
    assert!(path.remove_callback(id));
}

#[test]
fn removed_path_callback_is_not_called_again() {
    testns::skip_unless_root!();
    let ns = uplinks("cb-remove");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let path = monitor.watch_path(ip("192.0.2.10"), ip("203.0.113.5")).unwrap();
    let (removed_tx, removed_rx) = mpsc::channel();
    let removed = path.on_change(move |s| removed_tx.send(s.is_reachable()).unwrap());
    let (witness_tx, witness_rx) = mpsc::channel();
    path.on_change(move |s| witness_tx.send(s.is_reachable()).unwrap());
    assert_eq!((removed_rx.try_recv(), witness_rx.try_recv()), (Ok(true), Ok(true)), "first calls, at once");
    assert!(path.remove_callback(removed));
    assert!(!path.remove_callback(removed), "removed once");
    // Callbacks of one path are called in the order registered: once the witness has seen the
    // change, the removed callback would have been called already.
    ns.ip("link set vb down");
    assert_eq!(witness_rx.recv_timeout(EVENT_TIMEOUT), Ok(false));
    assert_eq!(removed_rx.try_recv(), Err(mpsc::TryRecvError::Disconnected), "never called, and dropped");
}

#[test]
fn panicking_path_callback_is_removed_and_reported() {
    testns::skip_unless_root!();
    let ns = uplinks("cb-panic");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let events = monitor.subscribe();
    let (p, sub) = path(&monitor, "192.0.2.10", "203.0.113.5");
    let id = p.on_change(|s| assert!(s.is_reachable(), "test callback panics when the path goes down"));
    ns.ip("link set vb down");
    let (event, _) = expect(&events, "the panic reported", |k| matches!(k, EventKind::Error { .. }));
    let EventKind::Error { message, fatal } = event.kind else { unreachable!() };
    assert!(!fatal);
    assert_eq!(message, "path callback 1 of 192.0.2.10 -> 203.0.113.5 panicked and was removed");
    assert!(!p.remove_callback(id), "already removed");
    // The path and the monitor go on.
    assert_eq!(next_status(&sub).reason(), Some(&Unreachable::NoCarrier { interface: "va".into() }));
    ns.ip("link set vb up");
    assert!(next_status(&sub).is_reachable());
}
