//! Per-connection reachability: is the path from a local address to a remote one still alive?
//!
//! # The rule (Qt's `QNetworkConnectionMonitor`, made concrete for Linux)
//!
//! The remote's address family decides which family counts. IPv4-mapped IPv6 addresses
//! (`::ffff:192.0.2.1`) are treated as the IPv4 address they carry. A path is unreachable when,
//! checked in this order:
//!
//! | reason                      | condition                                                              |
//! |-----------------------------|------------------------------------------------------------------------|
//! | `local_address_gone`        | no interface owns the local address any more                           |
//! | `local_address_dad_failed`  | duplicate address detection failed for it                               |
//! | `local_address_tentative`   | duplicate address detection is still running                           |
//! | `interface_down`            | the interface owning it is administratively down                       |
//! | `no_carrier`                | that interface has no carrier (or is dormant / lower-layer down)       |
//! | `no_route`                  | the kernel has no route to the remote from that source address         |
//! | `route_via_other_interface` | the kernel's route to the remote now leaves through another interface  |
//! | `no_connectivity`           | Windows only: the Network List Manager says the connection cannot carry it |
//!
//! A remote inside the local address's subnet needs only the path to that subnet: the kernel's
//! route is then the subnet's connected route, so a default route coming or going does not
//! touch it. Any other remote needs a route out, which the kernel lookup answers. The route is
//! asked of the kernel (`RTM_GETROUTE` for that destination and source, like
//! `ip route get REMOTE from LOCAL`) whenever a route covering the remote, the interface or
//! the local address changes; routing tables are never mirrored.
//!
//! Many connection monitors share one [`crate::Monitor`]: one netlink socket per namespace,
//! and indexes by local address, interface and remote address, so a change costs time in
//! proportion to the paths it touches, not to how many are watched.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

use crate::error::Error;
use crate::event::{Event, EventKind, Update};
use crate::state::{Address, Interface, NetworkState};
use crate::subscription::{Queue, Subscription};

/// Why a path is unreachable. `Display` quotes interface names verbatim, not escaped for a
/// terminal (see [the crate documentation](crate#strings-from-outside-are-kept-exact)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unreachable {
    /// No interface owns the local address any more.
    LocalAddressGone,
    /// Duplicate address detection failed for the local address.
    LocalAddressDadFailed,
    /// Duplicate address detection is still running for the local address.
    LocalAddressTentative,
    /// The interface owning the local address is administratively down.
    InterfaceDown {
        /// That interface.
        interface: Arc<str>,
    },
    /// The interface owning the local address has no carrier.
    NoCarrier {
        /// That interface.
        interface: Arc<str>,
    },
    /// The kernel has no route to the remote from the local address.
    NoRoute,
    /// The kernel's route to the remote leaves through another interface than the one owning
    /// the local address.
    RouteViaOtherInterface {
        /// The interface owning the local address.
        expected: Arc<str>,
        /// The interface the route now leaves through.
        actual: Arc<str>,
    },
    /// The operating system's own judgement of the connection says it carries no traffic to
    /// the remote (Windows: the Network List Manager's connectivity of the connection on this
    /// interface, by Qt's rule: the subnet's connectivity for a same-subnet remote, else the
    /// internet's; see `nlm::path_connectivity`).
    NoConnectivity {
        /// The interface owning the local address.
        interface: Arc<str>,
    },
    /// The route could not be looked up (a netlink failure; the monitor is recovering).
    LookupFailed {
        /// What failed.
        message: String,
    },
}

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreachable::LocalAddressGone => f.write_str("no interface owns the local address any more"),
            Unreachable::LocalAddressDadFailed => {
                f.write_str("duplicate address detection failed for the local address")
            }
            Unreachable::LocalAddressTentative => {
                f.write_str("the local address is tentative (duplicate address detection running)")
            }
            Unreachable::InterfaceDown { interface } => write!(f, "interface {interface} is down"),
            Unreachable::NoCarrier { interface } => write!(f, "interface {interface} has no carrier"),
            Unreachable::NoRoute => f.write_str("no route to the remote from the local address"),
            Unreachable::RouteViaOtherInterface { expected, actual } => {
                write!(f, "the route to the remote now leaves through {actual}, not {expected}")
            }
            Unreachable::NoConnectivity { interface } => {
                write!(f, "the system reports no connectivity to the remote on {interface}")
            }
            Unreachable::LookupFailed { message } => write!(f, "route lookup failed: {message}"),
        }
    }
}

