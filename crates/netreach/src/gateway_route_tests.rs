//! Gateway liveness where levels come from default routes alone (Windows): the way out's
//! gateway marked failed lowers the family to `site`, and nothing else does.

use super::tests::iface;
use super::*;
use crate::model::{DefaultRoute, GatewayNeighbour, NeighbourState};

fn default(gateway: &str, index: u32, name: &str, metric: u32) -> DefaultRoute {
    let gateway: IpAddr = gateway.parse().unwrap();
    let family = if gateway.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 };
    DefaultRoute { family, gateway: Some(gateway), interface: name.into(), interface_index: index, metric, table: 254 }
}

fn neighbour(gateway: &str, index: u32, state: NeighbourState) -> GatewayNeighbour {
    GatewayNeighbour { address: gateway.parse().unwrap(), interface_index: index, state, unanswered_since: None }
}

/// A case: its name, the entries, and what IPv4 and IPv6 then read.
type Case = (&'static str, Vec<GatewayNeighbour>, (Level, Reason), (Level, Reason));

fn reading(state: &NetworkState, family: Family) -> (Level, Reason) {
    let (reachability, reasons) = kernel_reading(state);
    let level = match family {
        Family::Ipv4 => reachability.ipv4.reachability,
        Family::Ipv6 => reachability.ipv6.reachability,
    };
    (level, reasons.family(family).cloned().unwrap())
}

#[test]
fn only_a_failed_entry_of_the_way_outs_gateway_lowers_the_family() {
    use NeighbourState::{Delay, Failed, Incomplete, Permanent, Probe, Reachable, Stale};
    let eth = iface(2, "Ethernet", InterfaceKind::Ethernet, &["192.0.2.10/24", "2001:db8::10/64", "fe80::10/64"]);
    let wifi = iface(3, "Wi-Fi", InterfaceKind::Ethernet, &["198.51.100.10/24"]);
    let routes = vec![
        default("192.0.2.1", 2, "Ethernet", 10), // the way out: lowest metric
        default("198.51.100.1", 3, "Wi-Fi", 50),
        default("fe80::1", 2, "Ethernet", 10),
    ];
    let state = |gateways: Vec<GatewayNeighbour>| NetworkState {
        interfaces: vec![eth.clone(), wifi.clone()],
        default_routes: routes.clone(),
        gateways,
        ..Default::default()
    };
    let failed_v4 = KernelRoute {
        prefix: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        table: 254,
        interface_index: 2,
        interface: "Ethernet".into(),
        gateway: Some("192.0.2.1".parse().unwrap()),
        source: None,
        nexthops: Vec::new(),
    };
    // (name, neighbour entries, IPv4 expected, IPv6 expected)
    let unreachable_v4 = (Level::Site, Reason::GatewayUnreachable { route: failed_v4.clone(), since: None });
    let online = (Level::Online, Reason::DefaultRoute);
    let cases: Vec<Case> = vec![
        ("no entries (never resolved: no evidence)", vec![], online.clone(), online.clone()),
        ("reachable", vec![neighbour("192.0.2.1", 2, Reachable)], online.clone(), online.clone()),
        ("stale", vec![neighbour("192.0.2.1", 2, Stale)], online.clone(), online.clone()),
        ("delay", vec![neighbour("192.0.2.1", 2, Delay)], online.clone(), online.clone()),
        ("probe", vec![neighbour("192.0.2.1", 2, Probe)], online.clone(), online.clone()),
        ("permanent", vec![neighbour("192.0.2.1", 2, Permanent)], online.clone(), online.clone()),
        ("incomplete: still asking", vec![neighbour("192.0.2.1", 2, Incomplete)], online.clone(), online.clone()),
        ("failed", vec![neighbour("192.0.2.1", 2, Failed)], unreachable_v4.clone(), online.clone()),
        (
            "failed on another link: another host",
            vec![neighbour("192.0.2.1", 3, Failed)],
            online.clone(),
            online.clone(),
        ),
        (
            "the other route's gateway failed",
            vec![neighbour("198.51.100.1", 3, Failed)],
            online.clone(),
            online.clone(),
        ),
        (
            "both families' gateways failed",
            vec![neighbour("192.0.2.1", 2, Failed), neighbour("fe80::1", 2, Failed)],
            unreachable_v4.clone(),
            (
                Level::Site,
                Reason::GatewayUnreachable {
                    since: None,
                    route: KernelRoute {
                        prefix: "::".parse().unwrap(),
                        gateway: Some("fe80::1".parse().unwrap()),
                        ..failed_v4.clone()
                    },
                },
            ),
        ),
    ];
    for (name, gateways, v4, v6) in cases {
        let s = state(gateways);
        assert_eq!(reading(&s, Family::Ipv4), v4, "{name} (ipv4)");
        assert_eq!(reading(&s, Family::Ipv6), v6, "{name} (ipv6)");
    }
    // The sentence names the gateway, what it does not answer and where.
    let shown = Reason::GatewayUnreachable { route: failed_v4, since: None }.to_string();
    assert!(shown.contains("192.0.2.1 does not answer ARP on Ethernet"), "{shown}");
}

#[test]
fn the_way_out_skips_routes_that_cannot_carry_traffic() {
    // The lowest-metric default leaves through an interface without carrier: the next one is
    // the way out, and its gateway's failure is what counts.
    let mut eth = iface(2, "Ethernet", InterfaceKind::Ethernet, &["192.0.2.10/24"]);
    eth.carrier = false;
    let wifi = iface(3, "Wi-Fi", InterfaceKind::Ethernet, &["198.51.100.10/24"]);
    let s = NetworkState {
        interfaces: vec![eth, wifi],
        default_routes: vec![default("192.0.2.1", 2, "Ethernet", 10), default("198.51.100.1", 3, "Wi-Fi", 50)],
        gateways: vec![
            neighbour("192.0.2.1", 2, NeighbourState::Reachable),
            neighbour("198.51.100.1", 3, NeighbourState::Failed),
        ],
        ..Default::default()
    };
    let (level, reason) = reading(&s, Family::Ipv4);
    assert_eq!(level, Level::Site);
    assert!(matches!(&reason, Reason::GatewayUnreachable { route, .. } if route.interface_index == 3), "{reason:?}");
    // A route straight out of a link (no gateway) has no neighbour to fail.
    let mut s = s;
    s.default_routes = vec![DefaultRoute { gateway: None, ..default("198.51.100.1", 3, "Wi-Fi", 50) }];
    assert_eq!(reading(&s, Family::Ipv4), (Level::Online, Reason::DefaultRoute));
}

#[test]
fn with_the_kernels_route_decision_the_entries_are_not_read_here() {
    // Linux's levels come from the route decision; this rule is for default routes alone.
    let s = NetworkState {
        interfaces: vec![iface(2, "eth0", InterfaceKind::Ethernet, &["192.0.2.10/24"])],
        default_routes: vec![default("192.0.2.1", 2, "eth0", 0)],
        gateways: vec![neighbour("192.0.2.1", 2, NeighbourState::Failed)],
        route_decisions: vec![RouteDecision {
            destination: "198.51.100.7".parse().unwrap(),
            answer: RouteAnswer::NoRoute,
        }],
        ..Default::default()
    };
    assert_eq!(reading(&s, Family::Ipv4), (Level::Site, Reason::NoRoute));
}
