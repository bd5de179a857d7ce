//! Gateway liveness from the kernel's neighbour table (issue 13, item 1), against the real
//! kernel in namespaces each test creates. Ground truth: the kernel's entry (`ip neigh show`)
//! and a real TCP connect from the client namespace to a listener behind the gateway, in a
//! second namespace that plays the router and "the internet". The neighbour timers are
//! shortened inside the client namespace only, so the kernel decides within a second.
#![cfg(target_os = "linux")] // network namespaces

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use netreach::{EventKind, Family, Level, Monitor, NeighbourState, ReachabilityOf, Reason, Snapshot};
use testns::NetNs;

// The client, the router that plays its gateway, and the listeners behind it.
use testns::gateway::{answer, fast_timers, world, World};

/// Checks on the world, from the client's side.
trait Client {
    /// Whether a TCP connection from the client through the gateway of `family` opens (it is
    /// also the traffic that makes the kernel resolve the gateway).
    fn connects(&self, family: Family) -> bool;
    /// The kernel's entry of the gateway of `family`, as `ip neigh show` prints its state.
    fn kernel_entry(&self, family: Family) -> String;
}

impl Client for World {
    fn connects(&self, family: Family) -> bool {
        let to: SocketAddr = self.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap();
        self.client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())
    }

    fn kernel_entry(&self, family: Family) -> String {
        let gateway = if family == Family::Ipv4 { "192.0.2.1" } else { "2001:db8::1" };
        let v = self.client.ip_json(&format!("neigh show {gateway} dev va"));
        v[0]["state"].as_array().and_then(|s| s.first()).and_then(|s| s.as_str()).unwrap_or("none").to_owned()
    }
}

fn gateway_of(state: &Snapshot, family: Family) -> NeighbourState {
    let v4 = family == Family::Ipv4;
    state.gateways.iter().find(|g| g.address.is_ipv4() == v4).map_or(NeighbourState::None, |g| g.state)
}

fn level(state: &Snapshot, family: Family) -> Level {
    state.reachability.family(family).reachability
}

fn of(family: Family) -> ReachabilityOf {
    if family == Family::Ipv4 {
        ReachabilityOf::Ipv4
    } else {
        ReachabilityOf::Ipv6
    }
}

/// The reason of `family` names the gateway as unreachable, reading like the example.
fn blames_gateway(state: &Snapshot, family: Family) {
    let reason = state.reasons.family(family).cloned().expect("a reason");
    let Reason::GatewayUnreachable { route, since } = &reason else { panic!("{family}: {reason:?}") };
    let (gateway, ask) =
        if family == Family::Ipv4 { ("192.0.2.1", "ARP") } else { ("2001:db8::1", "neighbour discovery") };
    assert_eq!(route.gateway.map(|g| g.to_string()).as_deref(), Some(gateway));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(since.is_some_and(|s| s <= now && s + 60 > now), "{since:?} vs {now}");
    let text = reason.to_string();
    assert!(text.contains(&format!("but gateway {gateway} does not answer {ask} on va since ")), "{text}");
    assert!(text.ends_with(" UTC"), "{text}");
}

/// A fresh monitor's reading: levels and reasons (the time a failure began aside, which a
/// fresh reading takes from the kernel's latest attempt) equal the live monitor's.
fn agrees_with_fresh(w: &World, live: &Snapshot) {
    let fresh = Monitor::builder().netns(w.client.name()).build().expect("monitor").snapshot();
    let without_time = |state: &Snapshot| {
        let mut reasons = (*state.reasons).clone();
        for reason in [&mut reasons.ipv4, &mut reasons.ipv6].into_iter().flatten() {
            if let Reason::GatewayUnreachable { since, .. } = reason {
                *since = None;
            }
        }
        let states: Vec<_> =
            state.gateways.iter().map(|g| (g.address, g.interface_index, g.is_unreachable())).collect();
        (state.reachability, reasons, states)
    };
    assert_eq!(without_time(live), without_time(&fresh), "live vs fresh");
}

