//! The conditions of `wait` against states built by hand: reached or not, and the words.

use super::*;
use netreach::{Address, DefaultRoute, DnsConfig, Interface, InterfaceKind, Nameserver, NameserverRoute, Verdict};

/// eth0 (index 2, 192.0.2.10/24), with or without carrier and an IPv4 default route.
pub(crate) fn state(carrier: bool, route: bool, verdicts: Vec<Verdict>) -> Snapshot {
    let eth = Interface {
        index: 2,
        name: "eth0".into(),
        kind: InterfaceKind::Ethernet,
        up: true,
        carrier,
        addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
        ..Default::default()
    };
    let routes = if route {
        vec![DefaultRoute {
            family: Family::Ipv4,
            gateway: Some("192.0.2.1".parse().unwrap()),
            interface: "eth0".into(),
            interface_index: 2,
            metric: 0,
            table: 254,
        }]
    } else {
        vec![]
    };
    let mut s = NetworkState::default();
    (s.interfaces, s.default_routes, s.verdicts) = (vec![eth], routes, verdicts);
    netreach::derive(s)
}

fn goal(level: Level, interfaces: &[(&str, Option<Level>)], probe: bool) -> Goal {
    let interfaces = interfaces.iter().map(|(n, l)| ((*n).to_owned(), *l)).collect();
    Goal { level, interfaces, probe, ..Goal::default() }
}

/// The state with these nameservers, each routed as the kernel would answer in it: on-link
/// and behind eth0's default route out through eth0, a loopback one locally, others nowhere.
fn with_dns(s: Snapshot, servers: &[&str]) -> Snapshot {
    let mut s = s.into_state();
    let mut dns = DnsConfig::default();
    dns.nameservers = servers.iter().map(|a| Nameserver { address: a.parse().unwrap(), interface: None }).collect();
    dns.origin.file = "/etc/resolv.conf".into();
    let default_v4 = !s.default_routes.is_empty();
    s.nameserver_routes = dns
        .nameservers
        .iter()
        .map(|n| {
            let answer = match n.address {
                a if a.is_loopback() => NameserverAnswer::Local,
                std::net::IpAddr::V4(v4) if default_v4 || v4.octets()[..3] == [192, 0, 2] => {
                    NameserverAnswer::Out { interface_index: 2, interface: "eth0".into() }
                }
                _ => NameserverAnswer::NoRoute,
            };
            NameserverRoute { nameserver: n.address, answer }
        })
        .collect();
    s.dns = Some(dns);
    netreach::derive(s)
}

