//! Plain data describing what the machine's network looks like at one moment.
//!
//! Everything here is serde-serialisable and free of I/O, so it can be built by any OS source,
//! compared, diffed ([`crate::diff`]) and printed (`netreach status --json`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::decision::RouteDecision;
use super::dns::{DnsConfig, NameserverRoute};
use super::interface::Interface;
use super::neighbour::GatewayNeighbour;
use super::verdict::Verdict;

/// What was observed in one network namespace (or machine) at one moment: what the OS reported
/// (`interfaces`, `default_routes`, `route_decisions`, `dns`) and what each source above the
/// kernel last said (`verdicts`). Plain facts only: the levels, details and reasons derived
/// from them are not stored here but computed by [`crate::derive()`], which returns a
/// [`crate::Snapshot`] (what [`crate::Monitor::snapshot`] hands out).
///
/// ```
/// let state = netreach::NetworkState::default();
/// assert!(state.interfaces.is_empty());
/// assert_eq!(netreach::derive(state).reachability.overall, netreach::Level::Disconnected);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive] // grows with new kinds of input (neighbours, DNS): start from `default()`
pub struct NetworkState {
    /// The latest verdict of every source above the kernel (probe, NetworkManager, Windows),
    /// which refine the kernel's levels ([`crate::refine()`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// Interfaces sorted by index.
    pub interfaces: Vec<Interface>,
    /// Default routes (IPv4 `0.0.0.0/0`, IPv6 `::/0`) of every routing table the OS can
    /// consult (Linux: the tables policy rules and VRFs name), sorted. Other routes are
    /// deliberately not mirrored: a full BGP table must not cost memory here.
    pub default_routes: Vec<DefaultRoute>,
    /// The kernel's route decision for representative destinations of each family's
    /// internet (route lookups; Linux). Empty where the OS has no such lookups, and then the
    /// levels come from `default_routes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_decisions: Vec<RouteDecision>,
    /// The neighbour entry of each gateway the way out leads through (Linux: those of
    /// `route_decisions`, from the kernel; Windows: those of the default routes,
    /// `GetIpNetEntry2`); only those gateways, never the whole neighbour table. A gateway whose
    /// entry failed keeps its family below `online` ([`crate::Reason::GatewayUnreachable`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayNeighbour>,
    /// The resolver configuration in effect (Linux, Windows; `None` where it is not followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    /// Observed: the kernel's route decision for each nameserver of `dns` (route lookups, asked
    /// again when the nameservers or anything that can change their routes change). Empty
    /// where there are no nameservers, or no route lookups. The diagnosis's DNS layer reads it
    /// ([`crate::diagnose`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameserver_routes: Vec<NameserverRoute>,
}

impl NetworkState {
    /// The interface with this index, if known.
    ///
    /// ```
    /// let state = netreach::NetworkState::default();
    /// assert!(state.interface(1).is_none());
    /// ```
    pub fn interface(&self, index: u32) -> Option<&Interface> {
        self.position(index).ok().map(|i| &self.interfaces[i])
    }

    /// The interface with this name, if known. A name that is not UTF-8 is matched by its
    /// display form ([`Interface::name`]) when no UTF-8 name is exactly `name`.
    ///
    /// ```
    /// let mut odd = netreach::Interface { index: 2, ..Default::default() };
    /// odd.set_name(b"w\xff");
    /// let mut state = netreach::NetworkState::default();
    /// state.interfaces.push(odd);
    /// assert_eq!(state.interface_by_name("w\\xff").map(|i| i.index), Some(2));
    /// ```
    pub fn interface_by_name(&self, name: &str) -> Option<&Interface> {
        let exact = self.interfaces.iter().find(|i| i.name_bytes.is_none() && i.name == name);
        exact.or_else(|| self.interfaces.iter().find(|i| i.name == name))
    }

    /// Where an interface with `index` is (`Ok`) or would be inserted (`Err`).
    pub(crate) fn position(&self, index: u32) -> Result<usize, usize> {
        self.interfaces.binary_search_by_key(&index, |i| i.index)
    }
}

/// A default route (`0.0.0.0/0` or `::/0`) that forwards packets (unicast type). One entry per
/// next hop: a multipath default route appears once for each of its interfaces.
///
/// ```no_run
/// for route in &netreach::Monitor::new()?.snapshot().default_routes {
///     println!("{} via {:?} dev {} metric {}", route.family, route.gateway, route.interface, route.metric);
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefaultRoute {
    /// Address family of the route.
    pub family: Family,
    /// Next-hop gateway; `None` for a route straight out of a point-to-point link.
    pub gateway: Option<IpAddr>,
    /// Name of the outgoing interface, derived from `interface_index`: it follows renames
    /// (reported by [`crate::EventKind::InterfaceChanged`], not as a route change) and is empty
    /// while the interface is not known.
    pub interface: String,
    /// Index of the outgoing interface.
    pub interface_index: u32,
    /// Route metric (priority); lower wins.
    pub metric: u32,
    /// Routing table id (254 is `main`).
    pub table: u32,
}

impl DefaultRoute {
    /// Identity of a route: everything but the interface name, which is derived from the index.
    pub(crate) fn same_route(&self, other: &DefaultRoute) -> bool {
        self.family == other.family
            && self.gateway == other.gateway
            && self.interface_index == other.interface_index
            && self.metric == other.metric
            && self.table == other.table
    }
}
