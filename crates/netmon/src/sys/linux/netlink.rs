//! rtnetlink: two sockets (one joined to the change groups, one for dumps), message
//! translation into [`Update`]s, and full-state dumps. Parsing is the rust-netlink crates';
//! this file only maps their types onto netmon's.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, ParseableParametrized, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REPLACE, NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags as NlAddressFlags, AddressMessage, AddressScope as NlScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkFlags, LinkHeader, LinkInfo, LinkMessage, State};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::kind::{classify, sysfs_hints};
use crate::connection::RouteLookup;
use crate::event::{sort_routes, Update};
use crate::state::{Address, AddressFlags, AddressScope, DefaultRoute, Family, Interface, NetworkState, OperState};

/// Big enough for any datagram the kernel sends on NETLINK_ROUTE (dump replies are at most
/// 32 KiB; notifications are smaller).
const RECV_BUFFER: usize = 64 * 1024;

/// Multicast groups followed: links, IPv4/IPv6 addresses, IPv4/IPv6 routes.
const GROUPS: [u32; 5] = [
    libc::RTNLGRP_LINK,
    libc::RTNLGRP_IPV4_IFADDR,
    libc::RTNLGRP_IPV6_IFADDR,
    libc::RTNLGRP_IPV4_ROUTE,
    libc::RTNLGRP_IPV6_ROUTE,
];

/// How many times a dump is retried when the kernel flags it inconsistent (`NLM_F_DUMP_INTR`)
/// or links and addresses disagree because something changed between the dumps.
const DUMP_ATTEMPTS: usize = 5;

