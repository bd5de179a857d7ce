//! The derivation from the kernel's route decision: levels and reasons (pure, table-driven).

use super::tests::iface;
use super::*;
use crate::model::{DefaultRoute, OperState, Reject};

fn out(index: u32, prefix: &str, len: u8, source: &str) -> RouteAnswer {
    RouteAnswer::Out {
        route: KernelRoute {
            prefix: prefix.parse().unwrap(),
            prefix_len: len,
            table: 254,
            interface_index: index,
            interface: String::new(),
            gateway: None,
            source: Some(source.parse().unwrap()),
            nexthops: Vec::new(),
        },
    }
}

fn decided(answers: Vec<(&str, RouteAnswer)>) -> Vec<RouteDecision> {
    answers.into_iter().map(|(d, answer)| RouteDecision { destination: d.parse().unwrap(), answer }).collect()
}

fn state(interfaces: Vec<Interface>, answers: Vec<(&str, RouteAnswer)>) -> NetworkState {
    NetworkState { interfaces, route_decisions: decided(answers), ..Default::default() }
}

#[test]
fn the_decision_decides_and_says_why() {
    let eth = || iface(2, "eth0", InterfaceKind::Ethernet, &["192.0.2.10/24", "fe80::1/64"]);
    let v4 = |a: RouteAnswer, b: RouteAnswer| vec![("64.0.0.1", a), ("160.0.0.1", b)];
    let online = state(vec![eth()], v4(out(2, "0.0.0.0", 0, "192.0.2.10"), out(2, "0.0.0.0", 0, "192.0.2.10")));
    let (levels, reasons) = kernel_reading(&online);
    assert_eq!(levels.ipv4.reachability, Level::Online);
    let Some(Reason::RoutedOut { route }) = &reasons.ipv4 else { panic!("{reasons:?}") };
    assert_eq!(route.interface, "eth0", "the name comes from the interfaces");
    assert_eq!(levels.ipv6.reachability, Level::Local, "no IPv6 decision: the default-route table");

    // Half of the internet refused: not online, and the refusal is the reason.
    let half = state(
        vec![eth()],
        v4(out(2, "0.0.0.0", 1, "192.0.2.10"), RouteAnswer::Rejected { reject: Reject::Unreachable }),
    );
    let (levels, reasons) = kernel_reading(&half);
    assert_eq!(levels.ipv4.reachability, Level::Site);
    assert_eq!(reasons.ipv4, Some(Reason::Rejected { reject: Reject::Unreachable }));

    // No carrier on the chosen link, a ready fallback default elsewhere: the hint names it.
    let mut dead = eth();
    dead.carrier = false;
    let wifi = iface(3, "wlan0", InterfaceKind::Wifi, &["198.51.100.7/24"]);
    let mut linkdown =
        state(vec![dead, wifi], v4(out(2, "0.0.0.0", 0, "192.0.2.10"), out(2, "0.0.0.0", 0, "192.0.2.10")));
    let default = |index, metric| DefaultRoute {
        family: Family::Ipv4,
        gateway: None,
        interface: String::new(),
        interface_index: index,
        metric,
        table: 254,
    };
    linkdown.default_routes = vec![default(2, 100), default(3, 600)];
    let (levels, reasons) = kernel_reading(&linkdown);
    assert_eq!(levels.ipv4.reachability, Level::Site, "wlan0's address still counts");
    let Some(Reason::NoCarrier { fallback: Some(fallback), .. }) = &reasons.ipv4 else { panic!("{reasons:?}") };
    assert_eq!((fallback.interface.as_str(), fallback.metric), ("wlan0", 600));

    // A source the kernel borrows from lo counts; a link-local or unknown one does not.
    let lo = iface(1, "lo", InterfaceKind::Loopback, &["127.0.0.1/8", "203.0.113.5/32"]);
    let bare = iface(2, "eth0", InterfaceKind::Ethernet, &["fe80::1/64"]);
    let unnumbered = state(
        vec![lo.clone(), bare.clone()],
        v4(out(2, "0.0.0.0", 0, "203.0.113.5"), out(2, "0.0.0.0", 0, "203.0.113.5")),
    );
    assert_eq!(kernel_reading(&unnumbered).0.ipv4.reachability, Level::Online);
    let six = |source| state(vec![lo.clone(), bare.clone()], vec![("2800::1", out(2, "::", 0, source))]);
    let (levels, reasons) = kernel_reading(&six("fe80::1"));
    assert_eq!(levels.ipv6.reachability, Level::Local);
    assert!(matches!(reasons.ipv6, Some(Reason::NoSource { .. })), "{reasons:?}");
    assert!(matches!(kernel_reading(&six("2001:db8::99")).1.ipv6, Some(Reason::NoSource { .. })));

    // A VPN the decision leaves through counts for the lower rows even without a way out.
    let mut tun = iface(4, "wg0", InterfaceKind::Vpn, &["198.18.0.2/32"]);
    tun.carrier = false;
    tun.oper_state = OperState::Unknown;
    let vpn = state(vec![tun], v4(out(4, "0.0.0.0", 0, "198.18.0.2"), out(4, "0.0.0.0", 0, "198.18.0.2")));
    assert_eq!(kernel_reading(&vpn).0.ipv4.reachability, Level::Disconnected, "not ready: does not count");
}

