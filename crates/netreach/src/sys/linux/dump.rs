//! Reading the whole state (links, addresses, default routes) with netlink dumps, also while
//! the kernel is busy.
//!
//! The kernel flags a dump `NLM_F_DUMP_INTR` when anything of its kind changed while it ran;
//! with thousands of links coming up (and IPv6 duplicate address detection flipping address
//! flags) every dump can be flagged, for as long as the churn lasts. A flagged dump may have
//! skipped or repeated objects, but everything it reports did exist. So when every attempt is
//! interrupted, the state is pieced together the way the running monitor keeps it: the union
//! of the dumps, each followed by the change events that arrived on the event socket (joined
//! before the first dump) while it ran. Events say every creation, change and deletion after
//! the socket was joined, in order, and the last event about an object is its current state,
//! whatever the dumps said. What events cannot give is an object that did not change and that
//! every dump skipped: such a reading is marked incomplete, and the monitor reads again as
//! soon as the kernel is quiet ([`Reading::complete`]).

use std::io;

use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkExtentMask, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::Sockets;
use crate::fold::{apply, sort_routes};
use crate::model::{Address, NetworkState, Update};

/// How many dumps are tried before a reading is pieced together from interrupted ones. Each
/// interrupted dump also adds what it saw to that reading.
const DUMP_ATTEMPTS: usize = 5;

/// The state read from the kernel.
pub(crate) struct Reading {
    pub state: NetworkState,
    /// False when no dump was consistent and `state` was pieced together from interrupted
    /// dumps and events: right about everything that changed while it was read, but an
    /// object that did not change could have been skipped by every dump. Read again when the
    /// kernel is quiet.
    pub complete: bool,
}

/// What one dump attempt returned.
struct Dump {
    /// Links, then addresses, then default routes (route changes are left out).
    updates: Vec<Update>,
    /// Neither dump was flagged interrupted.
    consistent: bool,
}

impl Dump {
    /// The state, when the dump is consistent and its parts agree (an address whose link is
    /// missing means the link appeared between the link and the address dumps).
    fn state(&self) -> Option<NetworkState> {
        if !self.consistent {
            return None;
        }
        let mut state = NetworkState::default();
        for update in &self.updates {
            match update {
                Update::Link(link) => match state.position(link.index) {
                    Ok(i) => state.interfaces[i] = link.clone(),
                    Err(i) => state.interfaces.insert(i, link.clone()),
                },
                Update::AddressAdded(index, address) => {
                    let i = state.position(*index).ok()?;
                    state.interfaces[i].addresses.push(address.clone());
                }
                Update::RouteAdded(route) => {
                    let mut route = route.clone();
                    if let Some(iface) = state.interface(route.interface_index) {
                        route.interface.clone_from(&iface.name);
                    }
                    if !state.default_routes.contains(&route) {
                        state.default_routes.push(route);
                    }
                }
                _ => {}
            }
        }
        for iface in &mut state.interfaces {
            iface.addresses.sort_by_key(Address::key);
            iface.addresses.dedup_by_key(|a| a.key());
        }
        sort_routes(&mut state.default_routes);
        Some(state)
    }

    /// Adds what this dump saw to `state`, removing nothing: a deletion is only believed from
    /// an event, since an interrupted dump may have skipped an object that still exists.
    fn merge_into(&self, state: &mut NetworkState) {
        for update in &self.updates {
            if matches!(update, Update::Link(_) | Update::AddressAdded(..) | Update::RouteAdded(_)) {
                apply(state, update.clone());
            }
        }
    }
}

impl Sockets {
    /// Reads the whole current state: links, addresses, default routes. Fails only when the
    /// kernel refuses or a socket fails, never because the kernel keeps changing.
    pub(crate) fn dump_state(&mut self) -> io::Result<Reading> {
        let mut pieced: Option<NetworkState> = None;
        for _ in 0..DUMP_ATTEMPTS {
            let dump = self.dump_once()?;
            if let Some(state) = dump.state() {
                // Events queued meanwhile stay on the socket: the monitor applies them next,
                // and applying events older than a dump on top of it still ends in the
                // current state.
                return Ok(Reading { state, complete: true });
            }
            let state = pieced.get_or_insert_with(NetworkState::default);
            dump.merge_into(state);
            if !self.apply_events(state)? {
                // Events were lost (overrun): a deletion may be among them. Start again from
                // this dump alone.
                let mut fresh = NetworkState::default();
                dump.merge_into(&mut fresh);
                *state = fresh;
            }
        }
        Ok(Reading { state: pieced.unwrap_or_default(), complete: false })
    }

