//! Plain data: one reading of a network namespace, the observed [`NetworkState`] together with
//! the levels, details and reasons derived from it. Only `crate::derive()` makes one, so the
//! two always agree; how they are derived lives above (`reachability.rs`, `refine.rs`).

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use super::level::Reachability;
use super::reason::Reasons;
use super::state::NetworkState;
use super::verdict::Details;

/// What [`crate::Monitor::snapshot`] hands out: the observed state and what was derived from
/// it in one consistent reading (the baseline event and `netreach status --json` print the
/// same). It reads as the state it was derived from (`Deref`), so `snapshot.interfaces` works;
/// the derived values are computed by [`crate::derive()`], the only way to make one, and a
/// snapshot cannot be edited into disagreeing with them.
///
/// JSON (the shape of `netreach status --json`): the derived `reachability` and `details` keys
/// first, then the state's own keys, then `reasons`.
///
/// ```
/// use netreach::{derive, Level, NetworkState};
/// let snapshot = derive(NetworkState::default());
/// assert_eq!(snapshot.reachability.overall, Level::Disconnected); // derived
/// assert!(snapshot.interfaces.is_empty()); // observed, through the state
/// let json = serde_json::to_value(&snapshot).unwrap();
/// assert_eq!(json["reachability"], "disconnected");
/// assert_eq!(json["reasons"]["ipv4"]["code"], "no_default_route");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive] // made by `derive()` only
pub struct Snapshot {
    /// Overall and per-family reachability, each tagged with its source. Flattened so the
    /// JSON reads `{"reachability": "online", "ipv4": {"reachability": ...}, ...}`.
    #[serde(flatten)]
    pub reachability: Reachability,
    /// Transport, metering, captive portal and disagreements (flattened in JSON as well).
    #[serde(flatten)]
    pub details: Details,
    /// What was observed (flattened in JSON).
    #[serde(flatten)]
    pub(crate) state: NetworkState,
    /// Why each family's kernel level is what it is. Boxed: a snapshot is moved whole through
    /// the monitor's queues, and the reasons are most of its inline size.
    #[serde(default)]
    pub reasons: Box<Reasons>,
}

impl Snapshot {
    /// The observed state this was derived from.
    ///
    /// ```
    /// let snapshot = netreach::derive(netreach::NetworkState::default());
    /// assert_eq!(snapshot.state(), &netreach::NetworkState::default());
    /// ```
    pub fn state(&self) -> &NetworkState {
        &self.state
    }

    /// The observed state, to change and derive again.
    ///
    /// ```
    /// let mut state = netreach::derive(netreach::NetworkState::default()).into_state();
    /// state.interfaces.clear();
    /// let again = netreach::derive(state);
    /// ```
    pub fn into_state(self) -> NetworkState {
        self.state
    }
}

impl Deref for Snapshot {
    type Target = NetworkState;

    fn deref(&self) -> &NetworkState {
        &self.state
    }
}
