//! Prefix containment and the decoding of the kernel's replies to route lookups (byte
//! fixtures, truncations).

use super::*;
use crate::sys::linux::frame::fixtures::nla;

#[test]
fn prefixes_contain_what_they_should() {
    let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(contains(v4("0.0.0.0"), 0, v4("64.0.0.1")));
    assert!(contains(v4("0.0.0.0"), 1, v4("64.0.0.1")));
    assert!(!contains(v4("0.0.0.0"), 1, v4("160.0.0.1")));
    assert!(contains(v4("128.0.0.0"), 1, v4("160.0.0.1")));
    assert!(contains(v4("2000::"), 3, v4("2800::1")));
    assert!(!contains(v4("2001:db8::"), 32, v4("2800::1")));
    assert!(contains(v4("64.0.0.1"), 32, v4("64.0.0.1")));
    assert!(!contains(v4("64.0.0.0"), 33, v4("2800::1")), "families never mix");
    assert!(matters(&Update::RouteChanged(v4("128.0.0.0"), 1)).any());
    assert!(!matters(&Update::RouteChanged(v4("10.0.0.0"), 8)).any());
}

/// Only the families a change can concern are asked again: an IPv4 address or route asks
/// IPv4's destinations, a link both families', a verdict none.
#[test]
fn changes_ask_again_only_for_their_own_family() {
    use crate::model::{Address, DefaultRoute, Family, Interface};
    let v4_only = Families::of(Family::Ipv4);
    let v6_only = Families::of(Family::Ipv6);
    let addr = |s: &str| Address::new(s.parse().unwrap(), 64);
    let route = |family| DefaultRoute {
        family,
        gateway: None,
        interface: String::new(),
        interface_index: 2,
        metric: 0,
        table: 254,
    };
    assert_eq!(matters(&Update::AddressAdded(2, addr("192.0.2.1"))), v4_only);
    assert_eq!(matters(&Update::AddressRemoved(2, addr("2001:db8::1"))), v6_only);
    assert_eq!(matters(&Update::RouteRemoved(route(Family::Ipv6))), v6_only);
    assert_eq!(matters(&Update::RouteChanged("2000::".parse().unwrap(), 3)), v6_only);
    assert_eq!(matters(&Update::RulesChanged(Family::Ipv4)), v4_only);
    assert_eq!(matters(&Update::Link(Interface::default())), Families::BOTH);
    assert_eq!(matters(&Update::LinkRemoved(2)), Families::BOTH);
    assert_eq!(matters(&Update::Verdict(crate::model::Verdict::new(crate::model::Source::Probe))), Families::NONE);
    assert_eq!(v4_only.with(v6_only), Families::BOTH);
    // A policy message (rule, nexthop, netconf, reject default) by its header's family byte.
    assert_eq!(Families::of_raw(libc::AF_INET as u8), v4_only);
    assert_eq!(Families::of_raw(libc::AF_INET6 as u8), v6_only);
    assert_eq!(Families::of_raw(libc::AF_UNSPEC as u8), Families::BOTH);
}

/// A reply built as the kernel sends it: header, then attributes.
fn route_reply(kind: u8, prefix_len: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut payload = vec![libc::AF_INET as u8, prefix_len, 0, 0, 254, 0, 0, kind, 0, 0, 0, 0];
    for (t, v) in attrs {
        payload.extend(nla(*t, v));
    }
    payload
}

fn decode(kind: u16, payload: &[u8]) -> Result<Reply, String> {
    answer(&Message { kind, flags: 0, sequence: 1, payload })
}

