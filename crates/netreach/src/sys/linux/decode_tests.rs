//! Byte fixtures for the decoder, and arbitrary bytes: an error, never a panic.

use proptest::prelude::*;

use super::*;
use crate::model::InterfaceKind;
use crate::sys::linux::frame::fixtures::{message, nla};
use crate::sys::linux::frame::{align, HEADER_LEN};

/// `RTM_NEWLINK` (or another link message) for veth `name`, index 7, up with carrier.
fn link_message(kind: u16, name: &[u8]) -> Vec<u8> {
    let mut payload = vec![libc::AF_UNSPEC as u8, 0];
    payload.extend(1u16.to_ne_bytes()); // ARPHRD_ETHER
    payload.extend(7u32.to_ne_bytes());
    payload.extend((libc::IFF_UP as u32 | libc::IFF_LOWER_UP as u32).to_ne_bytes());
    payload.extend(0u32.to_ne_bytes());
    payload.extend(nla(libc::IFLA_IFNAME, &[name, b"\0"].concat()));
    payload.extend(nla(libc::IFLA_MTU, &1500u32.to_ne_bytes()));
    payload.extend(nla(libc::IFLA_OPERSTATE, &[6]));
    payload.extend(nla(libc::IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]));
    // Text netreach does not read, not UTF-8 either: an alias.
    payload.extend(nla(libc::IFLA_IFALIAS, b"\xfe\xff alias"));
    payload.extend(nla(libc::IFLA_LINKINFO, &nla(libc::IFLA_INFO_KIND, b"veth\0")));
    message(kind, 0, 1, &payload)
}

/// `RTM_NEWADDR` of 192.0.2.10/24 on index 7, labelled `label`, valid 300 s, preferred 100 s.
fn address_message(label: &[u8]) -> Vec<u8> {
    let mut payload = vec![libc::AF_INET as u8, 24, 0, libc::RT_SCOPE_UNIVERSE];
    payload.extend(7u32.to_ne_bytes());
    payload.extend(nla(libc::IFA_ADDRESS, &[192, 0, 2, 10]));
    payload.extend(nla(libc::IFA_LOCAL, &[192, 0, 2, 10]));
    payload.extend(nla(libc::IFA_LABEL, &[label, b"\0"].concat()));
    let cache: Vec<u8> = [100u32, 300, 1, 2].iter().flat_map(|v| v.to_ne_bytes()).collect();
    payload.extend(nla(libc::IFA_CACHEINFO, &cache));
    payload.extend(nla(libc::IFA_FLAGS, &(libc::IFA_F_PERMANENT).to_ne_bytes()));
    message(libc::RTM_NEWADDR, 0, 1, &payload)
}

/// An IPv4 unicast route in the main table with these attributes.
fn route_message(kind: u16, flags: u16, destination_len: u8, attributes: &[u8]) -> Vec<u8> {
    let mut payload = vec![libc::AF_INET as u8, destination_len, 0, 0, 254, 3, 0, libc::RTN_UNICAST];
    payload.extend(0u32.to_ne_bytes());
    payload.extend(attributes);
    message(kind, flags, 1, &payload)
}

fn decode(bytes: &[u8]) -> (Vec<Update>, Vec<String>) {
    decode_routes(bytes, Routes::All)
}

fn decode_routes(bytes: &[u8], routes: Routes) -> (Vec<Update>, Vec<String>) {
    let (mut updates, mut problems) = (Vec::new(), Vec::new());
    parse_datagram(bytes, false, routes, &mut updates, &mut |c| match c {
        Control::Undecodable(what) => problems.push(what),
        Control::Error(e) => problems.push(format!("error {e}")),
        Control::Done { interrupted } => problems.push(format!("done interrupted={interrupted}")),
        Control::Interrupted => problems.push("interrupted".into()),
        Control::Policy { .. } | Control::Tables => {}
    });
    (updates, problems)
}

/// Whether a datagram says something the route decision depends on changed.
fn policy(bytes: &[u8]) -> bool {
    policy_family(bytes).is_some()
}

/// The address family byte of the datagram's (last) policy message.
fn policy_family(bytes: &[u8]) -> Option<u8> {
    let mut seen = None;
    parse_datagram(bytes, false, Routes::All, &mut Vec::new(), &mut |c| {
        if let Control::Policy { family } = c {
            seen = Some(family);
        }
    });
    seen
}