/// Whether one path is reachable, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStatus {
    /// The local address (IPv4-mapped IPv6 normalised to IPv4).
    pub local: IpAddr,
    /// The remote address (normalised likewise).
    pub remote: IpAddr,
    /// True when the path works as far as this machine can tell.
    pub reachable: bool,
    /// Why not, when not reachable.
    #[serde(flatten)]
    pub reason: Option<Unreachable>,
    /// The interface owning the local address, when one does. (Shared: many paths, one name.)
    pub interface: Option<Arc<str>>,
    /// True when the remote is inside the local address's subnet (needs no route out).
    pub same_subnet: bool,
}

impl PathStatus {
    fn new(local: IpAddr, remote: IpAddr) -> Self {
        PathStatus { local, remote, reachable: false, reason: None, interface: None, same_subnet: false }
    }
}

/// The kernel's answer to "which interface does traffic from `local` to `remote` leave by?"
pub(crate) trait RouteLookup {
    /// `Ok(Some(index))`: out of that interface; `Ok(None)`: no route; `Err`: the lookup failed.
    fn route(&mut self, local: IpAddr, remote: IpAddr) -> std::io::Result<Option<u32>>;

    /// Many lookups at once, answers in the order asked. Backends that can ask the OS in
    /// batches override this (one reaction may need thousands of lookups).
    fn routes(&mut self, pairs: &[(IpAddr, IpAddr)]) -> Vec<std::io::Result<Option<u32>>> {
        pairs.iter().map(|&(local, remote)| self.route(local, remote)).collect()
    }

    /// The operating system's own verdict on a path that leaves through `interface`:
    /// `Some(false)` when it says the connection there cannot carry it. Only Windows judges
    /// connections (Network List Manager); elsewhere there is no such opinion.
    fn connectivity(&mut self, _interface: u32, _remote: IpAddr, _same_subnet: bool) -> Option<bool> {
        None
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address it carries.
pub(crate) fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Checks a (local, remote) pair at the door; returns them normalised.
///
/// ```
/// use netreach::validate_path;
/// let (l, r) = validate_path("::ffff:192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap()).unwrap();
/// assert_eq!(l.to_string(), "192.0.2.10");
/// assert!(validate_path("192.0.2.10".parse().unwrap(), "127.0.0.1".parse().unwrap()).is_err());
/// ```
pub fn validate_path(local: IpAddr, remote: IpAddr) -> Result<(IpAddr, IpAddr), Error> {
    let (local, remote) = (normalise(local), normalise(remote));
    let bad = |msg: String| Err(Error::invalid_input(msg));
    if local.is_unspecified() {
        return bad(format!(
            "local address {local} is unspecified: pass the address the connection is bound to (a connected socket's local address)"
        ));
    }
    if remote.is_unspecified() {
        return bad(format!("remote address {remote} is unspecified"));
    }
    if remote.is_loopback() {
        return bad(format!(
            "remote address {remote} is loopback: traffic to it never leaves this machine, so its path is not monitored (it is always reachable)"
        ));
    }
    if local.is_loopback() {
        return bad(format!("local address {local} is loopback: a connection from it cannot reach {remote}"));
    }
    if local.is_ipv4() != remote.is_ipv4() {
        return bad(format!(
            "local address {local} and remote address {remote} are of different families; a connection's ends share one"
        ));
    }
    if remote.is_multicast() || local.is_multicast() {
        return bad(format!("{remote} or {local} is a multicast address: only unicast paths are monitored"));
    }
    if remote == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return bad(format!("remote address {remote} is the broadcast address: only unicast paths are monitored"));
    }
    Ok((local, remote))
}

/// The first and last address of `network/prefix_len`.
fn prefix_bounds(network: IpAddr, prefix_len: u8) -> (IpAddr, IpAddr) {
    match network {
        IpAddr::V4(n) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0);
            let low = u32::from(n) & mask;
            (IpAddr::V4(low.into()), IpAddr::V4((low | !mask).into()))
        }
        IpAddr::V6(n) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128))).unwrap_or(0);
            let low = u128::from(n) & mask;
            (IpAddr::V6(low.into()), IpAddr::V6((low | !mask).into()))
        }
    }
}

