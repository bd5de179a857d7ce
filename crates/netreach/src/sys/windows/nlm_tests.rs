//! Table tests of the NLM mapping against Microsoft's definitions and Qt's current code, over
//! every `NLM_CONNECTIVITY` combination of each family.

use std::net::IpAddr;

use super::*;
use crate::Transport;
use Level::*;

/// The four flags of one family, in the order (no traffic, subnet, local network, internet).
fn flags(family: Family, bits: [bool; 4]) -> u32 {
    let f = FamilyFlags::of(family);
    [f.no_traffic, f.subnet, f.local_network, f.internet].iter().zip(bits).filter(|(_, on)| *on).map(|(f, _)| f).sum()
}

/// Every combination of one family's four flags, as bits.
fn combinations() -> impl Iterator<Item = [bool; 4]> {
    (0u8..16).map(|n| [n & 1 != 0, n & 2 != 0, n & 4 != 0, n & 8 != 0])
}

/// Qt's `reachabilityFromNLM_CONNECTIVITY` (networklistmanager plugin) for one family's flags
/// alone: internet Online, subnet Site, local network Local, no traffic Unknown, none
/// Disconnected. `None` stands for Qt's `Unknown`.
fn qt_level(bits: [bool; 4]) -> Option<Level> {
    match bits {
        [_, _, _, true] => Some(Online),
        [_, true, _, _] => Some(Site),
        [_, _, true, _] => Some(Local),
        [true, ..] => None,
        _ => Some(Disconnected),
    }
}

#[test]
fn level_of_every_combination_per_family() {
    // (no traffic, subnet, local network, internet) -> level, from Microsoft's definitions.
    let table: [([bool; 4], Option<Level>); 16] = [
        ([false, false, false, false], Some(Disconnected)),
        ([true, false, false, false], None), // "cannot detect any traffic": no evidence
        ([false, true, false, false], Some(Site)),
        ([true, true, false, false], Some(Site)),
        ([false, false, true, false], Some(Site)), // a routed network: more than the subnet
        ([true, false, true, false], Some(Site)),
        ([false, true, true, false], Some(Site)),
        ([true, true, true, false], Some(Site)),
        ([false, false, false, true], Some(Online)),
        ([true, false, false, true], Some(Online)),
        ([false, true, false, true], Some(Online)),
        ([true, true, false, true], Some(Online)),
        ([false, false, true, true], Some(Online)),
        ([true, false, true, true], Some(Online)),
        ([false, true, true, true], Some(Online)),
        ([true, true, true, true], Some(Online)),
    ];
    assert_eq!(table.map(|(bits, _)| bits).to_vec(), combinations().collect::<Vec<_>>(), "every combination, once");
    for family in [Family::Ipv4, Family::Ipv6] {
        let other = match family {
            Family::Ipv4 => Family::Ipv6,
            Family::Ipv6 => Family::Ipv4,
        };
        for (bits, expected) in table {
            // The other family's flags never change this family's level.
            for others in combinations() {
                let connectivity = flags(family, bits) | flags(other, others);
                assert_eq!(level(connectivity, family), expected, "{family} {bits:?} with {others:?}");
                let v = verdict(connectivity, Some(false), Portal::default());
                assert_eq!((v.level(family), v.source), (expected, Source::Windows));
                assert_eq!((v.metered, v.captive_portal), (Some(false), None));
            }
            // Qt's table agrees except where the documented meaning of LOCALNETWORK decides.
            let local_network_only = bits[2] && !bits[1] && !bits[3];
            if local_network_only {
                assert_eq!((qt_level(bits), expected), (Some(Local), Some(Site)), "{bits:?}");
            } else {
                assert_eq!(qt_level(bits), expected, "{bits:?}");
            }
        }
    }
}

