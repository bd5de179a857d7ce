//! Plain data: the typed reason a family's level was chosen, and the sentence `netreach status`
//! shows for it. How the reasons are derived is in `reachability.rs`.

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::decision::{KernelRoute, Reject};

/// Another default route that would carry the traffic if the kernel skipped the chosen one.
///
/// ```
/// let f = netreach::Fallback { interface: "eth1".into(), metric: 200 };
/// assert_eq!(f.metric, 200);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fallback {
    /// Its interface, which is ready.
    pub interface: String,
    /// Its metric.
    pub metric: u32,
}

/// Why a family is at its level, typed. `Display` gives the sentence `netreach status` shows.
/// New reasons may be added (`#[non_exhaustive]`).
///
/// ```
/// let r = netreach::Reason::Rejected { reject: netreach::Reject::Unreachable };
/// assert_eq!(r.to_string(), "the kernel rejects traffic to the internet (an unreachable route or rule)");
/// assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"code":"rejected","reject":"unreachable"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// The kernel routes the internet out through a ready interface with a usable source. For
    /// a multipath route, through members that all have carrier: the route names the first
    /// whose gateway answers, without `source`, and `nexthops` every member.
    RoutedOut {
        /// The route.
        route: KernelRoute,
    },
    /// No route to the internet in the tables the rules select.
    NoRoute,
    /// A reject route or rule refuses it.
    Rejected {
        /// Which kind.
        reject: Reject,
    },
    /// The route leaves through an interface without carrier (the kernel keeps using it
    /// unless `ignore_routes_with_linkdown` is set).
    NoCarrier {
        /// The route.
        route: KernelRoute,
        /// A default through a ready interface the kernel would use if told to skip this one.
        fallback: Option<Fallback>,
    },
    /// The route is multipath (ECMP) and the kernel spreads flows over its members, some of
    /// which leave through an interface without carrier (their
    /// `ignore_routes_with_linkdown` is off): flows hashed onto those time out, the others get
    /// out. The family stays `online`: at least one member leads out through a ready
    /// interface. Which member the representative destinations hash to does not matter.
    PartlyNoCarrier {
        /// The matched route; `interface` and `gateway` are its first member with carrier
        /// (whose gateway answers, if one does), `source` is `None` (the kernel chooses one
        /// per member), `nexthops` lists every member.
        route: KernelRoute,
        /// The interfaces of the members the kernel still uses that have no carrier.
        without_carrier: Vec<String>,
    },
    /// The route leaves through an interface that is down (or not known).
    InterfaceDown {
        /// The route.
        route: KernelRoute,
    },
    /// The route leads out, but the kernel has no usable source address for it (none, still
    /// tentative, or link-local only).
    NoSource {
        /// The route.
        route: KernelRoute,
    },
    /// The route leads out through a gateway the kernel cannot reach: its neighbour entry
    /// is `FAILED` (ARP or neighbour discovery went unanswered). The family is at most `site`.
    GatewayUnreachable {
        /// The route (its `gateway` is the neighbour that does not answer).
        route: KernelRoute,
        /// Since when (seconds since the Unix epoch): when the kernel began the resolution
        /// that failed ([`crate::GatewayNeighbour::unanswered_since`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// The route's lifetime ran out and nothing else leads out.
    Expired {
        /// The route whose lifetime ran out.
        route: KernelRoute,
    },
    /// The route lookup failed.
    LookupFailed {
        /// The error, in words.
        error: String,
    },
    /// From default routes alone (an OS without route lookups): one leaves through a ready
    /// interface with a usable address.
    DefaultRoute,
    /// From default routes alone: none qualifies.
    NoDefaultRoute,
}

