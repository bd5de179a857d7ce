//! Each interface's NLM connectivity, and when it last changed: what the path verdicts need
//! (pure; fed by the Windows source, tested on every platform).
//!
//! NLM names a connection's adapter by GUID and IP Helper maps GUIDs to interface indexes;
//! several connections on one adapter add up. A clock moves with every reading that changes
//! some interface, so a path can tell a reading older than itself from a later one.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{path_verdict, Span};
use crate::model::Family;

/// The connectivity of every interface that has NLM connections.
#[derive(Debug, Default)]
pub struct Connections {
    /// Interface index -> the `NLM_CONNECTIVITY` flags of its connections.
    flags: HashMap<u32, u32>,
    /// Counts readings that changed some interface.
    clock: u64,
    /// Interface index -> the clock when its flags last changed (or went away).
    changed_at: HashMap<u32, u64>,
}

impl Connections {
    /// Takes a fresh reading: each connection's adapter GUID and flags, and each interface's
    /// GUID. Returns the interfaces whose connectivity changed, in index order.
    pub fn update(&mut self, connections: &[(u128, u32)], guids: &HashMap<u32, u128>) -> Vec<u32> {
        let mut fresh = HashMap::new();
        for &(adapter, flags) in connections {
            for (&index, _) in guids.iter().filter(|(_, guid)| **guid == adapter) {
                *fresh.entry(index).or_insert(0) |= flags;
            }
        }
        let old = std::mem::replace(&mut self.flags, fresh);
        let mut changed: Vec<u32> = old.keys().chain(self.flags.keys()).copied().collect();
        changed.sort_unstable();
        changed.dedup();
        changed.retain(|i| old.get(i) != self.flags.get(i));
        if !changed.is_empty() {
            self.clock += 1;
        }
        for &index in &changed {
            self.changed_at.insert(index, self.clock);
        }
        changed
    }

    /// The flags of an interface's connections; `None` when it has none.
    pub fn flags(&self, interface: u32) -> Option<u32> {
        self.flags.get(&interface).copied()
    }

    /// The clock now (a path remembers it when made).
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// NLM's verdict on a path leaving through `interface`, made when the clock read `since`
    /// (see [`path_verdict`]); `None` when NLM has nothing to say.
    pub fn verdict(
        &self,
        interface: u32,
        local: IpAddr,
        remote: IpAddr,
        same_subnet: bool,
        since: u64,
    ) -> Option<bool> {
        let flags = self.flags(interface)?;
        let changed = self.changed_at.get(&interface).is_some_and(|&at| at > since);
        path_verdict(flags, Family::of(&remote), Span::of(local, remote, same_subnet), changed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IPV4_INTERNET, IPV4_LOCALNETWORK, IPV4_SUBNET, IPV6_NOTRAFFIC};
    use super::*;

    #[test]
    fn readings_map_to_interfaces_and_move_the_clock_only_on_change() {
        let guids = HashMap::from([(2, 0xa), (3, 0xb), (4, 0xc)]);
        let mut c = Connections::default();
        // Two connections on adapter 0xa add up; a connection on an unknown adapter is ignored.
        assert_eq!(c.update(&[(0xa, IPV4_SUBNET), (0xa, IPV6_NOTRAFFIC), (0xff, IPV4_INTERNET)], &guids), [2]);
        assert_eq!((c.flags(2), c.flags(3), c.clock()), (Some(IPV4_SUBNET | IPV6_NOTRAFFIC), None, 1));
        // The same reading again: nothing changed, the clock stays.
        assert_eq!(c.update(&[(0xa, IPV4_SUBNET | IPV6_NOTRAFFIC)], &guids), Vec::<u32>::new());
        assert_eq!(c.clock(), 1);
        // A connection appears on 0xb and 0xa's goes away: both change, in index order.
        assert_eq!(c.update(&[(0xb, IPV4_INTERNET)], &guids), [2, 3]);
        assert_eq!((c.flags(2), c.flags(3), c.clock()), (None, Some(IPV4_INTERNET), 2));
    }

    #[test]
    fn a_path_is_judged_by_readings_taken_after_it_was_made() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (local, far) = (ip("192.0.2.10"), ip("198.51.100.1"));
        let guids = HashMap::from([(2, 0xa)]);
        let mut c = Connections::default();
        c.update(&[(0xa, IPV4_SUBNET)], &guids); // Windows' internet check never passed
        let made = c.clock();
        assert_eq!(c.verdict(2, local, far, false, made), None, "older than the path: no verdict");
        assert_eq!(c.verdict(3, local, far, false, made), None, "no connection there");
        c.update(&[(0xa, IPV4_SUBNET | IPV4_LOCALNETWORK)], &guids); // a later change
        assert_eq!(c.verdict(2, local, far, false, made), Some(false));
        assert_eq!(c.verdict(2, local, ip("192.0.2.20"), true, made), Some(true));
        // A path made now is not judged by that reading either, until the next change.
        assert_eq!(c.verdict(2, local, far, false, c.clock()), None);
        // No network of the family at all judges every path, whatever its age.
        c.update(&[(0xa, IPV6_NOTRAFFIC)], &guids);
        let now = c.clock();
        assert_eq!(c.verdict(2, local, far, false, now), Some(false));
    }
}
