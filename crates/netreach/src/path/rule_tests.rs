//! Table tests of the rule: the decision table, the system's verdict, validation, prefixes.

use std::net::IpAddr;
use std::sync::Arc;

use super::lookup::RouteLookup;
use super::rule::{check_against_state, evaluate, in_prefix, validate_path, Names};
use crate::model::{Address, Interface, InterfaceKind, NetworkState, PathState, Unreachable};

/// A fixed routing answer: the unit under test is the decision table, not the kernel
/// (the kernel itself is exercised by the namespace tests in tests/paths.rs).
struct FixedRoute(std::io::Result<Option<u32>>);
impl RouteLookup for FixedRoute {
    fn route(&mut self, _: IpAddr, _: IpAddr) -> std::io::Result<Option<u32>> {
        match &self.0 {
            Ok(v) => Ok(*v),
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
    let e = evaluate(
        state,
        "192.0.2.10".parse().unwrap(),
        remote.parse().unwrap(),
        0,
        &mut FixedRoute(route),
        &mut Names::default(),
    );
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
    fn route(&mut self, _: IpAddr, _: IpAddr) -> std::io::Result<Option<u32>> {
        Ok(Some(2))
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
    let local = "192.0.2.10".parse().unwrap();
    let remote = "198.51.100.1".parse().unwrap();
    let reason =
        |verdict| evaluate(&s, local, remote, 7, &mut Judged(verdict), &mut Names::default()).status.reason().cloned();
    assert_eq!(reason(Some(false)), Some(Unreachable::NoConnectivity { interface: Arc::from("eth0") }));
    assert_eq!(reason(Some(true)), None);
    assert_eq!(reason(None), None);
    // A dead link is reported as such, before any system verdict.
    let down = state(|i| i.carrier = false);
    let e = evaluate(&down, local, remote, 7, &mut Judged(Some(false)), &mut Names::default());
    assert_eq!(e.status.reason().cloned(), Some(Unreachable::NoCarrier { interface: Arc::from("eth0") }));
}

#[test]
fn same_subnet_is_reported() {
    // Reachable and unreachable alike.
    let s = state(|_| {});
    let mut lookup = FixedRoute(Ok(Some(2)));
    let local = "192.0.2.10".parse().unwrap();
    let names = &mut Names::default();
    assert!(evaluate(&s, local, "192.0.2.99".parse().unwrap(), 0, &mut lookup, names).status.same_subnet());
    assert!(!evaluate(&s, local, "198.51.100.1".parse().unwrap(), 0, &mut lookup, names).status.same_subnet());
    let e = evaluate(&s, local, "192.0.2.99".parse().unwrap(), 0, &mut FixedRoute(Ok(None)), names);
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
    let check = |l: &str, r: &str| check_against_state(&s, l.parse().unwrap(), r.parse().unwrap());
    assert!(check("192.0.2.11", "198.51.100.1").unwrap_err().to_string().contains("no interface owns"));
    assert!(check("192.0.2.10", "192.0.2.255").unwrap_err().to_string().contains("broadcast address of"));
    assert!(check("192.0.2.10", "192.0.2.254").is_ok());
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
