//! rtnetlink: the sockets (one joined to the change groups, two for dumps and route lookups),
//! requests and full-state dumps. Requests are encoded with the rust-netlink crates; replies
//! and events are decoded by [`super::decode`].

use std::io;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::decode::{lookup_answer, parse_datagram, Control, Routes};
use super::families::Families;
use super::frame::align;
use crate::model::Update;
use crate::path::{Answer, Query, RouteLookup};

/// Big enough for any datagram the kernel sends on NETLINK_ROUTE (dump replies are at most
/// 32 KiB; notifications are smaller).
const RECV_BUFFER: usize = 64 * 1024;

/// Multicast groups followed: links, IPv4/IPv6 addresses, IPv4/IPv6 routes; and what else can
/// change the kernel's route decision: IPv4/IPv6 rules, nexthop objects, and the per-interface
/// settings the kernel announces (netconf: `ignore_routes_with_linkdown`, forwarding).
const GROUPS: [u32; 10] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
    libc::RTNLGRP_IPV4_RULE,
    libc::RTNLGRP_IPV6_RULE,
    libc::RTNLGRP_NEXTHOP,
    libc::RTNLGRP_IPV4_NETCONF,
    libc::RTNLGRP_IPV6_NETCONF,
];

/// The sockets a kernel backend reads from.
pub(crate) struct Sockets {
    /// Joined to [`GROUPS`]; non-blocking.
    pub events: Socket,
    buffer: Vec<u8>,
    /// For address and route dumps and route lookups.
    pub(super) requests: Requester,
    /// For link dumps, which run beside the address dump (see [`super::dump`]).
    pub(super) links: Requester,
    /// Messages skipped because they could not be decoded, to be reported as error events.
    pub(super) undecodable: Vec<String>,
    /// Whether interface kinds may be refined from sysfs (only for the caller's namespace).
    pub(super) use_sysfs: bool,
    /// The families of received messages that changed something the kernel's route decision
    /// depends on but that is not state (a rule, a nexthop object, a netconf setting, a reject
    /// default); taken by whoever asks the decision again.
    pub(super) policy_changed: Families,
    /// A received rule can have changed which tables are listed (it names a table); taken by
    /// whoever reads the rules again (`Kernel::follow`).
    pub(super) tables_may_change: bool,
    /// The neighbour entries of the decision's gateways, on a socket of their own.
    pub(super) neighbours: super::neighbour::Neighbours,
    /// The tables whose default routes are listed (see [`super::listed`]).
    pub(super) tables: super::listed::Tables,
    /// The namespace the sockets live in, when not the caller's: abandoned dumps need new
    /// sockets there ([`super::tables`]).
    pub(super) namespace: Option<super::netns::Namespace>,
}

impl Sockets {
    /// Opens both sockets in the current thread's namespace. `receive_buffer` sets SO_RCVBUF of
    /// the event socket (the kernel doubles it and applies a minimum).
    pub(crate) fn open(receive_buffer: Option<usize>, use_sysfs: bool) -> io::Result<Self> {
        let mut events = Socket::new(NETLINK_ROUTE)?;
        events.bind(&SocketAddr::new(0, 0))?;
        for group in GROUPS {
            events.add_membership(group)?;
        }
        if let Some(bytes) = receive_buffer {
            events.set_rx_buf_sz(bytes)?;
        }
        events.set_non_blocking(true)?;
        Ok(Sockets {
            events,
            buffer: Vec::with_capacity(RECV_BUFFER),
            requests: Requester::open()?,
            links: Requester::open()?,
            undecodable: Vec::new(),
            use_sysfs,
            policy_changed: Families::NONE,
            tables_may_change: false,
            neighbours: super::neighbour::Neighbours::open()?,
            tables: super::listed::Tables::default(),
            namespace: None,
        })
    }

