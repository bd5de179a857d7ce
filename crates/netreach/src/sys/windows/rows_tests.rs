//! Fixture tests of IP Helper row decoding: ordinary rows, the odd ones, the effective metric.

use proptest::prelude::*;

use super::dns::{IF_TYPE_SOFTWARE_LOOPBACK, OPER_UP};
use super::*;
use crate::{DnsManager, InterfaceKind, Level};

fn v4(s: &str) -> RawIp {
    let ip: Ipv4Addr = s.parse().unwrap();
    RawIp { family: AF_INET, bytes: ip.octets().to_vec() }
}

fn v6(s: &str) -> RawIp {
    let ip: Ipv6Addr = s.parse().unwrap();
    RawIp { family: AF_INET6, bytes: ip.octets().to_vec() }
}

fn unicast(address: RawIp, prefix_len: u8) -> UnicastRow {
    UnicastRow {
        address,
        prefix_len,
        dad_state: 4, // IpDadStatePreferred
        suffix_origin: 0,
        valid_lifetime: INFINITE,
        preferred_lifetime: INFINITE,
    }
}

fn adapter(index: u32, name: &str, unicast: Vec<UnicastRow>) -> AdapterRow {
    AdapterRow {
        if_index: index,
        ipv6_if_index: index,
        friendly_name: Some(name.encode_utf16().collect()),
        if_type: 6,
        oper_status: 1,
        mtu: 1500,
        physical_address: vec![0x02, 0, 0x5e, 0x10, 0, index as u8],
        unicast,
        dns_servers: Vec::new(),
        dns_suffix: None,
        dns_suffixes: Vec::new(),
    }
}

fn route(prefix: RawIp, prefix_len: u8, next_hop: RawIp, interface_index: u32, metric: u32) -> RouteRow {
    RouteRow { prefix, prefix_len, next_hop, interface_index, metric }
}

fn metric_row(family: u16, interface_index: u32, metric: u32) -> InterfaceMetricRow {
    InterfaceMetricRow { family, interface_index, metric }
}

#[test]
fn an_ordinary_adapter_and_its_addresses() {
    let mut temporary = unicast(v6("2001:db8::abcd"), 64);
    (temporary.suffix_origin, temporary.valid_lifetime, temporary.preferred_lifetime) = (SUFFIX_RANDOM, 600, 300);
    let mut tentative = unicast(v6("fe80::1"), 64);
    tentative.dad_state = DAD_TENTATIVE;
    let row = adapter(7, "Ethernet 2", vec![unicast(v4("192.0.2.10"), 24), temporary, tentative]);
    let i = interface(&row).unwrap();
    assert_eq!((i.index, i.name.as_str(), i.kind, i.mtu), (7, "Ethernet 2", InterfaceKind::Ethernet, 1500));
    assert_eq!(i.mac.as_deref(), Some("02:00:5e:10:00:07"));
    assert!(i.up && i.carrier && i.oper_state == OperState::Up);
    let shown: Vec<(String, u8, AddressScope)> =
        i.addresses.iter().map(|a| (a.address.to_string(), a.prefix_len, a.scope)).collect();
    assert_eq!(
        shown,
        [
            ("192.0.2.10".into(), 24, AddressScope::Global),
            ("2001:db8::abcd".into(), 64, AddressScope::Global),
            ("fe80::1".into(), 64, AddressScope::Link),
        ]
    );
    let temporary = &i.addresses[1];
    assert!(temporary.flags.temporary && !temporary.flags.permanent);
    assert_eq!((temporary.valid_lifetime, temporary.preferred_lifetime), (Some(600), Some(300)));
    assert!(i.addresses[2].flags.tentative && i.addresses[0].flags.permanent);
}

