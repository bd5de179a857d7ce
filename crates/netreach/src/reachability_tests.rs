//! The kernel derivation table, row by row (pure).

use super::*;
use crate::model::{Address, AddressFlags, DefaultRoute};

/// A ready interface with these addresses (`ADDRESS/LEN`); shared by the derivation's test
/// modules (`reason_tests.rs`, `gateway_route_tests.rs`).
pub(super) fn iface(index: u32, name: &str, kind: InterfaceKind, addrs: &[&str]) -> Interface {
    Interface {
        index,
        name: name.into(),
        kind,
        up: true,
        carrier: true,
        oper_state: crate::model::OperState::Up,
        addresses: addrs
            .iter()
            .map(|s| {
                let (a, p) = s.split_once('/').unwrap();
                Address::new(a.parse().unwrap(), p.parse().unwrap())
            })
            .collect(),
        ..Default::default()
    }
}

fn route(family: Family, index: u32) -> DefaultRoute {
    DefaultRoute { family, gateway: None, interface: String::new(), interface_index: index, metric: 0, table: 254 }
}

fn levels(state: &NetworkState) -> (Level, Level, Level) {
    let r = derive_kernel_reachability(state);
    (r.ipv4.reachability, r.ipv6.reachability, r.overall)
}

use Level::*;

#[test]
fn table() {
    struct Case {
        name: &'static str,
        ifaces: Vec<Interface>,
        routes: Vec<DefaultRoute>,
        expect: (Level, Level, Level),
    }
    let eth = |addrs: &[&str]| iface(2, "if2", InterfaceKind::Ethernet, addrs);
    let down = |mut i: Interface| {
        i.up = false;
        i
    };
    let no_carrier = |mut i: Interface| {
        i.carrier = false;
        i
    };
    let cases = vec![
        Case { name: "nothing", ifaces: vec![], routes: vec![], expect: (Disconnected, Disconnected, Disconnected) },
        Case {
            name: "loopback only",
            ifaces: vec![iface(1, "if1", InterfaceKind::Loopback, &["127.0.0.1/8", "::1/128"])],
            routes: vec![],
            expect: (Disconnected, Disconnected, Disconnected),
        },
        Case {
            name: "link-local only",
            ifaces: vec![eth(&["169.254.3.4/16", "fe80::1/64"])],
            routes: vec![],
            expect: (Local, Local, Local),
        },
        Case {
            name: "routable, no default route",
            ifaces: vec![eth(&["192.0.2.10/24", "fe80::1/64"])],
            routes: vec![],
            expect: (Site, Local, Site),
        },
        Case {
            name: "default route v4",
            ifaces: vec![eth(&["192.0.2.10/24", "fe80::1/64"])],
            routes: vec![route(Family::Ipv4, 2)],
            expect: (Online, Local, Online),
        },
        Case {
            name: "default route v6 only",
            ifaces: vec![eth(&["2001:db8::10/64", "fe80::1/64"])],
            routes: vec![route(Family::Ipv6, 2)],
            expect: (Disconnected, Online, Online),
        },
        Case {
            name: "v6 default route but only link-local address",
            ifaces: vec![eth(&["fe80::1/64"])],
            routes: vec![route(Family::Ipv6, 2)],
            expect: (Disconnected, Local, Local),
        },
        Case {
            name: "default route via an unknown interface",
            ifaces: vec![eth(&["192.0.2.10/24"]), iface(3, "if3", InterfaceKind::Ethernet, &["198.51.100.1/24"])],
            routes: vec![route(Family::Ipv4, 9)],
            expect: (Site, Disconnected, Site),
        },
        Case {
            name: "admin down",
            ifaces: vec![down(eth(&["192.0.2.10/24"]))],
            routes: vec![route(Family::Ipv4, 2)],
            expect: (Disconnected, Disconnected, Disconnected),
        },
        Case {
            name: "carrier lost keeps route but not online",
            ifaces: vec![no_carrier(eth(&["192.0.2.10/24"]))],
            routes: vec![route(Family::Ipv4, 2)],
            expect: (Disconnected, Disconnected, Disconnected),
        },
        Case {
            name: "container bridge without default route does not count",
            ifaces: vec![iface(3, "if3", InterfaceKind::Bridge, &["172.17.0.1/16", "fe80::2/64"])],
            routes: vec![],
            expect: (Disconnected, Disconnected, Disconnected),
        },
        Case {
            name: "veth counts (namespace uplink)",
            ifaces: vec![iface(3, "if3", InterfaceKind::Veth, &["192.0.2.2/24"])],
            routes: vec![],
            expect: (Site, Disconnected, Site),
        },
        Case {
            name: "vpn carrying the default route",
            ifaces: vec![iface(4, "if4", InterfaceKind::Vpn, &["203.0.113.5/32"])],
            routes: vec![route(Family::Ipv4, 4)],
            expect: (Online, Disconnected, Online),
        },
    ];
    for c in cases {
        let state = NetworkState { interfaces: c.ifaces, default_routes: c.routes, ..Default::default() };
        assert_eq!(levels(&state), c.expect, "case: {}", c.name);
    }
}

#[test]
fn unusable_addresses_do_not_count() {
    for flags in [
        AddressFlags { tentative: true, ..Default::default() },
        AddressFlags { dad_failed: true, ..Default::default() },
    ] {
        let mut i = iface(2, "if2", InterfaceKind::Ethernet, &["2001:db8::10/64"]);
        i.addresses[0].flags = flags;
        let state =
            NetworkState { interfaces: vec![i], default_routes: vec![route(Family::Ipv6, 2)], ..Default::default() };
        assert_eq!(levels(&state).1, Disconnected, "{flags:?}");
    }
    let mut i = iface(2, "if2", InterfaceKind::Ethernet, &["2001:db8::10/64"]);
    i.addresses[0].flags.deprecated = true;
    let state =
        NetworkState { interfaces: vec![i], default_routes: vec![route(Family::Ipv6, 2)], ..Default::default() };
    assert_eq!(levels(&state).1, Online, "deprecated still usable");
}
