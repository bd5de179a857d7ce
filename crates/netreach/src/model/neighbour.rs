//! What the OS's neighbour table (ARP, IPv6 neighbour discovery) says about the gateways the
//! way out uses: an observed input, read for those gateways only (never the whole table).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The neighbour entry of one gateway of a default route, as the OS keeps it.
///
/// ```
/// let g = netreach::GatewayNeighbour {
///     gateway: "192.0.2.1".parse().unwrap(), interface_index: 2, state: netreach::NeighbourState::Failed,
/// };
/// assert!(g.state.is_unreachable());
/// assert_eq!(serde_json::to_string(&g.state).unwrap(), r#""failed""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GatewayNeighbour {
    /// The gateway's address.
    pub gateway: IpAddr,
    /// The interface the entry is on (the route's).
    pub interface_index: u32,
    /// What the OS last concluded about it.
    pub state: NeighbourState,
}

/// The state of a neighbour entry: Linux's `NUD_*`, Windows' `NL_NEIGHBOR_STATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NeighbourState {
    /// Resolution is under way and has not been answered yet (no evidence either way).
    Incomplete,
    /// Confirmed reachable recently.
    Reachable,
    /// Reachable once, not confirmed lately; the next packet revalidates it.
    Stale,
    /// Waiting for upper layers to confirm before probing.
    Delay,
    /// Being probed again.
    Probe,
    /// Resolution or revalidation went unanswered: Linux's `FAILED`, Windows' `NlnsUnreachable`.
    Failed,
    /// Configured by hand; never revalidated.
    Permanent,
}

impl NeighbourState {
    /// Whether the OS concluded that the neighbour does not answer. `Incomplete` is not: it
    /// is a question still open.
    pub fn is_unreachable(self) -> bool {
        self == NeighbourState::Failed
    }
}
