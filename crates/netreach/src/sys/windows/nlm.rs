//! How Windows' own words map onto netreach's: Network List Manager connectivity flags, connection
//! costs and internet-connectivity properties, and IP Helper interface types and operational
//! states.
//!
//! Pure functions of plain numbers, crate-private, compiled on Windows and for the tests of
//! every platform so the tables are tested in the Linux test suite too; the Windows backend
//! feeds them what the APIs return. The constants are
//! the Windows SDK's values (`netlistmgr.h`, `ipifcons.h`, `ifdef.h`), written out here because
//! the `windows` crate exists only on Windows.
//!
//! # Connectivity (`NLM_CONNECTIVITY`) -> level, per family
//!
//! | flags of the family                      | level                       |
//! |------------------------------------------|-----------------------------|
//! | `..._INTERNET`                           | `online`                    |
//! | `..._SUBNET` or `..._LOCALNETWORK`       | `site`                      |
//! | `..._NOTRAFFIC` only                     | no opinion (the kernel's)   |
//! | none                                     | `disconnected`              |
//!
//! and a family whose connection reports a captive portal (`WEBHIJACK`) is at most `site`.
//! This follows Microsoft's definitions (`NLM_CONNECTIVITY`, netlistmgr.h), not Qt's table
//! throughout; see [`level`] for where and why it differs from Qt's
//! `reachabilityFromNLM_CONNECTIVITY` (qtbase, `src/plugins/networkinformation/
//! networklistmanager/qnetworklistmanagernetworkinformationbackend.cpp`).
//!
//! # Paths (`QNetworkConnectionMonitor::isReachable`, Qt's current rule)
//!
//! | the pair (local, remote)        | reachable with any of, of the remote's family |
//! |---------------------------------|-----------------------------------------------|
//! | both link-local                 | `NOTRAFFIC`, `SUBNET`, `LOCALNETWORK`, `INTERNET` |
//! | remote in the local subnet      | `SUBNET`, `LOCALNETWORK`, `INTERNET`          |
//! | any other                       | `INTERNET`                                    |
//!
//! (qtbase, `src/network/kernel/qnetconmonitor_win.cpp`.) Like Qt, a path starts reachable:
//! its connection was established, which is evidence; see [`path_verdict`].
//!
//! # Interface type (`IF_TYPE_*`) -> kind (and so transport)
//!
//! | type                              | kind        | transport  |
//! |-----------------------------------|-------------|------------|
//! | 6 Ethernet                        | `ethernet`  | `ethernet` |
//! | 71 IEEE 802.11                    | `wifi`      | `wifi`     |
//! | 243, 244 WWAN                     | `cellular`  | `cellular` |
//! | 131 tunnel                        | `vpn`       | `vpn`      |
//! | 23 PPP                            | `ppp`       | `vpn`      |
//! | 24 software loopback              | `loopback`  | `other`    |
//! | 53 proprietary virtual            | `virtual`   | `other`    |
//! | anything else                     | `other`     | `other`    |

use std::net::IpAddr;

#[cfg(windows)] // the Windows source keeps one; the tests reach it as `connections::Connections`
pub use self::connections::Connections;
use crate::model::{Address, Family, InterfaceKind, Level, OperState, Verdict};
use crate::Source;

/// `NLM_CONNECTIVITY_DISCONNECTED`: no connectivity at all. No flag set, so the mapping never
/// names it; only the tests do.
#[cfg(test)]
pub const DISCONNECTED: u32 = 0x0000;
/// `NLM_CONNECTIVITY_IPV4_NOTRAFFIC`: IPv4 is configured but passed no traffic.
pub const IPV4_NOTRAFFIC: u32 = 0x0001;
/// `NLM_CONNECTIVITY_IPV6_NOTRAFFIC`.
pub const IPV6_NOTRAFFIC: u32 = 0x0002;
/// `NLM_CONNECTIVITY_IPV4_SUBNET`: IPv4 reaches the local subnet.
pub const IPV4_SUBNET: u32 = 0x0010;
/// `NLM_CONNECTIVITY_IPV4_LOCALNETWORK`: IPv4 reaches a local network.
pub const IPV4_LOCALNETWORK: u32 = 0x0020;
/// `NLM_CONNECTIVITY_IPV4_INTERNET`: IPv4 reaches the internet.
pub const IPV4_INTERNET: u32 = 0x0040;
/// `NLM_CONNECTIVITY_IPV6_SUBNET`.
pub const IPV6_SUBNET: u32 = 0x0100;
/// `NLM_CONNECTIVITY_IPV6_LOCALNETWORK`.
pub const IPV6_LOCALNETWORK: u32 = 0x0200;
/// `NLM_CONNECTIVITY_IPV6_INTERNET`.
pub const IPV6_INTERNET: u32 = 0x0400;

