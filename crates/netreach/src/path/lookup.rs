//! The kernel's route answers a path needs, and a per-reaction cache of them.

use std::collections::HashMap;
use std::net::IpAddr;

/// The kernel's answer to "which interface does traffic from `local` to `remote` leave by?"
/// (implemented by each OS source).
pub(crate) trait RouteLookup {
    /// `Ok(Some(index))`: out of that interface; `Ok(None)`: no route; `Err`: the lookup failed.
    fn route(&mut self, local: IpAddr, remote: IpAddr) -> std::io::Result<Option<u32>>;

    /// Many lookups at once, answers in the order asked. Backends that can ask the OS in
    /// batches override this (one reaction may need thousands of lookups).
    fn routes(&mut self, pairs: &[(IpAddr, IpAddr)]) -> Vec<std::io::Result<Option<u32>>> {
        pairs.iter().map(|&(local, remote)| self.route(local, remote)).collect()
    }

    /// Whether every route change must reach the source (`true` while path monitors exist:
    /// their remotes may lie in any prefix) or only those that can change the kernel's route
    /// decision for the internet (a source may then filter the rest where the OS delivers
    /// them, as Linux does with a socket filter). By default every change is delivered.
    fn every_route(&mut self, _every: bool) {}

    /// The operating system's own verdict on a path that leaves through `interface`:
    /// `Some(false)` when it says the connection there cannot carry it. Only Windows judges
    /// connections (Network List Manager); elsewhere there is no such opinion.
    fn connectivity(&mut self, _interface: u32, _remote: IpAddr, _same_subnet: bool) -> Option<bool> {
        None
    }
}

/// Route lookups remembered for the length of one reaction: many paths often share a
/// (local, remote) pair (connection pools), and the answer cannot change meanwhile.
pub(crate) struct CachedLookup<'a> {
    lookup: &'a mut dyn RouteLookup,
    answers: HashMap<(IpAddr, IpAddr), LookupAnswer>,
}

/// A remembered lookup result (`io::Error` is not `Clone`, so errors keep kind and text).
type LookupAnswer = Result<Option<u32>, (std::io::ErrorKind, String)>;

impl<'a> CachedLookup<'a> {
    pub(crate) fn new(lookup: &'a mut dyn RouteLookup) -> Self {
        CachedLookup { lookup, answers: HashMap::new() }
    }

    /// Looks up, in one batch, the pairs not answered yet.
    pub(crate) fn prefetch(&mut self, pairs: impl Iterator<Item = (IpAddr, IpAddr)>) {
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