/// A policy message names its family (the first byte of its header): an IPv4 default route
/// asks only IPv4's decision again, a rule of `AF_UNSPEC` both (see `Families::of_raw`).
#[test]
fn policy_messages_name_their_family() {
    assert_eq!(policy_family(&route_message(libc::RTM_DELROUTE, 0, 0, &[])), Some(libc::AF_INET as u8));
    let mut rule = [0u8; 12];
    rule[0] = libc::AF_INET6 as u8;
    assert_eq!(policy_family(&message(libc::RTM_NEWRULE, 0, 1, &rule)), Some(libc::AF_INET6 as u8));
    assert_eq!(policy_family(&message(libc::RTM_NEWNETCONF, 0, 1, &[0u8; 4])), Some(0));
    let mut nexthop = [0u8; 8];
    nexthop[0] = libc::AF_INET6 as u8; // may serve IPv4 routes too
    assert_eq!(policy_family(&message(105, 0, 1, &nexthop)), Some(0));
}

/// Only a rule that names a table (or cannot be read) asks for the rules to be read again.
#[test]
fn only_rules_naming_a_table_can_change_the_listed_tables() {
    let tables = |bytes: &[u8]| {
        let mut seen = false;
        parse_datagram(bytes, false, Routes::All, &mut Vec::new(), &mut |c| seen |= matches!(c, Control::Tables));
        seen
    };
    // `ip rule add lookup 100`; `ip rule add unreachable` (action 7): both policy.
    let lookup = [libc::AF_INET as u8, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0];
    let unreachable = [libc::AF_INET as u8, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0];
    for kind in [libc::RTM_NEWRULE, libc::RTM_DELRULE] {
        assert!(tables(&message(kind, 0, 1, &lookup)), "message type {kind}");
        assert!(!tables(&message(kind, 0, 1, &unreachable)), "message type {kind}");
        assert!(policy(&message(kind, 0, 1, &unreachable)));
    }
    assert!(tables(&message(libc::RTM_NEWRULE, 0, 1, &lookup[..4])), "unreadable: read again");
    assert!(!tables(&route_message(libc::RTM_NEWROUTE, 0, 0, &[])), "not a rule");
}

#[test]
fn rules_nexthops_netconf_and_reject_defaults_are_policy() {
    for kind in [libc::RTM_NEWRULE, libc::RTM_DELRULE, 104, 105, libc::RTM_NEWNETCONF] {
        assert!(policy(&message(kind, 0, 1, &[0u8; 12])), "message type {kind}");
    }
    let mut blackhole_default = route_message(libc::RTM_NEWROUTE, 0, 0, &[]);
    blackhole_default[16 + 7] = libc::RTN_BLACKHOLE;
    assert!(policy(&blackhole_default));
    assert!(!policy(&route_message(libc::RTM_NEWROUTE, 0, 24, &[])), "another route is not policy");
    assert!(!policy(&link_message(libc::RTM_NEWLINK, b"eth0")));
}

#[test]
fn a_link_named_with_bytes_that_are_not_utf8_is_kept() {
    let (updates, problems) = decode(&link_message(libc::RTM_NEWLINK, b"w\xff"));
    assert!(problems.is_empty(), "{problems:?}");
    let [Update::Link(link)] = updates.as_slice() else { panic!("{updates:?}") };
    assert_eq!((link.name.as_str(), link.name_bytes.as_deref()), ("w\\xff", Some(&b"w\xff"[..])));
    assert_eq!((link.index, link.mtu, link.kind), (7, 1500, InterfaceKind::Veth));
    assert!(link.is_ready());
    assert_eq!(link.mac.as_deref(), Some("02:00:00:00:00:01"));

    let (updates, _) = decode(&link_message(libc::RTM_NEWLINK, "vé0".as_bytes()));
    let [Update::Link(link)] = updates.as_slice() else { panic!("{updates:?}") };
    assert_eq!((link.name.as_str(), link.name_bytes.as_deref()), ("vé0", None));

    let (updates, problems) = decode(&link_message(libc::RTM_DELLINK, b"w\xff"));
    assert_eq!((updates, problems), (vec![Update::LinkRemoved(7)], vec![]));
}

#[test]
fn an_address_labelled_with_bytes_that_are_not_utf8_is_kept() {
    let (updates, problems) = decode(&address_message(b"v0:\xe9"));
    assert!(problems.is_empty(), "{problems:?}");
    let [Update::AddressAdded(7, address)] = updates.as_slice() else { panic!("{updates:?}") };
    assert_eq!((address.address.to_string().as_str(), address.prefix_len), ("192.0.2.10", 24));
    assert_eq!((address.valid_lifetime, address.preferred_lifetime), (Some(300), Some(100)));
    assert!(address.flags.permanent && !address.flags.tentative);
    assert_eq!(address.scope, AddressScope::Global);
}