/// `NLM_CONNECTION_COST_UNRESTRICTED`: not billed by volume.
pub const COST_UNRESTRICTED: u32 = 0x1;
/// `NLM_CONNECTION_COST_FIXED`: a data plan with a fixed allowance.
pub const COST_FIXED: u32 = 0x2;
/// `NLM_CONNECTION_COST_VARIABLE`: billed per byte.
pub const COST_VARIABLE: u32 = 0x4;

/// `NLM_INTERNET_CONNECTIVITY_WEBHIJACK`: HTTP is hijacked, i.e. a captive portal (in the
/// connection's `NA_InternetConnectivityV4` / `NA_InternetConnectivityV6` property).
pub const INTERNET_WEBHIJACK: u32 = 0x1;

/// The flags of one family.
struct FamilyFlags {
    no_traffic: u32,
    subnet: u32,
    local_network: u32,
    internet: u32,
}

impl FamilyFlags {
    fn of(family: Family) -> FamilyFlags {
        match family {
            Family::Ipv4 => FamilyFlags {
                no_traffic: IPV4_NOTRAFFIC,
                subnet: IPV4_SUBNET,
                local_network: IPV4_LOCALNETWORK,
                internet: IPV4_INTERNET,
            },
            Family::Ipv6 => FamilyFlags {
                no_traffic: IPV6_NOTRAFFIC,
                subnet: IPV6_SUBNET,
                local_network: IPV6_LOCALNETWORK,
                internet: IPV6_INTERNET,
            },
        }
    }

    fn all(&self) -> u32 {
        self.no_traffic | self.subnet | self.local_network | self.internet
    }
}

/// The level one family gets from `NLM_CONNECTIVITY` flags (the module table); `None` is no
/// opinion.
///
/// Microsoft defines (`NLM_CONNECTIVITY`, netlistmgr.h): `SUBNET` "connectivity to the local
/// subnet", `LOCALNETWORK` "connectivity to a routed network", `INTERNET` "connectivity to
/// the Internet", `NOTRAFFIC` "there is connectivity to a network, but the service cannot
/// detect any network traffic". Where that differs from Qt's mapping, the documented
/// meaning decides:
/// - `LOCALNETWORK` is `site`, not Qt's `Local`: a routed network is more than the subnet,
///   and netreach's `site` is exactly "a routable network, no way out". As `local` it would
///   lower the kernel's `site` (a verdict only lowers) on the strength of a reading that
///   says more than the subnet answers.
/// - `NOTRAFFIC` alone is no opinion (Qt: `Unknown`): "cannot detect any traffic" is the
///   absence of evidence, not evidence of a level, so the kernel's reading stands.
/// - No flag of the family: NLM sees no network of that family at all, `disconnected`.
///
/// ```text
/// level(IPV4_LOCALNETWORK, Ipv4) == Some(Site); level(IPV4_NOTRAFFIC, Ipv4) == None
/// ```
pub fn level(connectivity: u32, family: Family) -> Option<Level> {
    let flags = FamilyFlags::of(family);
    if connectivity & flags.internet != 0 {
        Some(Level::Online)
    } else if connectivity & (flags.subnet | flags.local_network) != 0 {
        Some(Level::Site)
    } else if connectivity & flags.no_traffic != 0 {
        None
    } else {
        Some(Level::Disconnected)
    }
}

/// How far a path reaches, for Qt's rule: both ends link-local, the remote inside the local
/// address's subnet, or beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Both addresses are link-local (Qt: `remote.isLinkLocal() && local.isLinkLocal()`).
    LinkLocal,
    /// The remote lies in the local address's subnet.
    SameSubnet,
    /// Anything else: the path needs a way out.
    Beyond,
}

impl Span {
    /// The span of a (local, remote) pair; `same_subnet` is the rule's own subnet test.
    pub fn of(local: IpAddr, remote: IpAddr, same_subnet: bool) -> Span {
        if Address::new(local, 0).is_link_local() && Address::new(remote, 0).is_link_local() {
            Span::LinkLocal
        } else if same_subnet {
            Span::SameSubnet
        } else {
            Span::Beyond
        }
    }
}

/// Whether a connection with `connectivity` carries a path of `span` to a remote of
/// `family`: Qt's current `QNetworkConnectionMonitor::isReachable` (the module table).
pub fn path_connectivity(connectivity: u32, family: Family, span: Span) -> bool {
    let flags = FamilyFlags::of(family);
    let required = match span {
        Span::LinkLocal => flags.all(),
        Span::SameSubnet => flags.subnet | flags.local_network | flags.internet,
        Span::Beyond => flags.internet,
    };
    connectivity & required != 0
}

