//! The kernel's own route decision for the internet of each family: route lookups
//! (`RTM_GETROUTE`, as `ip route get` and `ip route get fibmatch` send them) for a few
//! representative destinations. A lookup sends no packet: the destination is only the key of
//! the kernel's FIB lookup, so rules, reject routes, nexthop objects and groups, multipath,
//! linkdown handling and per-table routes all come from the kernel's answer, never from a
//! re-implementation of its FIB.
//!
//! Which destinations, and why these: ordinary allocated unicast addresses outside every
//! special-purpose block (RFC 6890: no private, shared, documentation, benchmarking or
//! multicast range), so that routes a site keeps for its own networks do not capture them, and
//! the answer is the one for "the internet":
//! - IPv4 `64.0.0.1` and `160.0.0.1`: one in each half of the address space, so OpenVPN's
//!   `0.0.0.0/1 + 128.0.0.0/1` split counts only when both halves lead out;
//! - IPv6 `2800::1`: inside `2000::/3` (global unicast) and inside OpenVPN's `2000::/4`.
//!
//! A family is judged from all of its destinations (`reachability.rs`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use netlink_packet_core::NLM_F_REQUEST;
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

pub(super) use super::families::Families;
use super::frame::{attributes, fixed, ip, messages, u32_of, Message};
use super::netlink::Requester;
use crate::model::{Family, KernelRoute, Nexthop, Reject, RouteAnswer, RouteDecision, Update};

/// The destinations looked up (see the module's documentation).
pub(super) const REPRESENTATIVES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(64, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(160, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2800, 0, 0, 0, 0, 0, 0, 1)),
];

/// `USER_HZ`: the unit of `rta_expires` in `struct rta_cacheinfo` (clock ticks).
const USER_HZ: u64 = 100;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;

/// Which families' answers an update can change: links (carrier, up/down) both; an address
/// (source selection), a default route or a rule only its own family's; another route only
/// when its prefix contains one of the destinations. Asking only those keeps the lookups that
/// follow a change (CPU the change's readers are waiting for) to the ones that can answer
/// differently: an IPv4 address change asks four, not six.
pub(super) fn matters(update: &Update) -> Families {
    match update {
        Update::RouteChanged(prefix, len) if REPRESENTATIVES.iter().any(|d| contains(*prefix, *len, *d)) => {
            Families::of_address(*prefix)
        }
        Update::RouteChanged(..)
        | Update::Verdict(_)
        | Update::Decision(..)
        | Update::Gateways(..)
        | Update::Dns(_) => Families::NONE,
        Update::AddressAdded(_, address) | Update::AddressRemoved(_, address) => Families::of_address(address.address),
        Update::RouteAdded(route) | Update::RouteReplaced(route) | Update::RouteRemoved(route) => {
            Families::of(route.family)
        }
        Update::RulesChanged(family) => Families::of(*family),
        _ => Families::BOTH,
    }
}

/// Whether `prefix/len` contains `address`.
fn contains(prefix: IpAddr, len: u8, address: IpAddr) -> bool {
    let (p, a, bits) = match (prefix, address) {
        (IpAddr::V4(p), IpAddr::V4(a)) => (u128::from(u32::from(p)) << 96, u128::from(u32::from(a)) << 96, 32),
        (IpAddr::V6(p), IpAddr::V6(a)) => (u128::from(p), u128::from(a), 128),
        _ => return false,
    };
    let len = u32::from(len).min(bits);
    len == 0 || (p ^ a) >> (128 - len) == 0
}

/// The answers last seen, with the expiry each route had: the source keeps them to report only
/// changes, to arm a one-shot timer at the earliest expiry, and to say "expired" when a route
/// with a lifetime is gone at its expiry.
#[derive(Default)]
pub(super) struct Decider {
    last: Vec<(RouteDecision, Option<Instant>)>,
}