/// True when `ip` lies in `network/prefix_len` (never across families).
pub(crate) fn in_prefix(ip: IpAddr, network: IpAddr, prefix_len: u8) -> bool {
    let (low, high) = prefix_bounds(network, prefix_len);
    ip.is_ipv4() == network.is_ipv4() && low <= ip && ip <= high
}

/// The subnet broadcast address of an IPv4 address, when the subnet has one (/30 and wider).
fn ipv4_broadcast(address: &Address) -> Option<IpAddr> {
    match address.address {
        IpAddr::V4(a) if address.prefix_len <= 30 => {
            let host = u32::MAX >> address.prefix_len;
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) | host)))
        }
        _ => None,
    }
}

/// The interface owning `local` and the address entry, if any.
fn owner(state: &NetworkState, local: IpAddr) -> Option<(&Interface, &Address)> {
    state.interfaces.iter().find_map(|i| i.addresses.iter().find(|a| a.address == local).map(|a| (i, a)))
}

/// Checks what only the state can tell when a path is created: someone owns the local
/// address, and the remote is not that subnet's broadcast address.
pub(crate) fn check_against_state(state: &NetworkState, local: IpAddr, remote: IpAddr) -> Result<(), Error> {
    let Some((_, address)) = owner(state, local) else {
        return Err(Error::invalid_input(format!(
            "no interface owns the local address {local} (see `netreach status` for this machine's addresses)"
        )));
    };
    if ipv4_broadcast(address) == Some(remote) {
        return Err(Error::invalid_input(format!(
            "remote address {remote} is the broadcast address of {local}/{}: only unicast paths are monitored",
            address.prefix_len
        )));
    }
    Ok(())
}

/// The result of evaluating one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evaluation {
    pub status: PathStatus,
    /// Index of the interface owning the local address.
    pub owner: Option<u32>,
    /// Index of the interface the kernel's route leaves through.
    pub route_interface: Option<u32>,
}

/// Interface names as shared strings, so many path statuses cost one allocation per name.
#[derive(Default)]
pub(crate) struct Names(HashMap<u32, Arc<str>>);

impl Names {
    fn of(&mut self, iface: &Interface) -> Arc<str> {
        let name = self.0.entry(iface.index).or_insert_with(|| Arc::from(iface.name.as_str()));
        if **name != *iface.name {
            *name = Arc::from(iface.name.as_str()); // renamed since cached
        }
        name.clone()
    }
}

/// Route lookups remembered for the length of one reaction: many paths often share a
/// (local, remote) pair (connection pools), and the answer cannot change meanwhile.
struct CachedLookup<'a> {
    lookup: &'a mut dyn RouteLookup,
    answers: HashMap<(IpAddr, IpAddr), LookupAnswer>,
}

/// A remembered lookup result (`io::Error` is not `Clone`, so errors keep kind and text).
type LookupAnswer = Result<Option<u32>, (std::io::ErrorKind, String)>;

impl CachedLookup<'_> {
    /// Looks up, in one batch, the pairs not answered yet.
    fn prefetch(&mut self, pairs: impl Iterator<Item = (IpAddr, IpAddr)>) {
        let mut missing: Vec<(IpAddr, IpAddr)> = pairs.filter(|pair| !self.answers.contains_key(pair)).collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return;
        }
        let answers = self.lookup.routes(&missing);
        for (pair, answer) in missing.into_iter().zip(answers) {
            self.answers.insert(pair, answer.map_err(|e| (e.kind(), e.to_string())));
        }
    }
}

impl RouteLookup for CachedLookup<'_> {
    fn route(&mut self, local: IpAddr, remote: IpAddr) -> std::io::Result<Option<u32>> {
        let lookup = &mut self.lookup;
        self.answers
            .entry((local, remote))
            .or_insert_with(|| lookup.route(local, remote).map_err(|e| (e.kind(), e.to_string())))
            .clone()
            .map_err(|(kind, message)| std::io::Error::new(kind, message))
    }

    fn connectivity(&mut self, interface: u32, remote: IpAddr, same_subnet: bool) -> Option<bool> {
        self.lookup.connectivity(interface, remote, same_subnet)
    }
}

/// Whether [`evaluate`] will ask for the kernel's route: the local address is owned and
/// usable and its interface is ready. Lets a reaction batch its lookups up front.
fn wants_route(state: &NetworkState, local: IpAddr) -> bool {
    owner(state, local).is_some_and(|(iface, a)| !a.flags.dad_failed && !a.flags.tentative && iface.is_ready())
}