/// NLM's verdict on one path: `Some(false)` when the connection cannot carry it, `None` when
/// NLM's reading may not judge it.
///
/// Qt starts every path with all flags set ("we can assume we have access to
/// internet/subnet when this class is created because connection has already been
/// established to the peer") and lets later events lower it. Likewise here: a reading that
/// predates the path (`changed_since_path` false) does not judge it, since an established
/// connection is better evidence than a check Windows may never pass (a blocked check host,
/// a proxy), unless it says the connection has no network of the family at all. A reading
/// taken after the path was created applies the rule.
pub fn path_verdict(connectivity: u32, family: Family, span: Span, changed_since_path: bool) -> Option<bool> {
    let disconnected = connectivity & FamilyFlags::of(family).all() == 0;
    if !changed_since_path && !disconnected {
        return None;
    }
    Some(path_connectivity(connectivity, family, span))
}

/// Whether a connection cost (`NLM_CONNECTION_COST_*`) means metered: `None` when Windows does
/// not know (cost 0, `UNKNOWN`).
pub fn metered(cost: u32) -> Option<bool> {
    if cost & (COST_FIXED | COST_VARIABLE) != 0 {
        Some(true)
    } else if cost & COST_UNRESTRICTED != 0 {
        Some(false)
    } else {
        None
    }
}

/// Whether a connection's internet-connectivity property (`NLM_INTERNET_CONNECTIVITY_*`)
/// reports a captive portal.
pub fn captive_portal(internet_connectivity: u32) -> bool {
    internet_connectivity & INTERNET_WEBHIJACK != 0
}

/// The captive-portal flags of each family (`NA_InternetConnectivityV4` / `V6`); `None`
/// where Windows offers no such property.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Portal {
    /// From `NA_InternetConnectivityV4`.
    pub ipv4: Option<bool>,
    /// From `NA_InternetConnectivityV6`.
    pub ipv6: Option<bool>,
}

/// Either flag set; `None` when neither tells.
fn either(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    a.zip(b).map(|(a, b)| a || b).or(a).or(b)
}

impl Portal {
    /// Several connections' flags: a portal on any of them is in the way.
    pub fn merge(self, other: Portal) -> Portal {
        Portal { ipv4: either(self.ipv4, other.ipv4), ipv6: either(self.ipv6, other.ipv6) }
    }

    /// A portal on either family; `None` when neither can tell.
    pub fn any(&self) -> Option<bool> {
        either(self.ipv4, self.ipv6)
    }

    fn of(&self, family: Family) -> Option<bool> {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

/// The Network List Manager's verdict on the machine: levels from its global connectivity
/// (capped at `site` for a family whose portal flag is set: a portal means `site`, and the
/// per-family flag says which family is behind it), metering from its cost, the captive
/// portal from the connections' properties.
pub fn verdict(connectivity: u32, metered: Option<bool>, portal: Portal) -> Verdict {
    let family = |family| match (level(connectivity, family), portal.of(family)) {
        (Some(level), Some(true)) => Some(level.min(Level::Site)),
        // Hijacked HTTP is traffic: a portal is evidence of `site` where NOTRAFFIC said nothing.
        (None, Some(true)) => Some(Level::Site),
        (level, _) => level,
    };
    Verdict {
        ipv4: family(Family::Ipv4),
        ipv6: family(Family::Ipv6),
        metered,
        captive_portal: portal.any(),
        ..Verdict::new(Source::Windows)
    }
}

/// The kind of an interface from its IANA type (`IP_ADAPTER_ADDRESSES::IfType`).
pub fn interface_kind(if_type: u32) -> InterfaceKind {
    match if_type {
        6 => InterfaceKind::Ethernet,
        71 => InterfaceKind::Wifi,
        243 | 244 => InterfaceKind::Cellular,
        131 => InterfaceKind::Vpn,
        23 => InterfaceKind::Ppp,
        24 => InterfaceKind::Loopback,
        53 => InterfaceKind::Virtual,
        _ => InterfaceKind::Other,
    }
}

/// The operational state from `IF_OPER_STATUS` (RFC 2863 numbering, like Linux's).
pub fn oper_state(status: u32) -> OperState {
    match status {
        1 => OperState::Up,
        2 => OperState::Down,
        3 => OperState::Testing,
        5 => OperState::Dormant,
        6 => OperState::NotPresent,
        7 => OperState::LowerLayerDown,
        _ => OperState::Unknown,
    }
}

#[path = "connections.rs"]
mod connections;
#[cfg(test)]
#[path = "nlm_tests.rs"]
mod tests;
