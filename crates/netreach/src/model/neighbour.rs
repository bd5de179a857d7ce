//! Plain data: the kernel's neighbour entry (ARP for IPv4, neighbour discovery for IPv6) of
//! each gateway the route decision leads through. What it means for a family's level is in
//! `reachability.rs`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The state of a neighbour entry (`NUD_*` in linux/neighbour.h), or `none` when the kernel
/// has no entry (or one it has not started resolving).
///
/// ```
/// assert_eq!(serde_json::to_string(&netreach::NeighbourState::Failed).unwrap(), r#""failed""#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NeighbourState {
    /// No entry: the kernel never resolved the address (or dropped the entry).
    #[default]
    None,
    /// Being resolved: solicitations sent, no answer yet.
    Incomplete,
    /// Answered recently (within the reachable time).
    Reachable,
    /// Answered once; not confirmed lately, so the next packet will confirm it.
    Stale,
    /// A packet went out to a stale entry; a confirmation is awaited before probing.
    Delay,
    /// Being probed by unicast solicitations.
    Probe,
    /// Solicitations went unanswered: the kernel cannot reach it.
    Failed,
    /// The link needs no resolution (point-to-point, `NOARP`).
    Noarp,
    /// Configured by hand; never verified.
    Permanent,
}

/// The kernel's neighbour entry of one gateway the route decision uses.
///
/// ```
/// use netreach::{GatewayNeighbour, NeighbourState};
/// let gateway = GatewayNeighbour {
///     address: "192.0.2.1".parse().unwrap(), interface_index: 2, state: NeighbourState::Failed,
///     unanswered_since: Some(1_800_000_000),
/// };
/// assert!(gateway.is_unreachable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GatewayNeighbour {
    /// The gateway's address.
    pub address: IpAddr,
    /// The interface the route reaches it on.
    pub interface_index: u32,
    /// The entry's state as the kernel last reported it.
    pub state: NeighbourState,
    /// Set while the gateway does not answer: when the kernel began the resolution that
    /// failed (seconds since the Unix epoch, from the entry's own `updated` time). Kept
    /// through the kernel's retries (`incomplete` again after `failed`) until it answers;
    /// `None` while it answers (or has not been asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered_since: Option<u64>,
}

impl GatewayNeighbour {
    /// Whether the kernel says the gateway does not answer: its entry failed, or is being
    /// resolved again after failing (the kernel retries whenever traffic asks for it, and a
    /// retry is no answer).
    pub fn is_unreachable(&self) -> bool {
        match self.state {
            NeighbourState::Failed => true,
            NeighbourState::Incomplete => self.unanswered_since.is_some(),
            _ => false,
        }
    }
}