impl Decider {
    /// Asks the kernel again for the destinations of `families` (the others keep their last
    /// answers); returns one [`Update::Decision`] per family whose answers changed (every
    /// family when `all`).
    pub(super) fn decide(&mut self, requests: &mut Requester, families: Families, all: bool) -> Vec<Update> {
        let now = Instant::now();
        let known = |d: &IpAddr| self.last.iter().any(|(l, _)| l.destination == *d);
        let asked: Vec<IpAddr> = REPRESENTATIVES.into_iter().filter(|d| families.has(*d) || !known(d)).collect();
        let fresh = match lookup(requests, &asked) {
            Ok(answers) => answers,
            Err(e) => {
                let error = e.to_string();
                let failed = |_: &IpAddr| (RouteAnswer::Failed { error: error.clone() }, None);
                asked.iter().map(failed).collect()
            }
        };
        let mut next = Vec::with_capacity(REPRESENTATIVES.len());
        let mut fresh = asked.iter().zip(fresh);
        for destination in &REPRESENTATIVES {
            let before = self.last.iter().find(|(d, _)| d.destination == *destination);
            let (answer, expires) = match before {
                Some(kept) if !asked.contains(destination) => {
                    next.push(kept.clone());
                    continue;
                }
                // `lookup` answers every destination asked, in order.
                _ => fresh.next().map(|(_, answer)| answer).unwrap_or((
                    RouteAnswer::Failed { error: "the kernel did not answer a route lookup".into() },
                    None,
                )),
            };
            let answer = match before {
                // Gone at (or after) its expiry, and nothing else leads out: it expired.
                Some((RouteDecision { answer: RouteAnswer::Out { route }, .. }, Some(at)))
                    if *at <= now && matches!(answer, RouteAnswer::NoRoute | RouteAnswer::Rejected { .. }) =>
                {
                    RouteAnswer::Expired { route: route.clone() }
                }
                // Still nothing: it stays expired until something else answers.
                Some((RouteDecision { answer: expired @ RouteAnswer::Expired { .. }, .. }, _))
                    if answer == RouteAnswer::NoRoute =>
                {
                    expired.clone()
                }
                _ => answer,
            };
            let mut deadline = expires.map(|e| now + e);
            if let (None, Some((previous, Some(at)))) = (deadline, before) {
                // The kernel says 0 both for "no lifetime" and for "expires within a tick": a
                // route that had a lifetime keeps its deadline (at worst one extra lookup).
                if previous.answer == answer {
                    deadline = Some(*at);
                }
            }
            next.push((RouteDecision { destination: *destination, answer }, deadline));
        }
        let mut updates = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            let of = |list: &[(RouteDecision, Option<Instant>)]| -> Vec<RouteDecision> {
                list.iter().filter(|(d, _)| d.family() == family).map(|(d, _)| d.clone()).collect()
            };
            let decisions = of(&next);
            if all || decisions != of(&self.last) {
                updates.push(Update::Decision(family, decisions));
            }
        }
        self.last = next;
        updates
    }

    /// The current answers of every family.
    pub(super) fn current(&self) -> Vec<RouteDecision> {
        self.last.iter().map(|(d, _)| d.clone()).collect()
    }

    /// The earliest expiry of a route that answers now: when to ask again.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.last.iter().filter_map(|(d, at)| at.filter(|_| matches!(d.answer, RouteAnswer::Out { .. }))).min()
    }
}

/// Two lookups per destination in one datagram: the plain one (interface, gateway, the source
/// the kernel would choose) and `fibmatch` (the route entry that matched: prefix, table,
/// lifetime).
fn lookup(requests: &mut Requester, destinations: &[IpAddr]) -> io::Result<Vec<(RouteAnswer, Option<Duration>)>> {
    if destinations.is_empty() {
        return Ok(Vec::new());
    }
    let mut asked = Vec::new();
    for &destination in destinations {
        for fib_match in [false, true] {
            let (family, bits) =
                if destination.is_ipv4() { (AddressFamily::Inet, 32) } else { (AddressFamily::Inet6, 128) };
            let mut request = RouteMessage::default();
            request.header.address_family = family;
            request.header.destination_prefix_length = bits;
            // LookupTable: IPv4's answer then names the table the rules chose (else it says
            // `main`); IPv6 always names it, and refuses the flag (EINVAL) under strict checks.
            let table = if destination.is_ipv4() { RouteFlags::LookupTable } else { RouteFlags::empty() };
            request.header.flags = if fib_match { RouteFlags::FibMatch | table } else { table };
            request.attributes.push(RouteAttribute::Destination(destination.into()));
            asked.push(RouteNetlinkMessage::GetRoute(request));
        }
    }
    let replies = requests.exchange(asked, NLM_F_REQUEST, answer)?;
    Ok(replies.chunks(2).map(|pair| combine(&pair[0], &pair[1])).collect())
}

/// What one reply said.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    Route(Parts),
    Refused(RouteAnswer),
}

