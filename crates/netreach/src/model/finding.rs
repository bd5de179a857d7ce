//! Plain data: what the diagnosis found at one layer ([`Finding`]), typed, with the phrase
//! people read. The layers and their verdicts are in `diagnosis.rs`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::decision::KernelRoute;
use super::level::Source;
use super::reason::Reason;

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