/// Applies the rule in this module's docs to one path.
pub(crate) fn evaluate(
    state: &NetworkState,
    local: IpAddr,
    remote: IpAddr,
    lookup: &mut dyn RouteLookup,
    names: &mut Names,
) -> Evaluation {
    let mut status = PathStatus::new(local, remote);
    let unreachable = |mut status: PathStatus, reason, owner, route_interface| {
        status.reason = Some(reason);
        Evaluation { status, owner, route_interface }
    };
    let Some((iface, address)) = owner(state, local) else {
        return unreachable(status, Unreachable::LocalAddressGone, None, None);
    };
    let name = names.of(iface);
    status.interface = Some(name.clone());
    status.same_subnet = in_prefix(remote, local, address.prefix_len);
    let own = Some(iface.index);
    if address.flags.dad_failed {
        return unreachable(status, Unreachable::LocalAddressDadFailed, own, None);
    }
    if address.flags.tentative {
        return unreachable(status, Unreachable::LocalAddressTentative, own, None);
    }
    if !iface.up {
        return unreachable(status, Unreachable::InterfaceDown { interface: name }, own, None);
    }
    if !iface.is_ready() {
        return unreachable(status, Unreachable::NoCarrier { interface: name }, own, None);
    }
    match lookup.route(local, remote) {
        Err(e) => unreachable(status, Unreachable::LookupFailed { message: e.to_string() }, own, None),
        Ok(None) => unreachable(status, Unreachable::NoRoute, own, None),
        Ok(Some(out)) if out != iface.index => {
            let actual = state.interface(out).map(|i| names.of(i)).unwrap_or_else(|| Arc::from(format!("#{out}")));
            let reason = Unreachable::RouteViaOtherInterface { expected: name, actual };
            unreachable(status, reason, own, Some(out))
        }
        Ok(Some(out)) if lookup.connectivity(out, remote, status.same_subnet) == Some(false) => {
            unreachable(status, Unreachable::NoConnectivity { interface: name }, own, Some(out))
        }
        Ok(Some(out)) => {
            status.reachable = true;
            Evaluation { status, owner: own, route_interface: Some(out) }
        }
    }
}

/// What a change can touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touch {
    /// Paths from this local address.
    Local(IpAddr),
    /// Paths whose local address lives on, or whose route leaves through, this interface.
    Interface(u32),
    /// Paths whose remote lies in this prefix (a route for it changed).
    Prefix(IpAddr, u8),
    /// Every path (after a resync).
    All,
    /// No path (a verdict about the whole machine).
    Nothing,
}

/// What an update (that changed something) can touch.
pub(crate) fn touched_by(update: &Update) -> Touch {
    match update {
        Update::Link(link) => Touch::Interface(link.index),
        Update::LinkRemoved(index) => Touch::Interface(*index),
        Update::AddressAdded(_, a) | Update::AddressRemoved(_, a) => Touch::Local(a.address),
        Update::RouteAdded(r) | Update::RouteRemoved(r) | Update::RouteReplaced(r) => Touch::Prefix(
            match r.family {
                crate::Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                crate::Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            },
            0,
        ),
        Update::RouteChanged(destination, prefix_len) => Touch::Prefix(*destination, *prefix_len),
        // Paths follow the kernel; probes and daemons judge the machine, not one path.
        Update::Verdict(_) => Touch::Nothing,
    }
}

/// A status callback of a path.
type StatusCallback = Box<dyn FnMut(&PathStatus) + Send>;

/// The part of a path shared by its handle ([`PathMonitor`]) and the engine.
pub(crate) struct PathShared {
    inner: Mutex<PathInner>,
    queue_capacity: usize,
}

struct PathInner {
    /// Cloning it is cheap (names are shared `Arc<str>`): no allocation per change.
    status: PathStatus,
    queues: Vec<Arc<Queue>>,
    callbacks: Vec<StatusCallback>,
}

