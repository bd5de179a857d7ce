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
use netreach::{EventKind, Family, Level, Monitor, NeighbourState, NetworkState, ReachabilityOf, Reason};
use testns::NetNs;

/// A client with `link` (192.0.2.10/24, 2001:db8::10/64) whose defaults lead through the
/// router's 192.0.2.1 and 2001:db8::1; the router holds 203.0.113.1 and 2001:db8:ffff::1 on
/// its loopback, with listeners.
struct World {
    client: NetNs,
    router: NetNs,
    listeners: Vec<TcpListener>,
}

/// Shortened neighbour timers for `dev` (inside the client namespace only): 2 solicitations
/// 100 ms apart, reachable for 200-600 ms, the first probe of a stale entry after 1 s.
fn fast_timers(ns: &NetNs, dev: &str) {
    for family in ["ipv4", "ipv6"] {
        for (key, value) in [
            ("retrans_time_ms", "100"),
            ("mcast_solicit", "2"),
            ("ucast_solicit", "2"),
            ("base_reachable_time_ms", "400"),
            ("delay_first_probe_time", "1"),
        ] {
            let setting = format!("net.{family}.neigh.{dev}.{key}={value}");
            let out = ns.command("sysctl").args(["-qw", &setting]).output().expect("sysctl");
            assert!(out.status.success(), "{setting}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The world with the client's uplink `va` straight into the router's `vb`; `gateway`: whether
/// the router answers on its side from the start.
fn world(tag: &str, gateway: bool) -> World {
    let client = NetNs::new(tag);
    let router = NetNs::new(&format!("{tag}r"));
    client.veth("va", "vb");
    client.move_link("vb", &router);
    router.ip("link set vb up");
    fast_timers(&client, "va");
    client.ip("addr add 192.0.2.10/24 dev va");
    client.ip("addr add 2001:db8::10/64 dev va nodad");
    client.ip("route add default via 192.0.2.1");
    client.ip("-6 route add default via 2001:db8::1");
    if gateway {
        answer(&router, true);
    }
    router.ip("addr add 203.0.113.1/32 dev lo");
    router.ip("addr add 2001:db8:ffff::1/128 dev lo nodad");
    let listeners = router.run_inside(|| {
        ["203.0.113.1:0", "[2001:db8:ffff::1]:0"].iter().map(|a| TcpListener::bind(a).expect("listen")).collect()
    });
    World { client, router, listeners }
}

/// The router's gateway addresses on `vb`: added (it answers) or removed (it does not).
fn answer(router: &NetNs, yes: bool) {
    let verb = if yes { "add" } else { "del" };
    router.ip(&format!("addr {verb} 192.0.2.1/24 dev vb"));
    router.ip(&format!("addr {verb} 2001:db8::1/64 dev vb nodad"));
}

impl World {
    /// Whether a TCP connection from the client through the gateway of `family` opens (it is
    /// also the traffic that makes the kernel resolve the gateway).
    fn connects(&self, family: Family) -> bool {
        let to: SocketAddr = self.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap();
        self.client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())
    }

    /// The kernel's entry of the gateway of `family`, as `ip neigh show` prints its state.
    fn kernel_entry(&self, family: Family) -> String {
        let gateway = if family == Family::Ipv4 { "192.0.2.1" } else { "2001:db8::1" };
        let v = self.client.ip_json(&format!("neigh show {gateway} dev va"));
        v[0]["state"].as_array().and_then(|s| s.first()).and_then(|s| s.as_str()).unwrap_or("none").to_owned()
    }
}

fn gateway_of(state: &NetworkState, family: Family) -> NeighbourState {
    let v4 = family == Family::Ipv4;
    state.gateways.iter().find(|g| g.address.is_ipv4() == v4).map_or(NeighbourState::None, |g| g.state)
}

fn level(state: &NetworkState, family: Family) -> Level {
    state.reachability.family(family).reachability
}

fn of(family: Family) -> ReachabilityOf {
    if family == Family::Ipv4 {
        ReachabilityOf::Ipv4
    } else {
        ReachabilityOf::Ipv6
    }
}

/// The reason of `family` names the gateway as unreachable, reading like the issue's example.
fn blames_gateway(state: &NetworkState, family: Family) {
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
fn agrees_with_fresh(w: &World, live: &NetworkState) {
    let fresh = Monitor::builder().netns(w.client.name()).build().expect("monitor").snapshot();
    let without_time = |state: &NetworkState| {
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