    /// Receives one datagram from the event socket and translates it. `Ok(false)` when nothing
    /// is waiting; `Err` carries the raw OS error (ENOBUFS means an overrun).
    pub(crate) fn receive(&mut self, updates: &mut Vec<Update>) -> io::Result<bool> {
        self.buffer.clear();
        match self.events.recv(&mut self.buffer, 0) {
            Ok(_) => {
                let (undecodable, policy) = (&mut self.undecodable, &mut self.policy_changed);
                let tables = &mut self.tables_may_change;
                parse_datagram(&self.buffer, self.use_sysfs, Routes::All, updates, &mut |control| match control {
                    Control::Undecodable(what) => undecodable.push(what),
                    Control::Policy { family } => *policy = policy.with(Families::of_raw(family)),
                    Control::Tables => *tables = true,
                    _ => {}
                });
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Descriptions of messages that could not be decoded since the last call.
    pub(crate) fn take_undecodable(&mut self) -> Vec<String> {
        std::mem::take(&mut self.undecodable)
    }

    /// Discards everything queued on the event socket (before a resync: the dump supersedes it).
    pub(crate) fn drain_events(&mut self) {
        loop {
            self.buffer.clear();
            match self.events.recv(&mut self.buffer, 0) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
}

/// A blocking socket for requests: dumps and route lookups. Each has its own buffer and
/// sequence numbers, so two can run on two threads.
pub(super) struct Requester {
    pub(super) socket: Socket,
    pub(super) buffer: Vec<u8>,
    pub(super) sequence: u32,
}

impl Requester {
    pub(super) fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // Lets the kernel filter route dumps by type (Linux 4.20+). Where it is refused, dumps
        // just carry every route and the translation below drops what it does not need.
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(Requester { socket, buffer: Vec::with_capacity(RECV_BUFFER), sequence: 0 })
    }

    /// Sends one request under a fresh sequence number.
    fn request(&mut self, request: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let mut bytes = Vec::new();
        self.append(request, flags, &mut bytes);
        self.socket.send(&bytes, 0)?;
        Ok(())
    }

    /// Appends one request, under a fresh sequence number, to a datagram being built.
    pub(super) fn append(&mut self, request: RouteNetlinkMessage, flags: u16, bytes: &mut Vec<u8>) {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
        message.finalize();
        let at = bytes.len();
        bytes.resize(at + align(message.buffer_len()), 0);
        message.serialize(&mut bytes[at..]);
    }

    /// Sends one dump request and collects its replies; `false` when the kernel flagged the dump
    /// as interrupted by a concurrent change.
    pub(super) fn dump(
        &mut self,
        request: RouteNetlinkMessage,
        use_sysfs: bool,
        updates: &mut Vec<Update>,
        undecodable: &mut Vec<String>,
    ) -> io::Result<bool> {
        self.request(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut consistent = true;
        loop {
            let mut parsed = Vec::new();
            let done = self.dump_datagram(use_sysfs, Routes::All, &mut parsed, &mut consistent, undecodable)?;
            // Other routes only matter as changes; a dump of a full BGP table must not pile up.
            updates.extend(parsed.into_iter().filter(|u| !matches!(u, Update::RouteChanged(..))));
            if done {
                return Ok(consistent);
            }
        }
    }

    /// Reads the next datagram of a dump in progress: its updates (of the `routes` asked) into
    /// `parsed`, the messages that could not be decoded named in `undecodable`; `consistent` is cleared when the
    /// kernel flags the dump interrupted. `Ok(true)` once the dump is done; the kernel's error
    /// for the dump request, if it sent one.
    pub(super) fn dump_datagram(
        &mut self,
        use_sysfs: bool,
        routes: Routes,
        parsed: &mut Vec<Update>,
        consistent: &mut bool,
        undecodable: &mut Vec<String>,
    ) -> io::Result<bool> {
        self.buffer.clear();
        self.socket.recv(&mut self.buffer, 0)?;
        let (mut done, mut failure) = (false, None);
        parse_datagram(&self.buffer, use_sysfs, routes, parsed, &mut |control| match control {
            Control::Done { interrupted } => {
                done = true;
                *consistent &= !interrupted;
            }
            Control::Interrupted => *consistent = false,
            Control::Error(e) => failure = Some(e),
            Control::Undecodable(what) => undecodable.push(what),
            Control::Policy { .. } | Control::Tables => {}
        });
        failure.map_or(Ok(done), Err)
    }
}

impl RouteLookup for Sockets {
    /// `ip route get REMOTE from LOCAL [oif SCOPE] [mark MARK] [uid UID]`: one RTM_GETROUTE
    /// request on the dump socket.
    fn route(&mut self, query: &Query) -> Answer {
        self.routes(&[*query]).pop().unwrap_or_else(|| Err(io::Error::other("no answer to a route lookup")))
    }

    /// Sends up to [`LOOKUP_BATCH`] RTM_GETROUTE requests in one datagram, then reads their
    /// answers: one system call per batch instead of one per lookup.
    fn routes(&mut self, queries: &[Query]) -> Vec<Answer> {
        let mut answers = Vec::with_capacity(queries.len());
        for batch in queries.chunks(LOOKUP_BATCH) {
            match self.requests.lookup_batch(batch) {
                Ok(mut batch_answers) => answers.append(&mut batch_answers),
                Err(e) => answers.extend(batch.iter().map(|_| Err(io::Error::new(e.kind(), e.to_string())))),
            }
        }
        answers
    }
}

/// Route lookups sent in one datagram. Each answer is queued on the socket until read, and
/// its accounted size is about 1 KiB; 64 stay far below the default receive buffer (208 KiB),
/// so no answer can be dropped.
const LOOKUP_BATCH: usize = 64;

impl Requester {
    fn lookup_batch(&mut self, queries: &[Query]) -> io::Result<Vec<Answer>> {
        let requests = queries.iter().map(|&Query { local, remote, scope, mark, uid }| {
            let (family, bits) = if remote.is_ipv4() { (AddressFamily::Inet, 32) } else { (AddressFamily::Inet6, 128) };
            let mut request = RouteMessage::default();
            request.header.address_family = family;
            request.header.destination_prefix_length = bits;
            request.header.source_prefix_length = bits;
            request.attributes.push(RouteAttribute::Destination(remote.into()));
            request.attributes.push(RouteAttribute::Source(local.into()));
            // As for a socket bound to that link, with that mark, owned by that uid; without
            // RTA_UID the kernel judges as this process's uid.
            request.attributes.extend(scope.map(RouteAttribute::Oif));
            request.attributes.extend(mark.map(RouteAttribute::Mark));
            request.attributes.extend(uid.map(RouteAttribute::Uid));
            RouteNetlinkMessage::GetRoute(request)
        });
        self.exchange(requests.collect(), NLM_F_REQUEST, lookup_answer)
    }
}