#[test]
fn replies_decode_into_answers() {
    let plain = route_reply(
        libc::RTN_UNICAST,
        32,
        &[
            (libc::RTA_DST, vec![64, 0, 0, 1]),
            (libc::RTA_OIF, 3u32.to_ne_bytes().to_vec()),
            (libc::RTA_GATEWAY, vec![192, 0, 2, 1]),
            (libc::RTA_PREFSRC, vec![203, 0, 113, 5]),
        ],
    );
    let mut cache = vec![0u8; 20];
    cache[8..12].copy_from_slice(&500i32.to_ne_bytes());
    let matched = route_reply(
        libc::RTN_UNICAST,
        1,
        &[
            (libc::RTA_DST, vec![0, 0, 0, 0]),
            (libc::RTA_TABLE, 51820u32.to_ne_bytes().to_vec()),
            (libc::RTA_CACHEINFO, cache),
        ],
    );
    let (answer, expires) = combine(&decode(libc::RTM_NEWROUTE, &plain), &decode(libc::RTM_NEWROUTE, &matched));
    let RouteAnswer::Out { route } = answer else { panic!("{answer:?}") };
    assert_eq!((route.prefix(), route.table, route.interface_index), ("0.0.0.0/1".into(), 51820, 3));
    assert_eq!(route.source, Some("203.0.113.5".parse().unwrap()), "the source the kernel chose");
    assert_eq!(expires, Some(Duration::from_secs(5)));

    let error = |code: i32| (-code).to_ne_bytes().to_vec();
    for (code, want) in [
        (libc::ENETUNREACH, RouteAnswer::NoRoute),
        (libc::EHOSTUNREACH, RouteAnswer::Rejected { reject: Reject::Unreachable }),
        (libc::EACCES, RouteAnswer::Rejected { reject: Reject::Prohibit }),
        (libc::EINVAL, RouteAnswer::Rejected { reject: Reject::Blackhole }),
    ] {
        let refused = decode(NLMSG_ERROR, &error(code));
        assert_eq!(combine(&refused, &refused).0, want, "errno {code}");
    }
    let blackhole = route_reply(libc::RTN_BLACKHOLE, 0, &[]);
    let got = combine(&decode(libc::RTM_NEWROUTE, &blackhole), &decode(libc::RTM_NEWROUTE, &blackhole)).0;
    assert_eq!(got, RouteAnswer::Rejected { reject: Reject::Blackhole });
    // Truncated or hostile bytes: an error, never a panic.
    for cut in 0..plain.len() {
        let _ = decode(libc::RTM_NEWROUTE, &plain[..cut]);
    }
    assert!(decode(libc::RTM_NEWROUTE, &plain[..5]).is_err());
}

/// One `struct rtnexthop` with its attributes, as the kernel lays it out in `RTA_MULTIPATH`.
fn rtnh(flags: u8, ifindex: i32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let body: Vec<u8> = attrs.iter().flat_map(|(t, v)| nla(*t, v)).collect();
    let mut bytes = ((RTNH_LEN + body.len()) as u16).to_ne_bytes().to_vec();
    bytes.extend([flags, 0]);
    bytes.extend(ifindex.to_ne_bytes());
    bytes.extend(body);
    bytes
}

