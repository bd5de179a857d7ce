//! Multipath (ECMP) routes some of whose members have no carrier: the judgment is the same
//! whichever member the representative destinations hash to (pure, table-driven).

use super::tests::iface;
use super::*;
use crate::model::Nexthop;

/// A member through `index` with the kernel's flags.
fn hop(index: u32, gateway: &str, linkdown: bool, dead: bool) -> Nexthop {
    Nexthop {
        interface_index: index,
        interface: String::new(),
        gateway: Some(gateway.parse().unwrap()),
        linkdown,
        dead,
    }
}

/// The answer when the lookup hashed onto `hashed` (0: wa, 1: wb) of `members`.
fn hashed_onto(members: &[Nexthop], hashed: usize) -> RouteAnswer {
    let chosen = &members[hashed];
    let source = if chosen.interface_index == 2 { "192.0.2.10" } else { "198.51.100.10" };
    RouteAnswer::Out {
        route: KernelRoute {
            prefix: "0.0.0.0".parse().unwrap(),
            prefix_len: 0,
            table: 254,
            interface_index: chosen.interface_index,
            interface: String::new(),
            gateway: chosen.gateway,
            source: Some(source.parse().unwrap()),
            nexthops: members.to_vec(),
        },
    }
}

/// wa (2) and wb (3), with or without carrier; the two IPv4 destinations hashed onto
/// `hashes`.
fn state(wa: bool, wb: bool, members: &[Nexthop], hashes: [usize; 2]) -> NetworkState {
    let mut a = iface(2, "wa", InterfaceKind::Ethernet, &["192.0.2.10/24"]);
    let mut b = iface(3, "wb", InterfaceKind::Ethernet, &["198.51.100.10/24"]);
    a.carrier = wa;
    b.carrier = wb;
    let decide = |d: &str, h: usize| RouteDecision { destination: d.parse().unwrap(), answer: hashed_onto(members, h) };
    NetworkState {
        interfaces: vec![a, b],
        route_decisions: vec![decide("64.0.0.1", hashes[0]), decide("160.0.0.1", hashes[1])],
        ..Default::default()
    }
}

/// What a reading comes to: the level, the reason's code, the interface it names, and the
/// members without carrier it names.
fn summary(state: &NetworkState) -> (Level, String, String, Vec<String>) {
    let (levels, reasons) = kernel_reading(state);
    let reason = reasons.ipv4.expect("a reason");
    let code = serde_json::to_value(&reason).unwrap()["code"].as_str().unwrap().to_owned();
    let (interface, dark) = match &reason {
        Reason::PartlyNoCarrier { route, without_carrier } => (route.interface.clone(), without_carrier.clone()),
        Reason::RoutedOut { route } | Reason::NoCarrier { route, .. } => (route.interface.clone(), Vec::new()),
        other => panic!("{other:?}"),
    };
    (levels.ipv4.reachability, code, interface, dark)
}

