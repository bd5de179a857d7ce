//! The Linux backend against the real kernel, in network namespaces each test creates.
//! Every event kind and every reachability transition, IPv4 and IPv6.
#![cfg(target_os = "linux")] // network namespaces; Windows: src/sys/windows/tests*.rs (under Wine)

mod common;

use common::*;
use netreach::{EventKind, Family, Level, Monitor, ReachabilityOf};
use testns::NetNs;

fn is_addr(k: &EventKind, added: bool, ip: &str) -> bool {
    match k {
        EventKind::AddressAdded { address, .. } if added => address.address.to_string() == ip,
        EventKind::AddressRemoved { address, .. } if !added => address.address.to_string() == ip,
        _ => false,
    }
}

#[test]
fn address_add_and_remove_move_reachability_v4_and_v6() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("addr");
    let (monitor, sub) = watch(&ns);
    assert_eq!(monitor.snapshot().reachability.ipv4.reachability, Level::Disconnected);

    ns.ip("addr add 192.0.2.10/24 dev va");
    let (e, _) = expect(&sub, "192.0.2.10 added", |k| is_addr(k, true, "192.0.2.10"));
    let EventKind::AddressAdded { interface, index, address } = e.kind else { unreachable!() };
    assert_eq!((interface.as_str(), index, address.prefix_len), ("va", ns.index("va"), 24));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);

    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    expect(&sub, "2001:db8::10 added", |k| is_addr(k, true, "2001:db8::10"));
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Site);

    ns.ip("addr del 192.0.2.10/24 dev va");
    expect(&sub, "192.0.2.10 removed", |k| is_addr(k, false, "192.0.2.10"));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Disconnected);

    ns.ip("addr del 2001:db8::10/64 dev va");
    expect(&sub, "2001:db8::10 removed", |k| is_addr(k, false, "2001:db8::10"));
    // The IPv6 link-local address stays: local, not disconnected.
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Local);
    let state = monitor.snapshot();
    assert_eq!(state.reachability.overall, Level::Local);
}

#[test]
fn link_local_ipv4_is_local() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("ll4");
    ns.ip("link set va down"); // drop fe80:: so IPv6 does not decide the overall level
    let (_monitor, sub) = watch(&ns);
    ns.ip("addr add 169.254.7.7/16 dev va");
    ns.ip("link set va up");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Local);
}

#[test]
fn default_route_add_replace_remove_v4() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("route4");
    ns.ip("addr add 192.0.2.10/24 dev va");
    let (monitor, sub) = watch(&ns);

    ns.ip("route add default via 192.0.2.1 dev va metric 5");
    let (e, _) = expect(&sub, "default route added", |k| matches!(k, EventKind::DefaultRouteAdded { .. }));
    let EventKind::DefaultRouteAdded { route } = e.kind else { unreachable!() };
    assert_eq!(route.family, Family::Ipv4);
    assert_eq!(route.gateway, Some("192.0.2.1".parse().unwrap()));
    assert_eq!((route.interface.as_str(), route.metric, route.table), ("va", 5, 254));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    expect_level(&sub, ReachabilityOf::Overall, Level::Online);

    ns.ip("route replace default via 192.0.2.254 dev va metric 5");
    expect(
        &sub,
        "old route removed",
        |k| matches!(k, EventKind::DefaultRouteRemoved { route } if route.gateway == Some("192.0.2.1".parse().unwrap())),
    );
    expect(
        &sub,
        "new route added",
        |k| matches!(k, EventKind::DefaultRouteAdded { route } if route.gateway == Some("192.0.2.254".parse().unwrap())),
    );
    assert_eq!(monitor.snapshot().default_routes.len(), 1);

    ns.ip("route del default via 192.0.2.254 dev va metric 5");
    expect(&sub, "route removed", |k| matches!(k, EventKind::DefaultRouteRemoved { .. }));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    assert!(monitor.snapshot().default_routes.is_empty());
}

