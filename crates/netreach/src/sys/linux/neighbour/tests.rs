//! Byte fixtures and arbitrary bytes for the neighbour decoder, the history of an entry, and
//! the filter on a real socket in a namespace.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use super::decode::{acknowledged, get_reply, said, Entry, Said};
use super::*;
use crate::model::NeighbourState as N;
use crate::sys::linux::frame::fixtures::{self, nla};
use crate::sys::linux::frame::{messages, HEADER_LEN};

/// A message with sequence number 1 and no flags.
fn message(kind: u16, payload: &[u8]) -> Vec<u8> {
    fixtures::message(kind, 0, 1, payload)
}

/// A neighbour message as the kernel lays it out: ndmsg, NDA_DST, NDA_LLADDR, NDA_CACHEINFO.
fn neighbour(kind: u16, address: IpAddr, index: u32, nud: u16, updated_ticks: u32) -> Vec<u8> {
    let family = if address.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let mut payload = vec![family as u8, 0, 0, 0];
    payload.extend(index.to_ne_bytes());
    payload.extend(nud.to_ne_bytes());
    payload.extend([0, 1]); // flags, type (RTN_UNICAST)
    let octets = match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    payload.extend(nla(libc::NDA_DST, &octets));
    payload.extend(nla(libc::NDA_LLADDR, &[2, 0, 0, 0, 0, 1]));
    let cache: Vec<u8> = [0u32, 100, updated_ticks, 1].iter().flat_map(|v| v.to_ne_bytes()).collect();
    payload.extend(nla(libc::NDA_CACHEINFO, &cache));
    message(kind, &payload)
}

fn one(bytes: &[u8]) -> Result<Said, String> {
    let mut all = messages(bytes);
    let first = all.next().expect("a message")?;
    said(&first)
}

fn gateway() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

#[test]
fn neighbour_messages_decode() {
    let failed = neighbour(libc::RTM_NEWNEIGH, gateway(), 7, libc::NUD_FAILED, 250);
    let entry = Entry { address: gateway(), index: 7, state: N::Failed, updated: Some(Duration::from_millis(2500)) };
    assert_eq!(one(&failed), Ok(Said::Entry(entry.clone())));
    let removed = neighbour(libc::RTM_DELNEIGH, gateway(), 7, libc::NUD_FAILED, 250);
    assert_eq!(one(&removed), Ok(Said::Removed(entry)));
    let v6: IpAddr = "fe80::1".parse().unwrap();
    for (nud, state) in [
        (0, N::None),
        (libc::NUD_INCOMPLETE, N::Incomplete),
        (libc::NUD_REACHABLE, N::Reachable),
        (libc::NUD_STALE, N::Stale),
        (libc::NUD_DELAY, N::Delay),
        (libc::NUD_PROBE, N::Probe),
        (libc::NUD_NOARP, N::Noarp),
        (libc::NUD_PERMANENT, N::Permanent),
    ] {
        let Ok(Said::Entry(entry)) = one(&neighbour(libc::RTM_NEWNEIGH, v6, 3, nud, 0)) else { panic!("{nud}") };
        assert_eq!((entry.address, entry.index, entry.state), (v6, 3, state));
    }
    // A bridge's FDB entry shares the group: not ours. Nor is a message of another kind.
    let mut fdb = neighbour(libc::RTM_NEWNEIGH, gateway(), 7, libc::NUD_REACHABLE, 0);
    fdb[HEADER_LEN] = libc::AF_BRIDGE as u8;
    assert_eq!(one(&fdb), Ok(Said::Other));
    assert_eq!(one(&message(libc::RTM_NEWLINK, &[0; 16])), Ok(Said::Other));
    // No destination: nothing to say.
    let bare = message(libc::RTM_NEWNEIGH, &[libc::AF_INET as u8, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 1]);
    assert_eq!(one(&bare), Ok(Said::Other));
}