#[test]
fn a_gateway_absent_from_the_start_is_found_failed_by_check_and_recovers_with_traffic() {
    testns::skip_unless_root!();
    let w = world("gwabsent", false);
    let (monitor, sub) = watch(&w.client);
    // Never resolved: no evidence, nothing sent; the kernel has no entry either.
    let state = monitor.snapshot();
    assert_eq!(w.kernel_entry(Family::Ipv4), "none");
    assert_eq!((level(&state, Family::Ipv4), gateway_of(&state, Family::Ipv4)), (Level::Online, NeighbourState::None));

    // check() asks the kernel to verify: both gateways fail, both families drop to site.
    let state = monitor.check().expect("check");
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(w.kernel_entry(family), "FAILED", "{family}");
        assert_eq!(gateway_of(&state, family), NeighbourState::Failed, "{family}");
        assert_eq!(level(&state, family), Level::Site, "{family}");
        blames_gateway(&state, family);
        assert!(!w.connects(family), "{family}: the kernel is right");
    }
    let (event, _) = expect(&sub, "ipv4 -> site", |k| {
        matches!(k, EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv4, new: Level::Site, .. })
    });
    let EventKind::ReachabilityChanged { reason: Some(reason), .. } = &event.kind else { panic!("{event:?}") };
    assert!(matches!(reason, Reason::GatewayUnreachable { .. }), "the event says why: {reason:?}");
    agrees_with_fresh(&w, &monitor.snapshot());

    // The router comes up; traffic (not the monitor) makes the kernel reach it again.
    answer(&w.router, true);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert!(w.connects(family), "{family}");
        expect_level(&sub, of(family), Level::Online);
        assert_eq!(w.kernel_entry(family), "REACHABLE", "{family}");
    }
    agrees_with_fresh(&w, &monitor.snapshot());
}

#[test]
fn a_gateway_vanishing_later_is_unreachable_once_the_kernel_gives_up_and_returns() {
    testns::skip_unless_root!();
    let w = world("gwgone", true);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert!(w.connects(family), "{family}: the gateway answers at first");
    }
    let (monitor, sub) = watch(&w.client);
    let state = monitor.snapshot();
    assert_eq!((level(&state, Family::Ipv4), level(&state, Family::Ipv6)), (Level::Online, Level::Online));
    assert!(state.gateways.iter().all(|g| !g.is_unreachable()), "{:?}", state.gateways);

    // The router loses its addresses. IPv4: the kernel notices with the next traffic (stale,
    // delay, probe, failed). IPv6: check() makes the kernel probe the known address now.
    answer(&w.router, false);
    assert!(!w.connects(Family::Ipv4));
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    assert_eq!(w.kernel_entry(Family::Ipv4), "FAILED");
    blames_gateway(&monitor.snapshot(), Family::Ipv4);
    let state = monitor.check().expect("check");
    assert_eq!(w.kernel_entry(Family::Ipv6), "FAILED");
    assert_eq!(level(&state, Family::Ipv6), Level::Site);
    blames_gateway(&state, Family::Ipv6);
    assert!(!w.connects(Family::Ipv6));
    agrees_with_fresh(&w, &monitor.snapshot());

    // Traffic retries a failed gateway (incomplete again): still no answer, no event.
    assert!(!w.connects(Family::Ipv4));
    assert_eq!(level(&monitor.snapshot(), Family::Ipv4), Level::Site);

    // The router answers again; the next traffic reaches it, and the family is online.
    answer(&w.router, true);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert!(w.connects(family), "{family}");
        expect_level(&sub, of(family), Level::Online);
    }
    agrees_with_fresh(&w, &monitor.snapshot());
}