#[test]
fn default_route_add_remove_v6() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("route6");
    ns.ip("addr add 2001:db8:1::10/64 dev va nodad");
    let (_monitor, sub) = watch(&ns);
    ns.ip("-6 route add default via 2001:db8:1::1 dev va");
    let (e, _) = expect(&sub, "v6 default route", |k| matches!(k, EventKind::DefaultRouteAdded { .. }));
    let EventKind::DefaultRouteAdded { route } = e.kind else { unreachable!() };
    assert_eq!((route.family, route.gateway), (Family::Ipv6, Some("2001:db8:1::1".parse().unwrap())));
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
    ns.ip("-6 route del default via 2001:db8:1::1 dev va");
    expect(&sub, "v6 route removed", |k| matches!(k, EventKind::DefaultRouteRemoved { .. }));
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Site);
}

#[test]
fn admin_down_flushes_routes_and_up_restores_link() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("admin");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    let (monitor, sub) = watch(&ns);
    assert_eq!(monitor.snapshot().reachability.ipv4.reachability, Level::Online);

    ns.ip("link set va down");
    let (e, _) = expect(
        &sub,
        "va down",
        |k| matches!(k, EventKind::InterfaceChanged { after, .. } if after.name == "va" && !after.up),
    );
    let EventKind::InterfaceChanged { before, after } = e.kind else { unreachable!() };
    assert!(before.up && !after.up);
    expect(&sub, "route flushed with the link", |k| matches!(k, EventKind::DefaultRouteRemoved { .. }));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Disconnected);
    // The kernel flushed the route silently; the snapshot must agree with it.
    assert!(ns.ip_json("route show default").as_array().unwrap().is_empty());
    assert!(monitor.snapshot().default_routes.is_empty());

    ns.ip("link set va up");
    expect(&sub, "va up", |k| matches!(k, EventKind::InterfaceChanged { after, .. } if after.name == "va" && after.up));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
}

#[test]
fn carrier_loss_via_peer_keeps_route_but_loses_online() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("carrier");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    ns.ip("route add default via 192.0.2.1");
    ns.ip("-6 route add default via 2001:db8::1");
    let (monitor, sub) = watch(&ns);
    assert_eq!(monitor.snapshot().reachability.overall, Level::Online);

    ns.ip("link set vb down");
    let (e, _) = expect(
        &sub,
        "va carrier lost",
        |k| matches!(k, EventKind::InterfaceChanged { after, .. } if after.name == "va" && !after.carrier),
    );
    let EventKind::InterfaceChanged { after, .. } = e.kind else { unreachable!() };
    assert!(after.up, "va stays administratively up");
    expect_level(&sub, ReachabilityOf::Overall, Level::Disconnected);
    // The kernel keeps routes over a link without carrier (flagged linkdown); so do we.
    let snapshot = monitor.snapshot();
    assert_eq!(snapshot.default_routes.len(), 2, "{:?}", snapshot.default_routes);
    assert_eq!(snapshot.reachability.ipv4.reachability, Level::Disconnected);
    assert_eq!(snapshot.reachability.ipv6.reachability, Level::Disconnected);

    ns.ip("link set vb up");
    expect(
        &sub,
        "va carrier back",
        |k| matches!(k, EventKind::InterfaceChanged { after, .. } if after.name == "va" && after.carrier),
    );
    expect_level(&sub, ReachabilityOf::Overall, Level::Online);
}

#[test]
fn interface_deletion_reports_addresses_routes_and_links() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("del");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    let (monitor, sub) = watch(&ns);
    let (va, vb) = (ns.index("va"), ns.index("vb"));

    ns.ip("link del va");
    let mut removed = Vec::new();
    while removed.len() < 2 {
        let (e, _) = expect(&sub, "interfaces removed", |k| matches!(k, EventKind::InterfaceRemoved { .. }));
        let EventKind::InterfaceRemoved { interface } = e.kind else { unreachable!() };
        removed.push(interface.index);
    }
    removed.sort();
    assert_eq!(removed, {
        let mut v = vec![va, vb];
        v.sort();
        v
    });
    let state = monitor.snapshot();
    assert!(state.interface(va).is_none() && state.interface(vb).is_none());
    assert!(state.default_routes.is_empty());
    assert_eq!(state.reachability.overall, Level::Disconnected);
}

