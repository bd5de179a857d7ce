//! `apply` and `diff` against tables, and a generator of random updates whose events must
//! rebuild the state.

use super::*;
use crate::model::InterfaceKind;

fn link(index: u32, name: &str, up: bool) -> Interface {
    Interface { index, name: name.into(), kind: InterfaceKind::Ethernet, up, carrier: up, ..Default::default() }
}

fn addr(s: &str) -> Address {
    let (a, p) = s.split_once('/').unwrap();
    Address::new(a.parse().unwrap(), p.parse().unwrap())
}

fn route(index: u32, gateway: &str, metric: u32) -> DefaultRoute {
    DefaultRoute {
        family: Family::Ipv4,
        gateway: Some(gateway.parse().unwrap()),
        interface: String::new(),
        interface_index: index,
        metric,
        table: 254,
    }
}

fn names(events: &[EventKind]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            EventKind::InterfaceAdded { .. } => "interface_added",
            EventKind::InterfaceRemoved { .. } => "interface_removed",
            EventKind::InterfaceChanged { .. } => "interface_changed",
            EventKind::AddressAdded { .. } => "address_added",
            EventKind::AddressRemoved { .. } => "address_removed",
            EventKind::AddressChanged { .. } => "address_changed",
            EventKind::DefaultRouteAdded { .. } => "route_added",
            EventKind::DefaultRouteRemoved { .. } => "route_removed",
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn apply_table() {
    let base = || {
        let mut s = NetworkState::default();
        apply(&mut s, Update::Link(link(2, "eth0", true)));
        apply(&mut s, Update::AddressAdded(2, addr("192.0.2.10/24")));
        apply(&mut s, Update::RouteAdded(route(2, "192.0.2.1", 0)));
        s
    };
    let tentative = {
        let mut a = addr("192.0.2.10/24");
        a.flags.tentative = true;
        a
    };
    let refreshed = {
        let mut a = addr("192.0.2.10/24");
        a.valid_lifetime = Some(100);
        a
    };
    let cases: Vec<(&str, Update, Vec<&str>)> = vec![
        ("same link again", Update::Link(link(2, "eth0", true)), vec![]),
        ("link down flushes routes", Update::Link(link(2, "eth0", false)), vec!["interface_changed", "route_removed"]),
        ("rename", Update::Link(link(2, "wan0", true)), vec!["interface_changed"]),
        ("new link", Update::Link(link(3, "eth1", true)), vec!["interface_added"]),
        ("link removed", Update::LinkRemoved(2), vec!["address_removed", "route_removed", "interface_removed"]),
        ("unknown link removed", Update::LinkRemoved(9), vec![]),
        ("lifetime refresh", Update::AddressAdded(2, refreshed), vec![]),
        ("flags change", Update::AddressAdded(2, tentative), vec!["address_changed"]),
        ("other prefix is another address", Update::AddressAdded(2, addr("192.0.2.10/25")), vec!["address_added"]),
        ("address on unknown link", Update::AddressAdded(9, addr("192.0.2.11/24")), vec![]),
        (
            "last v4 address removed",
            Update::AddressRemoved(2, addr("192.0.2.10/24")),
            vec!["address_removed", "route_removed"],
        ),
        ("unknown address removed", Update::AddressRemoved(2, addr("192.0.2.99/24")), vec![]),
        ("same route again", Update::RouteAdded(route(2, "192.0.2.1", 0)), vec![]),
        ("second route", Update::RouteAdded(route(2, "192.0.2.2", 10)), vec!["route_added"]),
        ("replace", Update::RouteReplaced(route(2, "192.0.2.254", 0)), vec!["route_removed", "route_added"]),
        ("replace other metric", Update::RouteReplaced(route(2, "192.0.2.254", 7)), vec!["route_added"]),
        ("route removed", Update::RouteRemoved(route(2, "192.0.2.1", 0)), vec!["route_removed"]),
        ("unknown route removed", Update::RouteRemoved(route(2, "192.0.2.1", 99)), vec![]),
    ];
    for (name, update, want) in cases {
        let mut state = base();
        let events = apply(&mut state, update);
        assert_eq!(names(&events), want, "case: {name}");
    }
}

#[test]
fn refresh_keeps_latest_lifetimes_and_rename_follows_routes() {
    let mut s = NetworkState::default();
    apply(&mut s, Update::Link(link(2, "eth0", true)));
    apply(&mut s, Update::RouteAdded(route(2, "192.0.2.1", 0)));
    assert_eq!(s.default_routes[0].interface, "eth0");
    apply(&mut s, Update::Link(link(2, "wan0", true)));
    assert_eq!(s.default_routes[0].interface, "wan0");
    let mut a = addr("2001:db8::1/64");
    apply(&mut s, Update::AddressAdded(2, a.clone()));
    a.valid_lifetime = Some(42);
    assert!(apply(&mut s, Update::AddressAdded(2, a)).is_empty());
    assert_eq!(s.interfaces[0].addresses[0].valid_lifetime, Some(42));
}

/// Applies events literally, the way a subscriber mirroring the state would: no kernel
/// rules, just what each event says.
fn replay(state: &mut NetworkState, events: &[EventKind]) {
    for e in events.iter().cloned() {
        match e {
            EventKind::InterfaceAdded { interface } => {
                let at = state.position(interface.index).unwrap_err();
                state.interfaces.insert(at, interface);
            }
            EventKind::InterfaceChanged { after, .. } => {
                let i = state.position(after.index).unwrap();
                let addresses = std::mem::take(&mut state.interfaces[i].addresses);
                state.interfaces[i] = Interface { addresses, ..after };
            }
            EventKind::InterfaceRemoved { interface } => {
                let i = state.position(interface.index).unwrap();
                assert!(state.interfaces[i].addresses.is_empty(), "addresses are removed first");
                state.interfaces.remove(i);
            }
            EventKind::AddressAdded { index, address, .. } => {
                let i = state.position(index).unwrap();
                let iface = &mut state.interfaces[i];
                let at = iface.addresses.binary_search_by_key(&address.key(), Address::key).unwrap_err();
                iface.addresses.insert(at, address);
            }
            EventKind::AddressChanged { index, after, .. } => {
                let i = state.position(index).unwrap();
                let iface = &mut state.interfaces[i];
                let at = iface.addresses.binary_search_by_key(&after.key(), Address::key).unwrap();
                iface.addresses[at] = after;
            }
            EventKind::AddressRemoved { index, address, .. } => {
                let i = state.position(index).unwrap();
                let iface = &mut state.interfaces[i];
                let at = iface.addresses.binary_search_by_key(&address.key(), Address::key).unwrap();
                iface.addresses.remove(at);
            }
            EventKind::DefaultRouteAdded { route } => {
                state.default_routes.push(route);
                sort_routes(&mut state.default_routes);
            }
            EventKind::DefaultRouteRemoved { route } => {
                let at = state.default_routes.iter().position(|r| r.same_route(&route)).unwrap();
                state.default_routes.remove(at);
            }
            other => panic!("unexpected {other:?}"),
        }
        let names: Vec<String> = state
            .default_routes
            .iter()
            .map(|r| state.interface(r.interface_index).map(|i| i.name.clone()).unwrap_or_default())
            .collect();
        for (r, name) in state.default_routes.iter_mut().zip(names) {
            r.interface = name;
        }
    }
}

/// A small deterministic generator (no dependency needed for a few thousand cases).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn random_update(rng: &mut Rng) -> Update {
    let index = 1 + rng.below(4) as u32;
    let a = format!("198.51.100.{}/{}", 1 + rng.below(6), 24 + rng.below(2));
    match rng.below(7) {
        0 => Update::Link(link(index, &format!("if{}", rng.below(8)), rng.below(3) > 0)),
        1 => Update::LinkRemoved(index),
        2 | 3 => {
            let mut address = addr(&a);
            address.flags.tentative = rng.below(4) == 0;
            Update::AddressAdded(index, address)
        }
        4 => Update::AddressRemoved(index, addr(&a)),
        5 => Update::RouteAdded(route(index, &format!("198.51.100.{}", 1 + rng.below(3)), rng.below(2) as u32)),
        _ => Update::RouteRemoved(route(index, &format!("198.51.100.{}", 1 + rng.below(3)), rng.below(2) as u32)),
    }
}

#[test]
fn events_from_apply_and_diff_rebuild_the_state() {
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let mut state = NetworkState::default();
        for _ in 0..rng.below(12) {
            apply(&mut state, random_update(&mut rng));
        }
        let start = state.clone();
        let mut rebuilt = state.clone();
        for _ in 0..1 + rng.below(12) {
            let events = apply(&mut state, random_update(&mut rng));
            replay(&mut rebuilt, &events);
            assert_eq!(rebuilt, state, "incremental events must rebuild the state");
        }
        let mut from_diff = start.clone();
        replay(&mut from_diff, &diff(&start, &state));
        assert_eq!(from_diff, state, "diff must rebuild the state");
        assert!(diff(&state, &state).is_empty());
    }
}