#[test]
fn a_bridge_keeping_carrier_through_another_port_after_its_uplink_died() {
    testns::skip_unless_root!();
    // The client's address is on br0, whose ports are the uplink (to the router) and a VM's
    // port whose far end stays up: br0 keeps carrier when the uplink's far end goes down.
    let client = NetNs::new("gwbridge");
    let router = NetNs::new("gwbridger");
    client.ip("link add br0 type bridge");
    client.ip("link set br0 up");
    client.veth("up0", "vb");
    client.move_link("vb", &router);
    router.ip("link set vb up");
    client.veth("vm0", "vm1");
    client.ip("link set up0 master br0");
    client.ip("link set vm0 master br0");
    fast_timers(&client, "br0");
    client.ip("addr add 192.0.2.10/24 dev br0");
    client.ip("route add default via 192.0.2.1");
    router.ip("addr add 192.0.2.1/24 dev vb");
    router.ip("addr add 203.0.113.1/32 dev lo");
    let listener = router.run_inside(|| TcpListener::bind("203.0.113.1:0").expect("listen"));
    let to = listener.local_addr().unwrap();
    let connects = || client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok());
    testns::wait_until(EVENT_TIMEOUT, "the bridge forwards", connects);

    let (monitor, sub) = watch(&client);
    assert_eq!(level(&monitor.snapshot(), Family::Ipv4), Level::Online);
    router.ip("link set vb down");
    let br0 = &client.ip_json("link show br0")[0];
    assert_eq!(br0["operstate"], "UP", "br0 keeps carrier through vm0: {br0}");
    assert!(!connects());
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    let state = monitor.snapshot();
    let Some(Reason::GatewayUnreachable { route, .. }) = &state.reasons.ipv4 else { panic!("{:?}", state.reasons) };
    assert_eq!(route.interface, "br0");

    router.ip("link set vb up");
    testns::wait_until(EVENT_TIMEOUT, "the bridge forwards again", connects);
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
}

#[test]
fn a_link_local_ipv6_gateway_as_router_advertisements_give_is_followed_on_its_link() {
    testns::skip_unless_root!();
    let w = world("gwll", true);
    w.client.ip("-6 route replace default via fe80::1 dev va");
    w.router.ip("addr add fe80::1/64 dev vb nodad");
    assert!(w.connects(Family::Ipv6));
    let (monitor, sub) = watch(&w.client);
    let entry = |state: &Snapshot| state.gateways.iter().find(|g| g.address.to_string() == "fe80::1").cloned();
    let followed = entry(&monitor.snapshot()).expect("the link-local gateway is followed");
    assert_eq!(followed.interface_index, w.client.index("va"));
    // check() has the kernel probe it: it answers, the family stays online.
    let state = monitor.check().expect("check");
    assert_eq!(entry(&state).map(|g| g.state), Some(NeighbourState::Reachable));
    assert_eq!(level(&state, Family::Ipv6), Level::Online);
    // The router drops its link-local address: check() finds the gateway failed.
    w.router.ip("addr del fe80::1/64 dev vb");
    let state = monitor.check().expect("check");
    let ground = &w.client.ip_json("neigh show fe80::1 dev va")[0]["state"][0];
    assert_eq!(ground, "FAILED");
    assert_eq!(level(&state, Family::Ipv6), Level::Site);
    let Some(Reason::GatewayUnreachable { route, .. }) = &state.reasons.ipv6 else { panic!("{:?}", state.reasons) };
    assert_eq!(route.gateway.map(|g| g.to_string()).as_deref(), Some("fe80::1"));
    assert!(!w.connects(Family::Ipv6));
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Site);
    w.router.ip("addr add fe80::1/64 dev vb nodad");
    assert!(w.connects(Family::Ipv6));
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
}

#[test]
fn nothing_is_asked_for_an_ipv6_gateway_while_the_link_local_address_is_tentative() {
    testns::skip_unless_root!();
    let w = world("gwdad", false);
    // A new link-local address under duplicate address detection for ~5 s (50 probes, 100 ms
    // apart), the only one: the kernel would have no source for its solicitations.
    let dad = w.client.command("sysctl").args(["-qw", "net.ipv6.conf.va.dad_transmits=50"]).status();
    assert!(dad.expect("sysctl").success());
    w.client.ip("-6 addr flush dev va scope link");
    w.client.ip("-6 addr add fe80::10/64 dev va");
    assert!(w.client.ip("-6 addr show dev va scope link").contains("tentative"));
    let monitor = Monitor::builder().netns(w.client.name()).build().expect("monitor");
    let state = monitor.check().expect("check");
    assert!(w.client.ip("-6 addr show dev va scope link").contains("tentative"), "still under DAD");
    // IPv4 was asked (and fails: nobody answers); IPv6 was not, so it fails nothing.
    assert_eq!((w.kernel_entry(Family::Ipv4), w.kernel_entry(Family::Ipv6)), ("FAILED".into(), "none".into()));
    assert_eq!((level(&state, Family::Ipv4), level(&state, Family::Ipv6)), (Level::Site, Level::Online));
}
