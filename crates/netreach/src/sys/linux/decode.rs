//! Pure decoding of rtnetlink datagrams into [`Update`]s: no I/O, tested with byte fixtures
//! and arbitrary bytes (`decode_tests.rs`). The framing (messages, attributes, lengths) is in
//! `frame.rs`.
//!
//! Decoded here, by hand, rather than with netlink-packet-route's typed messages: those parse a
//! whole message or fail as a whole, and read every text attribute as a UTF-8 `String`
//! (`parse_string`). Linux allows any bytes in an interface name (`IFLA_IFNAME`), an address
//! label (`IFA_LABEL`) or an alias (`IFLA_IFALIAS`): one link named `w\xff` made every link
//! dump fail, and an address labelled `v0:\xe9` vanished. netreach reads a handful of
//! fixed-layout attributes; decoding only those, every length checked, keeps a name as bytes
//! and lets no attribute netreach does not read spoil a message. (netlink-packet-route still
//! builds the requests netreach sends: it only ever encodes those.)

use std::io;

use netlink_packet_route::link::{InfoKind, LinkLayerType};

use super::frame::{attributes, fixed, ip, messages, u32_of, Message};
use super::kind::{classify, sysfs_hints};
use super::route_message::Route;
use super::rule_message::may_change_tables;
use crate::model::{Address, AddressFlags, AddressScope, Family, Interface, OperState, Update};

const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLMSG_DONE: u16 = libc::NLMSG_DONE as u16;
const NLM_F_DUMP_INTR: u16 = libc::NLM_F_DUMP_INTR as u16;
const NLM_F_REPLACE: u16 = libc::NLM_F_REPLACE as u16;

/// What a datagram said besides updates.
pub(super) enum Control {
    /// The end of a dump; `interrupted` when the kernel flagged it inconsistent.
    Done { interrupted: bool },
    /// A dump message flagged `NLM_F_DUMP_INTR`.
    Interrupted,
    /// The kernel answered a request with an error.
    Error(io::Error),
    /// A message that could not be decoded, skipped.
    Undecodable(String),
    /// A message about something the kernel's route decision depends on that is not state:
    /// a rule, a nexthop object, a netconf setting, or a default route of any type; with the
    /// address family byte its header starts with.
    Policy { family: u8 },
    /// A rule that can change which tables are listed was added or removed
    /// ([`super::rule_message::may_change_tables`]): the rules are read again.
    Tables,
}

/// `RTM_NEWNEXTHOP`, `RTM_DELNEXTHOP` (linux/rtnetlink.h; not in libc).
const RTM_NEWNEXTHOP: u16 = 104;
const RTM_DELNEXTHOP: u16 = 105;

/// The family a message about something the route decision depends on concerns (see
/// [`Control::Policy`]): its header's first byte, but `AF_UNSPEC` (both) for a nexthop object,
/// which can serve routes of the other family (IPv4 routes via an IPv6 next hop, RFC 5549).
fn policy_family(message: &Message<'_>) -> Option<u8> {
    let family = message.payload.first().copied().unwrap_or(0);
    match message.kind {
        RTM_NEWNEXTHOP | RTM_DELNEXTHOP => Some(0),
        libc::RTM_NEWRULE | libc::RTM_DELRULE | libc::RTM_NEWNETCONF | libc::RTM_DELNETCONF => Some(family),
        libc::RTM_NEWROUTE | libc::RTM_DELROUTE if message.payload.get(1) == Some(&0) => Some(family),
        _ => None,
    }
}

/// Which route messages are translated: `All`, or only the `Defaults` of a dump read for them
/// (an IPv6 table, sent whole: [`super::tables`]), the others skipped by their header, undecoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Routes {
    All,
    Defaults,
}

/// Translates every message in one datagram.
pub(super) fn parse_datagram(
    bytes: &[u8],
    use_sysfs: bool,
    routes: Routes,
    updates: &mut Vec<Update>,
    control: &mut dyn FnMut(Control),
) {
    for message in messages(bytes) {
        let message = match message {
            Ok(m) => m,
            Err(e) => return control(Control::Undecodable(e)),
        };
        if let Some(family) = policy_family(&message) {
            control(Control::Policy { family });
        }
        if matches!(message.kind, libc::RTM_NEWRULE | libc::RTM_DELRULE) && may_change_tables(message.payload) {
            control(Control::Tables);
        }
        let interrupted = message.flags & NLM_F_DUMP_INTR != 0;
        if interrupted {
            control(Control::Interrupted);
        }
        // Not a default: `rtm_dst_len` (the header's second byte) is not 0.
        let route = matches!(message.kind, libc::RTM_NEWROUTE | libc::RTM_DELROUTE);
        if routes == Routes::Defaults && route && matches!(message.payload.get(1), Some(1..)) {
            continue;
        }
        let outcome = match message.kind {
            NLMSG_DONE => {
                control(Control::Done { interrupted });
                Ok(())
            }
            NLMSG_ERROR => error_code(message.payload).map(|code| {
                if code != 0 {
                    control(Control::Error(io::Error::from_raw_os_error(code.saturating_neg())));
                }
            }),
            _ => translate(&message, use_sysfs, updates),
        };
        if let Err(e) = outcome {
            control(Control::Undecodable(format!("netlink message type {}: {e}", message.kind)));
        }
    }
}