/// The sockets a kernel backend reads from.
pub(crate) struct Sockets {
    /// Joined to [`GROUPS`]; non-blocking.
    pub events: Socket,
    buffer: Vec<u8>,
    /// For address and route dumps and route lookups.
    requests: Requester,
    /// For link dumps, which run beside the address dump (see [`Sockets::dump_once`]).
    links: Requester,
    /// Messages skipped because they could not be decoded, to be reported as error events.
    undecodable: Vec<String>,
    /// Whether interface kinds may be refined from sysfs (only for the caller's namespace).
    use_sysfs: bool,
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
        })
    }

    /// Receives one datagram from the event socket and translates it. `Ok(false)` when nothing
    /// is waiting; `Err` carries the raw OS error (ENOBUFS means an overrun).
    pub(crate) fn receive(&mut self, updates: &mut Vec<Update>) -> io::Result<bool> {
        self.buffer.clear();
        match self.events.recv(&mut self.buffer, 0) {
            Ok(_) => {
                let undecodable = &mut self.undecodable;
                parse_datagram(&self.buffer, self.use_sysfs, updates, &mut |control| {
                    if let Control::Undecodable(what) = control {
                        undecodable.push(what);
                    }
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

    /// Reads the whole current state: links, addresses, default routes.
    pub(crate) fn dump_state(&mut self) -> io::Result<NetworkState> {
        let mut last_error = None;
        for _ in 0..DUMP_ATTEMPTS {
            match self.dump_once() {
                Ok(Some(state)) => return Ok(state),
                Ok(None) => continue,
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("the kernel kept changing during every dump attempt")))
    }

    /// One consistent dump, or `None` when it must be retried. Links are dumped on a second
    /// socket from a second thread while addresses and routes are dumped here: the kernel's
    /// link dump is as costly as the address dump (every link carries its per-family settings),
    /// and a host with 1,000 interfaces reads its state in about half the time.
    fn dump_once(&mut self) -> io::Result<Option<NetworkState>> {
        // Link statistics (two blocks of counters per link) are most of a link message; the
        // kernel skips gathering them when asked.
        let mut links = LinkMessage::default();
        links.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        // Only unicast routes: a host has a `local` route per address (10,000 addresses, 10,000
        // routes) that would otherwise be parsed and thrown away.
        let mut unicast = RouteMessage::default();
        unicast.header.kind = RouteType::Unicast;
        let others =
            [RouteNetlinkMessage::GetAddress(AddressMessage::default()), RouteNetlinkMessage::GetRoute(unicast)];

        let Sockets { requests, links: link_socket, undecodable, use_sysfs, .. } = self;
        let use_sysfs = *use_sysfs;
        let (link_dump, other_dumps) = std::thread::scope(|scope| {
            let link_thread = std::thread::Builder::new().name("netmon-dump".into()).spawn_scoped(scope, move || {
                let (mut updates, mut skipped) = (Vec::new(), Vec::new());
                let consistent =
                    link_socket.dump(RouteNetlinkMessage::GetLink(links), use_sysfs, &mut updates, &mut skipped);
                consistent.map(|c| (c, updates, skipped))
            });
            let mut updates = Vec::new();
            let mut consistent = Ok(true);
            for request in others {
                consistent = requests.dump(request, use_sysfs, &mut updates, undecodable);
                if !matches!(consistent, Ok(true)) {
                    break;
                }
            }
            let link_dump = match link_thread {
                Ok(thread) => thread.join().unwrap_or_else(|_| Err(io::Error::other("the link dump thread panicked"))),
                Err(e) => Err(e),
            };
            (link_dump, consistent.map(|c| (c, updates)))
        });
        let (links_consistent, link_updates, skipped) = link_dump?;
        let (others_consistent, other_updates) = other_dumps?;
        self.undecodable.extend(skipped);
        if !(links_consistent && others_consistent) {
            return Ok(None);
        }
        let mut state = NetworkState::default();
        for update in link_updates.into_iter().chain(other_updates) {
            match update {
                Update::Link(link) => match state.position(link.index) {
                    Ok(i) => state.interfaces[i] = link,
                    Err(i) => state.interfaces.insert(i, link),
                },
                Update::AddressAdded(index, address) => {
                    let Ok(i) = state.position(index) else { return Ok(None) }; // link appeared meanwhile
                    state.interfaces[i].addresses.push(address);
                }
                Update::RouteAdded(mut route) => {
                    if let Some(iface) = state.interface(route.interface_index) {
                        route.interface.clone_from(&iface.name);
                    }
                    if !state.default_routes.contains(&route) {
                        state.default_routes.push(route);
                    }
                }
                Update::RouteReplaced(_)
                | Update::RouteChanged(..)
                | Update::LinkRemoved(_)
                | Update::AddressRemoved(..)
                | Update::RouteRemoved(_)
                | Update::Verdict(_) => {}
            }
        }
        for iface in &mut state.interfaces {
            iface.addresses.sort_by_key(Address::key);
            iface.addresses.dedup_by_key(|a| a.key());
        }
        sort_routes(&mut state.default_routes);
        Ok(Some(state))
    }
}

/// A blocking socket for requests: dumps and route lookups. Each has its own buffer and
/// sequence numbers, so two can run on two threads.
struct Requester {
    socket: Socket,
    buffer: Vec<u8>,
    sequence: u32,
}

impl Requester {
    fn open() -> io::Result<Self> {
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
    fn append(&mut self, request: RouteNetlinkMessage, flags: u16, bytes: &mut Vec<u8>) {
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
    fn dump(
        &mut self,
        request: RouteNetlinkMessage,
        use_sysfs: bool,
        updates: &mut Vec<Update>,
        undecodable: &mut Vec<String>,
    ) -> io::Result<bool> {
        self.request(request, NLM_F_REQUEST | NLM_F_DUMP)?;

        let mut consistent = true;
        loop {
            self.buffer.clear();
            self.socket.recv(&mut self.buffer, 0)?;
            let mut done = false;
            let mut failure = None;
            let mut parsed = Vec::new();
            parse_datagram(&self.buffer, use_sysfs, &mut parsed, &mut |control| match control {
                Control::Done { interrupted } => {
                    done = true;
                    consistent &= !interrupted;
                }
                Control::Interrupted => consistent = false,
                Control::Error(e) => failure = Some(e),
                Control::Undecodable(what) => undecodable.push(what),
            });
            // Other routes only matter as changes; a dump of a full BGP table must not pile up.
            updates.extend(parsed.into_iter().filter(|u| !matches!(u, Update::RouteChanged(..))));
            if let Some(e) = failure {
                return Err(e);
            }
            if done {
                return Ok(consistent);
            }
        }
    }
}

/// What a datagram said besides updates.
enum Control {
    Done {
        interrupted: bool,
    },
    Interrupted,
    Error(io::Error),
    /// A message this crate version could not decode, skipped.
    Undecodable(String),
}

/// Translates every message in one datagram.
fn parse_datagram(mut bytes: &[u8], use_sysfs: bool, updates: &mut Vec<Update>, control: &mut dyn FnMut(Control)) {
    while bytes.len() >= 16 {
        if let Some(len) = new_link(bytes, use_sysfs, updates, control) {
            bytes = &bytes[align(len).min(bytes.len())..];
            continue;
        }
        let message = match NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) {
            Ok(m) => m,
            Err(e) => {
                // Skip just this message: its length field is intact even if its body is not
                // something this crate version understands.
                let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
                let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
                control(Control::Undecodable(format!("netlink message type {kind}: {e}")));
                if len < 16 || len > bytes.len() {
                    break;
                }
                bytes = &bytes[align(len).min(bytes.len())..];
                continue;
            }
        };
        let len = (message.header.length as usize).max(16);
        if message.header.flags & NLM_F_DUMP_INTR != 0 {
            control(Control::Interrupted);
        }
        match message.payload {
            NetlinkPayload::Done(_) => {
                control(Control::Done { interrupted: message.header.flags & NLM_F_DUMP_INTR != 0 })
            }
            NetlinkPayload::Error(e) if e.code.is_some() => control(Control::Error(e.to_io())),
            NetlinkPayload::InnerMessage(inner) => translate(inner, message.header.flags & NLM_F_REPLACE != 0, updates),
            _ => {}
        }
        bytes = &bytes[align(len).min(bytes.len())..];
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn translate(message: RouteNetlinkMessage, replace: bool, updates: &mut Vec<Update>) {
    match message {
        // AF_BRIDGE messages describe bridge *ports*; a port leaving a bridge is not a link going away.
        RouteNetlinkMessage::DelLink(m) if m.header.interface_family != AddressFamily::Bridge => {
            updates.push(Update::LinkRemoved(m.header.index));
        }
        RouteNetlinkMessage::NewAddress(m) => {
            if let Some(a) = address(&m) {
                updates.push(Update::AddressAdded(m.header.index, a));
            }
        }
        RouteNetlinkMessage::DelAddress(m) => {
            if let Some(a) = address(&m) {
                updates.push(Update::AddressRemoved(m.header.index, a));
            }
        }
        RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m)
            if m.header.destination_prefix_length != 0 =>
        {
            updates.extend(route_destination(&m).map(|d| Update::RouteChanged(d, m.header.destination_prefix_length)));
        }
        RouteNetlinkMessage::NewRoute(m) => {
            // A replacement swaps out every next hop at once: replace with the first, add the rest.
            for (i, route) in default_routes(&m).enumerate() {
                updates.push(if replace && i == 0 { Update::RouteReplaced(route) } else { Update::RouteAdded(route) });
            }
        }
        RouteNetlinkMessage::DelRoute(m) => updates.extend(default_routes(&m).map(Update::RouteRemoved)),
        _ => {}
    }
}

/// The fast path for `RTM_NEWLINK`, the most frequent and largest message: decodes only the
/// attributes netmon keeps. A full [`LinkMessage`] parse decodes every attribute (statistics,
/// per-family settings, queue and XDP details...), which made link events several times
/// costlier than address or route events. Returns the message's length when it was handled.
fn new_link(
    bytes: &[u8],
    use_sysfs: bool,
    updates: &mut Vec<Update>,
    control: &mut dyn FnMut(Control),
) -> Option<usize> {
    let header = NetlinkBuffer::new_checked(bytes).ok()?;
    if header.message_type() != libc::RTM_NEWLINK {
        return None;
    }
    let len = header.length() as usize;
    if header.flags() & NLM_F_DUMP_INTR != 0 {
        control(Control::Interrupted);
    }
    let payload = header.payload();
    let decoded = LinkHeader::parse(payload).and_then(|link_header| {
        let family = link_header.interface_family;
        let wanted = NlasIterator::new(payload.get(LINK_HEADER_LEN..).unwrap_or_default())
            .filter(|nla| !matches!(nla, Ok(nla) if !KEPT_LINK_ATTRIBUTES.contains(&nla.kind())))
            .map(|nla| nla.and_then(|nla| LinkAttribute::parse_with_param(&nla, family)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((link_header, wanted))
    });
    match decoded {
        // AF_BRIDGE messages describe bridge *ports*, not links.
        Ok((link_header, _)) if link_header.interface_family == AddressFamily::Bridge => {}
        Ok((link_header, attributes)) => updates.push(Update::Link(link(&link_header, &attributes, use_sysfs))),
        Err(e) => control(Control::Undecodable(format!("netlink link message: {e}"))),
    }
    Some(len)
}

/// Size of `struct ifinfomsg`, which precedes a link message's attributes.
const LINK_HEADER_LEN: usize = 16;

/// The link attributes [`link`] reads (`IFLA_*` from `linux/if_link.h`).
const KEPT_LINK_ATTRIBUTES: [u16; 5] =
    [libc::IFLA_IFNAME, libc::IFLA_MTU, libc::IFLA_ADDRESS, libc::IFLA_OPERSTATE, libc::IFLA_LINKINFO];

fn link(header: &LinkHeader, attributes: &[LinkAttribute], use_sysfs: bool) -> Interface {
    let mut iface = Interface {
        index: header.index,
        up: header.flags.contains(LinkFlags::Up),
        carrier: header.flags.contains(LinkFlags::LowerUp),
        ..Default::default()
    };
    let mut info_kind = None;
    for attribute in attributes {
        match attribute {
            LinkAttribute::IfName(name) => iface.name.clone_from(name),
            LinkAttribute::Mtu(mtu) => iface.mtu = *mtu,
            LinkAttribute::Address(bytes) => iface.mac = mac(bytes),
            LinkAttribute::OperState(state) => iface.oper_state = oper_state(*state),
            LinkAttribute::LinkInfo(infos) => {
                info_kind = infos.iter().find_map(|i| match i {
                    LinkInfo::Kind(k) => Some(k.clone()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    let hints = if use_sysfs && info_kind.is_none() { sysfs_hints(&iface.name, iface.index) } else { None };
    iface.kind = classify(header.link_layer_type, info_kind.as_ref(), hints.as_ref());
    iface
}

fn mac(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.join(":"))
}

fn oper_state(state: State) -> OperState {
    match state {
        State::Up => OperState::Up,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Dormant => OperState::Dormant,
        State::Testing => OperState::Testing,
        State::NotPresent => OperState::NotPresent,
        _ => OperState::Unknown,
    }
}

fn address(m: &AddressMessage) -> Option<Address> {
    let (mut local, mut peer, mut flags, mut lifetimes) = (None, None, None, None);
    for attribute in &m.attributes {
        match attribute {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => peer = Some(*ip),
            AddressAttribute::Flags(f) => flags = Some(*f),
            AddressAttribute::CacheInfo(c) => lifetimes = Some((c.ifa_valid, c.ifa_preferred)),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links and the only one given for IPv6.
    let address: IpAddr = local.or(peer)?;
    let flags = flags.unwrap_or_else(|| NlAddressFlags::from_bits_truncate(u32::from(m.header.flags.bits())));
    let forever = |secs: u32| (secs != u32::MAX).then_some(secs);
    Some(Address {
        address,
        prefix_len: m.header.prefix_len,
        scope: match m.header.scope {
            NlScope::Universe => AddressScope::Global,
            NlScope::Site => AddressScope::Site,
            NlScope::Link => AddressScope::Link,
            NlScope::Host => AddressScope::Host,
            _ => AddressScope::Nowhere,
        },
        flags: AddressFlags {
            tentative: flags.contains(NlAddressFlags::Tentative),
            deprecated: flags.contains(NlAddressFlags::Deprecated),
            // IFA_F_TEMPORARY shares its bit with IFA_F_SECONDARY; it means "temporary" for IPv6.
            temporary: address.is_ipv6() && flags.contains(NlAddressFlags::Secondary),
            dad_failed: flags.contains(NlAddressFlags::Dadfailed),
            permanent: flags.contains(NlAddressFlags::Permanent),
        },
        valid_lifetime: lifetimes.and_then(|(v, _)| forever(v)),
        preferred_lifetime: lifetimes.and_then(|(_, p)| forever(p)),
    })
}

/// The default routes a route message describes: one per next hop, none when it is not a
/// unicast default route (or is a cache clone).
fn default_routes(m: &RouteMessage) -> impl Iterator<Item = DefaultRoute> {
    let family = match m.header.address_family {
        AddressFamily::Inet => Some(Family::Ipv4),
        AddressFamily::Inet6 => Some(Family::Ipv6),
        _ => None,
    };
    let wanted = m.header.destination_prefix_length == 0
        && m.header.kind == RouteType::Unicast
        && !m.header.flags.contains(RouteFlags::Cloned);
    let mut routes = Vec::new();
    if let (Some(family), true) = (family, wanted) {
        let mut base = DefaultRoute {
            family,
            gateway: None,
            interface: String::new(),
            interface_index: 0,
            metric: 0,
            table: u32::from(m.header.table),
        };
        let mut hops = None;
        for attribute in &m.attributes {
            match attribute {
                RouteAttribute::Gateway(a) => base.gateway = route_ip(a),
                RouteAttribute::Oif(i) => base.interface_index = *i,
                RouteAttribute::Priority(p) => base.metric = *p,
                RouteAttribute::Table(t) => base.table = *t,
                RouteAttribute::MultiPath(h) => hops = Some(h),
                _ => {}
            }
        }
        match hops {
            Some(hops) => routes.extend(hops.iter().map(|hop| {
                let gateway = hop.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(g) => route_ip(g),
                    _ => None,
                });
                DefaultRoute { gateway, interface_index: hop.interface_index, ..base.clone() }
            })),
            None => routes.push(base),
        }
    }
    routes.into_iter()
}

/// The destination prefix of a (non-default) route.
fn route_destination(m: &RouteMessage) -> Option<IpAddr> {
    m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => route_ip(d),
        _ => None,
    })
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl RouteLookup for Sockets {
    /// `ip route get REMOTE from LOCAL`: one RTM_GETROUTE request on the dump socket.
    fn route(&mut self, local: IpAddr, remote: IpAddr) -> io::Result<Option<u32>> {
        self.routes(&[(local, remote)]).pop().unwrap_or_else(|| Err(io::Error::other("no answer to a route lookup")))
    }

    /// Sends up to [`LOOKUP_BATCH`] RTM_GETROUTE requests in one datagram, then reads their
    /// answers: one system call per batch instead of one per lookup.
    fn routes(&mut self, pairs: &[(IpAddr, IpAddr)]) -> Vec<io::Result<Option<u32>>> {
        let mut answers = Vec::with_capacity(pairs.len());
        for batch in pairs.chunks(LOOKUP_BATCH) {
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
    fn lookup_batch(&mut self, pairs: &[(IpAddr, IpAddr)]) -> io::Result<Vec<io::Result<Option<u32>>>> {
        let first = self.sequence.wrapping_add(1);
        let mut bytes = Vec::new();
        for &(local, remote) in pairs {
            let (family, bits) = if remote.is_ipv4() { (AddressFamily::Inet, 32) } else { (AddressFamily::Inet6, 128) };
            let mut request = RouteMessage::default();
            request.header.address_family = family;
            request.header.destination_prefix_length = bits;
            request.header.source_prefix_length = bits;
            request.attributes.push(RouteAttribute::Destination(remote.into()));
            request.attributes.push(RouteAttribute::Source(local.into()));
            self.append(RouteNetlinkMessage::GetRoute(request), NLM_F_REQUEST, &mut bytes);
        }
        self.socket.send(&bytes, 0)?;
        let mut answers: Vec<Option<io::Result<Option<u32>>>> = (0..pairs.len()).map(|_| None).collect();
        let mut missing = pairs.len();
        while missing > 0 {
            self.buffer.clear();
            self.socket.recv(&mut self.buffer, 0)?;
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buffer)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let slot = reply.header.sequence_number.wrapping_sub(first) as usize;
            let Some(answer @ None) = answers.get_mut(slot) else {
                continue; // a late answer to an earlier request
            };
            *answer = Some(lookup_answer(reply.payload));
            missing -= 1;
        }
        Ok(answers.into_iter().flatten().collect())
    }
}

/// The kernel's reply to one RTM_GETROUTE: the interface of a unicast route, or no route.
fn lookup_answer(payload: NetlinkPayload<RouteNetlinkMessage>) -> io::Result<Option<u32>> {
    match payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(m)) => Ok((m.header.kind == RouteType::Unicast)
            .then(|| {
                m.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Oif(i) => Some(*i),
                    _ => None,
                })
            })
            .flatten()),
        NetlinkPayload::Error(e) => {
            let error = e.to_io();
            match error.raw_os_error() {
                // No route, unreachable or prohibit route, blackhole route.
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL) => Ok(None),
                _ => Err(error),
            }
        }
        other => Err(io::Error::other(format!("unexpected reply to a route lookup: {other:?}"))),
    }
}