/// The fields of a route reply that matter here.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Parts {
    prefix: Option<IpAddr>,
    prefix_len: u8,
    kind: u8,
    table: u32,
    oif: Option<u32>,
    gateway: Option<IpAddr>,
    source: Option<IpAddr>,
    /// `rta_expires`, in clock ticks; 0 when the route has no lifetime.
    expires: i32,
    /// `RTA_MULTIPATH`: the members of a multipath route (the `fibmatch` reply lists them).
    nexthops: Vec<Nexthop>,
}

/// Decodes the kernel's reply to one lookup (pure).
pub(super) fn answer(message: &Message<'_>) -> Result<Reply, String> {
    match message.kind {
        libc::RTM_NEWROUTE => {
            let h = fixed::<12>(message.payload, "route header")?;
            let mut parts = Parts { prefix_len: h[1], kind: h[7], table: u32::from(h[4]), ..Parts::default() };
            for attribute in attributes(&message.payload[12..]) {
                let (kind, value) = attribute?;
                match kind {
                    libc::RTA_DST => parts.prefix = ip(value),
                    libc::RTA_OIF => parts.oif = Some(u32_of(value, "RTA_OIF")?),
                    libc::RTA_GATEWAY => parts.gateway = ip(value),
                    libc::RTA_PREFSRC => parts.source = ip(value),
                    libc::RTA_TABLE => parts.table = u32_of(value, "RTA_TABLE")?,
                    libc::RTA_CACHEINFO => {
                        let c = fixed::<12>(value, "RTA_CACHEINFO")?;
                        parts.expires = i32::from_ne_bytes([c[8], c[9], c[10], c[11]]);
                    }
                    libc::RTA_MULTIPATH => parts.nexthops = multipath(value)?,
                    _ => {}
                }
            }
            Ok(Reply::Route(parts))
        }
        NLMSG_ERROR => {
            let code = i32::from_ne_bytes(fixed::<4>(message.payload, "error code")?);
            Ok(Reply::Refused(match code.saturating_neg() {
                0 => RouteAnswer::Failed { error: "a route lookup was acknowledged without an answer".into() },
                libc::ENETUNREACH => RouteAnswer::NoRoute,
                libc::EHOSTUNREACH => RouteAnswer::Rejected { reject: Reject::Unreachable },
                libc::EACCES => RouteAnswer::Rejected { reject: Reject::Prohibit },
                libc::EINVAL => RouteAnswer::Rejected { reject: Reject::Blackhole },
                other => RouteAnswer::Failed { error: io::Error::from_raw_os_error(other).to_string() },
            }))
        }
        other => Err(format!("unexpected reply to a route lookup (message type {other})")),
    }
}

/// `struct rtnexthop`: length (u16), flags (u8), hops (u8), ifindex (i32), then its attributes.
const RTNH_LEN: usize = 8;
/// `rtnh_flags` (`linux/rtnetlink.h`; the libc crate does not carry them).
const RTNH_F_DEAD: u8 = 1;
const RTNH_F_LINKDOWN: u8 = 16;
/// `RTA_VIA` (libc has it only for glibc targets).
const RTA_VIA: u16 = 18;

/// The members of `RTA_MULTIPATH` (pure): each `rtnexthop` with its flags, interface and
/// gateway (`RTA_GATEWAY`, or IPv4's `RTA_VIA` to an IPv6 gateway). A length that does not fit
/// is an error, never a panic. (A nexthop group also arrives this way while
/// `nexthop_compat_mode` is on, the default: the kernel expands it.)
pub(super) fn multipath(mut bytes: &[u8]) -> Result<Vec<Nexthop>, String> {
    let mut hops = Vec::new();
    while !bytes.is_empty() {
        let header = fixed::<RTNH_LEN>(bytes, "rtnexthop")?;
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        if len < RTNH_LEN || len > bytes.len() {
            return Err(format!("rtnexthop of {len} bytes in the {} bytes left", bytes.len()));
        }
        let flags = header[2];
        let mut hop = Nexthop {
            interface_index: u32::from_ne_bytes([header[4], header[5], header[6], header[7]]),
            interface: String::new(),
            gateway: None,
            linkdown: flags & RTNH_F_LINKDOWN != 0,
            dead: flags & RTNH_F_DEAD != 0,
        };
        for attribute in attributes(&bytes[RTNH_LEN..len]) {
            let (kind, value) = attribute?;
            match kind {
                libc::RTA_GATEWAY => hop.gateway = ip(value),
                // `struct rtvia`: a 2-byte family, then the address (IPv4 via an IPv6 gateway).
                RTA_VIA => hop.gateway = value.get(2..).and_then(ip),
                _ => {}
            }
        }
        hops.push(hop);
        bytes = bytes.get(super::frame::align(len)..).unwrap_or_default();
    }
    Ok(hops)
}