#[test]
fn odd_rows_are_skipped_or_given_their_documented_fallback() {
    // Unknown family, a short address, a prefix longer than the family's: skipped.
    let bad = [
        unicast(RawIp { family: 17, bytes: vec![1, 2, 3, 4] }, 24),
        unicast(RawIp { family: AF_INET, bytes: vec![192, 0, 2] }, 24),
        unicast(RawIp { family: AF_INET6, bytes: vec![0; 4] }, 64),
        unicast(v4("192.0.2.11"), 33),
    ];
    assert_eq!(address(&bad[0]), Err(RowError::Family(17, 4)));
    assert_eq!(address(&bad[1]), Err(RowError::Family(AF_INET, 3)));
    assert_eq!(address(&bad[3]), Err(RowError::PrefixLength(33)));
    let mut row = adapter(3, "wan", bad.to_vec());
    row.unicast.push(unicast(v4("192.0.2.12"), 24));
    let i = interface(&row).unwrap();
    assert_eq!(i.addresses.iter().map(|a| a.address.to_string()).collect::<Vec<_>>(), ["192.0.2.12"]);
    // No index at all: no IP stack, skipped; only an IPv6 index: that one.
    assert_eq!(interface(&AdapterRow { if_index: 0, ipv6_if_index: 0, ..row.clone() }), Err(RowError::NoIndex));
    assert_eq!(interface(&AdapterRow { if_index: 0, ipv6_if_index: 9, ..row.clone() }).unwrap().index, 9);
    // Names: empty or absent -> #INDEX; unpaired surrogates shown, backslashes doubled.
    assert_eq!(name(Some(&[]), 4), ("#4".into(), None));
    assert_eq!(name(None, 4), ("#4".into(), None));
    assert_eq!(name(Some(&[0x77, 0x5c, 0x31]), 4), ("w\\1".into(), None)); // valid UTF-16 is exact
    let odd = [0x77, 0xd800, 0x5c];
    assert_eq!(name(Some(&odd), 4), ("w\\u{d800}\\\\".into(), Some(vec![0x77, 0, 0x00, 0xd8, 0x5c, 0])));
    // A valid name that reads like a display form is still told apart, by its exact units.
    let lookalike: Vec<u16> = "\\u{dc00}".encode_utf16().collect();
    let (a, b) = (name(Some(&[0xdc00]), 1), name(Some(&lookalike), 1));
    assert_eq!(a.0, b.0);
    assert_ne!(a.1, b.1);
    let odd = AdapterRow { friendly_name: Some(vec![0xd83d]), physical_address: vec![], ..row };
    let i = interface(&odd).unwrap();
    assert_eq!((i.name.as_str(), i.mac, i.name_bytes), ("\\u{d83d}", None, Some(vec![0x3d, 0xd8])));
}

#[test]
fn default_routes_carry_the_effective_metric_and_the_preferred_comes_first() {
    // Two IPv4 defaults whose route metrics and interface metrics disagree: eth (index 2) has
    // the lower route metric (0 < 5), wifi (index 3) the lower sum (5 + 5 = 10 < 0 + 25).
    // Windows ranks by the sum, so wifi carries the traffic.
    let adapters = [adapter(2, "Ethernet", vec![unicast(v4("192.0.2.10"), 24)]), {
        let mut wifi = adapter(3, "Wi-Fi", vec![unicast(v4("198.51.100.10"), 24)]);
        wifi.if_type = 71;
        wifi
    }];
    let routes = [
        route(v4("0.0.0.0"), 0, v4("192.0.2.1"), 2, 0),
        route(v4("0.0.0.0"), 0, v4("198.51.100.1"), 3, 5),
        route(v4("192.0.2.0"), 24, v4("0.0.0.0"), 2, 0),
        route(v6("::"), 0, v6("fe80::1"), 2, 256),
        route(RawIp { family: 99, bytes: vec![] }, 0, v4("0.0.0.0"), 2, 0), // skipped
        route(v4("0.0.0.0"), 40, v4("0.0.0.0"), 2, 0),                      // skipped
    ];
    let metrics = [metric_row(AF_INET, 2, 25), metric_row(AF_INET, 3, 5), metric_row(AF_INET6, 2, 15)];
    let s = state(&adapters, &routes, &metrics);
    let shown: Vec<(Family, u32, &str, u32)> =
        s.default_routes.iter().map(|r| (r.family, r.interface_index, r.interface.as_str(), r.metric)).collect();
    assert_eq!(
        shown,
        [(Family::Ipv4, 3, "Wi-Fi", 10), (Family::Ipv4, 2, "Ethernet", 25), (Family::Ipv6, 2, "Ethernet", 271)]
    );
    assert_eq!(s.default_routes[0].gateway, Some("198.51.100.1".parse().unwrap()));
    assert_eq!(s.default_routes[2].gateway, Some("fe80::1".parse().unwrap()));
    // The kernel-level transport follows the route Windows would pick.
    let derived = crate::derive(s.clone());
    assert_eq!(derived.reachability.ipv4.reachability, Level::Online);
    assert_eq!(derived.details.transport, Some(crate::Transport::Wifi));
    // The routing table's own pick agrees; a more specific route still wins over metrics.
    assert_eq!(longest_match("203.0.113.1".parse().unwrap(), None, &routes, &metrics), Some(3));
    assert_eq!(longest_match("192.0.2.99".parse().unwrap(), None, &routes, &metrics), Some(2));
    assert_eq!(longest_match("2001:db8::1".parse().unwrap(), None, &routes, &metrics), Some(2));
    // Without interface metrics the offsets alone decide (ethernet, 0 < 5).
    assert_eq!(longest_match("203.0.113.1".parse().unwrap(), None, &routes, &[]), Some(2));
    // Saturating, never wrapping.
    let huge = route(v4("0.0.0.0"), 0, v4("192.0.2.1"), 2, u32::MAX - 1);
    assert_eq!(effective_metric(&huge, &metrics), u32::MAX);
}