impl PathShared {
    fn lock(&self) -> MutexGuard<'_, PathInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn status_event(status: &PathStatus) -> EventKind {
        EventKind::PathChanged { status: status.clone() }
    }

    /// Records a new status and notifies; callbacks run outside the lock.
    fn publish(&self, status: PathStatus) {
        let (status, mut callbacks) = {
            let mut inner = self.lock();
            if inner.status == status {
                return;
            }
            inner.status = status.clone();
            if !inner.queues.is_empty() {
                let batch = [Event::now(Self::status_event(&status))];
                inner.queues.retain(|q| q.push(&batch, &|| Self::status_event(&status)));
            }
            (status, std::mem::take(&mut inner.callbacks))
        };
        if callbacks.is_empty() {
            return;
        }
        for callback in &mut callbacks {
            // A panicking status callback is disarmed: the others and the monitor go on.
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&status))).is_ok();
            if !ok {
                *callback = Box::new(|_| {});
            }
        }
        let mut inner = self.lock();
        callbacks.append(&mut inner.callbacks); // keep ones registered meanwhile
        inner.callbacks = callbacks;
    }

    fn close(&self) {
        for q in &self.lock().queues {
            q.close();
        }
    }
}

struct PathEntry {
    local: IpAddr,
    remote: IpAddr,
    owner: Option<u32>,
    route_interface: Option<u32>,
    shared: Arc<PathShared>,
}

/// Identifies a path inside its monitor: its slot in the registry's slab.
pub(crate) type PathId = usize;

/// Every watched path of one monitor, with indexes so a change only visits what it touches.
/// Paths live in a slab (ids are slots, reused once freed); the indexes are ordered sets, so a
/// reaction walks the slab in order.
#[derive(Default)]
pub(crate) struct PathRegistry {
    slots: Vec<Option<PathEntry>>,
    free: Vec<PathId>,
    by_local: HashMap<IpAddr, BTreeSet<PathId>>,
    by_interface: HashMap<u32, BTreeSet<PathId>>,
    by_remote: BTreeSet<(IpAddr, PathId)>,
    names: Names,
}

impl PathRegistry {
    /// Adds a path, evaluates it and returns its handle parts.
    pub(crate) fn add(
        &mut self,
        state: &NetworkState,
        local: IpAddr,
        remote: IpAddr,
        queue_capacity: usize,
        lookup: &mut dyn RouteLookup,
    ) -> (PathId, Arc<PathShared>) {
        let evaluation = evaluate(state, local, remote, lookup, &mut self.names);
        let shared = Arc::new(PathShared {
            inner: Mutex::new(PathInner { status: evaluation.status, queues: Vec::new(), callbacks: Vec::new() }),
            queue_capacity,
        });
        let entry = PathEntry { local, remote, owner: None, route_interface: None, shared: shared.clone() };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(entry);
                id
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.by_local.entry(local).or_default().insert(id);
        self.by_remote.insert((remote, id));
        self.reindex(id, evaluation.owner, evaluation.route_interface);
        (id, shared)
    }

    /// Forgets a path (its handle was dropped).
    pub(crate) fn remove(&mut self, id: PathId) {
        let Some(entry) = self.slots.get_mut(id).and_then(Option::take) else { return };
        self.free.push(id);
        remove_from(&mut self.by_local, entry.local, id);
        for index in [entry.owner, entry.route_interface].into_iter().flatten() {
            remove_from(&mut self.by_interface, index, id);
        }
        self.by_remote.remove(&(entry.remote, id));
    }

    /// How many paths are watched.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Re-evaluates the paths a change touches and publishes those whose status changed.
    pub(crate) fn react(&mut self, state: &NetworkState, touch: Touch, lookup: &mut dyn RouteLookup) {
        let ids: Vec<PathId> = match touch {
            Touch::Nothing => Vec::new(),
            Touch::All => (0..self.slots.len()).filter(|&id| self.slots[id].is_some()).collect(),
            Touch::Local(ip) => self.by_local.get(&ip).map(|s| s.iter().copied().collect()).unwrap_or_default(),
            Touch::Interface(index) => {
                self.by_interface.get(&index).map(|s| s.iter().copied().collect()).unwrap_or_default()
            }
            Touch::Prefix(network, prefix_len) => {
                let mut ids = self.in_prefix(network, prefix_len);
                ids.sort_unstable();
                ids
            }
        };
        let mut lookup = CachedLookup { lookup, answers: HashMap::new() };
        let mut wanted = HashMap::new(); // per local address: most paths share a few
        lookup.prefetch(ids.iter().filter_map(|&id| self.slots[id].as_ref()).filter_map(|entry| {
            let wants = *wanted.entry(entry.local).or_insert_with(|| wants_route(state, entry.local));
            wants.then_some((entry.local, entry.remote))
        }));
        for id in ids {
            let Some(entry) = &self.slots[id] else { continue };
            let Evaluation { status, owner, route_interface } =
                evaluate(state, entry.local, entry.remote, &mut lookup, &mut self.names);
            entry.shared.publish(status);
            self.reindex(id, owner, route_interface);
        }
    }