/// The (negative) error code of an `NLMSG_ERROR` message; 0 is an acknowledgement.
fn error_code(payload: &[u8]) -> Result<i32, String> {
    fixed::<4>(payload, "error code").map(i32::from_ne_bytes)
}

fn translate(message: &Message<'_>, use_sysfs: bool, updates: &mut Vec<Update>) -> Result<(), String> {
    let payload = message.payload;
    match message.kind {
        libc::RTM_NEWLINK => updates.extend(link(payload, use_sysfs)?.map(Update::Link)),
        libc::RTM_DELLINK => {
            let (family, _, index, _) = link_header(payload)?;
            // AF_BRIDGE messages describe bridge *ports*; a port leaving a bridge is not a link going away.
            if family != libc::AF_BRIDGE as u8 {
                updates.push(Update::LinkRemoved(index));
            }
        }
        libc::RTM_NEWADDR => updates.extend(address(payload)?.map(|(i, a)| Update::AddressAdded(i, a))),
        libc::RTM_DELADDR => updates.extend(address(payload)?.map(|(i, a)| Update::AddressRemoved(i, a))),
        libc::RTM_NEWROUTE | libc::RTM_DELROUTE => {
            let route = Route::decode(payload)?;
            let new = message.kind == libc::RTM_NEWROUTE;
            if route.destination_len != 0 {
                updates.extend(route.destination.map(|d| Update::RouteChanged(d, route.destination_len)));
            } else if new {
                // A replacement swaps out every next hop at once: replace with the first, add the rest.
                let replace = message.flags & NLM_F_REPLACE != 0;
                for (i, r) in route.defaults().enumerate() {
                    updates.push(if replace && i == 0 { Update::RouteReplaced(r) } else { Update::RouteAdded(r) });
                }
            } else {
                updates.extend(route.defaults().map(Update::RouteRemoved));
            }
        }
        libc::RTM_NEWRULE | libc::RTM_DELRULE => {
            // struct fib_rule_hdr starts with the family; what the rule says is the kernel's
            // business: path lookups are asked again.
            let family = match i32::from(fixed::<1>(payload, "rule header")?[0]) {
                libc::AF_INET => Some(Family::Ipv4),
                libc::AF_INET6 => Some(Family::Ipv6),
                _ => None,
            };
            updates.extend(family.map(Update::RulesChanged));
        }
        _ => {}
    }
    Ok(())
}

/// `struct ifinfomsg`: family, link layer type, index, flags.
fn link_header(payload: &[u8]) -> Result<(u8, u16, u32, u32), String> {
    let h = fixed::<16>(payload, "link header")?;
    Ok((
        h[0],
        u16::from_ne_bytes([h[2], h[3]]),
        u32::from_ne_bytes([h[4], h[5], h[6], h[7]]),
        u32::from_ne_bytes([h[8], h[9], h[10], h[11]]),
    ))
}

/// An `RTM_NEWLINK`; `None` for AF_BRIDGE messages, which describe bridge ports, not links.
fn link(payload: &[u8], use_sysfs: bool) -> Result<Option<Interface>, String> {
    let (family, link_type, index, flags) = link_header(payload)?;
    if family == libc::AF_BRIDGE as u8 {
        return Ok(None);
    }
    let mut iface = Interface {
        index,
        up: flags & libc::IFF_UP as u32 != 0,
        carrier: flags & libc::IFF_LOWER_UP as u32 != 0,
        ..Default::default()
    };
    let mut info_kind = None;
    for attribute in attributes(&payload[16..]) {
        let (kind, value) = attribute?;
        match kind {
            // NUL-terminated; the bytes before the NUL are the name, whatever they are.
            libc::IFLA_IFNAME => iface.set_name(value.split(|b| *b == 0).next().unwrap_or_default()),
            libc::IFLA_MTU => iface.mtu = u32_of(value, "IFLA_MTU")?,
            libc::IFLA_ADDRESS => iface.mac = mac(value),
            libc::IFLA_OPERSTATE => iface.oper_state = oper_state(fixed::<1>(value, "IFLA_OPERSTATE")?[0]),
            libc::IFLA_LINKINFO => {
                for nested in attributes(value) {
                    let (kind, value) = nested?;
                    if kind == libc::IFLA_INFO_KIND {
                        // A kernel module's name for its link type: ASCII in practice, and only
                        // compared with known names, so a lossy reading loses nothing.
                        let text = String::from_utf8_lossy(value.split(|b| *b == 0).next().unwrap_or_default());
                        info_kind = Some(InfoKind::from(text.as_ref()));
                    }
                }
            }
            _ => {}
        }
    }
    let hints = if use_sysfs && info_kind.is_none() { sysfs_hints(iface.raw_name(), index) } else { None };
    iface.kind = classify(LinkLayerType::from(link_type), info_kind.as_ref(), hints.as_ref());
    Ok(Some(iface))
}