#[test]
fn a_member_without_carrier_is_named_whichever_member_the_lookup_hashed_to() {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (case, wa carrier, wb carrier, members, expected level, code, interface, without carrier)
    let cases = [
        ("healthy", true, true, [false, false], Level::Online, "routed_out", Some("wa"), s(&[])),
        // The kernel flags it (IPv6, recent IPv4) and the state says so.
        ("wb lost carrier", true, false, [true, false], Level::Online, "partly_no_carrier", Some("wa"), s(&["wb"])),
        // The state says so before the kernel's flag (or a kernel that does not flag IPv4).
        ("wb unflagged", true, false, [false, false], Level::Online, "partly_no_carrier", Some("wa"), s(&["wb"])),
        ("wa lost carrier", false, true, [false, true], Level::Online, "partly_no_carrier", Some("wb"), s(&["wa"])),
        // ignore_routes_with_linkdown: the kernel marks it dead and skips it.
        ("wb skipped", true, false, [true, true], Level::Online, "routed_out", Some("wa"), s(&[])),
        ("both lost carrier", false, false, [true, false], Level::Disconnected, "no_carrier", Some("wa"), s(&[])),
    ];
    for (case, wa, wb, [linkdown, dead], level, code, interface, dark) in cases {
        let members = |wa_flags: (bool, bool), wb_flags: (bool, bool)| {
            vec![hop(2, "192.0.2.1", wa_flags.0, wa_flags.1), hop(3, "198.51.100.1", wb_flags.0, wb_flags.1)]
        };
        let members = match case {
            "wa lost carrier" => members((linkdown, false), (false, false)),
            "both lost carrier" => members((true, false), (true, false)),
            _ => members((false, false), (linkdown, dead)),
        };
        // A dead member is never hashed onto; otherwise every combination of hashes.
        let choices: Vec<usize> = (0..2).filter(|h| !members[*h].dead).collect();
        let mut seen = Vec::new();
        for &first in &choices {
            for &second in &choices {
                seen.push(summary(&state(wa, wb, &members, [first, second])));
            }
        }
        let got = &seen[0];
        assert!(seen.iter().all(|s| s == got), "{case}: the hash changed the answer: {seen:?}");
        assert_eq!((got.0, got.1.as_str()), (level, code), "{case}");
        if let Some(interface) = interface {
            assert_eq!(got.2, interface, "{case}");
        }
        assert_eq!(got.3, dark, "{case}");
    }
}

#[test]
fn the_sentence_names_the_members_and_the_knob() {
    let members = vec![hop(2, "192.0.2.1", false, false), hop(3, "198.51.100.1", true, false)];
    let (_, reasons) = kernel_reading(&state(true, false, &members, [1, 1]));
    let reason = reasons.ipv4.unwrap();
    assert_eq!(
        reason.to_string(),
        "the kernel spreads flows over wa and wb; wb has no carrier, so some connections will time out \
         (set net.ipv4.conf.wb.ignore_routes_with_linkdown=1 to fail over)"
    );
    let Reason::PartlyNoCarrier { route, .. } = &reason else { panic!("{reason:?}") };
    assert_eq!((route.gateway, route.source), (Some("192.0.2.1".parse().unwrap()), None), "moved onto wa");
    let json = serde_json::to_value(&reason).unwrap();
    assert_eq!(json["without_carrier"], serde_json::json!(["wb"]));
    assert_eq!(json["route"]["nexthops"][1]["interface"], "wb");
    assert_eq!(json["route"]["nexthops"][1]["linkdown"], true);
    // Three members, two without carrier: every knob is named.
    let mut third = iface(4, "wc", InterfaceKind::Ethernet, &["203.0.113.10/24"]);
    third.carrier = false;
    let members = vec![members[0].clone(), members[1].clone(), hop(4, "203.0.113.1", true, false)];
    let mut s = state(true, false, &members, [0, 0]);
    s.interfaces.push(third);
    let text = kernel_reading(&s).1.ipv4.unwrap().to_string();
    assert!(
        text.starts_with("the kernel spreads flows over wa, wb and wc; wb and wc have no carrier")
            && text.ends_with(
                "(set net.ipv4.conf.wb.ignore_routes_with_linkdown=1 and net.ipv4.conf.wc.ignore_routes_with_linkdown=1 to fail over)"
            ),
        "{text}"
    );
}

fn failed(gateway: &str, index: u32) -> crate::model::GatewayNeighbour {
    crate::model::GatewayNeighbour {
        address: gateway.parse().unwrap(),
        interface_index: index,
        state: crate::model::NeighbourState::Failed,
        unanswered_since: None,
    }
}

/// A member without carrier does not hide a gateway that does not answer on the member with
/// carrier, whichever member the lookups hashed to.
#[test]
fn the_member_with_carrier_is_still_judged() {
    let members = vec![hop(2, "192.0.2.1", false, false), hop(3, "198.51.100.1", true, false)];
    for hashes in [[0, 0], [1, 1]] {
        let mut s = state(true, false, &members, hashes);
        s.gateways = vec![failed("192.0.2.1", 2)];
        let (levels, reasons) = kernel_reading(&s);
        assert_eq!(levels.ipv4.reachability, Level::Site, "{hashes:?}");
        assert!(matches!(reasons.ipv4, Some(Reason::GatewayUnreachable { .. })), "{hashes:?}: {reasons:?}");
    }
}

