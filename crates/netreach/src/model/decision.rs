//! Plain data: the kernel's own route decision for the internet of one family (its answers to
//! route lookups, as `ip route get` asks them). The reasons read from it are in `reason.rs`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::address::Family;

/// How the kernel refused a destination: the type of the reject route, or the action of the
/// rule, that matched.
///
/// ```
/// assert_eq!(serde_json::to_string(&netreach::Reject::Prohibit).unwrap(), r#""prohibit""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// An `unreachable` route (the kernel answers "no route to host").
    Unreachable,
    /// A `prohibit` route or rule ("permission denied").
    Prohibit,
    /// A `blackhole` route or rule (packets silently dropped).
    Blackhole,
}

/// The route the kernel chose for a destination: the entry it matched and where it leads.
///
/// ```
/// let route = netreach::KernelRoute {
///     prefix: "0.0.0.0".parse().unwrap(), prefix_len: 0, table: 254, interface_index: 2,
///     interface: "eth0".into(), gateway: Some("192.0.2.1".parse().unwrap()),
///     source: Some("192.0.2.10".parse().unwrap()), nexthops: Vec::new(),
/// };
/// assert_eq!(route.prefix(), "0.0.0.0/0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelRoute {
    /// The destination prefix of the route entry that matched (`0.0.0.0` of `0.0.0.0/0`, or of
    /// OpenVPN's `0.0.0.0/1`).
    pub prefix: IpAddr,
    /// Its length.
    pub prefix_len: u8,
    /// The routing table it is in (254 is `main`; the rules chose it).
    pub table: u32,
    /// The interface the traffic leaves through.
    pub interface_index: u32,
    /// Its name (empty while the interface is not known; filled in from the interfaces).
    pub interface: String,
    /// The next hop, if any.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel would choose; it may live on another interface.
    pub source: Option<IpAddr>,
    /// The members of a multipath (ECMP) route, as the kernel lists them in the matched entry
    /// (`ip route get fibmatch`), sorted by interface index and gateway: it hashes each flow
    /// onto one of them. In a [`RouteAnswer`], `interface` and `gateway` above are the member
    /// the lookup's destination hashed to; in a [`Reason`](crate::Reason), a member chosen
    /// without regard to the hash (the first with carrier whose gateway answers), and `source`
    /// is `None`. Empty
    /// for a route with one next hop (and for a nexthop group when
    /// `net.ipv4.nexthop_compat_mode` is 0: the reply then names only the group's id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<Nexthop>,
}

/// One member of a multipath route, with the kernel's flags for it.
///
/// ```
/// let hop = netreach::Nexthop {
///     interface_index: 3, interface: "wb".into(), gateway: Some("198.51.100.1".parse().unwrap()),
///     linkdown: true, dead: false,
/// };
/// // No carrier, and the kernel still hashes flows onto it.
/// assert!(hop.used() && hop.linkdown);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nexthop {
    /// The interface it leaves through.
    pub interface_index: u32,
    /// Its name (empty while the interface is not known; filled in from the interfaces).
    pub interface: String,
    /// Its gateway, if any.
    pub gateway: Option<IpAddr>,
    /// `RTNH_F_LINKDOWN`: the kernel saw its link lose carrier.
    #[serde(default)]
    pub linkdown: bool,
    /// `RTNH_F_DEAD`: the kernel skips it (its interface is down, or it has no carrier and
    /// `ignore_routes_with_linkdown` is set for the interface).
    #[serde(default)]
    pub dead: bool,
}

impl Nexthop {
    /// Whether the kernel hashes flows onto it (it is not dead).
    pub fn used(&self) -> bool {
        !self.dead
    }
}

impl KernelRoute {
    /// The matched entry as `prefix/len`.
    pub fn prefix(&self) -> String {
        format!("{}/{}", self.prefix, self.prefix_len)
    }
}

/// The kernel's answer for one destination.
///
/// ```
/// let answer = netreach::RouteAnswer::Rejected { reject: netreach::Reject::Blackhole };
/// assert_eq!(serde_json::to_string(&answer).unwrap(), r#"{"answer":"rejected","reject":"blackhole"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum RouteAnswer {
    /// Out through an interface.
    Out {
        /// The route.
        route: KernelRoute,
    },
    /// No route: no table the rules select has one ("network unreachable"; an `ip rule ...
    /// unreachable` answers the same).
    NoRoute,
    /// Refused by a reject route or rule.
    Rejected {
        /// Which kind.
        reject: Reject,
    },
    /// The route that answered before had a lifetime (e.g. learned from a router
    /// advertisement), it ran out, and no other route leads out now.
    Expired {
        /// The route whose lifetime ran out.
        route: KernelRoute,
    },
    /// The lookup itself failed.
    Failed {
        /// The error, in words.
        error: String,
    },
}

/// The kernel's answer for one representative destination of a family's internet.
///
/// ```
/// let d = netreach::RouteDecision { destination: "2800::1".parse().unwrap(), answer: netreach::RouteAnswer::NoRoute };
/// assert_eq!(d.family(), netreach::Family::Ipv6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RouteDecision {
    /// The destination looked up (no packet is sent to it).
    pub destination: IpAddr,
    /// What the kernel answered.
    #[serde(flatten)]
    pub answer: RouteAnswer,
}

impl RouteDecision {
    /// The family of the destination.
    pub fn family(&self) -> Family {
        if self.destination.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
}
