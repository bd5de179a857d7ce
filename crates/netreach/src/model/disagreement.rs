//! Plain data: a disagreement between two sources, kept in the state so that the arbitration
//! between them is visible. Which evidence wins is in `arbitrate.rs` (its rule table).

use serde::{Deserialize, Serialize};

use super::level::Source;

/// What two sources disagree about.
///
/// ```
/// assert_eq!(serde_json::to_string(&netreach::Subject::CaptivePortal).unwrap(), r#""captive_portal""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Subject {
    /// The IPv4 level.
    Ipv4,
    /// The IPv6 level.
    Ipv6,
    /// Whether a captive portal is in the way.
    CaptivePortal,
}

/// The row of the arbitration table that settled a disagreement (see [`crate::refine()`]).
///
/// ```
/// assert_eq!(netreach::ArbitrationRule::ProbeGotThrough.to_string(), "probe_got_through");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ArbitrationRule {
    /// The kernel, read continuously, caps every verdict (a moment's reading).
    KernelCaps,
    /// A probe that got the expected answer over a family is direct evidence: it beats a
    /// daemon's lower level for that family and every source's portal.
    ProbeGotThrough,
    /// A portal seen by any source stays a portal until a probe gets through.
    PortalStands,
    /// Otherwise the higher-ranked source decides: the system's daemons above the probe.
    Rank,
}

impl std::fmt::Display for ArbitrationRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArbitrationRule::KernelCaps => "kernel_caps",
            ArbitrationRule::ProbeGotThrough => "probe_got_through",
            ArbitrationRule::PortalStands => "portal_stands",
            ArbitrationRule::Rank => "rank",
        })
    }
}

/// Two sources said different things; `decided_by` won under `rule`, `overruled` lost.
/// `note` says who said what, in words, e.g. `networkmanager says ipv4 site; probe says ipv4
/// online: a probe that got through beats a daemon's verdict`.
///
/// ```
/// use netreach::{Disagreement, ArbitrationRule, Source, Subject};
/// let d = Disagreement {
///     about: Subject::Ipv4,
///     decided_by: Source::Probe,
///     overruled: Source::NetworkManager,
///     rule: ArbitrationRule::ProbeGotThrough,
///     note: "networkmanager says ipv4 site; probe says ipv4 online".into(),
/// };
/// assert!(serde_json::to_string(&d).unwrap().contains(r#""rule":"probe_got_through""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    /// What they disagree about.
    pub about: Subject,
    /// The source whose word stands (`kernel` when every verdict was above its level).
    pub decided_by: Source,
    /// The source whose word was set aside.
    pub overruled: Source,
    /// Why the winner won.
    pub rule: ArbitrationRule,
    /// Who said what, in words.
    pub note: String,
}