fn units(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

#[test]
fn dns_servers_and_suffixes_of_the_adapters_that_are_up() {
    let mut eth = adapter(2, "Ethernet", vec![unicast(v4("192.0.2.10"), 24)]);
    eth.dns_servers = vec![v4("192.0.2.53"), v6("fe80::53"), RawIp { family: 17, bytes: vec![1, 2] }];
    eth.dns_suffix = Some(units("corp.example"));
    eth.dns_suffixes = vec![units("corp.example"), units(""), units("lab.example")];
    let mut wifi = adapter(3, "Wi-Fi", vec![unicast(v4("198.51.100.10"), 24)]);
    wifi.dns_servers = vec![v6("2001:db8::53"), v4("192.0.2.53")];
    wifi.dns_suffix = Some(vec![0x68, 0xd800]); // not UTF-16: its display form
    let mut down = adapter(4, "VPN", vec![unicast(v4("203.0.113.10"), 24)]);
    (down.oper_status, down.dns_servers, down.dns_suffix) = (2, vec![v4("203.0.113.53")], Some(units("vpn.example")));
    let mut no_stack = adapter(0, "no IP", vec![]);
    (no_stack.ipv6_if_index, no_stack.dns_servers) = (0, vec![v4("198.51.100.53")]);
    let mut lo = adapter(1, "Loopback", vec![unicast(v4("127.0.0.1"), 8)]);
    (lo.if_type, lo.dns_servers) = (IF_TYPE_SOFTWARE_LOOPBACK, vec![v4("192.0.2.53")]); // Wine lists them there
    let config = dns(&[lo, eth, down, wifi, no_stack]);
    let shown: Vec<String> = config.nameservers.iter().map(|n| n.to_string()).collect();
    // Per adapter, in order; the same server on two adapters is two entries (two links).
    assert_eq!(shown, ["192.0.2.53%Ethernet", "fe80::53%Ethernet", "2001:db8::53%Wi-Fi", "192.0.2.53%Wi-Fi"]);
    assert_eq!(config.search, ["corp.example", "lab.example", "h\\u{d800}"]);
    assert_eq!((config.origin.manager, config.origin.file.as_str()), (DnsManager::Windows, "GetAdaptersAddresses"));
    // Nothing up: no servers, which is what the resolver has then.
    let empty = dns(&[]);
    assert!(empty.nameservers.is_empty() && empty.search.is_empty());
}

#[test]
fn a_link_local_remote_is_looked_up_on_its_link() {
    // Two links both carry fe80::/64; the lower metric would win without a scope.
    let routes = [
        route(v6("fe80::"), 64, v6("::"), 2, 256),
        route(v6("fe80::"), 64, v6("::"), 3, 512),
        route(v6("::"), 0, v6("fe80::1"), 2, 0),
    ];
    let remote: IpAddr = "fe80::99".parse().unwrap();
    assert_eq!(longest_match(remote, None, &routes, &[]), Some(2));
    assert_eq!(longest_match(remote, Some(3), &routes, &[]), Some(3));
    assert_eq!(longest_match(remote, Some(4), &routes, &[]), None, "no route on that link");
    // With no table to ask: the scope's link when it has IPv6 link-local addressing.
    let adapters = [
        adapter(2, "Ethernet", vec![unicast(v6("fe80::10"), 64)]),
        adapter(3, "IPv4 only", vec![unicast(v4("192.0.2.10"), 24)]),
    ];
    assert_eq!(link_local_on(2, &adapters), Some(2));
    assert_eq!(link_local_on(3, &adapters), None, "no IPv6 there");
    assert_eq!(link_local_on(9, &adapters), None, "no such link");
}

#[test]
fn neighbour_rows_of_gateways() {
    let row = |address, state| NeighbourRow { address, interface_index: 2, state };
    let ok = gateway_neighbour(&row(v4("192.0.2.1"), 0)).unwrap();
    assert_eq!((ok.address.to_string(), ok.interface_index, ok.state), ("192.0.2.1".into(), 2, NeighbourState::Failed));
    assert!(ok.is_unreachable() && ok.unanswered_since.is_none());
    let states: Vec<NeighbourState> = (0..7).map(|s| neighbour_state(s).unwrap()).collect();
    use NeighbourState::{Delay, Failed, Incomplete, Permanent, Probe, Reachable, Stale};
    assert_eq!(states, [Failed, Incomplete, Probe, Delay, Stale, Reachable, Permanent]);
    assert_eq!(neighbour_state(7), Err(RowError::NeighbourState(7))); // NlnsMaximum: not a state
    assert_eq!(gateway_neighbour(&row(v4("192.0.2.1"), -1)), Err(RowError::NeighbourState(-1)));
    let odd = RawIp { family: AF_INET6, bytes: vec![0; 3] };
    assert_eq!(gateway_neighbour(&row(odd, 5)), Err(RowError::Family(AF_INET6, 3)));
    // Which entries are read: each default route's gateway once; none for on-link routes.
    let routes = [
        route(v4("0.0.0.0"), 0, v4("192.0.2.1"), 2, 0),
        route(v4("0.0.0.0"), 0, v4("192.0.2.1"), 2, 5),
        route(v6("::"), 0, v6("fe80::1"), 2, 0),
        route(v4("0.0.0.0"), 0, v4("0.0.0.0"), 3, 0),
    ];
    let s = state(&[adapter(2, "Ethernet", vec![]), adapter(3, "PPP", vec![])], &routes, &[]);
    let wanted: Vec<String> = gateways(&s).iter().map(|(g, i)| format!("{g}@{i}")).collect();
    assert_eq!(wanted, ["192.0.2.1@2", "fe80::1@2"]);
}

fn raw_ip() -> impl Strategy<Value = RawIp> {
    (prop_oneof![Just(AF_INET), Just(AF_INET6), any::<u16>()], proptest::collection::vec(any::<u8>(), 0..20))
        .prop_map(|(family, bytes)| RawIp { family, bytes })
}

proptest! {
    /// Whatever IP Helper hands over, decoding answers (a value or a skip), never panics.
    #[test]
    fn arbitrary_rows_never_panic(
        ips in proptest::collection::vec((raw_ip(), any::<u8>(), any::<u32>(), any::<u32>()), 0..8),
        names in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u16>(), 0..6)), 1..4),
        remote in any::<[u8; 4]>(),
    ) {
        let unicast: Vec<UnicastRow> = ips.iter().map(|(ip, len, valid, _)| UnicastRow {
            address: ip.clone(), prefix_len: *len, dad_state: *valid as i32, suffix_origin: 5,
            valid_lifetime: *valid, preferred_lifetime: 0,
        }).collect();
        let adapters: Vec<AdapterRow> = names.iter().enumerate().map(|(i, name)| AdapterRow {
            if_index: i as u32, ipv6_if_index: 0, friendly_name: name.clone(), unicast: unicast.clone(),
            ..AdapterRow::default()
        }).collect();
        let routes: Vec<RouteRow> = ips.iter().map(|(ip, len, index, metric)| RouteRow {
            prefix: ip.clone(), prefix_len: *len, next_hop: ip.clone(), interface_index: *index % 4, metric: *metric,
        }).collect();
        let metrics: Vec<InterfaceMetricRow> =
            ips.iter().map(|(ip, _, index, metric)| metric_row(ip.family, *index % 4, *metric)).collect();
        let s = state(&adapters, &routes, &metrics);
        prop_assert!(s.default_routes.iter().all(|r| r.table == MAIN_TABLE));
        let with_dns: Vec<AdapterRow> = adapters.iter().map(|a| AdapterRow {
            oper_status: OPER_UP, dns_servers: ips.iter().map(|(ip, ..)| ip.clone()).collect(),
            dns_suffix: a.friendly_name.clone(), dns_suffixes: names.iter().flatten().cloned().collect(), ..a.clone()
        }).collect();
        let config = dns(&with_dns);
        prop_assert!(config.nameservers.iter().all(|n| n.interface.is_some()));
        for (ip, _, index, _) in &ips {
            let row = NeighbourRow { address: ip.clone(), interface_index: *index, state: *index as i32 };
            let _ = gateway_neighbour(&row);
        }
        let _ = longest_match(IpAddr::V4(remote.into()), None, &routes, &metrics);
        let _ = longest_match(IpAddr::V4(remote.into()), Some(1), &routes, &metrics);
    }
}