/// The members of the matched route, sorted by interface and gateway: IPv6 lists them
/// starting from the one its lookup landed on, which varies between lookups, and the answer
/// must not. More than one member, or none: a single one says nothing the plain reply does not.
fn members(matched: Option<&Parts>) -> Vec<Nexthop> {
    let mut hops = matched.map(|m| m.nexthops.clone()).filter(|hops| hops.len() > 1).unwrap_or_default();
    hops.sort_by_key(|h| (h.interface_index, h.gateway));
    hops
}

/// One destination's answer from its two replies, and the route's remaining lifetime.
fn combine(plain: &Result<Reply, String>, matched: &Result<Reply, String>) -> (RouteAnswer, Option<Duration>) {
    let (plain, matched) = match (plain, matched) {
        (Err(e), _) | (_, Err(e)) => return (RouteAnswer::Failed { error: e.clone() }, None),
        (Ok(Reply::Refused(answer)), _) => return (answer.clone(), None),
        (Ok(Reply::Route(plain)), Ok(Reply::Route(matched))) => (plain, Some(matched)),
        (Ok(Reply::Route(plain)), Ok(Reply::Refused(_))) => (plain, None),
    };
    let reject = match plain.kind {
        libc::RTN_UNICAST => None,
        libc::RTN_BLACKHOLE => Some(Reject::Blackhole),
        libc::RTN_PROHIBIT => Some(Reject::Prohibit),
        libc::RTN_UNREACHABLE => Some(Reject::Unreachable),
        // Local, broadcast, ...: the destination is this host's own, not the internet.
        _ => return (RouteAnswer::NoRoute, None),
    };
    if let Some(reject) = reject {
        return (RouteAnswer::Rejected { reject }, None);
    }
    let Some(interface_index) = plain.oif else {
        return (RouteAnswer::Failed { error: "a route lookup answered without an interface".into() }, None);
    };
    let unspecified = |family_of: IpAddr| match family_of {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let fallback_prefix = plain.prefix.map(unspecified).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let route = KernelRoute {
        prefix: matched.and_then(|m| m.prefix).unwrap_or(fallback_prefix),
        prefix_len: matched.map_or(0, |m| m.prefix_len),
        table: matched.map_or(plain.table, |m| m.table),
        interface_index,
        interface: String::new(),
        gateway: plain.gateway,
        source: plain.source,
        nexthops: members(matched),
    };
    // Negative: already past its expiry (the lookup raced the expiry): look again very soon.
    let ticks = matched.map_or(0, |m| m.expires);
    let expires = (ticks != 0).then(|| Duration::from_millis(u64::from(ticks.max(1).unsigned_abs()) * 1000 / USER_HZ));
    (RouteAnswer::Out { route }, expires)
}

impl Requester {
    /// Sends `requests` in one datagram and returns the decoded reply of each, in order.
    pub(super) fn exchange<T>(
        &mut self,
        requests: Vec<RouteNetlinkMessage>,
        flags: u16,
        decode: impl Fn(&Message<'_>) -> T,
    ) -> io::Result<Vec<T>> {
        let first = self.sequence.wrapping_add(1);
        let mut bytes = Vec::new();
        let count = requests.len();
        for request in requests {
            self.append(request, flags, &mut bytes);
        }
        self.socket.send(&bytes, 0)?;
        let mut replies: Vec<Option<T>> = (0..count).map(|_| None).collect();
        let mut missing = count;
        while missing > 0 {
            self.buffer.clear();
            self.socket.recv(&mut self.buffer, 0)?;
            for reply in messages(&self.buffer) {
                let reply = reply.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let slot = reply.sequence.wrapping_sub(first) as usize;
                let Some(place @ None) = replies.get_mut(slot) else {
                    continue; // a late answer to an earlier request
                };
                *place = Some(decode(&reply));
                missing -= 1;
            }
        }
        Ok(replies.into_iter().flatten().collect())
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