    /// Paths whose remote lies in `network/prefix_len`: a range of the sorted remote index.
    fn in_prefix(&self, network: IpAddr, prefix_len: u8) -> Vec<PathId> {
        let (low, high) = prefix_bounds(network, prefix_len);
        self.by_remote.range((low, PathId::MIN)..=(high, PathId::MAX)).map(|(_, id)| *id).collect()
    }

    fn reindex(&mut self, id: PathId, owner: Option<u32>, route_interface: Option<u32>) {
        let Some(entry) = self.slots[id].as_mut() else { return };
        let old = [entry.owner, entry.route_interface];
        let new = [owner, route_interface];
        if old == new {
            return;
        }
        entry.owner = owner;
        entry.route_interface = route_interface;
        // Only touch the sets that change: usually the owner and the route's interface are the
        // same link, and a link going down clears only the route (its paths stay indexed under
        // the owner), which must not cost a removal and re-insertion per path.
        for index in old.into_iter().flatten().filter(|i| !new.contains(&Some(*i))) {
            remove_from(&mut self.by_interface, index, id);
        }
        for index in new.into_iter().flatten().filter(|i| !old.contains(&Some(*i))) {
            self.by_interface.entry(index).or_default().insert(id);
        }
    }

    /// Ends every path's subscriptions (the monitor stopped).
    pub(crate) fn close_all(&self) {
        for entry in self.slots.iter().flatten() {
            entry.shared.close();
        }
    }
}

fn remove_from<K: std::hash::Hash + Eq>(index: &mut HashMap<K, BTreeSet<PathId>>, key: K, id: PathId) {
    if let Some(set) = index.get_mut(&key) {
        set.remove(&id);
        if set.is_empty() {
            index.remove(&key);
        }
    }
}

/// Watches whether one connection's path (local address -> remote address) still works.
/// Made by [`crate::Monitor::watch_path`] and friends; many share one monitor. Dropping it
/// stops watching.
///
/// ```no_run
/// use std::net::TcpStream;
/// let monitor = netreach::Monitor::new()?;
/// let stream = TcpStream::connect("192.0.2.1:443").expect("connect");
/// let path = monitor.watch_tcp(&stream)?;
/// if let Some(reason) = path.status().reason {
///     println!("dead path: {reason}; reconnect now instead of waiting for TCP timeouts");
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[must_use = "dropping a PathMonitor stops watching the path"]
pub struct PathMonitor {
    pub(crate) id: PathId,
    pub(crate) shared: Arc<PathShared>,
    /// The monitor, told when this handle is dropped; weak so a path never keeps it alive.
    pub(crate) owner: std::sync::Weak<dyn PathOwner>,
}

/// What a [`PathMonitor`] needs from its monitor.
pub(crate) trait PathOwner: Send + Sync {
    /// The handle of path `id` was dropped.
    fn forget(&self, id: PathId);
}

impl PathMonitor {
    /// The current status.
    pub fn status(&self) -> PathStatus {
        self.shared.lock().status.clone()
    }

    /// True when the path is reachable; see [`PathMonitor::status`] for the reason when not.
    pub fn is_reachable(&self) -> bool {
        self.shared.lock().status.reachable
    }

    /// Subscribes to changes: [`EventKind::PathChanged`] with the current status first, then
    /// one per change (bounded like the monitor's own subscriptions).
    pub fn subscribe(&self) -> Subscription {
        let queue = Queue::new(self.shared.queue_capacity);
        let mut inner = self.shared.lock();
        let status = inner.status.clone();
        queue.push(&[Event::now(PathShared::status_event(&status))], &|| PathShared::status_event(&status));
        inner.queues.push(queue.clone());
        Subscription::new(queue)
    }

    /// Calls `callback` with the current status at once (on this thread), then with every
    /// change (on the monitor's thread).
    pub fn on_change<F>(&self, mut callback: F)
    where
        F: FnMut(&PathStatus) + Send + 'static,
    {
        let mut inner = self.shared.lock();
        callback(&inner.status);
        inner.callbacks.push(Box::new(callback));
    }
}

