//! What the kernel itself spends on an IPv6 table, without netreach: the `routes` benchmark
//! prints these beside `status --json`, so the bound it documents is measured, not assumed.
//! Included by `src/bin/routes.rs` with `#[path]`.

use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use testns::NetNs;

/// The kernel's costs, medians of `runs`.
pub struct Costs {
    /// `main` dumped by table and type, every route sent: what netreach reads at start-up.
    pub whole: Duration,
    /// The same dump filtered in the kernel by a link no route uses (`lo`): the walk alone,
    /// no route sent. Any dump of the table, however filtered, costs at least this.
    pub walk: Duration,
    /// One `ip -6 route get fibmatch 2800::1` (the route decision's lookup).
    pub lookup: Duration,
    /// Routes the whole dump sent.
    pub routes: usize,
}

/// Measures [`Costs`] on a socket inside `ns`, with strict checking (the kernel filters).
pub fn costs(ns: &NetNs, runs: usize) -> Costs {
    let mut socket = ns.run_inside(|| {
        let mut socket = Socket::new(NETLINK_ROUTE).expect("socket");
        socket.bind_auto().expect("bind");
        socket.set_netlink_get_strict_chk(true).expect("strict checking");
        socket
    });
    let (mut whole, mut walk, mut lookup, mut routes) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let start = Instant::now();
        routes = exchange(&mut socket, dump(None), NLM_F_REQUEST | NLM_F_DUMP);
        whole.push(start.elapsed());
        let start = Instant::now();
        assert_eq!(exchange(&mut socket, dump(Some(1)), NLM_F_REQUEST | NLM_F_DUMP), 0, "a route through lo");
        walk.push(start.elapsed());
        let start = Instant::now();
        assert_eq!(exchange(&mut socket, fib_match(), NLM_F_REQUEST), 1, "the lookup's answer");
        lookup.push(start.elapsed());
    }
    Costs { whole: median(whole), walk: median(walk), lookup: median(lookup), routes }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A dump of `main`'s unicast IPv6 routes, through link `oif` only when given.
fn dump(oif: Option<u32>) -> RouteNetlinkMessage {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet6;
    request.header.table = RouteHeader::RT_TABLE_MAIN;
    request.header.kind = RouteType::Unicast;
    request.attributes.extend(oif.map(RouteAttribute::Oif));
    RouteNetlinkMessage::GetRoute(request)
}

fn fib_match() -> RouteNetlinkMessage {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet6;
    request.header.destination_prefix_length = 128;
    request.header.flags = RouteFlags::FibMatch;
    request.attributes.push(RouteAttribute::Destination("2800::1".parse::<std::net::Ipv6Addr>().unwrap().into()));
    RouteNetlinkMessage::GetRoute(request)
}

/// Sends `request` and reads until its end (`NLMSG_DONE`, an error, or the one answer of a
/// lookup); the number of route messages received.
fn exchange(socket: &mut Socket, request: RouteNetlinkMessage, flags: u16) -> usize {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0).expect("send");
    let (mut routes, mut buffer) = (0, Vec::with_capacity(64 * 1024));
    loop {
        buffer.clear();
        socket.recv(&mut buffer, 0).expect("recv");
        let mut at = 0;
        while at + 16 <= buffer.len() {
            let length = u32::from_ne_bytes(buffer[at..at + 4].try_into().unwrap()) as usize;
            match u16::from_ne_bytes([buffer[at + 4], buffer[at + 5]]) {
                2 | 3 => return routes,                    // NLMSG_ERROR, NLMSG_DONE
                24 if flags & NLM_F_DUMP == 0 => return 1, // RTM_NEWROUTE: a lookup's answer
                24 => routes += 1,
                _ => {}
            }
            at += length.max(16).next_multiple_of(4);
        }
    }
}