#[test]
fn unmet_table() {
    let online = Verdict { ipv4: Some(Level::Online), captive_portal: Some(false), ..Verdict::new(Source::Probe) };
    let portal = Verdict {
        ipv4: Some(Level::Site),
        captive_portal: Some(true),
        portal_url: Some("http://portal.test/".into()),
        ..Verdict::new(Source::Probe)
    };
    let resolution = Verdict {
        ipv4: Some(Level::Site),
        note: Some("name resolution of check.test failed".into()),
        ..Verdict::new(Source::Probe)
    };
    let mut eth1 = state(true, true, vec![]).into_state();
    eth1.interfaces.push(Interface { index: 3, name: "eth1".into(), up: true, carrier: true, ..Default::default() });
    let eth1 = netreach::derive(eth1);
    let v4_only = Goal { families: vec![Family::Ipv4], ..goal(Level::Online, &[], false) };
    let v6_only = Goal { families: vec![Family::Ipv6], ..goal(Level::Online, &[], false) };
    let both =
        Goal { families: vec![Family::Ipv4, Family::Ipv6], all_families: true, ..goal(Level::Online, &[], false) };
    let ignore = Goal { ignore: vec!["eth0".into()], ..goal(Level::Online, &[], false) };
    let any = Goal { any: true, ..goal(Level::Online, &[("wlan0", None), ("eth0", None)], false) };
    let dns = Goal { dns: true, ..goal(Level::Online, &[], false) };
    let dns_probe = Goal { dns: true, ..goal(Level::Site, &[], true) };
    let table: Vec<(&str, Snapshot, Goal, Vec<&str>)> = vec![
        ("online", state(true, true, vec![]), goal(Level::Online, &[], false), vec![]),
        (
            "no default route",
            state(true, false, vec![]),
            goal(Level::Online, &[], false),
            vec!["ipv4: site (no default route leaves", "ipv6: disconnected (no default route leaves"],
        ),
        ("site is enough", state(true, false, vec![]), goal(Level::Site, &[], false), vec![]),
        (
            "probe not in yet",
            state(true, true, vec![]),
            goal(Level::Online, &[], true),
            vec!["ipv4: online (not confirmed by the probe yet)", "ipv6: disconnected"],
        ),
        ("probe confirmed", state(true, true, vec![online.clone()]), goal(Level::Online, &[], true), vec![]),
        (
            "portal",
            state(true, true, vec![portal.clone()]),
            goal(Level::Online, &[], true),
            vec!["ipv4: site (probe: captive portal at http://portal.test/)"],
        ),
        ("portal still reaches site", state(true, true, vec![portal]), goal(Level::Site, &[], true), vec![]),
        (
            "no carrier",
            state(false, true, vec![]),
            goal(Level::Local, &[("eth0", None)], false),
            vec!["interface eth0: no carrier"],
        ),
        (
            "no such interface",
            state(true, true, vec![]),
            goal(Level::Site, &[("wlan0", None)], false),
            vec!["interface wlan0: does not exist"],
        ),
        ("through the interface", state(true, true, vec![]), goal(Level::Online, &[("eth0", None)], false), vec![]),
        (
            "every interface listed must: eth1 has no address",
            eth1.clone(),
            goal(Level::Online, &[("eth0", None), ("eth1", Some(Level::Local))], false),
            vec!["interface eth1: ipv4 via eth1: disconnected", "interface eth1: ipv6: disconnected"],
        ),
        (
            "its own level: eth1 down is not up",
            eth1.clone(),
            goal(Level::Online, &[("eth0", Some(Level::Site))], false),
            vec![],
        ),
        ("--any: eth0 suffices", state(true, true, vec![]), any.clone(), vec![]),
        (
            "--any: none does",
            state(false, true, vec![]),
            any,
            vec!["interface wlan0: does not exist", "interface eth0: no carrier"],
        ),
        ("-4", state(true, true, vec![]), v4_only, vec![]),
        (
            "-6",
            state(true, true, vec![]),
            v6_only,
            vec!["ipv6: disconnected (no default route leaves through a ready interface)"],
        ),
        ("-4 -6: both", state(true, true, vec![]), both, vec!["ipv6: disconnected"]),
        (
            "--ignore eth0: nothing else",
            state(true, true, vec![]),
            ignore,
            vec!["ipv4: disconnected without eth0 (no usable address on a ready interface)"],
        ),
        (
            "--dns: not known",
            state(true, true, vec![]),
            dns.clone(),
            vec!["dns: the resolver configuration is not known here"],
        ),
        (
            "--dns: none configured",
            with_dns(state(true, true, vec![]), &[]),
            dns.clone(),
            vec!["dns: no nameserver configured in /etc/resolv.conf"],
        ),
        (
            "--dns: behind the default route",
            with_dns(state(true, true, vec![]), &["198.51.100.53"]),
            dns.clone(),
            vec![],
        ),
        (
            "--dns: on-link",
            with_dns(state(true, false, vec![]), &["192.0.2.53"]),
            Goal { level: Level::Site, ..dns.clone() },
            vec![],
        ),
        (
            "--dns: a local stub",
            with_dns(state(true, false, vec![]), &["127.0.0.53"]),
            Goal { level: Level::Site, ..dns.clone() },
            vec![],
        ),
        (
            "--dns: no route",
            with_dns(state(true, false, vec![]), &["2001:db8::53", "198.51.100.53"]),
            Goal { level: Level::Site, ..dns.clone() },
            vec!["dns: no route to nameserver 2001:db8::53 (ipv6: disconnected)"],
        ),
        (
            "--dns: routed through an interface without carrier",
            with_dns(state(false, true, vec![]), &["198.51.100.53"]),
            Goal { level: Level::Disconnected, ..dns.clone() },
            vec!["dns: no route to nameserver 198.51.100.53"],
        ),
        (
            "--dns: routed through an ignored interface",
            with_dns(state(true, true, vec![]), &["198.51.100.53"]),
            Goal { level: Level::Disconnected, ignore: vec!["eth0".into()], ..dns.clone() },
            vec!["dns: no route to nameserver 198.51.100.53"],
        ),
        (
            "--dns: not looked up yet",
            {
                let mut s = with_dns(state(true, true, vec![]), &["198.51.100.53"]).into_state();
                s.nameserver_routes.clear();
                netreach::derive(s)
            },
            dns,
            vec!["dns: the routes to the nameservers are not known yet"],
        ),
        (
            "--dns --probe: names fail",
            with_dns(state(true, true, vec![resolution]), &["198.51.100.53"]),
            dns_probe.clone(),
            vec!["dns: no name resolved yet (probe: name resolution of check.test failed)"],
        ),
        (
            "--dns --probe: a name resolved",
            with_dns(state(true, true, vec![online]), &["198.51.100.53"]),
            dns_probe,
            vec![],
        ),
    ];
    for (name, state, goal, lines) in table {
        let got = unmet(&state, &goal);
        assert_eq!(got.is_empty(), lines.is_empty(), "{name}: {got:?}");
        for (i, line) in lines.iter().enumerate() {
            assert!(got.get(i).is_some_and(|g| g.starts_with(line)), "{name}: want {line:?} at {i} in {got:?}");
        }
    }
}

#[test]
fn interface_and_level_parse() {
    assert_eq!(parse_interface("eth0"), Ok(("eth0".into(), None)));
    assert_eq!(parse_interface("eth0:site"), Ok(("eth0".into(), Some(Level::Site))));
    assert!(parse_interface("eth0:up").unwrap_err().contains("expected"));
    assert!(parse_interface("eth0:unknown").unwrap_err().contains("online, site or local"));
    assert!(parse_interface(":online").unwrap_err().contains("names no interface"));
    assert!(parse_interface("").is_err());
}

#[test]
fn the_first_condition_groups_its_lines() {
    let lines = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let unmet = lines(&[
        "interface eth1: ipv4 via eth1: site",
        "interface eth1: ipv6: local",
        "interface eth2: down",
        "dns: x",
    ]);
    assert_eq!(first_condition(&unmet), "interface eth1: ipv4 via eth1: site; interface eth1: ipv6: local");
    assert_eq!(
        first_condition(&lines(&["ipv4: site (no default route)", "ipv6: local", "dns: x"])),
        "ipv4: site (no default route); ipv6: local"
    );
    assert_eq!(
        first_condition(&lines(&["dns: no route to nameserver 192.0.2.53"])),
        "dns: no route to nameserver 192.0.2.53"
    );
}
