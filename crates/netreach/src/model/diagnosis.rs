//! Plain data: the layered diagnosis of one moment, per family, from the link up to a captive
//! portal. How it is computed from a [`super::NetworkState`] is in `diagnose.rs`
//! ([`crate::diagnose`] has the rules); it is derived, never stored in the state.

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::finding::Finding;

/// One layer of the diagnosis, in the order they are judged: each needs the ones before it.
///
/// ```
/// assert_eq!(netreach::Layer::Dns.to_string(), "dns");
/// assert!(netreach::Layer::Link < netreach::Layer::Portal);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The interface the traffic leaves through: up, with carrier.
    Link,
    /// A usable source address of the family.
    Address,
    /// The next hop (the kernel's neighbour entry for it).
    Gateway,
    /// The kernel's route decision for the internet.
    Route,
    /// A resolver: a nameserver configured that the routes reach, and names that resolve.
    Dns,
    /// Traffic gets out and an HTTP answer comes back (the probe, or a daemon's check).
    Internet,
    /// Whether that answer came from a captive portal.
    Portal,
}

impl Layer {
    /// Every layer, in order.
    ///
    /// ```
    /// assert_eq!(netreach::Layer::ALL[4], netreach::Layer::Dns);
    /// ```
    pub const ALL: [Layer; 7] =
        [Layer::Link, Layer::Address, Layer::Gateway, Layer::Route, Layer::Dns, Layer::Internet, Layer::Portal];
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Link => "link",
            Layer::Address => "address",
            Layer::Gateway => "gateway",
            Layer::Route => "route",
            Layer::Dns => "dns",
            Layer::Internet => "internet",
            Layer::Portal => "portal",
        })
    }
}

/// How a layer stands.
///
/// ```
/// assert_eq!(serde_json::to_string(&netreach::LayerStatus::Unknown).unwrap(), r#""unknown""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerStatus {
    /// The evidence says it works.
    Passed,
    /// The evidence says it does not.
    Failed,
    /// No evidence either way (nothing looked, or a layer below leaves nothing to judge).
    Unknown,
}

impl std::fmt::Display for LayerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerStatus::Passed => "passed",
            LayerStatus::Failed => "failed",
            LayerStatus::Unknown => "unknown",
        })
    }
}

/// One layer's verdict.
///
/// ```
/// use netreach::{Finding, LayerCheck, Layer, LayerStatus};
/// let c = LayerCheck { layer: Layer::Link, status: LayerStatus::Failed, finding: Some(Finding::NoInterface) };
/// assert_eq!(c.to_string(), "link failed: there is no network interface but loopback");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerCheck {
    /// Which layer.
    pub layer: Layer,
    /// How it stands.
    pub status: LayerStatus,
    /// What was found; `None` when there was nothing to look at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Finding>,
}

impl std::fmt::Display for LayerCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.layer, self.status)?;
        self.finding.as_ref().map_or(Ok(()), |finding| write!(f, ": {finding}"))
    }
}

/// One family's layers, in [`Layer::ALL`] order.
///
/// ```
/// let d = netreach::FamilyDiagnosis { family: netreach::Family::Ipv4, layers: vec![] };
/// assert!(d.first_failing().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FamilyDiagnosis {
    /// The family.
    pub family: Family,
    /// Every layer, in order.
    pub layers: Vec<LayerCheck>,
}

impl FamilyDiagnosis {
    /// The lowest layer that failed: where to look first.
    pub fn first_failing(&self) -> Option<&LayerCheck> {
        self.layers.iter().find(|l| l.status == LayerStatus::Failed)
    }

    /// The check of one layer.
    ///
    /// ```
    /// let d = netreach::diagnose(&netreach::derive(netreach::NetworkState::default()));
    /// assert_eq!(d.ipv4.layer(netreach::Layer::Gateway).unwrap().status, netreach::LayerStatus::Unknown);
    /// ```
    pub fn layer(&self, layer: Layer) -> Option<&LayerCheck> {
        self.layers.iter().find(|l| l.layer == layer)
    }
}

/// The diagnosis of both families ([`crate::diagnose`]).
///
/// ```
/// let d = netreach::diagnose(&netreach::derive(netreach::NetworkState::default()));
/// assert_eq!(d.ipv4.layers.len(), 7);
/// assert_eq!(serde_json::to_value(&d).unwrap()["ipv6"]["layers"][0]["layer"], "link");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive] // a machine-wide part may follow
pub struct Diagnosis {
    /// IPv4.
    pub ipv4: FamilyDiagnosis,
    /// IPv6.
    pub ipv6: FamilyDiagnosis,
}

impl Diagnosis {
    /// Builds one from its families.
    ///
    /// ```
    /// use netreach::{Diagnosis, Family, FamilyDiagnosis};
    /// let d = Diagnosis::new(FamilyDiagnosis { family: Family::Ipv4, layers: vec![] },
    ///                        FamilyDiagnosis { family: Family::Ipv6, layers: vec![] });
    /// assert!(d.first_failing().is_none());
    /// ```
    pub fn new(ipv4: FamilyDiagnosis, ipv6: FamilyDiagnosis) -> Self {
        Diagnosis { ipv4, ipv6 }
    }

    /// One family's diagnosis.
    ///
    /// ```
    /// let d = netreach::diagnose(&netreach::derive(netreach::NetworkState::default()));
    /// assert_eq!(d.family(netreach::Family::Ipv6).family, netreach::Family::Ipv6);
    /// ```
    pub fn family(&self, family: Family) -> &FamilyDiagnosis {
        match family {
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        }
    }

    /// The first failing layer to fix when any family will do: `None` when a family works (no
    /// layer fails, and its internet layer passed, or nothing probed any family); else the
    /// first failing layer of the family that got further.
    ///
    /// ```
    /// let d = netreach::diagnose(&netreach::derive(netreach::NetworkState::default()));
    /// assert!(d.first_failing().is_some_and(|(_, check)| check.layer == netreach::Layer::Link));
    /// ```
    pub fn first_failing(&self) -> Option<(Family, &LayerCheck)> {
        let families = [&self.ipv4, &self.ipv6];
        let internet = |d: &FamilyDiagnosis| d.layer(Layer::Internet).map(|c| c.status);
        let probed = families.iter().any(|d| internet(d).is_some_and(|s| s != LayerStatus::Unknown));
        let works =
            |d: &FamilyDiagnosis| d.first_failing().is_none() && (!probed || internet(d) == Some(LayerStatus::Passed));
        if families.iter().any(|d| works(d)) {
            return None;
        }
        let failing = families.into_iter().filter_map(|d| d.first_failing().map(|c| (d.family, c)));
        // The later layer wins; on a tie, IPv4 (the first).
        failing.reduce(|best, next| if next.1.layer > best.1.layer { next } else { best })
    }
}