#[test]
fn routes_default_multipath_replace_and_others() {
    let gateway = |ip: [u8; 4]| nla(libc::RTA_GATEWAY, &ip);
    let mut hops = Vec::new();
    for (index, ip) in [(3u32, [192, 0, 2, 1]), (4, [198, 51, 100, 1])] {
        let attributes = gateway(ip);
        hops.extend(((8 + attributes.len()) as u16).to_ne_bytes());
        hops.extend([0, 0]);
        hops.extend(index.to_ne_bytes());
        hops.extend(attributes);
    }
    let attributes = [nla(libc::RTA_PRIORITY, &5u32.to_ne_bytes()), nla(libc::RTA_MULTIPATH, &hops)].concat();
    let (updates, problems) = decode(&route_message(libc::RTM_NEWROUTE, libc::NLM_F_REPLACE as u16, 0, &attributes));
    assert!(problems.is_empty(), "{problems:?}");
    let [Update::RouteReplaced(first), Update::RouteAdded(second)] = updates.as_slice() else { panic!("{updates:?}") };
    assert_eq!((first.interface_index, first.metric, first.table), (3, 5, 254));
    assert_eq!(second.gateway, Some("198.51.100.1".parse().unwrap()));

    let single = [gateway([192, 0, 2, 1]), nla(libc::RTA_OIF, &3u32.to_ne_bytes())].concat();
    let (updates, _) = decode(&route_message(libc::RTM_DELROUTE, 0, 0, &single));
    assert!(matches!(updates.as_slice(), [Update::RouteRemoved(r)] if r.interface_index == 3), "{updates:?}");

    let other = nla(libc::RTA_DST, &[203, 0, 113, 0]);
    let (updates, _) = decode(&route_message(libc::RTM_NEWROUTE, 0, 24, &other));
    assert_eq!(updates, vec![Update::RouteChanged("203.0.113.0".parse().unwrap(), 24)]);
}

/// A table dump read for its defaults: the other routes are skipped undecoded (a truncated
/// one is no problem), while the dump's interruption and end are still reported.
#[test]
fn a_dump_read_for_defaults_skips_the_other_routes() {
    let mut datagram = message(
        libc::RTM_NEWROUTE,
        NLM_F_DUMP_INTR,
        1,
        &route_message(0, 0, 16, &nla(libc::RTA_DST, &[198, 18, 0, 0]))[HEADER_LEN..],
    );
    datagram.extend(route_message(libc::RTM_NEWROUTE, 0, 24, &[4, 0]));
    datagram.extend(route_message(libc::RTM_NEWROUTE, 0, 0, &nla(libc::RTA_OIF, &3u32.to_ne_bytes())));
    datagram.extend(message(NLMSG_DONE, 0, 1, &0i32.to_ne_bytes()));
    let (updates, controls) = decode_routes(&datagram, Routes::Defaults);
    assert!(matches!(updates.as_slice(), [Update::RouteAdded(r)] if r.interface_index == 3), "{updates:?}");
    assert_eq!(controls, vec!["interrupted".to_owned(), "done interrupted=false".into()]);
    // Read whole, the same datagram has a change and an undecodable message besides.
    let (updates, controls) = decode(&datagram);
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert!(controls.iter().any(|c| c.contains("netlink message type 24")), "{controls:?}");
}

#[test]
fn done_error_and_interrupted_dumps_are_reported() {
    let mut datagram = message(NLMSG_DONE, NLM_F_DUMP_INTR, 1, &0i32.to_ne_bytes());
    datagram.extend(message(NLMSG_ERROR, 0, 2, &(-libc::EPERM).to_ne_bytes()));
    let (_, controls) = decode(&datagram);
    let eperm = format!("error {}", io::Error::from_raw_os_error(libc::EPERM));
    assert_eq!(controls, vec!["interrupted".to_owned(), "done interrupted=true".into(), eperm]);
}

#[test]
fn truncated_and_malformed_messages_are_errors() {
    let good = link_message(libc::RTM_NEWLINK, b"w\xff");
    // Cut anywhere: the message length no longer fits.
    for cut in 1..good.len() {
        let (updates, problems) = decode(&good[..cut]);
        assert!(updates.is_empty() && problems.len() == 1, "cut at {cut}: {updates:?} {problems:?}");
    }
    // An attribute claiming more bytes than the message has.
    let mut bad = good.clone();
    let name_at = HEADER_LEN + 16;
    bad[name_at..name_at + 2].copy_from_slice(&200u16.to_ne_bytes());
    let (updates, problems) = decode(&bad);
    assert!(updates.is_empty() && problems[0].contains("attribute 3 of 200 bytes"), "{problems:?}");
    // A header shorter than `struct ifinfomsg`, a 3-byte MTU, a 2-byte next hop.
    let short = message(libc::RTM_NEWLINK, 0, 1, &[0; 8]);
    let mut mtu = good.clone();
    let mtu_at = name_at + align(4 + 3);
    mtu[mtu_at..mtu_at + 2].copy_from_slice(&7u16.to_ne_bytes());
    let hop = route_message(libc::RTM_NEWROUTE, 0, 0, &nla(libc::RTA_MULTIPATH, &[2, 0]));
    for bytes in [short, mtu, hop] {
        let (updates, problems) = decode(&bytes);
        assert!(updates.is_empty() && problems.len() == 1, "{updates:?} {problems:?}");
    }
}