#[test]
fn malformed_neighbour_messages_are_errors() {
    let whole = neighbour(libc::RTM_NEWNEIGH, gateway(), 7, libc::NUD_FAILED, 250);
    // Cut inside the header, and inside an attribute (the message length says so).
    for cut in [HEADER_LEN + 5, HEADER_LEN + 14, HEADER_LEN + 40] {
        let mut short = whole[..cut].to_vec();
        short[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
        assert!(one(&short).is_err(), "cut at {cut}: {:?}", one(&short));
    }
    // A cache info too short for `updated`.
    let mut payload = vec![libc::AF_INET as u8, 0, 0, 0, 7, 0, 0, 0, 0x20, 0, 0, 1];
    payload.extend(nla(libc::NDA_DST, &[192, 0, 2, 1]));
    payload.extend(nla(libc::NDA_CACHEINFO, &[0; 8]));
    assert!(one(&message(libc::RTM_NEWNEIGH, &payload)).is_err());
}

#[test]
fn replies_to_requests_decode() {
    let first = |bytes: &[u8]| -> Vec<u8> { bytes.to_vec() };
    let reply = first(&neighbour(libc::RTM_NEWNEIGH, gateway(), 7, libc::NUD_REACHABLE, 0));
    let m = messages(&reply).next().unwrap().unwrap();
    assert_eq!(get_reply(&m).unwrap().map(|e| e.state), Some(N::Reachable));
    let error = |code: i32| message(libc::NLMSG_ERROR as u16, &[(-code).to_ne_bytes().to_vec(), vec![0; 16]].concat());
    let missing = error(libc::ENOENT);
    assert_eq!(get_reply(&messages(&missing).next().unwrap().unwrap()), Ok(None));
    let refused = error(libc::EPERM);
    assert!(get_reply(&messages(&refused).next().unwrap().unwrap()).is_err());
    let ack = error(0);
    assert_eq!(acknowledged(&messages(&ack).next().unwrap().unwrap()), Ok(()));
    assert!(acknowledged(&messages(&refused).next().unwrap().unwrap()).is_err());
    let truncated = message(libc::NLMSG_ERROR as u16, &[1, 2]);
    assert!(get_reply(&messages(&truncated).next().unwrap().unwrap()).is_err());
}

proptest! {
    /// Arbitrary bytes, and arbitrary payloads under a neighbour header: never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for m in messages(&bytes).flatten() {
            let _ = said(&m);
            let _ = get_reply(&m);
            let _ = acknowledged(&m);
        }
        let _ = one(&message(libc::RTM_NEWNEIGH, &bytes));
        let _ = one(&message(libc::RTM_DELNEIGH, &bytes));
    }
}

/// A failure keeps its time through the kernel's retries; an answer (or the entry's removal)
/// ends it; a first resolution is no evidence.
#[test]
fn an_entry_remembers_its_failure_until_the_kernel_reaches_it() {
    let key = (gateway(), 7);
    let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let kernel =
        |state, ago: u64| Entry { address: gateway(), index: 7, state, updated: Some(Duration::from_secs(ago)) };
    let first = step(key, None, Some(&kernel(N::Incomplete, 0)), now);
    assert!(!first.is_unreachable(), "resolving for the first time");
    let failed = step(key, Some(&first), Some(&kernel(N::Failed, 3)), now);
    assert_eq!((failed.state, failed.unanswered_since), (N::Failed, Some(999_997)));
    let later = now + Duration::from_secs(60);
    let retried = step(key, Some(&failed), Some(&kernel(N::Incomplete, 0)), later);
    assert!(retried.is_unreachable());
    let again = step(key, Some(&retried), Some(&kernel(N::Failed, 3)), later);
    assert_eq!(again.unanswered_since, Some(999_997), "since the first failure");
    let answered = step(key, Some(&again), Some(&kernel(N::Reachable, 0)), later);
    assert_eq!((answered.state, answered.unanswered_since), (N::Reachable, None));
    let gone = step(key, Some(&again), None, later);
    assert_eq!((gone.state, gone.unanswered_since, gone.address, gone.interface_index), (N::None, None, gateway(), 7));
}

/// The filter is reprogrammed only when a followed gateway would not pass: a flapping default
/// route or two uplinks taking turns reprogram it once, and at most `STALE` earlier gateways
/// stay in it.
#[test]
fn the_filter_is_reprogrammed_only_when_a_gateway_would_not_pass() {
    let g = |last: u8| (IpAddr::from([192, 0, 2, last]), 2);
    let (one, two) = (g(1), g(2));
    assert_eq!(filter::wanted(&[], &[one]), Some(vec![one]), "a first gateway");
    assert_eq!(filter::wanted(&[one], &[]), None, "the route went away: the filter stays");
    assert_eq!(filter::wanted(&[one], &[one]), None, "and came back: nothing to do");
    assert_eq!(filter::wanted(&[one], &[two]), Some(vec![two, one]), "another uplink: the old one kept");
    assert_eq!(filter::wanted(&[two, one], &[one]), None, "taking turns: nothing to do");
    let many: Vec<_> = (1..=filter::STALE as u8 + 1).map(g).collect();
    assert_eq!(filter::wanted(&many, &[]), Some(many[..filter::STALE].to_vec()), "too many stale ones");
    assert_eq!(filter::wanted(&many[..filter::STALE], &[]), None, "up to STALE stay");
}

