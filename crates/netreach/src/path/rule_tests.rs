//! Table tests of the rule: the decision table, the system's verdict, validation, prefixes.

use std::net::IpAddr;
use std::sync::Arc;

use super::lookup::{Answer, Query, Route, RouteLookup};
use super::rule::{check_against_state, evaluate, in_prefix, validate_path, Names};
use crate::model::{Address, Interface, InterfaceKind, NetworkState, PathState, Unreachable};

/// A fixed routing answer: the unit under test is the decision table, not the kernel
/// (the kernel itself is exercised by the namespace tests in tests/paths.rs).
struct FixedRoute(std::io::Result<Option<u32>>);
impl RouteLookup for FixedRoute {
    fn route(&mut self, _: &Query) -> Answer {
        match &self.0 {
            Ok(v) => Ok(v.map(Route::out)),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}

fn state(configure: impl FnOnce(&mut Interface)) -> NetworkState {
    let mut eth = Interface {
        index: 2,
        name: "eth0".into(),
        kind: InterfaceKind::Ethernet,
        up: true,
        carrier: true,
        addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
        ..Default::default()
    };
    configure(&mut eth);
    let wlan = Interface { index: 3, name: "wlan0".into(), up: true, carrier: true, ..Default::default() };
    NetworkState { interfaces: vec![eth, wlan], ..Default::default() }
}

fn reason(state: &NetworkState, remote: &str, route: std::io::Result<Option<u32>>) -> Option<Unreachable> {
    let query = Query::plain("192.0.2.10".parse().unwrap(), remote.parse().unwrap());
    let e = evaluate(state, &query, 0, &mut FixedRoute(route), &mut Names::default());
    // The owner is named unless it is gone, and a reason naming an interface names that one.
    let named = match e.status.reason() {
        Some(Unreachable::InterfaceDown { interface } | Unreachable::NoCarrier { interface }) => Some(&**interface),
        _ => e.status.interface(),
    };
    let gone = e.status.reason() == Some(&Unreachable::LocalAddressGone);
    assert_eq!((e.status.interface(), named), if gone { (None, None) } else { (Some("eth0"), Some("eth0")) });
    assert_eq!(e.owner.is_none(), gone);
    e.status.reason().cloned()
}

#[test]
fn rule_table() {
    let eth0 = || Arc::<str>::from("eth0");
    let ok = state(|_| {});
    assert_eq!(reason(&ok, "198.51.100.1", Ok(Some(2))), None);
    assert_eq!(reason(&ok, "198.51.100.1", Ok(None)), Some(Unreachable::NoRoute));
    assert_eq!(
        reason(&ok, "198.51.100.1", Ok(Some(3))),
        Some(Unreachable::RouteViaOtherInterface { expected: eth0(), actual: Arc::from("wlan0") })
    );
    assert!(matches!(
        reason(&ok, "198.51.100.1", Err(std::io::Error::other("boom"))),
        Some(Unreachable::LookupFailed { .. })
    ));
    let gone = state(|i| i.addresses.clear());
    assert_eq!(reason(&gone, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressGone));
    let tentative = state(|i| i.addresses[0].flags.tentative = true);
    assert_eq!(reason(&tentative, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressTentative));
    let failed = state(|i| i.addresses[0].flags.dad_failed = true);
    assert_eq!(reason(&failed, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressDadFailed));
    let down = state(|i| i.up = false);
    assert_eq!(reason(&down, "198.51.100.1", Ok(Some(2))), Some(Unreachable::InterfaceDown { interface: eth0() }));
    let no_carrier = state(|i| i.carrier = false);
    assert_eq!(reason(&no_carrier, "192.0.2.20", Ok(Some(2))), Some(Unreachable::NoCarrier { interface: eth0() }));
}

/// A route out of eth0 plus a fixed system verdict (Windows' NLM, in production).
struct Judged(Option<bool>);
impl RouteLookup for Judged {
    fn route(&mut self, _: &Query) -> Answer {
        Ok(Some(Route::out(2)))
    }
    fn connectivity(&mut self, interface: u32, local: IpAddr, _: IpAddr, _: bool, since: u64) -> Option<bool> {
        // The path's own ends and its creation time reach the judge.
        assert_eq!((interface, local, since), (2, "192.0.2.10".parse().unwrap(), 7));
        self.0
    }
}

#[test]
fn system_connectivity_verdict() {
    let s = state(|_| {});
    let query = Query::plain("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap());
    let reason =
        |verdict| evaluate(&s, &query, 7, &mut Judged(verdict), &mut Names::default()).status.reason().cloned();
    assert_eq!(reason(Some(false)), Some(Unreachable::NoConnectivity { interface: Arc::from("eth0") }));
    assert_eq!(reason(Some(true)), None);
    assert_eq!(reason(None), None);
    // A dead link is reported as such, before any system verdict.
    let down = state(|i| i.carrier = false);
    let e = evaluate(&down, &query, 7, &mut Judged(Some(false)), &mut Names::default());
    assert_eq!(e.status.reason().cloned(), Some(Unreachable::NoCarrier { interface: Arc::from("eth0") }));
}

#[test]
fn same_subnet_is_reported() {
    // Reachable and unreachable alike.
    let s = state(|_| {});
    let mut lookup = FixedRoute(Ok(Some(2)));
    let to = |remote: &str| Query::plain("192.0.2.10".parse().unwrap(), remote.parse().unwrap());
    let names = &mut Names::default();
    assert!(evaluate(&s, &to("192.0.2.99"), 0, &mut lookup, names).status.same_subnet());
    assert!(!evaluate(&s, &to("198.51.100.1"), 0, &mut lookup, names).status.same_subnet());
    let e = evaluate(&s, &to("192.0.2.99"), 0, &mut FixedRoute(Ok(None)), names);
    let state =
        PathState::Unreachable { reason: Unreachable::NoRoute, interface: Some("eth0".into()), same_subnet: true };
    assert_eq!(e.status.state, state);
}

#[test]
fn validation_names_the_problem() {
    let v = |l: &str, r: &str| validate_path(l.parse().unwrap(), r.parse().unwrap()).map_err(|e| e.to_string());
    assert!(v("0.0.0.0", "192.0.2.1").unwrap_err().contains("unspecified"));
    assert!(v("192.0.2.10", "0.0.0.0").unwrap_err().contains("unspecified"));
    assert!(v("192.0.2.10", "127.0.0.1").unwrap_err().contains("loopback"));
    assert!(v("2001:db8::1", "::1").unwrap_err().contains("loopback"));
    assert!(v("127.0.0.1", "192.0.2.1").unwrap_err().contains("loopback"));
    assert!(v("192.0.2.10", "2001:db8::1").unwrap_err().contains("different families"));
    assert!(v("192.0.2.10", "224.0.0.1").unwrap_err().contains("multicast"));
    assert!(v("2001:db8::1", "ff02::1").unwrap_err().contains("multicast"));
    assert!(v("192.0.2.10", "255.255.255.255").unwrap_err().contains("broadcast"));
    assert_eq!(
        v("::ffff:192.0.2.10", "::ffff:198.51.100.1").unwrap(),
        ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap())
    );
    let s = state(|_| {});
    let check = |l: &str, r: &str| check_against_state(&s, l.parse().unwrap(), r.parse().unwrap(), [None, None]);
    assert!(check("192.0.2.11", "198.51.100.1").unwrap_err().to_string().contains("no interface owns"));
    assert!(check("192.0.2.10", "192.0.2.255").unwrap_err().to_string().contains("broadcast address of"));
    assert!(check("192.0.2.10", "192.0.2.254").is_ok());
}

/// The kernel's answer for one of the host's own addresses: a local route over `lo`.
struct Local;
impl RouteLookup for Local {
    fn route(&mut self, _: &Query) -> Answer {
        Ok(Some(Route { interface: 1, local: true }))
    }
}

#[test]
fn a_local_route_makes_a_same_host_path_reachable() {
    // The answer, not the addresses, decides: whatever the local link's carrier, the kernel
    // delivers it on this host.
    let query = Query::plain("192.0.2.10".parse().unwrap(), "198.51.100.10".parse().unwrap());
    let wlan_has_it = |mut s: NetworkState| {
        s.interfaces[1].addresses.push(Address::new("198.51.100.10".parse().unwrap(), 24));
        s
    };
    for s in [state(|_| {}), state(|i| i.carrier = false), state(|i| i.up = false)].map(wlan_has_it) {
        let e = evaluate(&s, &query, 0, &mut Local, &mut Names::default());
        assert!(e.status.is_reachable(), "{:?}", e.status);
        assert_eq!((e.owner, e.route_interface), (Some(2), Some(1)));
    }
    // While the local link is down, the kernel is asked only about the host's own addresses
    // (else a link going down would cost a lookup per path): a remote that is nobody's
    // address is judged by the link.
    let e = evaluate(&state(|i| i.carrier = false), &query, 0, &mut Local, &mut Names::default());
    assert_eq!(e.status.reason(), Some(&Unreachable::NoCarrier { interface: Arc::from("eth0") }));
}

/// Two links that both carry fe80::10 (each link's own), and a global address on eth0.
fn two_links() -> NetworkState {
    let mut s = state(|i| {
        i.addresses.push(Address::new("fe80::10".parse().unwrap(), 64));
        i.addresses.push(Address::new("2001:db8::10".parse().unwrap(), 64));
    });
    s.interfaces[1].addresses.push(Address::new("fe80::10".parse().unwrap(), 64));
    s.interfaces[1].addresses.push(Address::new("fe80::20".parse().unwrap(), 64));
    s
}

#[test]
fn link_local_paths_are_settled_on_one_link() {
    let s = two_links();
    let check = |l: &str, r: &str, scopes| {
        check_against_state(&s, l.parse().unwrap(), r.parse().unwrap(), scopes).map_err(|e| e.to_string())
    };
    // The scope of either end, or the only link owning the local address.
    assert_eq!(check("fe80::10", "fe80::1", [Some(3), None]), Ok(Some(3)));
    assert_eq!(check("fe80::10", "fe80::1", [None, Some(2)]), Ok(Some(2)));
    assert_eq!(check("fe80::10", "fe80::1", [Some(3), Some(3)]), Ok(Some(3)));
    assert_eq!(check("fe80::20", "fe80::1", [None, None]), Ok(Some(3)));
    assert_eq!(check("2001:db8::10", "fe80::1", [None, Some(3)]), Ok(Some(3)));
    assert_eq!(check("2001:db8::10", "2001:db8::1", [None, Some(0)]), Ok(None)); // 0: no scope
                                                                                 // Never a guess.
    assert!(check("fe80::10", "fe80::1", [None, None]).unwrap_err().contains("on several links (eth0, wlan0)"));
    assert!(check("fe80::10", "fe80::1", [Some(2), Some(3)]).unwrap_err().contains("different links"));
    assert!(check("fe80::20", "fe80::1", [Some(2), None]).unwrap_err().contains("on link eth0"));
    assert!(check("fe80::10", "fe80::1", [Some(9), None]).unwrap_err().contains("index 9, which does not exist"));
    assert!(check("2001:db8::10", "fe80::1", [None, None]).unwrap_err().contains("needs a scope id"));
    assert!(check("2001:db8::10", "2001:db8::1", [None, Some(2)]).unwrap_err().contains("only IPv6 link-local"));
    // The address is looked for on the path's link only.
    let on =
        |scope| Query { scope: Some(scope), ..Query::plain("fe80::10".parse().unwrap(), "fe80::1".parse().unwrap()) };
    let e = evaluate(&s, &on(3), 0, &mut FixedRoute(Ok(Some(3))), &mut Names::default());
    assert_eq!((e.status.interface(), e.status.is_reachable()), (Some("wlan0"), true));
    let e = evaluate(&s, &on(2), 0, &mut FixedRoute(Ok(Some(3))), &mut Names::default());
    assert_eq!(e.status.interface(), Some("eth0"));
    assert!(matches!(e.status.reason(), Some(Unreachable::RouteViaOtherInterface { .. })));
}

#[test]
fn in_prefix_edges() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(in_prefix(ip("192.0.2.255"), ip("192.0.2.0"), 24));
    assert!(!in_prefix(ip("192.0.3.0"), ip("192.0.2.0"), 24));
    assert!(in_prefix(ip("203.0.113.9"), ip("0.0.0.0"), 0));
    assert!(in_prefix(ip("2001:db8::ffff"), ip("2001:db8::"), 64));
    assert!(!in_prefix(ip("2001:db9::1"), ip("2001:db8::"), 32));
    assert!(in_prefix(ip("192.0.2.7"), ip("192.0.2.7"), 32));
}