impl Reason {
    /// The route the kernel's answer leads out through, which this reason is about: `None`
    /// when there is none (no route, a reject, a failed lookup, an expired route, a reading
    /// from default routes alone).
    ///
    /// ```
    /// let route = netreach::KernelRoute {
    ///     prefix: "0.0.0.0".parse().unwrap(), prefix_len: 0, table: 254, interface_index: 2,
    ///     interface: "eth0".into(), gateway: None, source: None, nexthops: Vec::new(),
    /// };
    /// let reason = netreach::Reason::InterfaceDown { route: route.clone() };
    /// assert_eq!(reason.route(), Some(&route));
    /// assert_eq!(netreach::Reason::NoRoute.route(), None);
    /// ```
    pub fn route(&self) -> Option<&KernelRoute> {
        match self {
            Reason::RoutedOut { route }
            | Reason::PartlyNoCarrier { route, .. }
            | Reason::NoCarrier { route, .. }
            | Reason::InterfaceDown { route }
            | Reason::NoSource { route }
            | Reason::GatewayUnreachable { route, .. } => Some(route),
            _ => None,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `main` goes without saying, as `ip route` leaves it out.
        let table = |r: &KernelRoute| if r.table == 254 { String::new() } else { format!(" (table {})", r.table) };
        let via = |r: &KernelRoute| {
            let gateway = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            format!("the kernel routes {}{gateway} dev {}{}", r.prefix(), r.interface, table(r))
        };
        match self {
            // Multipath: every member the kernel spreads flows over, none singled out.
            Reason::RoutedOut { route } if route.nexthops.iter().filter(|h| h.used()).count() > 1 => {
                let hops: Vec<String> = route
                    .nexthops
                    .iter()
                    .filter(|h| h.used())
                    .map(|h| format!("{}{}", h.interface, h.gateway.map(|g| format!(" (via {g})")).unwrap_or_default()))
                    .collect();
                let hops: Vec<&str> = hops.iter().map(String::as_str).collect();
                write!(f, "the kernel spreads flows for {} over {}{}", route.prefix(), and_list(&hops), table(route))
            }
            Reason::RoutedOut { route } => {
                let source = route.source.map(|s| format!(" from {s}")).unwrap_or_default();
                write!(f, "{}{source}", via(route))
            }
            Reason::NoRoute => f.write_str("the kernel has no route to the internet"),
            Reason::Rejected { reject } => {
                let what = match reject {
                    Reject::Unreachable => "an unreachable",
                    Reject::Prohibit => "a prohibit",
                    Reject::Blackhole => "a blackhole",
                };
                write!(f, "the kernel rejects traffic to the internet ({what} route or rule)")
            }
            Reason::NoCarrier { route, fallback } => {
                write!(f, "{}, which has no carrier", via(route))?;
                if let Some(other) = fallback {
                    let family = if route.prefix.is_ipv4() { "ipv4" } else { "ipv6" };
                    write!(
                        f,
                        " (a default via {} exists at metric {}; set net.{family}.conf.{}.ignore_routes_with_linkdown=1 to fail over)",
                        other.interface, other.metric, route.interface
                    )?;
                }
                Ok(())
            }
            Reason::PartlyNoCarrier { route, without_carrier } => {
                let family = if route.prefix.is_ipv4() { "ipv4" } else { "ipv6" };
                let dark: Vec<&str> = without_carrier.iter().map(String::as_str).collect();
                let knobs: Vec<String> =
                    dark.iter().map(|i| format!("net.{family}.conf.{i}.ignore_routes_with_linkdown=1")).collect();
                let knobs: Vec<&str> = knobs.iter().map(String::as_str).collect();
                let verb = if dark.len() == 1 { "has" } else { "have" };
                write!(
                    f,
                    "the kernel spreads flows over {}; {} {verb} no carrier, so some connections will time out (set {} to fail over)",
                    and_list(&used_interfaces(route)),
                    and_list(&dark),
                    and_list(&knobs),
                )
            }
            Reason::InterfaceDown { route } => write!(f, "{}, which is down", via(route)),
            Reason::NoSource { route } => write!(f, "{}, but there is no usable source address", via(route)),
            Reason::GatewayUnreachable { route, since } => {
                let gateway = route.gateway.map(|g| g.to_string()).unwrap_or_else(|| "the gateway".into());
                let ask = if route.prefix.is_ipv4() { "ARP" } else { "neighbour discovery" };
                write!(f, "{}, but gateway {gateway} does not answer {ask} on {}", via(route), route.interface)?;
                if let Some(since) = since {
                    // UTC, to the second: the kernel's clock-tick age, read as a time of day.
                    let day = since % 86_400;
                    write!(f, " since {:02}:{:02}:{:02} UTC", day / 3600, day / 60 % 60, day % 60)?;
                }
                Ok(())
            }
            Reason::Expired { route } => {
                write!(f, "the lifetime of the route {} dev {} expired", route.prefix(), route.interface)
            }
            Reason::LookupFailed { error } => write!(f, "the kernel's route lookup failed: {error}"),
            Reason::DefaultRoute => f.write_str("a default route leaves through a ready interface"),
            Reason::NoDefaultRoute => f.write_str("no default route leaves through a ready interface"),
        }
    }
}

/// The interfaces of the members the kernel hashes flows onto, in its order, each once.
fn used_interfaces(route: &KernelRoute) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for hop in route.nexthops.iter().filter(|h| h.used()) {
        if !names.contains(&hop.interface.as_str()) {
            names.push(&hop.interface);
        }
    }
    names
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(names: &[&str]) -> String {
    match names {
        [] => "no interface".into(),
        [one] => (*one).into(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The reason of each family's kernel level (`None` before a first reading).
///
/// ```
/// let reasons = netreach::Reasons::default();
/// assert!(reasons.family(netreach::Family::Ipv4).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reasons {
    /// IPv4.
    pub ipv4: Option<Reason>,
    /// IPv6.
    pub ipv6: Option<Reason>,
}

impl Reasons {
    /// The reason of one family.
    pub fn family(&self, family: Family) -> Option<&Reason> {
        match family {
            Family::Ipv4 => self.ipv4.as_ref(),
            Family::Ipv6 => self.ipv6.as_ref(),
        }
    }
}