#[test]
fn route_lookup_answers() {
    let answer = |bytes: Vec<u8>| {
        let message = messages(&bytes).next().unwrap().unwrap();
        lookup_answer(&message).map_err(|e| e.kind())
    };
    let oif = nla(libc::RTA_OIF, &9u32.to_ne_bytes());
    assert_eq!(answer(route_message(libc::RTM_NEWROUTE, 0, 32, &oif)), Ok(Some(crate::path::Route::out(9))));
    // One of this host's own addresses: a local route over lo.
    let mut local = route_message(libc::RTM_NEWROUTE, 0, 32, &oif);
    local[HEADER_LEN + 7] = libc::RTN_LOCAL;
    assert_eq!(answer(local.clone()), Ok(Some(crate::path::Route { interface: 9, local: true })));
    local[HEADER_LEN + 7] = libc::RTN_BROADCAST;
    assert_eq!(answer(local), Ok(None));
    let unreachable = message(NLMSG_ERROR, 0, 1, &(-libc::ENETUNREACH).to_ne_bytes());
    assert_eq!(answer(unreachable), Ok(None));
    let gone = message(NLMSG_ERROR, 0, 1, &(-libc::ENODEV).to_ne_bytes());
    assert_eq!(answer(gone), Ok(None));
    let denied = message(NLMSG_ERROR, 0, 1, &(-libc::EPERM).to_ne_bytes());
    assert_eq!(answer(denied), Err(io::ErrorKind::PermissionDenied));
    let truncated = route_message(libc::RTM_NEWROUTE, 0, 32, &oif[..6]);
    assert_eq!(answer(truncated), Err(io::ErrorKind::InvalidData));
}

#[test]
fn rule_changes_and_optimistic_addresses() {
    for (family, expected) in [(libc::AF_INET, Family::Ipv4), (libc::AF_INET6, Family::Ipv6)] {
        for kind in [libc::RTM_NEWRULE, libc::RTM_DELRULE] {
            let (updates, problems) = decode(&message(kind, 0, 1, &[family as u8, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 0]));
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(updates, vec![Update::RulesChanged(expected)]);
        }
    }
    let (updates, problems) = decode(&message(libc::RTM_NEWRULE, 0, 1, &[]));
    assert!(updates.is_empty() && problems.len() == 1, "{updates:?} {problems:?}");
    // DAD running: tentative, unless optimistic (usable meanwhile, RFC 4429).
    let flagged = |flags: u32| {
        let mut bytes = address_message(b"eth0");
        bytes.extend(nla(libc::IFA_FLAGS, &flags.to_ne_bytes()));
        let len = bytes.len() as u32;
        bytes[..4].copy_from_slice(&len.to_ne_bytes());
        match decode(&bytes).0.as_slice() {
            [Update::AddressAdded(_, address)] => address.flags.tentative,
            other => panic!("{other:?}"),
        }
    };
    assert!(flagged(libc::IFA_F_TENTATIVE));
    assert!(!flagged(libc::IFA_F_TENTATIVE | libc::IFA_F_OPTIMISTIC));
}

/// Message types the decoder reads, for the property tests.
const KINDS: [u16; 10] = [
    libc::RTM_NEWRULE,
    libc::RTM_DELRULE,
    libc::RTM_NEWLINK,
    libc::RTM_DELLINK,
    libc::RTM_NEWADDR,
    libc::RTM_DELADDR,
    libc::RTM_NEWROUTE,
    libc::RTM_DELROUTE,
    NLMSG_DONE,
    NLMSG_ERROR,
];

proptest! {
    #[test]
    fn arbitrary_datagrams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        for message in messages(&bytes).flatten() {
            let _ = lookup_answer(&message);
        }
    }

    /// Well-framed messages of every type read, with arbitrary payloads (the likelier way to
    /// reach the attribute decoding).
    #[test]
    fn arbitrary_payloads_never_panic(
        kind in proptest::sample::select(KINDS.to_vec()),
        flags in any::<u16>(),
        header in proptest::collection::vec(any::<u8>(), 0..20),
        attributes in proptest::collection::vec((0u16..40, proptest::collection::vec(any::<u8>(), 0..24)), 0..6),
    ) {
        let mut payload = header;
        for (kind, value) in &attributes {
            payload.extend(nla(*kind, value));
        }
        let datagram = message(kind, flags, 1, &payload);
        let _ = decode(&datagram);
        let message = messages(&datagram).next().unwrap().unwrap();
        let _ = lookup_answer(&message);
    }
}
