//! Gateway liveness from the kernel's neighbour table: the entry (ARP, neighbour discovery) of
//! each gateway the route decision leads through, and nothing else.
//!
//! - **Following, with no packet of our own**: a socket of its own joined to `RTNLGRP_NEIGH`,
//!   with a kernel-side filter ([`filter`]) that passes only messages about those gateways;
//!   other neighbours' churn is dropped in the kernel. When the decision's gateways change the
//!   filter is reprogrammed first if it does not pass them all (it may keep passing a few
//!   earlier ones: [`filter`]), then each new gateway's entry is read with a targeted
//!   `RTM_GETNEIGH` (address and interface, as `ip neigh get` asks: no dump).
//! - **Re-verifying, only when asked** ([`Neighbours::reverify`], from `Monitor::check()`):
//!   one `RTM_NEWNEIGH` per gateway. An entry with a link-layer address (reachable, stale,
//!   delay, probe) is set to `PROBE`, as Android's IpNeighborMonitor does: the kernel sends
//!   unicast solicitations to the known address (`ucast_solicit` of them, `retrans_time`
//!   apart). Any other (none, incomplete, failed) is "used" (`NTF_USE`, creating it if
//!   needed), as a packet toward it would: the kernel resolves it afresh with broadcast ARP or
//!   multicast neighbour solicitations (`mcast_solicit`). Permanent and noarp entries are left
//!   alone (setting `PROBE` would turn a static entry into a dynamic one), and so is an IPv6
//!   gateway while its link has no usable link-local address ([`has_link_local`]). The kernel answers
//!   with `reachable` or `failed`, which the socket then reports.
//! - **On-link routes** (no gateway, e.g. `default dev ppp0`): nothing is followed. The
//!   representative destinations are not hosts, so no neighbour entry would mean anything.
//! - **History**: the kernel retries a failed entry whenever traffic asks for it
//!   (`incomplete` again); that retry is no answer, so a gateway that failed stays
//!   unanswered, with the time it first failed, until the kernel reaches it
//!   ([`step`]; the same kind of memory the route decision keeps for an expired route).

mod decode;
mod filter;
#[cfg(test)]
mod tests;

use std::io;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState as Nud,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use self::decode::{acknowledged, get_reply, said, Entry, Said};
use super::frame::messages;
use super::netlink::Requester;
use crate::model::{GatewayNeighbour, NeighbourState, RouteAnswer, RouteDecision, Update};

/// A gateway: its address and the interface the route reaches it on.
pub(super) type Gateway = (IpAddr, u32);

/// The most a re-verification is waited for: more than the kernel takes with its default
/// timers (3 solicitations 1 s apart, for either kind of resolution).
pub(super) const REVERIFY_WAIT: Duration = Duration::from_secs(4);

/// The gateways (address, interface) a decision leads through, in its order, once each: the
/// member each lookup hashed to, then every other member of a multipath route the kernel
/// uses (the reason of a route partly without carrier names its first member with carrier,
/// whichever member the lookup hashed to, and that member's gateway is then the one judged).
fn gateways_of(decisions: &[RouteDecision]) -> Vec<Gateway> {
    let mut gateways = Vec::new();
    for decision in decisions {
        if let RouteAnswer::Out { route } = &decision.answer {
            let chosen = route.gateway.map(|g| (g, route.interface_index));
            let members =
                route.nexthops.iter().filter(|h| h.used()).filter_map(|h| h.gateway.map(|g| (g, h.interface_index)));
            for gateway in chosen.into_iter().chain(members) {
                if !gateways.contains(&gateway) {
                    gateways.push(gateway);
                }
            }
        }
    }
    gateways
}