/// The fibmatch reply of `ip route add default nexthop via 192.0.2.1 dev va nexthop via
/// 198.51.100.1 dev wa` after wa's far end went down: wa's member is flagged linkdown (and
/// dead once `ignore_routes_with_linkdown` is set); the answer carries every member.
#[test]
fn multipath_members_decode_with_their_flags() {
    let members = [
        rtnh(0, 2, &[(libc::RTA_GATEWAY, vec![192, 0, 2, 1])]),
        rtnh(RTNH_F_LINKDOWN, 3, &[(libc::RTA_GATEWAY, vec![198, 51, 100, 1])]),
        // IPv4 through an IPv6 gateway: RTA_VIA (family, then the address).
        rtnh(
            RTNH_F_LINKDOWN | RTNH_F_DEAD,
            4,
            &[(RTA_VIA, {
                let mut via = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
                via.extend("2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
                via
            })],
        ),
    ]
    .concat();
    let hops = multipath(&members).expect("decodes");
    let seen: Vec<(u32, Option<IpAddr>, bool, bool)> =
        hops.iter().map(|h| (h.interface_index, h.gateway, h.linkdown, h.dead)).collect();
    assert_eq!(
        seen,
        vec![
            (2, Some("192.0.2.1".parse().unwrap()), false, false),
            (3, Some("198.51.100.1".parse().unwrap()), true, false),
            (4, Some("2001:db8::1".parse().unwrap()), true, true),
        ]
    );
    assert!(hops[1].used() && !hops[2].used(), "dead members are skipped by the kernel");

    // In a reply: the answer carries them; one member alone is no multipath.
    let plain = route_reply(
        libc::RTN_UNICAST,
        32,
        &[(libc::RTA_OIF, 3u32.to_ne_bytes().to_vec()), (libc::RTA_PREFSRC, vec![198, 51, 100, 10])],
    );
    for (multipath, want) in [(members.clone(), 3), (rtnh(0, 2, &[]), 0)] {
        let matched = route_reply(libc::RTN_UNICAST, 0, &[(libc::RTA_MULTIPATH, multipath)]);
        let (answer, _) = combine(&decode(libc::RTM_NEWROUTE, &plain), &decode(libc::RTM_NEWROUTE, &matched));
        let RouteAnswer::Out { route } = answer else { panic!("{answer:?}") };
        assert_eq!((route.interface_index, route.nexthops.len()), (3, want));
    }

    // Truncated or hostile: an error, never a panic; a whole reply cut anywhere likewise.
    for cut in 0..members.len() {
        let _ = multipath(&members[..cut]);
    }
    assert!(multipath(&members[..5]).is_err(), "a header cut short");
    let mut liar = members.clone();
    liar[0..2].copy_from_slice(&1000u16.to_ne_bytes());
    assert!(multipath(&liar).is_err(), "a length past the end");
    liar[0..2].copy_from_slice(&4u16.to_ne_bytes());
    assert!(multipath(&liar).is_err(), "a length shorter than its header");
    let mut bad_attr = rtnh(0, 2, &[(libc::RTA_GATEWAY, vec![192, 0, 2, 1])]);
    bad_attr[8..10].copy_from_slice(&200u16.to_ne_bytes());
    assert!(multipath(&bad_attr).is_err(), "an attribute past its member's end");
    let matched = route_reply(libc::RTN_UNICAST, 0, &[(libc::RTA_MULTIPATH, members.clone())]);
    for cut in 0..matched.len() {
        let _ = decode(libc::RTM_NEWROUTE, &matched[..cut]);
    }
    let broken = route_reply(libc::RTN_UNICAST, 0, &[(libc::RTA_MULTIPATH, members[..10].to_vec())]);
    assert!(decode(libc::RTM_NEWROUTE, &broken).is_err());
}

/// A route using a nexthop group with `nexthop_compat_mode` off: the reply names only the
/// group's id (`RTA_NH_ID`), which is ignored; the plain reply's member still answers.
#[test]
fn a_nexthop_group_without_compat_mode_answers_by_the_plain_reply() {
    const RTA_NH_ID: u16 = 30;
    let plain = route_reply(
        libc::RTN_UNICAST,
        32,
        &[(libc::RTA_OIF, 2u32.to_ne_bytes().to_vec()), (libc::RTA_GATEWAY, vec![192, 0, 2, 1])],
    );
    let matched = route_reply(libc::RTN_UNICAST, 0, &[(RTA_NH_ID, 10u32.to_ne_bytes().to_vec())]);
    let (answer, _) = combine(&decode(libc::RTM_NEWROUTE, &plain), &decode(libc::RTM_NEWROUTE, &matched));
    let RouteAnswer::Out { route } = answer else { panic!("{answer:?}") };
    assert_eq!((route.interface_index, route.nexthops.is_empty()), (2, true));
}