    /// The default routes of the listed tables through interface `index`. When a link comes
    /// back up the kernel revives the dead next hops of multipath routes through it without a
    /// message; this finds them. Read as at start-up ([`super::tables`]): a router's full
    /// table is not read again.
    pub(crate) fn default_routes_via(&mut self, index: u32) -> io::Result<Vec<Update>> {
        let mut updates = Vec::new();
        let tables = self.tables.clone();
        self.defaults_in(&tables, Some(index), &mut updates)?;
        updates.retain(|u| matches!(u, Update::RouteAdded(r) if r.interface_index == index));
        Ok(updates)
    }

    /// Applies every event waiting on the event socket to `state`; `false` when the socket
    /// overran (ENOBUFS) and events were lost.
    fn apply_events(&mut self, state: &mut NetworkState) -> io::Result<bool> {
        let mut updates = Vec::new();
        let mut complete = true;
        loop {
            match self.receive(&mut updates) {
                Ok(true) => {
                    updates.retain(|u| self.tables.keeps(u));
                    updates.drain(..).for_each(|u| drop(apply(state, u)));
                }
                Ok(false) => return Ok(complete),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => complete = false,
                Err(e) => return Err(e),
            }
        }
    }

    /// One dump of links, addresses and default routes. Links are dumped on a second socket
    /// from a second thread while addresses are dumped here, then the default routes of each
    /// table ([`super::tables`]: a router's full table is not read): the kernel's link dump
    /// is as costly as the address dump (every link carries its per-family settings), and a
    /// host with 1,000 interfaces reads its state in about half the time.
    fn dump_once(&mut self) -> io::Result<Dump> {
        // Link statistics (two blocks of counters per link) are most of a link message; the
        // kernel skips gathering them when asked.
        let mut links = LinkMessage::default();
        links.attributes.push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        // Addresses one family at a time: a dump of every family (AF_UNSPEC) runs the kernel's
        // `rtnl_dump_all` under the RTNL lock, which the link dump beside it holds too, so the
        // two dumps took turns and each spun waiting for the other (a quarter of the CPU at
        // 1,000 interfaces). A family's own dump takes no RTNL on recent kernels (seen on 6.18;
        // where it still does, two dumps cost what the one did): the library's start at that
        // scale went from about 12 to about 9 ms here (README, Benchmarks). A kernel without
        // IPv6 falls back to its every-family dump for the IPv6 request; `Dump::state` drops
        // the repeated IPv4 ones.
        let others = [AddressFamily::Inet, AddressFamily::Inet6].map(|family| {
            let mut addresses = AddressMessage::default();
            addresses.header.family = family;
            RouteNetlinkMessage::GetAddress(addresses)
        });

        let Sockets { requests, links: link_socket, undecodable, use_sysfs, .. } = self;
        let use_sysfs = *use_sysfs;
        let (link_dump, other_dumps) = std::thread::scope(|scope| {
            let link_thread = std::thread::Builder::new().name("netreach-dump".into()).spawn_scoped(scope, move || {
                let (mut updates, mut skipped) = (Vec::new(), Vec::new());
                let consistent =
                    link_socket.dump(RouteNetlinkMessage::GetLink(links), use_sysfs, &mut updates, &mut skipped);
                consistent.map(|c| (c, updates, skipped))
            });
            let mut updates = Vec::new();
            let mut consistent = Ok(true);
            for request in others {
                consistent = consistent
                    .and_then(|c| requests.dump(request, use_sysfs, &mut updates, undecodable).map(|d| c && d));
                if consistent.is_err() {
                    break;
                }
            }
            let link_dump = match link_thread {
                Ok(thread) => thread.join().unwrap_or_else(|_| Err(io::Error::other("the link dump thread panicked"))),
                Err(e) => Err(e),
            };
            (link_dump, consistent.map(|c| (c, updates)))
        });
        let (links_consistent, mut updates, skipped) = link_dump?;
        let (others_consistent, other_updates) = other_dumps?;
        self.undecodable.extend(skipped);
        updates.extend(other_updates);
        let routes_consistent = self.read_defaults(&mut updates)?;
        Ok(Dump { updates, consistent: links_consistent && others_consistent && routes_consistent })
    }
}