/// The next observed entry of `gateway` (address, interface), from the previous one and what
/// the kernel now says (`None`: no entry). Pure. `now` turns the kernel's age of a failure
/// into a time.
fn step(
    (address, interface_index): Gateway,
    previous: Option<&GatewayNeighbour>,
    said: Option<&Entry>,
    now: SystemTime,
) -> GatewayNeighbour {
    let state = said.map_or(NeighbourState::None, |e| e.state);
    let failed_before = previous.filter(|p| p.is_unreachable()).and_then(|p| p.unanswered_since);
    let unanswered_since = match state {
        // Still no answer since the first failure; else since the resolution that failed began.
        NeighbourState::Failed => failed_before.or_else(|| {
            let began = now.checked_sub(said.and_then(|e| e.updated).unwrap_or_default()).unwrap_or(now);
            Some(began.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
        }),
        NeighbourState::Incomplete => failed_before,
        _ => None,
    };
    GatewayNeighbour { address, interface_index, state, unanswered_since }
}

/// The neighbour socket and the entries of the followed gateways.
pub(super) struct Neighbours {
    /// Joined to `RTNLGRP_NEIGH`, filtered ([`filter`]), non-blocking.
    pub socket: Socket,
    buffer: Vec<u8>,
    /// One per gateway of the decision, in its order.
    entries: Vec<GatewayNeighbour>,
    /// What the filter passes: the followed gateways and perhaps a few earlier ones
    /// ([`filter::wanted`]), most recent first.
    passed: Vec<Gateway>,
    /// Problems since last asked (undecodable messages, refused requests): error events.
    pub faults: Vec<String>,
}

impl Neighbours {
    /// Opens the socket with a filter that drops everything (no gateway yet), then joins.
    pub(super) fn open() -> io::Result<Neighbours> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        // Before joining: no message gets in unfiltered. (Classic BPF socket filters cannot
        // be configured out of Linux; a refusal here is a real error.)
        filter::set(&socket, &[])?;
        socket.bind(&SocketAddr::new(0, 0))?;
        socket.add_membership(libc::RTNLGRP_NEIGH)?;
        socket.set_non_blocking(true)?;
        Ok(Neighbours {
            socket,
            buffer: Vec::with_capacity(8192),
            entries: Vec::new(),
            passed: Vec::new(),
            faults: Vec::new(),
        })
    }

    /// The entries of the followed gateways.
    pub(super) fn current(&self) -> Vec<GatewayNeighbour> {
        self.entries.clone()
    }

    /// Follows the gateways of `decisions`: for a changed set, the filter first (no change in
    /// between is missed), then what is queued, then a targeted read of each new gateway.
    /// Returns whether the entries changed.
    pub(super) fn follow(&mut self, decisions: &[RouteDecision], requests: &mut Requester) -> io::Result<bool> {
        let gateways = gateways_of(decisions);
        let followed: Vec<Gateway> = self.entries.iter().map(|e| (e.address, e.interface_index)).collect();
        if gateways == followed {
            return Ok(false);
        }
        if let Some(passed) = filter::wanted(&self.passed, &gateways) {
            filter::set(&self.socket, &passed)?;
            self.passed = passed;
        }
        self.receive()?;
        let mut entries = Vec::with_capacity(gateways.len());
        let fresh: Vec<Gateway> = gateways.iter().filter(|g| !followed.contains(g)).copied().collect();
        let read = self.read(&fresh, requests)?;
        for gateway in &gateways {
            let kept = self.entries.iter().find(|e| (e.address, e.interface_index) == *gateway);
            match read.iter().find(|(g, _)| g == gateway) {
                Some((_, entry)) => entries.push(step(*gateway, kept, entry.as_ref(), SystemTime::now())),
                None => entries.extend(kept.cloned()),
            }
        }
        self.entries = entries;
        Ok(true)
    }

    /// Reads the entries of `gateways` with targeted `RTM_GETNEIGH` requests.
    fn read(&self, gateways: &[Gateway], requests: &mut Requester) -> io::Result<Vec<(Gateway, Option<Entry>)>> {
        if gateways.is_empty() {
            return Ok(Vec::new());
        }
        let asked = gateways.iter().map(|&(address, index)| RouteNetlinkMessage::GetNeighbour(message(address, index)));
        let replies = requests.exchange(asked.collect(), NLM_F_REQUEST, get_reply)?;
        let entries = replies.into_iter().collect::<Result<Vec<_>, String>>().map_err(io::Error::other)?;
        Ok(gateways.iter().copied().zip(entries).collect())
    }

    /// Reads everything queued on the socket; whether an entry changed. An overrun (messages
    /// lost) reads every gateway's entry again.
    pub(super) fn receive_or_reread(&mut self, requests: &mut Requester) -> io::Result<bool> {
        match self.receive() {
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                let before = self.entries.clone();
                self.reread(requests)?;
                Ok(self.entries != before)
            }
            other => other,
        }
    }

    /// Reads every followed gateway's entry again.
    fn reread(&mut self, requests: &mut Requester) -> io::Result<()> {
        let gateways: Vec<Gateway> = self.entries.iter().map(|e| (e.address, e.interface_index)).collect();
        for (gateway, entry) in self.read(&gateways, requests)? {
            if let Some(at) = self.entries.iter().position(|e| (e.address, e.interface_index) == gateway) {
                self.entries[at] = step(gateway, Some(&self.entries[at]), entry.as_ref(), SystemTime::now());
            }
        }
        Ok(())
    }

    /// Applies every queued message; whether an entry changed.
    fn receive(&mut self) -> io::Result<bool> {
        let before = self.entries.clone();
        loop {
            self.buffer.clear();
            match self.socket.recv(&mut self.buffer, 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(self.entries != before),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for message in messages(&self.buffer) {
                let said = message.and_then(|m| said(&m));
                let entry = match said {
                    Ok(Said::Entry(entry)) => Some(entry),
                    Ok(Said::Removed(entry)) => Some(Entry { state: NeighbourState::None, ..entry }),
                    Ok(Said::Other) => None,
                    Err(e) => {
                        self.faults.push(format!("neighbour message: {e}"));
                        None
                    }
                };
                let Some(entry) = entry else { continue };
                let now = SystemTime::now();
                let key = (entry.address, entry.index);
                for followed in self.entries.iter_mut() {
                    if (followed.address, followed.interface_index) == key {
                        let gone = entry.state == NeighbourState::None;
                        *followed = step(key, Some(followed), (!gone).then_some(&entry), now);
                    }
                }
            }
        }
    }

    /// Whether every followed entry is settled: not being resolved or probed.
    pub(super) fn settled(&self) -> bool {
        let busy = |e: &GatewayNeighbour| {
            matches!(e.state, NeighbourState::Incomplete | NeighbourState::Delay | NeighbourState::Probe)
        };
        !self.entries.iter().any(busy)
    }

    /// Asks the kernel to verify every followed gateway now (see the module's documentation),
    /// then reads their entries (now being resolved or probed). Whether an entry changed.
    pub(super) fn reverify(&mut self, requests: &mut Requester) -> io::Result<bool> {
        for entry in self.entries.clone() {
            if entry.address.is_ipv6() && !has_link_local(requests, entry.interface_index)? {
                continue;
            }
            let mut request = message(entry.address, entry.interface_index);
            let flags = match entry.state {
                NeighbourState::Permanent | NeighbourState::Noarp => continue,
                NeighbourState::Reachable | NeighbourState::Stale | NeighbourState::Delay | NeighbourState::Probe => {
                    request.header.state = Nud::Probe;
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE
                }
                _ => {
                    request.header.flags = NeighbourFlags::Use;
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
                }
            };
            let reply = requests.exchange(vec![RouteNetlinkMessage::NewNeighbour(request)], flags, acknowledged)?;
            if let Some(Err(e)) = reply.into_iter().next() {
                // Gone meanwhile (ENOENT for a probe) or refused: the entry read next tells.
                self.faults.push(format!("re-verifying gateway {} failed ({e})", entry.address));
            }
        }
        let before = self.entries.clone();
        self.receive()?;
        self.reread(requests)?;
        Ok(self.entries != before)
    }
}

/// Whether interface `index` has a usable IPv6 link-local address. The kernel sends the
/// solicitations of a probe or resolution nothing asked for (no packet to take a source from)
/// from one, and sends nothing while it is tentative (duplicate address detection, the first
/// second after the link came up): asking then would fail a gateway that answers.
fn has_link_local(requests: &mut Requester, index: u32) -> io::Result<bool> {
    let mut request = AddressMessage::default();
    request.header.family = AddressFamily::Inet6;
    request.header.index = index; // the kernel filters by it under strict checking
    let (mut updates, mut skipped) = (Vec::new(), Vec::new());
    requests.dump(RouteNetlinkMessage::GetAddress(request), false, &mut updates, &mut skipped)?;
    let usable =
        |u: &Update| matches!(u, Update::AddressAdded(i, a) if *i == index && a.is_link_local() && a.is_usable());
    Ok(updates.iter().any(usable))
}

/// A neighbour message naming one entry (address and interface).
fn message(address: IpAddr, index: u32) -> NeighbourMessage {
    let mut request = NeighbourMessage::default();
    request.header.ifindex = index;
    let (family, destination) = match address {
        IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
        IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
    };
    request.header.family = family;
    request.attributes.push(NeighbourAttribute::Destination(destination));
    request
}