#[test]
fn reasons_read_as_one_sentence() {
    let route = KernelRoute {
        prefix: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        table: 254,
        interface_index: 2,
        interface: "eth0".into(),
        gateway: Some("192.0.2.1".parse().unwrap()),
        source: Some("192.0.2.10".parse().unwrap()),
        nexthops: Vec::new(),
    };
    let fallback = Some(Fallback { interface: "eth1".into(), metric: 200 });
    assert_eq!(
        Reason::NoCarrier { route: route.clone(), fallback }.to_string(),
        "the kernel routes 0.0.0.0/0 via 192.0.2.1 dev eth0, which has no carrier (a default via eth1 exists at \
         metric 200; set net.ipv4.conf.eth0.ignore_routes_with_linkdown=1 to fail over)"
    );
    let vpn = KernelRoute { table: 51820, interface: "wg0".into(), gateway: None, ..route.clone() };
    assert_eq!(
        Reason::RoutedOut { route: vpn }.to_string(),
        "the kernel routes 0.0.0.0/0 dev wg0 (table 51820) from 192.0.2.10"
    );
    assert_eq!(
        Reason::GatewayUnreachable { route: route.clone(), since: Some(1_764_676_984) }.to_string(),
        "the kernel routes 0.0.0.0/0 via 192.0.2.1 dev eth0, but gateway 192.0.2.1 does not answer ARP on eth0 since \
         12:03:04 UTC"
    );
    let json = serde_json::to_value(Reason::GatewayUnreachable { route: route.clone(), since: None }).unwrap();
    assert_eq!(json["code"], "gateway_unreachable");
    assert!(json.get("since").is_none(), "{json}");
    assert_eq!(Reason::Expired { route }.to_string(), "the lifetime of the route 0.0.0.0/0 dev eth0 expired");
}

#[test]
fn a_gateway_the_kernel_cannot_reach_lowers_its_family_to_site() {
    use crate::model::{GatewayNeighbour, NeighbourState as N};
    let eth = || iface(2, "eth0", InterfaceKind::Ethernet, &["192.0.2.10/24", "2001:db8::10/64"]);
    let via = |gateway: &str, prefix: &str, source: &str| {
        let RouteAnswer::Out { mut route } = out(2, prefix, 0, source) else { unreachable!() };
        route.gateway = Some(gateway.parse().unwrap());
        RouteAnswer::Out { route }
    };
    let answers = || {
        vec![
            ("64.0.0.1", via("192.0.2.1", "0.0.0.0", "192.0.2.10")),
            ("160.0.0.1", via("192.0.2.1", "0.0.0.0", "192.0.2.10")),
            ("2800::1", via("fe80::1", "::", "2001:db8::10")),
        ]
    };
    let entry = |address: &str, index, state, since| GatewayNeighbour {
        address: address.parse().unwrap(),
        interface_index: index,
        state,
        unanswered_since: since,
    };
    // (IPv4 gateway's entry, the IPv4 level, whether the reason is the gateway)
    let cases = [
        (None, Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Failed, Some(43_384))), Level::Site, true),
        (Some(entry("192.0.2.1", 2, N::Failed, None)), Level::Site, true),
        // Retried after failing: still no answer.
        (Some(entry("192.0.2.1", 2, N::Incomplete, Some(43_384))), Level::Site, true),
        // Resolving for the first time: no evidence yet.
        (Some(entry("192.0.2.1", 2, N::Incomplete, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::None, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Reachable, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Stale, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Delay, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Probe, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Permanent, None)), Level::Online, false),
        (Some(entry("192.0.2.1", 2, N::Noarp, None)), Level::Online, false),
        // The same address on another link, or another address: not this route's gateway.
        (Some(entry("192.0.2.1", 3, N::Failed, Some(1))), Level::Online, false),
        (Some(entry("192.0.2.2", 2, N::Failed, Some(1))), Level::Online, false),
    ];
    for (gateway, level, blamed) in cases {
        let mut s = state(vec![eth()], answers());
        s.gateways = gateway.iter().cloned().collect();
        s.gateways.push(entry("fe80::1", 2, N::Reachable, None));
        let (levels, reasons) = kernel_reading(&s);
        assert_eq!(levels.ipv4.reachability, level, "{gateway:?}");
        assert_eq!(levels.ipv6.reachability, Level::Online, "the other family's gateway answers: {gateway:?}");
        let Some(reason) = &reasons.ipv4 else { panic!() };
        assert_eq!(matches!(reason, Reason::GatewayUnreachable { .. }), blamed, "{gateway:?}: {reason:?}");
        if let Reason::GatewayUnreachable { since, .. } = reason {
            assert_eq!(*since, gateway.and_then(|g| g.unanswered_since));
        }
    }
    // IPv6: neighbour discovery, on the link the route names; the level is site.
    let mut s = state(vec![eth()], answers());
    s.gateways = vec![entry("fe80::1", 2, N::Failed, Some(43_384 + 86_400))];
    let (levels, reasons) = kernel_reading(&s);
    assert_eq!((levels.ipv4.reachability, levels.ipv6.reachability), (Level::Online, Level::Site));
    assert_eq!(
        reasons.ipv6.unwrap().to_string(),
        "the kernel routes ::/0 via fe80::1 dev eth0, but gateway fe80::1 does not answer neighbour discovery on \
         eth0 since 12:03:04 UTC"
    );
}