/// Qt's current `QNetworkConnectionMonitor::isReachable` (qnetconmonitor_win.cpp), transcribed.
fn qt_is_reachable(connectivity: u32, ipv6: bool, link_local: bool, same_subnet: bool) -> bool {
    let same_subnet_v6 = IPV6_SUBNET | IPV6_LOCALNETWORK | IPV6_INTERNET;
    let same_subnet_v4 = IPV4_SUBNET | IPV4_LOCALNETWORK | IPV4_INTERNET;
    let required = if link_local {
        if ipv6 {
            IPV6_NOTRAFFIC | same_subnet_v6
        } else {
            IPV4_NOTRAFFIC | same_subnet_v4
        }
    } else if same_subnet {
        if ipv6 {
            same_subnet_v6
        } else {
            same_subnet_v4
        }
    } else if ipv6 {
        IPV6_INTERNET
    } else {
        IPV4_INTERNET
    };
    connectivity & required != 0
}

#[test]
fn path_rule_is_qts_current_rule_for_every_combination() {
    let all = [IPV4_NOTRAFFIC, IPV6_NOTRAFFIC, IPV4_SUBNET, IPV4_LOCALNETWORK, IPV4_INTERNET, IPV6_SUBNET]
        .into_iter()
        .chain([IPV6_LOCALNETWORK, IPV6_INTERNET]);
    let bits: Vec<u32> = all.collect();
    for n in 0u32..(1 << bits.len()) {
        let connectivity: u32 = bits.iter().enumerate().filter(|(i, _)| n & (1 << i) != 0).map(|(_, b)| b).sum();
        for family in [Family::Ipv4, Family::Ipv6] {
            for (span, link_local, same_subnet) in
                [(Span::LinkLocal, true, true), (Span::SameSubnet, false, true), (Span::Beyond, false, false)]
            {
                let qt = qt_is_reachable(connectivity, family == Family::Ipv6, link_local, same_subnet);
                assert_eq!(path_connectivity(connectivity, family, span), qt, "{connectivity:#x} {family} {span:?}");
            }
        }
    }
    // The rows the issue names: a same-subnet pair with LOCALNETWORK only, a link-local pair
    // with NOTRAFFIC only, both reachable; a remote beyond needs INTERNET.
    assert!(path_connectivity(IPV4_LOCALNETWORK, Family::Ipv4, Span::SameSubnet));
    assert!(path_connectivity(IPV6_NOTRAFFIC, Family::Ipv6, Span::LinkLocal));
    assert!(!path_connectivity(IPV6_NOTRAFFIC, Family::Ipv6, Span::SameSubnet));
    assert!(!path_connectivity(IPV4_LOCALNETWORK | IPV4_SUBNET, Family::Ipv4, Span::Beyond));
}

#[test]
fn span_of_a_pair() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let table = [
        ("fe80::1", "fe80::2", false, Span::LinkLocal),
        ("169.254.1.1", "169.254.9.9", false, Span::LinkLocal),
        ("fe80::1", "2001:db8::1", false, Span::Beyond),
        ("2001:db8::1", "fe80::2", true, Span::SameSubnet),
        ("192.0.2.10", "192.0.2.20", true, Span::SameSubnet),
        ("192.0.2.10", "198.51.100.1", false, Span::Beyond),
    ];
    for (local, remote, same_subnet, span) in table {
        assert_eq!(Span::of(ip(local), ip(remote), same_subnet), span, "{local} -> {remote}");
    }
}

#[test]
fn a_reading_older_than_the_path_does_not_judge_it() {
    // (flags, family, span, changed since the path was made) -> verdict
    let table = [
        // Windows' internet check never passed, but the connection is up: reachable, as in Qt.
        (IPV4_SUBNET, Family::Ipv4, Span::Beyond, false, None),
        (IPV4_NOTRAFFIC, Family::Ipv4, Span::Beyond, false, None),
        // A later reading applies the rule.
        (IPV4_SUBNET, Family::Ipv4, Span::Beyond, true, Some(false)),
        (IPV4_SUBNET, Family::Ipv4, Span::SameSubnet, true, Some(true)),
        (IPV4_INTERNET, Family::Ipv4, Span::Beyond, true, Some(true)),
        // No network of the family at all: unreachable whatever its age.
        (DISCONNECTED, Family::Ipv4, Span::SameSubnet, false, Some(false)),
        (IPV4_INTERNET, Family::Ipv6, Span::LinkLocal, false, Some(false)),
        (IPV6_NOTRAFFIC, Family::Ipv6, Span::LinkLocal, true, Some(true)),
    ];
    for (flags, family, span, changed, expected) in table {
        assert_eq!(path_verdict(flags, family, span, changed), expected, "{flags:#x} {family} {span:?} {changed}");
    }
}

