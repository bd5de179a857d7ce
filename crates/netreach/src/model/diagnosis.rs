//! Plain data: the layered diagnosis of one moment, per family, from the link up to a captive
//! portal. How it is computed from a [`super::NetworkState`] is in `diagnose.rs`
//! ([`crate::diagnose`] has the rules); it is derived, never stored in the state.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::decision::{KernelRoute, Reason};
use super::level::Source;

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

/// What was found at a layer, typed. `Display` gives the phrase `netreach status` shows. New
/// findings may be added (`#[non_exhaustive]`).
///
/// ```
/// let f = netreach::Finding::NoCarrier { interface: "eth0".into() };
/// assert_eq!(f.to_string(), "eth0 has no carrier");
/// assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"code":"no_carrier","interface":"eth0"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// Link: the interface is up with carrier.
    LinkReady {
        /// Its name.
        interface: String,
    },
    /// Link: the interface is administratively down.
    LinkDown {
        /// Its name.
        interface: String,
    },
    /// Link: the interface is up but has no carrier (a cable out, Wi-Fi not associated).
    NoCarrier {
        /// Its name.
        interface: String,
    },
    /// Link, passed but degraded: the route is multipath and `interface` (its first member
    /// with carrier) is up with carrier, but the kernel also hashes flows onto members whose
    /// interfaces have none: those connections time out ([`Reason::PartlyNoCarrier`]).
    PartlyNoCarrier {
        /// The first member's interface that has carrier.
        interface: String,
        /// The members' interfaces without carrier that the kernel still uses.
        without_carrier: Vec<String>,
    },
    /// Link: there is no interface but loopback.
    NoInterface,
    /// Address: the source address the kernel would use.
    SourceAddress {
        /// The interface the traffic leaves through.
        interface: String,
        /// The address.
        address: IpAddr,
    },
    /// Address: no usable, routable address of the family (none, still tentative, or
    /// link-local only) where it would be needed.
    NoAddress {
        /// The interface the route leaves through; `None` when there is no route to say.
        interface: Option<String>,
    },
    /// Gateway: the route leaves with no next hop (a point-to-point link, or on-link).
    NoGateway {
        /// The interface.
        interface: String,
    },
    /// Gateway: traffic of the family got through it (a probe or daemon says online).
    GatewayForwards {
        /// The gateway.
        gateway: IpAddr,
        /// The interface it is on.
        interface: String,
    },
    /// Gateway: its neighbour entry is `REACHABLE`: it answered ARP or neighbour discovery
    /// recently (the kernel's own evidence, no packet of ours).
    GatewayAnswers {
        /// The gateway.
        gateway: IpAddr,
        /// The interface it is on.
        interface: String,
    },
    /// Gateway: the kernel has not marked it unreachable, but nothing has verified it either.
    GatewayNotVerified {
        /// The gateway.
        gateway: IpAddr,
        /// The interface it is on.
        interface: String,
    },
    /// Gateway: its neighbour entry is `FAILED` (ARP or neighbour discovery went unanswered).
    GatewayUnreachable {
        /// The gateway.
        gateway: Option<IpAddr>,
        /// The interface it is on.
        interface: String,
    },
    /// Route: the kernel routes the internet out along this route.
    Routed {
        /// The route.
        route: KernelRoute,
    },
    /// Route: the kernel's reason (no route, a reject, an expired route, a failed lookup, or
    /// on an OS without route lookups, the default routes).
    Kernel {
        /// The reason.
        reason: Reason,
    },
    /// DNS: the resolver configuration is not followed here (not Linux).
    DnsNotFollowed,
    /// DNS: no nameserver is configured.
    NoNameserver {
        /// The file read.
        file: String,
        /// Why it could not be read completely, when it could not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        problem: Option<String>,
    },
    /// DNS: the kernel routes to this nameserver through a ready interface (or it is on this
    /// host).
    NameserverRouted {
        /// The first such nameserver.
        nameserver: IpAddr,
        /// The interface the route leaves through (the loopback interface for one on this host).
        interface: String,
    },
    /// DNS: the kernel's route decision reaches none of the nameservers (no route, a reject,
    /// or a route through an interface that is not ready).
    NameserversUnreachable {
        /// The nameservers.
        nameservers: Vec<IpAddr>,
    },
    /// DNS: the nameservers' routes were not looked up yet.
    NameserversNotLookedUp,
    /// DNS: the probe's endpoint names did not resolve (while HTTP failures are the internet
    /// layer's).
    NamesUnresolved {
        /// The resolver's error.
        error: String,
    },
    /// Internet: the source got an HTTP answer over this family.
    Answered {
        /// Who asked (the probe, or a daemon's own check).
        source: Source,
    },
    /// Internet: the source got no usable answer over this family.
    NoAnswer {
        /// Who asked.
        source: Source,
        /// What it said, when it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Internet: nobody probed this family (no probe configured, or the family is below `site`).
    NotProbed,
    /// Portal: the answer came from a captive portal.
    Portal {
        /// Where it sends people to log in, when it said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// Portal: the answer was the expected one.
    NoPortal,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::LinkReady { interface } => write!(f, "{interface} is up with carrier"),
            Finding::LinkDown { interface } => write!(f, "{interface} is down"),
            Finding::NoCarrier { interface } => write!(f, "{interface} has no carrier"),
            Finding::PartlyNoCarrier { interface, without_carrier } => write!(
                f,
                "{interface} is up with carrier, but the kernel also sends some flows through {}, which {} no carrier",
                without_carrier.join(", "),
                if without_carrier.len() == 1 { "has" } else { "have" }
            ),
            Finding::NoInterface => f.write_str("there is no network interface but loopback"),
            Finding::SourceAddress { interface, address } => write!(f, "{address} on {interface}"),
            Finding::NoAddress { interface: Some(i) } => write!(f, "{i} has no usable address"),
            Finding::NoAddress { interface: None } => f.write_str("no ready interface has a usable address"),
            Finding::NoGateway { interface } => write!(f, "no gateway: {interface} leads out directly"),
            Finding::GatewayForwards { gateway, interface } => write!(f, "{gateway} on {interface} forwards traffic"),
            Finding::GatewayAnswers { gateway, interface } => {
                write!(f, "{gateway} on {interface} answers (the kernel's neighbour entry is reachable)")
            }
            Finding::GatewayNotVerified { gateway, interface } => {
                write!(f, "{gateway} on {interface} is not known to be unreachable (not verified)")
            }
            Finding::GatewayUnreachable { gateway, interface } => {
                let gateway = gateway.map(|g| g.to_string()).unwrap_or_else(|| "the gateway".into());
                write!(f, "{gateway} does not answer on {interface}")
            }
            Finding::Routed { route } => {
                let via = route.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                write!(f, "{}{via} dev {}", route.prefix(), route.interface)
            }
            Finding::Kernel { reason } => write!(f, "{reason}"),
            Finding::DnsNotFollowed => f.write_str("the resolver configuration is not followed here"),
            Finding::NoNameserver { file, problem } => {
                write!(f, "no nameserver configured in {file}")?;
                problem.as_ref().map_or(Ok(()), |p| write!(f, " ({p})"))
            }
            Finding::NameserverRouted { nameserver, interface } => write!(f, "nameserver {nameserver} via {interface}"),
            Finding::NameserversUnreachable { nameservers } => {
                let list: Vec<String> = nameservers.iter().map(|n| n.to_string()).collect();
                write!(f, "no route reaches nameserver {}", list.join(", "))
            }
            Finding::NameserversNotLookedUp => f.write_str("the nameservers' routes were not looked up yet"),
            Finding::NamesUnresolved { error } => write!(f, "{error}"),
            Finding::Answered { source } => write!(f, "{source} got an answer"),
            Finding::NoAnswer { source, note: Some(note) } => write!(f, "{source}: {note}"),
            Finding::NoAnswer { source, note: None } => write!(f, "{source} got no answer"),
            Finding::NotProbed => f.write_str("not probed"),
            Finding::Portal { url: Some(url) } => write!(f, "captive portal at {url}"),
            Finding::Portal { url: None } => f.write_str("captive portal"),
            Finding::NoPortal => f.write_str("no captive portal"),
        }
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