/// The filter on a real socket: of a storm of neighbour changes only the gateways' arrive.
#[test]
fn the_kernel_passes_only_the_gateways_entries() {
    testns::skip_unless_root!();
    let ns = testns::NetNs::new("nbpf");
    ns.veth("va", "vb");
    ns.ip("link set va up");
    ns.ip("link set vb up");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    let va = ns.index("va");
    let socket = ns.run_inside(|| Neighbours::open().expect("neighbour socket")).socket;
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    filter::set(&socket, &[(gateway(), va), (v6, va)]).expect("filter");
    // Others: other addresses, the gateway's address on another link, and the gateways last.
    let mut batch = String::new();
    for i in 2..250 {
        batch += &format!("neigh replace 192.0.2.{i} dev va lladdr 02:00:00:00:00:{:02x}\n", i % 256);
        batch += &format!("neigh replace 2001:db8::{i:x} dev va lladdr 02:00:00:00:01:{:02x}\n", i % 256);
    }
    batch += "neigh replace 192.0.2.1 dev vb lladdr 02:00:00:00:00:01\n";
    batch += "neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud reachable\n";
    batch += "neigh replace 2001:db8::1 dev va lladdr 02:00:00:00:00:02 nud stale\n";
    batch += "neigh del 192.0.2.1 dev va\n";
    ns.ip_batch(&batch);
    socket.set_non_blocking(true).expect("non-blocking");
    let mut seen = Vec::new();
    loop {
        let mut buffer = Vec::with_capacity(8192);
        match socket.recv(&mut buffer, 0) {
            Ok(_) => {
                for m in messages(&buffer) {
                    seen.push(said(&m.expect("message")).expect("decodes"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|s| match s {
            Said::Entry(e) => format!("{} {} {:?}", e.address, e.index == va, e.state),
            Said::Removed(e) => format!("deleted {} {}", e.address, e.index == va),
            Said::Other => "other".into(),
        })
        .collect();
    assert_eq!(
        summary,
        // A deletion by hand is announced as a failure first, then as the deletion.
        ["192.0.2.1 true Reachable", "2001:db8::1 true Stale", "192.0.2.1 true Failed", "deleted 192.0.2.1 true"],
        "only the gateways' messages pass"
    );
    // No gateway: nothing passes.
    filter::set(&socket, &[]).expect("filter");
    ns.ip("neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud reachable");
    let mut buffer = Vec::with_capacity(8192);
    assert!(socket.recv(&mut buffer, 0).is_err(), "dropped");
}

/// The gateways followed: each lookup's own, then the other members of a multipath route the
/// kernel uses (not a dead one), each once.
#[test]
fn the_gateways_of_every_used_multipath_member_are_followed() {
    use crate::model::{KernelRoute, Nexthop};
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let hop = |index, gateway: &str, dead| Nexthop {
        interface_index: index,
        interface: String::new(),
        gateway: Some(ip(gateway)),
        linkdown: dead,
        dead,
    };
    let route = KernelRoute {
        prefix: ip("0.0.0.0"),
        prefix_len: 0,
        table: 254,
        interface_index: 3,
        interface: String::new(),
        gateway: Some(ip("198.51.100.1")),
        source: None,
        nexthops: vec![hop(2, "192.0.2.1", false), hop(3, "198.51.100.1", false), hop(4, "203.0.113.1", true)],
    };
    let decision = |d: &str| RouteDecision { destination: ip(d), answer: RouteAnswer::Out { route: route.clone() } };
    assert_eq!(
        gateways_of(&[decision("64.0.0.1"), decision("160.0.0.1")]),
        vec![(ip("198.51.100.1"), 3), (ip("192.0.2.1"), 2)]
    );
}