impl std::fmt::Debug for PathMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathMonitor").field("status", &self.status()).finish()
    }
}

impl Drop for PathMonitor {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.forget(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::InterfaceKind;

    /// A fixed routing answer: the unit under test is the decision table, not the kernel
    /// (the kernel itself is exercised by the namespace tests in tests/paths.rs).
    struct FixedRoute(std::io::Result<Option<u32>>);
    impl RouteLookup for FixedRoute {
        fn route(&mut self, _: IpAddr, _: IpAddr) -> std::io::Result<Option<u32>> {
            match &self.0 {
                Ok(v) => Ok(*v),
                Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
            }
        }
    }

    fn state(configure: impl FnOnce(&mut Interface)) -> NetworkState {
        let mut eth = Interface {
            index: 2,
            name: "eth0".into(),
            kind: InterfaceKind::Ethernet,
            up: true,
            carrier: true,
            addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
            ..Default::default()
        };
        configure(&mut eth);
        let wlan = Interface { index: 3, name: "wlan0".into(), up: true, carrier: true, ..Default::default() };
        NetworkState { interfaces: vec![eth, wlan], ..Default::default() }
    }

    fn reason(state: &NetworkState, remote: &str, route: std::io::Result<Option<u32>>) -> Option<Unreachable> {
        let e = evaluate(
            state,
            "192.0.2.10".parse().unwrap(),
            remote.parse().unwrap(),
            &mut FixedRoute(route),
            &mut Names::default(),
        );
        assert_eq!(e.status.reachable, e.status.reason.is_none());
        e.status.reason
    }

    #[test]
    fn rule_table() {
        let eth0 = || Arc::<str>::from("eth0");
        let ok = state(|_| {});
        assert_eq!(reason(&ok, "198.51.100.1", Ok(Some(2))), None);
        assert_eq!(reason(&ok, "198.51.100.1", Ok(None)), Some(Unreachable::NoRoute));
        assert_eq!(
            reason(&ok, "198.51.100.1", Ok(Some(3))),
            Some(Unreachable::RouteViaOtherInterface { expected: eth0(), actual: Arc::from("wlan0") })
        );
        assert!(matches!(
            reason(&ok, "198.51.100.1", Err(std::io::Error::other("boom"))),
            Some(Unreachable::LookupFailed { .. })
        ));
        let gone = state(|i| i.addresses.clear());
        assert_eq!(reason(&gone, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressGone));
        let tentative = state(|i| i.addresses[0].flags.tentative = true);
        assert_eq!(reason(&tentative, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressTentative));
        let failed = state(|i| i.addresses[0].flags.dad_failed = true);
        assert_eq!(reason(&failed, "198.51.100.1", Ok(Some(2))), Some(Unreachable::LocalAddressDadFailed));
        let down = state(|i| i.up = false);
        assert_eq!(reason(&down, "198.51.100.1", Ok(Some(2))), Some(Unreachable::InterfaceDown { interface: eth0() }));
        let no_carrier = state(|i| i.carrier = false);
        assert_eq!(reason(&no_carrier, "192.0.2.20", Ok(Some(2))), Some(Unreachable::NoCarrier { interface: eth0() }));
    }

    /// A route out of eth0 plus a fixed system verdict (Windows' NLM, in production).
    struct Judged(Option<bool>);
    impl RouteLookup for Judged {
        fn route(&mut self, _: IpAddr, _: IpAddr) -> std::io::Result<Option<u32>> {
            Ok(Some(2))
        }
        fn connectivity(&mut self, interface: u32, _: IpAddr, _: bool) -> Option<bool> {
            assert_eq!(interface, 2);
            self.0
        }
    }

    #[test]
    fn system_connectivity_verdict() {
        let s = state(|_| {});
        let local = "192.0.2.10".parse().unwrap();
        let remote = "198.51.100.1".parse().unwrap();
        let reason = |verdict| evaluate(&s, local, remote, &mut Judged(verdict), &mut Names::default()).status.reason;
        assert_eq!(reason(Some(false)), Some(Unreachable::NoConnectivity { interface: Arc::from("eth0") }));
        assert_eq!(reason(Some(true)), None);
        assert_eq!(reason(None), None);
        // A dead link is reported as such, before any system verdict.
        let down = state(|i| i.carrier = false);
        let e = evaluate(&down, local, remote, &mut Judged(Some(false)), &mut Names::default());
        assert_eq!(e.status.reason, Some(Unreachable::NoCarrier { interface: Arc::from("eth0") }));
    }

    #[test]
    fn same_subnet_is_reported() {
        let s = state(|_| {});
        let mut lookup = FixedRoute(Ok(Some(2)));
        let local = "192.0.2.10".parse().unwrap();
        let names = &mut Names::default();
        assert!(evaluate(&s, local, "192.0.2.99".parse().unwrap(), &mut lookup, names).status.same_subnet);
        assert!(!evaluate(&s, local, "198.51.100.1".parse().unwrap(), &mut lookup, names).status.same_subnet);
    }

    #[test]
    fn validation_names_the_problem() {
        let v = |l: &str, r: &str| validate_path(l.parse().unwrap(), r.parse().unwrap()).map_err(|e| e.to_string());
        assert!(v("0.0.0.0", "192.0.2.1").unwrap_err().contains("unspecified"));
        assert!(v("192.0.2.10", "0.0.0.0").unwrap_err().contains("unspecified"));
        assert!(v("192.0.2.10", "127.0.0.1").unwrap_err().contains("loopback"));
        assert!(v("2001:db8::1", "::1").unwrap_err().contains("loopback"));
        assert!(v("127.0.0.1", "192.0.2.1").unwrap_err().contains("loopback"));
        assert!(v("192.0.2.10", "2001:db8::1").unwrap_err().contains("different families"));
        assert!(v("192.0.2.10", "224.0.0.1").unwrap_err().contains("multicast"));
        assert!(v("2001:db8::1", "ff02::1").unwrap_err().contains("multicast"));
        assert!(v("192.0.2.10", "255.255.255.255").unwrap_err().contains("broadcast"));
        assert_eq!(
            v("::ffff:192.0.2.10", "::ffff:198.51.100.1").unwrap(),
            ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap())
        );
        let s = state(|_| {});
        let check = |l: &str, r: &str| check_against_state(&s, l.parse().unwrap(), r.parse().unwrap());
        assert!(check("192.0.2.11", "198.51.100.1").unwrap_err().to_string().contains("no interface owns"));
        assert!(check("192.0.2.10", "192.0.2.255").unwrap_err().to_string().contains("broadcast address of"));
        assert!(check("192.0.2.10", "192.0.2.254").is_ok());
    }