#[test]
fn new_interface_is_reported_with_kind() {
    testns::skip_unless_root!();
    let ns = NetNs::new("kind");
    let (_monitor, sub) = watch(&ns);
    ns.ip("link add br0 type bridge");
    let (e, _) = expect(&sub, "bridge added", |k| matches!(k, EventKind::InterfaceAdded { .. }));
    let EventKind::InterfaceAdded { interface } = e.kind else { unreachable!() };
    assert_eq!((interface.name.as_str(), interface.kind), ("br0", netreach::InterfaceKind::Bridge));
    ns.ip("tuntap add mode tun name tun0");
    let (e, _) = expect(&sub, "tun added", |k| matches!(k, EventKind::InterfaceAdded { .. }));
    let EventKind::InterfaceAdded { interface } = e.kind else { unreachable!() };
    assert_eq!(interface.kind, netreach::InterfaceKind::Tun);
}

#[test]
fn bridge_without_default_route_does_not_count() {
    testns::skip_unless_root!();
    let ns = NetNs::new("bridge");
    ns.ip("link add br0 type bridge");
    ns.ip("link add va type veth peer name vb");
    ns.ip("link set va master br0");
    for link in ["br0", "va", "vb"] {
        ns.ip(&format!("link set {link} up"));
    }
    ns.ip("addr add 192.0.2.1/24 dev br0");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    testns::wait_until(EVENT_TIMEOUT, "br0 carrier", || {
        monitor.snapshot().interface_by_name("br0").is_some_and(|i| i.carrier)
    });
    assert_eq!(monitor.snapshot().reachability.ipv4.reachability, Level::Disconnected);
    ns.ip("route add default via 192.0.2.254 dev br0");
    testns::wait_until(EVENT_TIMEOUT, "online through br0", || {
        monitor.snapshot().reachability.ipv4.reachability == Level::Online
    });
}

#[test]
fn lifetime_refresh_is_not_an_event() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("lft");
    ns.ip("addr add 2001:db8::20/64 dev va nodad valid_lft 1000 preferred_lft 1000");
    let (_monitor, sub) = watch(&ns);
    // The kernel announces the address again with new lifetimes...
    ns.ip("addr change 2001:db8::20/64 dev va valid_lft 2000 preferred_lft 2000");
    // ...and only the sentinel after it may come through.
    ns.ip("addr add 2001:db8::21/64 dev va nodad");
    let first = next(&sub);
    assert!(is_addr(&first, true, "2001:db8::21"), "lifetime refresh leaked an event: {first:?}");
}

#[test]
fn duplicate_address_detection_completion_is_an_address_change() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("dad");
    let (_monitor, sub) = watch(&ns);
    ns.ip("addr add 2001:db8::30/64 dev va");
    let (e, _) = expect(&sub, "tentative address", |k| is_addr(k, true, "2001:db8::30"));
    let EventKind::AddressAdded { address, .. } = e.kind else { unreachable!() };
    assert!(address.flags.tentative, "a fresh address with DAD on starts tentative");
    let (e, before) = expect(&sub, "DAD done", |k| matches!(k, EventKind::AddressChanged { .. }));
    assert!(
        !before.iter().any(|k| matches!(
            k,
            EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv6, new: Level::Site, .. }
        )),
        "a tentative address must not count: {before:?}"
    );
    let EventKind::AddressChanged { before, after, .. } = e.kind else { unreachable!() };
    assert!(before.flags.tentative && !after.flags.tentative);
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Site);
}