fn mac(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex.join(":"))
}

/// `IF_OPER_*` from `linux/if.h`.
fn oper_state(state: u8) -> OperState {
    match state {
        1 => OperState::NotPresent,
        2 => OperState::Down,
        3 => OperState::LowerLayerDown,
        4 => OperState::Testing,
        5 => OperState::Dormant,
        6 => OperState::Up,
        _ => OperState::Unknown,
    }
}

/// An `RTM_NEWADDR`/`RTM_DELADDR`: the interface index and the address, `None` when it
/// carries no address. The label (`IFA_LABEL`, any bytes) is not read.
fn address(payload: &[u8]) -> Result<Option<(u32, Address)>, String> {
    let h = fixed::<8>(payload, "address header")?;
    let (prefix_len, header_flags, scope) = (h[1], h[2], h[3]);
    let index = u32::from_ne_bytes([h[4], h[5], h[6], h[7]]);
    let (mut local, mut peer, mut flags, mut lifetimes) = (None, None, u32::from(header_flags), None);
    for attribute in attributes(&payload[8..]) {
        let (kind, value) = attribute?;
        match kind {
            libc::IFA_LOCAL => local = ip(value),
            libc::IFA_ADDRESS => peer = ip(value),
            libc::IFA_FLAGS => flags = u32_of(value, "IFA_FLAGS")?,
            // struct ifa_cacheinfo: preferred, valid, then timestamps.
            libc::IFA_CACHEINFO => {
                let c = fixed::<8>(value, "IFA_CACHEINFO")?;
                let preferred = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                lifetimes = Some((u32::from_ne_bytes([c[4], c[5], c[6], c[7]]), preferred));
            }
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links and the only one given for IPv6.
    let Some(address) = local.or(peer) else { return Ok(None) };
    let has = |flag: u32| flags & flag != 0;
    let forever = |secs: u32| (secs != u32::MAX).then_some(secs);
    Ok(Some((
        index,
        Address {
            address,
            prefix_len,
            scope: match scope {
                libc::RT_SCOPE_UNIVERSE => AddressScope::Global,
                libc::RT_SCOPE_SITE => AddressScope::Site,
                libc::RT_SCOPE_LINK => AddressScope::Link,
                libc::RT_SCOPE_HOST => AddressScope::Host,
                _ => AddressScope::Nowhere,
            },
            flags: AddressFlags {
                // An optimistic address (RFC 4429) is used while DAD runs: not tentative here.
                tentative: has(libc::IFA_F_TENTATIVE) && !has(libc::IFA_F_OPTIMISTIC),
                deprecated: has(libc::IFA_F_DEPRECATED),
                // IFA_F_TEMPORARY shares its bit with IFA_F_SECONDARY; it means "temporary" for IPv6.
                temporary: address.is_ipv6() && has(libc::IFA_F_SECONDARY),
                dad_failed: has(libc::IFA_F_DADFAILED),
                permanent: has(libc::IFA_F_PERMANENT),
            },
            valid_lifetime: lifetimes.and_then(|(v, _)| forever(v)),
            preferred_lifetime: lifetimes.and_then(|(_, p)| forever(p)),
        },
    )))
}

/// The kernel's reply to one RTM_GETROUTE: the interface of a unicast route, a local route
/// (the remote is this host's), or no route.
pub(super) fn lookup_answer(message: &Message<'_>) -> io::Result<Option<crate::path::Route>> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    match message.kind {
        libc::RTM_NEWROUTE => {
            let route = Route::decode(message.payload).map_err(invalid)?;
            let (unicast, local) = (route.unicast, route.local);
            Ok(route.oif.filter(|_| unicast || local).map(|interface| crate::path::Route { interface, local }))
        }
        NLMSG_ERROR => match error_code(message.payload).map_err(invalid)? {
            0 => Err(io::Error::other("a route lookup was acknowledged without an answer")),
            code => {
                let error = io::Error::from_raw_os_error(code.saturating_neg());
                match error.raw_os_error() {
                    // No route, unreachable or prohibit route, blackhole route; ENODEV: the
                    // link a link-local path is asked on (RTA_OIF) is gone, so no route over it.
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL | libc::ENODEV) => {
                        Ok(None)
                    }
                    _ => Err(error),
                }
            }
        },
        other => Err(io::Error::other(format!("unexpected reply to a route lookup (message type {other})"))),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