    #[test]
    fn prefix_queries_visit_only_covered_remotes() {
        let s = state(|_| {});
        let mut registry = PathRegistry::default();
        let mut lookup = FixedRoute(Ok(Some(2)));
        let local: IpAddr = "192.0.2.10".parse().unwrap();
        for remote in ["198.51.100.1", "198.51.100.200", "203.0.113.5"] {
            registry.add(&s, local, remote.parse().unwrap(), 8, &mut lookup);
        }
        assert_eq!(registry.in_prefix("198.51.100.0".parse().unwrap(), 24).len(), 2);
        assert_eq!(registry.in_prefix("198.51.100.128".parse().unwrap(), 25).len(), 1);
        assert_eq!(registry.in_prefix("0.0.0.0".parse().unwrap(), 0).len(), 3);
        assert_eq!(registry.in_prefix("::".parse().unwrap(), 0).len(), 0);
        assert_eq!(registry.by_interface.get(&2).map(BTreeSet::len), Some(3));
        registry.remove(1);
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.by_interface.get(&2).map(BTreeSet::len), Some(2));
        // A freed slot is reused.
        let (id, _) = registry.add(&s, local, "203.0.113.6".parse().unwrap(), 8, &mut lookup);
        assert_eq!((id, registry.len()), (1, 3));
    }

    #[test]
    fn in_prefix_edges() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_prefix(ip("192.0.2.255"), ip("192.0.2.0"), 24));
        assert!(!in_prefix(ip("192.0.3.0"), ip("192.0.2.0"), 24));
        assert!(in_prefix(ip("203.0.113.9"), ip("0.0.0.0"), 0));
        assert!(in_prefix(ip("2001:db8::ffff"), ip("2001:db8::"), 64));
        assert!(!in_prefix(ip("2001:db9::1"), ip("2001:db8::"), 32));
        assert!(in_prefix(ip("192.0.2.7"), ip("192.0.2.7"), 32));
    }
}