#[test]
fn two_monitors_on_two_namespaces_see_only_their_own() {
    testns::skip_unless_root!();
    let (ns1, ns2) = (ns_with_veth("two-a"), ns_with_veth("two-b"));
    let (_m1, s1) = watch(&ns1);
    let (_m2, s2) = watch(&ns2);
    ns1.ip("addr add 192.0.2.1/24 dev va");
    expect(&s1, "ns1 address", |k| is_addr(k, true, "192.0.2.1"));
    ns2.ip("addr add 198.51.100.1/24 dev va");
    // The first address event ns2's monitor sees is ns2's own.
    let (e, _) = expect(&s2, "ns2 address", |k| matches!(k, EventKind::AddressAdded { .. }));
    assert!(is_addr(&e.kind, true, "198.51.100.1"), "{e:?}");
    assert!(s1.try_recv().map(|e| !is_addr(&e.kind, true, "198.51.100.1")).unwrap_or(true));
}

#[test]
fn deleted_namespace_ends_the_subscription_with_a_clear_error() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("gone");
    let (monitor, sub) = watch(&ns);
    ns.ip("addr add 192.0.2.1/24 dev va");
    expect(&sub, "address", |k| is_addr(k, true, "192.0.2.1"));
    let name = ns.name().to_owned();
    ns.delete();
    let (e, _) = expect(&sub, "fatal error", |k| matches!(k, EventKind::Error { fatal: true, .. }));
    let EventKind::Error { message, .. } = e.kind else { unreachable!() };
    assert!(message.contains(&name) && message.contains("deleted"), "{message}");
    assert_eq!(sub.recv_timeout(EVENT_TIMEOUT), Err(netreach::RecvError::Closed));
    // A late subscriber learns the same, and does not hang either.
    let late = monitor.subscribe();
    assert!(matches!(next(&late), EventKind::Baseline { .. }));
    assert!(matches!(next(&late), EventKind::Error { fatal: true, .. }));
    assert_eq!(late.recv_timeout(EVENT_TIMEOUT), Err(netreach::RecvError::Closed));
    // A request to the stopped monitor says so, by kind (the address is in its last state).
    let err = monitor.watch_path("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), netreach::ErrorKind::Stopped, "{err}");
    assert_eq!(err.to_string(), "the monitor has stopped");
}

#[test]
fn slow_subscriber_lags_then_gets_a_fresh_baseline() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("lag");
    let monitor = Monitor::builder().netns(ns.name()).queue_capacity(4).build().unwrap();
    let slow = monitor.subscribe();
    let fast = monitor.subscribe();
    for i in 1..=20 {
        ns.ip(&format!("addr add 203.0.113.{i}/32 dev va"));
    }
    // Use the fast subscriber... also lagging with capacity 4; wait on the snapshot instead.
    drop(fast);
    testns::wait_until(EVENT_TIMEOUT, "20 addresses", || {
        monitor
            .snapshot()
            .interface_by_name("va")
            .is_some_and(|i| i.addresses.iter().filter(|a| a.address.is_ipv4()).count() == 20)
    });
    let kinds: Vec<EventKind> = std::iter::from_fn(|| slow.try_recv().ok()).map(|e| e.kind).collect();
    assert!(kinds.len() <= 4 + 2, "queue bound exceeded: {} events", kinds.len());
    let lagged = kinds.iter().position(|k| matches!(k, EventKind::Lagged { .. })).expect("a lagged notice");
    let Some(EventKind::Baseline { state }) = kinds.get(lagged + 1) else { panic!("baseline after lagged: {kinds:?}") };
    let va = state.interface_by_name("va").unwrap();
    assert!(va.addresses.iter().filter(|a| a.address.is_ipv4()).count() >= 17, "baseline is recent");
}

