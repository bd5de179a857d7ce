//! Every watched path of one monitor, indexed by local address, interface and remote, and
//! the reactions: which paths a change touches, re-evaluated with batched route lookups.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::fanout::PathShared;
use super::lookup::{CachedLookup, Query, RouteLookup};
use super::rule::{evaluate, is_own_address, prefix_bounds, route_need, Evaluation, Names};
use crate::model::{NetworkState, Update};

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
        // A rule can send any path elsewhere (fwmark, uidrange, from, to rules).
        Update::RulesChanged(_) => Touch::All,
        // The kernel's decision for the internet changed (a rule, a nexthop, a reject route):
        // whatever changed it may have changed the paths' routes too.
        Update::Decision(..) => Touch::All,
        // Paths follow the kernel; probes and daemons judge the machine, not one path, and a
        // path is between addresses: the resolver does not matter to it.
        Update::Verdict(_) | Update::Dns(_) => Touch::Nothing,
        // A path is judged by its route; its gateway's liveness is the machine's reason.
        Update::Gateways(_) => Touch::Nothing,
    }
}

struct PathEntry {
    query: Query,
    owner: Option<u32>,
    route_interface: Option<u32>,
    /// The lookup's opinion clock when the path was made (see `RouteLookup::connectivity`).
    since: u64,
    shared: Arc<PathShared>,
}

/// The distinct remotes of a registry's paths ([`PathRegistry::remotes`]).
pub(crate) struct Remotes<'a> {
    by_remote: &'a BTreeSet<(IpAddr, PathId)>,
    next: Option<IpAddr>,
    left: usize,
}

impl Iterator for Remotes<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let remote = self.next?;
        self.next = self.by_remote.range((remote, PathId::MAX)..).find(|(r, _)| *r != remote).map(|(r, _)| *r);
        self.left = self.left.saturating_sub(1);
        Some(remote)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
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
    /// How many distinct remotes `by_remote` holds (see [`PathRegistry::remotes`]).
    distinct_remotes: usize,
    names: Names,
}

impl PathRegistry {
    /// Adds a path, evaluates it and returns its handle parts.
    pub(crate) fn add(
        &mut self,
        state: &NetworkState,
        query: Query,
        queue_capacity: usize,
        lookup: &mut dyn RouteLookup,
    ) -> (PathId, Arc<PathShared>) {
        let since = lookup.opinion_clock();
        let evaluation = evaluate(state, &query, since, lookup, &mut self.names);
        let shared = Arc::new(PathShared::new(evaluation.status, queue_capacity));
        let entry = PathEntry { query, owner: None, route_interface: None, since, shared: shared.clone() };
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
        self.by_local.entry(query.local).or_default().insert(id);
        self.distinct_remotes += usize::from(!self.watches(query.remote));
        self.by_remote.insert((query.remote, id));
        self.reindex(id, evaluation.owner, evaluation.route_interface);
        (id, shared)
    }

    /// Forgets a path (its handle was dropped).
    pub(crate) fn remove(&mut self, id: PathId) {
        let Some(entry) = self.slots.get_mut(id).and_then(Option::take) else { return };
        self.free.push(id);
        remove_from(&mut self.by_local, entry.query.local, id);
        for index in [entry.owner, entry.route_interface].into_iter().flatten() {
            remove_from(&mut self.by_interface, index, id);
        }
        self.by_remote.remove(&(entry.query.remote, id));
        self.distinct_remotes -= usize::from(!self.watches(entry.query.remote));
    }

    /// Whether some path goes to `remote`.
    fn watches(&self, remote: IpAddr) -> bool {
        self.by_remote.range((remote, 0)..=(remote, PathId::MAX)).next().is_some()
    }