#[test]
fn a_portal_caps_its_own_family_at_site() {
    let portal = |ipv4, ipv6| Portal { ipv4, ipv6 };
    // (flags, portal flags) -> (ipv4, ipv6, captive_portal)
    let table = [
        (IPV4_INTERNET | IPV6_INTERNET, portal(Some(true), Some(false)), Some(Site), Some(Online), Some(true)),
        (IPV4_INTERNET | IPV6_INTERNET, portal(Some(false), Some(true)), Some(Online), Some(Site), Some(true)),
        (IPV4_INTERNET | IPV6_SUBNET, portal(Some(false), Some(false)), Some(Online), Some(Site), Some(false)),
        (IPV4_NOTRAFFIC, portal(Some(true), None), Some(Site), Some(Disconnected), Some(true)),
        (IPV4_SUBNET, portal(Some(true), None), Some(Site), Some(Disconnected), Some(true)),
        (DISCONNECTED, portal(None, Some(true)), Some(Disconnected), Some(Disconnected), Some(true)),
        (IPV4_INTERNET, portal(None, None), Some(Online), Some(Disconnected), None),
    ];
    for (flags, portal, v4, v6, any) in table {
        let v = verdict(flags, None, portal);
        assert_eq!((v.ipv4, v.ipv6, v.captive_portal), (v4, v6, any), "{flags:#x} {portal:?}");
    }
    // Through the refinement: the kernel sees IPv4 at `site` and IPv6 online; the portal is on
    // IPv6. Without the per-family flag the refinement would find a family at `site` already
    // and leave IPv6 online behind a portal.
    let k = |l| crate::FamilyReachability { reachability: l, source: Source::Kernel };
    let kernel = crate::Reachability::from_families(k(Site), k(Online));
    let v = verdict(IPV4_SUBNET | IPV6_INTERNET, None, portal(None, Some(true)));
    let (r, details) = crate::refine(&kernel, None, &[v]);
    assert_eq!((r.ipv4.reachability, r.ipv6.reachability, r.ipv6.source), (Site, Site, Source::Windows));
    assert_eq!((r.overall, details.captive_portal), (Site, Some(true)));
    let merged = portal(Some(false), None).merge(portal(Some(true), Some(false)));
    assert_eq!(merged, portal(Some(true), Some(false)));
    assert_eq!(portal(None, None).merge(portal(None, None)).any(), None);
}

#[test]
fn cost_and_portal_flags() {
    let table = [
        (0, None),
        (COST_UNRESTRICTED, Some(false)),
        (COST_FIXED, Some(true)),
        (COST_VARIABLE, Some(true)),
        (COST_VARIABLE | 0x40000, Some(true)), // roaming
    ];
    for (cost, expected) in table {
        assert_eq!(metered(cost), expected, "cost {cost:#x}");
    }
    assert!(captive_portal(INTERNET_WEBHIJACK | 0x2));
    assert!(!captive_portal(0x2 | 0x4)); // proxied, corporate
}

#[test]
fn interface_type_table() {
    let table = [
        (6, InterfaceKind::Ethernet, Transport::Ethernet),
        (71, InterfaceKind::Wifi, Transport::Wifi),
        (243, InterfaceKind::Cellular, Transport::Cellular),
        (244, InterfaceKind::Cellular, Transport::Cellular),
        (131, InterfaceKind::Vpn, Transport::Vpn),
        (23, InterfaceKind::Ppp, Transport::Vpn),
        (24, InterfaceKind::Loopback, Transport::Other),
        (53, InterfaceKind::Virtual, Transport::Other),
        (1, InterfaceKind::Other, Transport::Other),
    ];
    for (if_type, kind, transport) in table {
        assert_eq!(interface_kind(if_type), kind, "type {if_type}");
        assert_eq!(Transport::from(kind), transport, "type {if_type}");
    }
    let states = [
        (1, OperState::Up),
        (2, OperState::Down),
        (4, OperState::Unknown),
        (7, OperState::LowerLayerDown),
        (99, OperState::Unknown),
    ];
    for (status, state) in states {
        assert_eq!(oper_state(status), state);
    }
}
