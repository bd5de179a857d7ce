//! The kernel's route answers a path needs, and a per-reaction cache of them.

use std::collections::HashMap;
use std::net::IpAddr;

/// One route question, as the kernel is asked it for a socket: like `ip route get REMOTE
/// from LOCAL [oif SCOPE] [mark MARK] [uid UID]`. Paths that ask the same question share the
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Query {
    pub local: IpAddr,
    pub remote: IpAddr,
    /// The link an IPv6 link-local path is on (its scope id): the lookup is made on it.
    pub scope: Option<u32>,
    /// The socket's mark (`SO_MARK`), which `fwmark` rules match.
    pub mark: Option<u32>,
    /// The socket's owner, which `uidrange` rules match (default: the monitor's own uid).
    pub uid: Option<u32>,
}

impl Query {
    /// A question with no scope, mark or uid.
    #[cfg(test)]
    pub(crate) fn plain(local: IpAddr, remote: IpAddr) -> Query {
        Query { local, remote, scope: None, mark: None, uid: None }
    }
}

/// Where the kernel's route sends the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    /// The interface it leaves through (for a local route, the loopback interface).
    pub interface: u32,
    /// The remote is one of this host's own addresses (a `local` route, `RTN_LOCAL`): the
    /// traffic never leaves the host.
    pub local: bool,
}

impl Route {
    /// A unicast route out of `interface`.
    #[cfg(any(windows, test))] // Linux decodes the kind of route the kernel answers with
    pub(crate) fn out(interface: u32) -> Route {
        Route { interface, local: false }
    }
}

/// The kernel's answer: `Ok(Some(route))`, `Ok(None)` when there is no route (or a reject
/// route or rule), `Err` when the lookup failed.
pub(crate) type Answer = std::io::Result<Option<Route>>;

/// The kernel's answer to "where does traffic from `local` to `remote` go?" (implemented by
/// each OS source).
pub(crate) trait RouteLookup {
    /// Asks one question.
    fn route(&mut self, query: &Query) -> Answer;

    /// Many questions at once, answers in the order asked. Backends that can ask the OS in
    /// batches override this (one reaction may need thousands of lookups).
    fn routes(&mut self, queries: &[Query]) -> Vec<Answer> {
        queries.iter().map(|query| self.route(query)).collect()
    }

    /// The remotes of the watched paths (each once, but for a new path's remote, which may
    /// come twice; in any order; empty without path monitors): route changes must reach the source when they can change the kernel's
    /// route decision for the internet or a route to one of these. A source may filter the
    /// rest where the OS delivers them, as Linux does with a socket filter. By default every
    /// change is delivered.
    fn watch_routes_to(&mut self, _remotes: &mut dyn Iterator<Item = IpAddr>) {}

    /// Route changes whose prefix contains one of `destinations` (the nameservers, whose routes
    /// the diagnosis reads) must reach the source even while it may filter the others (see
    /// [`RouteLookup::watch_routes_to`]). Replaces the previous list.
    fn watch_destinations(&mut self, _destinations: &[IpAddr]) {}

    /// The operating system's own verdict on a path from `local` to `remote` that leaves
    /// through `interface`: `Some(false)` when it says the connection there cannot carry it.
    /// `since` is what [`RouteLookup::opinion_clock`] said when the path was made: a verdict
    /// older than the path may be set aside (an established connection is evidence too).
    /// Only Windows judges connections (Network List Manager); elsewhere there is no opinion.
    fn connectivity(
        &mut self,
        _interface: u32,
        _local: IpAddr,
        _remote: IpAddr,
        _same_subnet: bool,
        _since: u64,
    ) -> Option<bool> {
        None
    }

    /// A clock that moves whenever the operating system's verdict on some connection changes
    /// (see [`RouteLookup::connectivity`]); a path remembers it when made.
    fn opinion_clock(&mut self) -> u64 {
        0
    }
}

/// Route lookups remembered for the length of one reaction: many paths often ask the same
/// question (connection pools), and the answer cannot change meanwhile.
pub(crate) struct CachedLookup<'a> {
    lookup: &'a mut dyn RouteLookup,
    answers: HashMap<Query, Remembered>,
}

/// A remembered lookup result (`io::Error` is not `Clone`, so errors keep kind and text).
type Remembered = Result<Option<Route>, (std::io::ErrorKind, String)>;

impl<'a> CachedLookup<'a> {
    pub(crate) fn new(lookup: &'a mut dyn RouteLookup) -> Self {
        CachedLookup { lookup, answers: HashMap::new() }
    }

    /// Looks up, in one batch, the questions not answered yet.
    pub(crate) fn prefetch(&mut self, queries: impl Iterator<Item = Query>) {
        let mut missing: Vec<Query> = queries.filter(|query| !self.answers.contains_key(query)).collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return;
        }
        let answers = self.lookup.routes(&missing);
        for (query, answer) in missing.into_iter().zip(answers) {
            self.answers.insert(query, answer.map_err(|e| (e.kind(), e.to_string())));
        }
    }
}

impl RouteLookup for CachedLookup<'_> {
    fn route(&mut self, query: &Query) -> Answer {
        let lookup = &mut self.lookup;
        self.answers
            .entry(*query)
            .or_insert_with(|| lookup.route(query).map_err(|e| (e.kind(), e.to_string())))
            .clone()
            .map_err(|(kind, message)| std::io::Error::new(kind, message))
    }

    fn connectivity(
        &mut self,
        interface: u32,
        local: IpAddr,
        remote: IpAddr,
        same_subnet: bool,
        since: u64,
    ) -> Option<bool> {
        self.lookup.connectivity(interface, local, remote, same_subnet, since)
    }

    fn opinion_clock(&mut self) -> u64 {
        self.lookup.opinion_clock()
    }
}