/// Healthy multipath: the reason names every member, whichever the lookups hashed to; a
/// member whose gateway does not answer is passed over for one whose does, and only when
/// none answers is the family below online.
#[test]
fn healthy_multipath_names_every_member_and_prefers_an_answering_gateway() {
    let members = vec![hop(2, "192.0.2.1", false, false), hop(3, "198.51.100.1", false, false)];
    let texts: Vec<String> = [[0, 0], [0, 1], [1, 1]]
        .iter()
        .map(|h| kernel_reading(&state(true, true, &members, *h)).1.ipv4.unwrap().to_string())
        .collect();
    assert!(texts.iter().all(|t| t == &texts[0]), "{texts:?}");
    assert_eq!(texts[0], "the kernel spreads flows for 0.0.0.0/0 over wa (via 192.0.2.1) and wb (via 198.51.100.1)");
    for hashes in [[0, 0], [1, 1]] {
        let mut s = state(true, true, &members, hashes);
        s.gateways = vec![failed("192.0.2.1", 2)];
        let (levels, reasons) = kernel_reading(&s);
        assert_eq!(levels.ipv4.reachability, Level::Online, "{hashes:?}");
        let Some(Reason::RoutedOut { route }) = &reasons.ipv4 else { panic!("{reasons:?}") };
        assert_eq!(route.interface, "wb", "{hashes:?}");
        s.gateways.push(failed("198.51.100.1", 3));
        let (levels, reasons) = kernel_reading(&s);
        assert_eq!(levels.ipv4.reachability, Level::Site, "{hashes:?}");
        let Some(Reason::GatewayUnreachable { route, .. }) = &reasons.ipv4 else { panic!("{reasons:?}") };
        assert_eq!(route.interface, "wa", "{hashes:?}");
    }
}

/// IPv4 after `ignore_routes_with_linkdown` was switched on while wb was already without
/// carrier: the reply flags wb dead, but the kernel still hashes flows onto it until the
/// next link event. A lookup that lands on wb shows it: the flags are stale, wb counts.
#[test]
fn a_member_flagged_dead_that_the_kernel_still_picks_counts() {
    let members = vec![hop(2, "192.0.2.1", false, false), hop(3, "198.51.100.1", true, true)];
    let (levels, reasons) = kernel_reading(&state(true, false, &members, [1, 1]));
    assert_eq!(levels.ipv4.reachability, Level::Online);
    assert!(
        matches!(&reasons.ipv4, Some(Reason::PartlyNoCarrier { without_carrier, .. }) if without_carrier == &["wb"]),
        "{reasons:?}"
    );
    // A third member whose interface is down stays skipped.
    let mut with_down = members.clone();
    with_down.push(hop(4, "203.0.113.1", true, true));
    let mut s = state(true, false, &with_down, [1, 1]);
    let mut down = iface(4, "wc", InterfaceKind::Ethernet, &["203.0.113.10/24"]);
    down.up = false;
    s.interfaces.push(down);
    let Some(Reason::PartlyNoCarrier { without_carrier, .. }) = kernel_reading(&s).1.ipv4 else { panic!() };
    assert_eq!(without_carrier, ["wb"]);
    // Landing on wa, nothing shows the flags are stale: the kernel's word is taken (one
    // member used: the plain answer, as it is).
    let (_, reasons) = kernel_reading(&state(true, false, &members, [0, 0]));
    let Some(Reason::RoutedOut { route }) = &reasons.ipv4 else { panic!("{reasons:?}") };
    assert_eq!((route.interface.as_str(), route.source), ("wa", Some("192.0.2.10".parse().unwrap())));
}