    /// The distinct remotes of the watched paths, in order; lazily, a step per remote (not per
    /// path: a connection pool's thousand paths to one remote are one step), and sized: a
    /// consumer that wants only a few can tell at once that there are more.
    pub(crate) fn remotes(&self) -> Remotes<'_> {
        Remotes {
            by_remote: &self.by_remote,
            next: self.by_remote.first().map(|(r, _)| *r),
            left: self.distinct_remotes,
        }
    }

    /// How many paths are watched.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Re-evaluates the paths a change touches and publishes those whose status changed. Path
    /// callbacks run on this thread: call it holding no lock.
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
        let mut lookup = CachedLookup::new(lookup);
        let mut wanted = HashMap::new(); // per local address and link: most paths share a few
        lookup.prefetch(ids.iter().filter_map(|&id| self.slots[id].as_ref()).filter_map(|entry| {
            let query = entry.query;
            let need = *wanted
                .entry((query.local, query.scope))
                .or_insert_with(|| route_need(state, query.local, query.scope));
            need.is_some_and(|ready| ready || is_own_address(state, query.remote)).then_some(query)
        }));
        for id in ids {
            let Some(entry) = &self.slots[id] else { continue };
            let Evaluation { status, owner, route_interface } =
                evaluate(state, &entry.query, entry.since, &mut lookup, &mut self.names);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Interface};
    use crate::path::lookup::{Answer, Route};

    /// Every route leaves through eth0.
    struct Eth0;
    impl RouteLookup for Eth0 {
        fn route(&mut self, _: &Query) -> super::super::lookup::Answer {
            Ok(Some(super::super::lookup::Route::out(2)))
        }
    }

    #[test]
    fn prefix_queries_visit_only_covered_remotes() {
        let eth = Interface {
            index: 2,
            name: "eth0".into(),
            up: true,
            carrier: true,
            addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
            ..Default::default()
        };
        let s = NetworkState { interfaces: vec![eth], ..Default::default() };
        let mut registry = PathRegistry::default();
        let mut lookup = Eth0;
        let local: IpAddr = "192.0.2.10".parse().unwrap();
        for remote in ["198.51.100.1", "198.51.100.200", "203.0.113.5"] {
            registry.add(&s, Query::plain(local, remote.parse().unwrap()), 8, &mut lookup);
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
        let (id, _) = registry.add(&s, Query::plain(local, "203.0.113.6".parse().unwrap()), 8, &mut lookup);
        assert_eq!((id, registry.len()), (1, 3));
    }

    #[test]
    fn remotes_are_listed_once_each_and_counted() {
        let s = NetworkState::default();
        let mut registry = PathRegistry::default();
        let local: IpAddr = "192.0.2.10".parse().unwrap();
        let [a, b]: [IpAddr; 2] = ["198.51.100.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        let ids: Vec<PathId> =
            [a, b, a, a].iter().map(|r| registry.add(&s, Query::plain(local, *r), 8, &mut Eth0).0).collect();
        assert_eq!(registry.remotes().size_hint(), (2, Some(2)));
        assert_eq!(registry.remotes().collect::<Vec<_>>(), [a, b]);
        registry.remove(ids[0]);
        registry.remove(ids[2]);
        assert_eq!(registry.remotes().collect::<Vec<_>>(), [a, b], "one path to a is left");
        registry.remove(ids[3]);
        assert_eq!((registry.remotes().size_hint().0, registry.remotes().collect::<Vec<_>>()), (1, vec![b]));
        registry.remove(ids[1]);
        assert_eq!(registry.remotes().next(), None);
        assert_eq!(registry.remotes().size_hint(), (0, Some(0)));
    }

    /// Routes out of eth0; the OS judges connections with a clock (Windows' NLM, in
    /// production) and records the `since` each path is judged with.
    struct Clocked {
        clock: u64,
        asked: Vec<(IpAddr, u64)>,
    }
    impl RouteLookup for Clocked {
        fn route(&mut self, _: &Query) -> Answer {
            Ok(Some(Route::out(2)))
        }
        fn connectivity(&mut self, _: u32, _: IpAddr, remote: IpAddr, _: bool, since: u64) -> Option<bool> {
            self.asked.push((remote, since));
            None
        }
        fn opinion_clock(&mut self) -> u64 {
            self.clock
        }
    }

    #[test]
    fn each_path_is_judged_with_the_clock_of_its_making() {
        let eth = Interface {
            index: 2,
            name: "eth0".into(),
            up: true,
            carrier: true,
            addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
            ..Default::default()
        };
        let s = NetworkState { interfaces: vec![eth], ..Default::default() };
        let (local, early, late) =
            ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap(), "198.51.100.2".parse().unwrap());
        let mut lookup = Clocked { clock: 3, asked: Vec::new() };
        let mut registry = PathRegistry::default();
        registry.add(&s, Query::plain(local, early), 8, &mut lookup);
        lookup.clock = 7;
        registry.add(&s, Query::plain(local, late), 8, &mut lookup);
        lookup.asked.clear();
        registry.react(&s, Touch::Interface(2), &mut lookup);
        assert_eq!(lookup.asked, [(early, 3), (late, 7)]);
    }
}