#[test]
fn callbacks_and_streams_deliver_baseline_then_changes() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("cb");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let id = monitor.on_event(move |e| {
        let _ = tx.send(e.kind.clone());
    });
    let mut stream = monitor.subscribe();
    assert!(matches!(rx.recv_timeout(EVENT_TIMEOUT).unwrap(), EventKind::Baseline { .. }));
    assert!(matches!(block_on_next(&mut stream), Some(EventKind::Baseline { .. })));

    ns.ip("addr add 192.0.2.77/24 dev va");
    // The veth pair's operational state may still be settling (linkwatch runs late): such
    // interface changes can come first.
    let settling = |k: &EventKind| matches!(k, EventKind::InterfaceChanged { .. });
    let got = std::iter::from_fn(|| rx.recv_timeout(EVENT_TIMEOUT).ok()).find(|k| !settling(k)).unwrap();
    assert!(is_addr(&got, true, "192.0.2.77"), "{got:?}");
    let got = std::iter::from_fn(|| block_on_next(&mut stream)).find(|k| !settling(k)).unwrap();
    assert!(is_addr(&got, true, "192.0.2.77"), "{got:?}");

    assert!(monitor.remove_callback(id));
    assert!(!monitor.remove_callback(id));
    drop(monitor);
    // Dropping the monitor ends the stream once what was queued is read.
    let mut left = 0;
    while block_on_next(&mut stream).is_some() {
        left += 1;
        assert!(left < 100, "stream did not end");
    }
}

#[test]
fn batch_callbacks_get_each_change_whole_in_one_call() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("batch");
    let monitor = Monitor::builder().netns(ns.name()).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    monitor.on_events(move |batch| {
        let _ = tx.send(batch.to_vec());
    });
    let first = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    assert!(matches!(first[..], [netreach::Event { kind: EventKind::Baseline { .. }, .. }]), "{first:?}");

    // One address makes IPv4 (and so overall) `site`: the address and both level changes
    // are one change, so they come in one call, with one timestamp.
    ns.ip("addr add 192.0.2.78/24 dev va");
    let batch = rx.recv_timeout(EVENT_TIMEOUT).unwrap();
    let kinds: Vec<&EventKind> = batch.iter().map(|e| &e.kind).collect();
    assert!(is_addr(kinds[0], true, "192.0.2.78"), "{kinds:?}");
    for of in [ReachabilityOf::Ipv4, ReachabilityOf::Overall] {
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, EventKind::ReachabilityChanged { family, new: Level::Site, .. } if *family == of)),
            "{of:?} -> site in the same call: {kinds:?}"
        );
    }
    assert!(batch.iter().all(|e| e.timestamp == batch[0].timestamp), "one change, one timestamp");
}

#[test]
fn a_panicking_callback_is_removed_and_reported() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("panic");
    let (monitor, sub) = watch(&ns);
    monitor.on_event(|e| {
        if matches!(e.kind, EventKind::AddressAdded { .. }) {
            panic!("user bug");
        }
    });
    ns.ip("addr add 192.0.2.9/24 dev va");
    let (e, _) = expect(&sub, "callback error", |k| matches!(k, EventKind::Error { .. }));
    assert!(matches!(e.kind, EventKind::Error { fatal: false, ref message } if message.contains("panicked")));
    ns.ip("addr add 192.0.2.10/24 dev va");
    expect(&sub, "monitor still running", |k| is_addr(k, true, "192.0.2.10"));
}

/// Polls a `Stream` to its next item on this thread: a minimal executor, so the test shows
/// the stream needs no async runtime.
fn block_on_next(stream: &mut netreach::Subscription) -> Option<EventKind> {
    use futures_core::Stream;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = std::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        if let Poll::Ready(item) = Pin::new(&mut *stream).poll_next(&mut cx) {
            return item.map(|e| e.kind);
        }
        assert!(std::time::Instant::now() < deadline, "stream produced nothing in time");
        std::thread::park_timeout(EVENT_TIMEOUT);
    }
}

#[test]
fn removing_the_last_ipv4_address_flushes_routes_like_the_kernel() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("lastv4");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    let (monitor, sub) = watch(&ns);
    ns.ip("addr del 192.0.2.10/24 dev va");
    // The kernel sends no deletion for the default route, but drops it.
    expect(&sub, "default route gone", |k| matches!(k, EventKind::DefaultRouteRemoved { .. }));
    assert!(ns.ip_json("route show default").as_array().unwrap().is_empty());
    assert!(monitor.snapshot().default_routes.is_empty());
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Disconnected);
}
