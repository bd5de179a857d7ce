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
//! # Connectivity (`NLM_CONNECTIVITY`) -> level, per family (Qt's mapping)
//!
//! | flags of the family          | level          |
//! |------------------------------|----------------|
//! | `..._INTERNET`               | `online`       |
//! | `..._SUBNET`                 | `site`         |
//! | `..._LOCALNETWORK`           | `local`        |
//! | `..._NOTRAFFIC`              | `local`        |
//! | none                         | `disconnected` |
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

use crate::model::{Family, InterfaceKind, Level, OperState, Verdict};
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

/// The flags of one family: (no traffic, subnet, local network, internet).
fn family_flags(family: Family) -> (u32, u32, u32, u32) {
    match family {
        Family::Ipv4 => (IPV4_NOTRAFFIC, IPV4_SUBNET, IPV4_LOCALNETWORK, IPV4_INTERNET),
        Family::Ipv6 => (IPV6_NOTRAFFIC, IPV6_SUBNET, IPV6_LOCALNETWORK, IPV6_INTERNET),
    }
}

/// The level one family gets from `NLM_CONNECTIVITY` flags (see the module table).
pub fn level(connectivity: u32, family: Family) -> Level {
    let (no_traffic, subnet, local_network, internet) = family_flags(family);
    if connectivity & internet != 0 {
        Level::Online
    } else if connectivity & subnet != 0 {
        Level::Site
    } else if connectivity & (local_network | no_traffic) != 0 {
        Level::Local
    } else {
        Level::Disconnected
    }
}

/// Whether a connection with `connectivity` carries a path to a remote of `family`: Qt's
/// `QNetworkConnectionMonitor` rule. A remote in the local address's subnet needs subnet
/// connectivity of its family (or internet); any other remote needs internet connectivity.
pub fn path_connectivity(connectivity: u32, family: Family, same_subnet: bool) -> bool {
    let (_, subnet, _, internet) = family_flags(family);
    connectivity & internet != 0 || (same_subnet && connectivity & subnet != 0)
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

/// The Network List Manager's verdict on the machine: levels from its global connectivity,
/// metering from its cost, a captive portal from the connections' properties (`None` where
/// Windows offers no such property).
pub fn verdict(connectivity: u32, metered: Option<bool>, captive_portal: Option<bool>) -> Verdict {
    Verdict {
        ipv4: Some(level(connectivity, Family::Ipv4)),
        ipv6: Some(level(connectivity, Family::Ipv6)),
        metered,
        captive_portal,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;
    use Level::*;

    #[test]
    fn connectivity_table() {
        // (flags, ipv4, ipv6)
        let table = [
            (DISCONNECTED, Disconnected, Disconnected),
            (IPV4_NOTRAFFIC, Local, Disconnected),
            (IPV6_NOTRAFFIC, Disconnected, Local),
            (IPV4_LOCALNETWORK | IPV6_LOCALNETWORK, Local, Local),
            (IPV4_SUBNET | IPV6_NOTRAFFIC, Site, Local),
            (IPV4_SUBNET | IPV4_LOCALNETWORK, Site, Disconnected),
            (IPV4_INTERNET | IPV6_SUBNET, Online, Site),
            (IPV4_INTERNET | IPV4_SUBNET | IPV6_INTERNET, Online, Online),
            (IPV6_INTERNET, Disconnected, Online),
        ];
        for (flags, v4, v6) in table {
            assert_eq!((level(flags, Family::Ipv4), level(flags, Family::Ipv6)), (v4, v6), "flags {flags:#x}");
            let v = verdict(flags, Some(false), None);
            assert_eq!((v.ipv4, v.ipv6, v.source), (Some(v4), Some(v6), Source::Windows));
            assert_eq!((v.metered, v.captive_portal), (Some(false), None));
        }
    }

    #[test]
    fn path_rule_table() {
        // (flags, family, same subnet, reachable)
        let table = [
            (IPV4_INTERNET, Family::Ipv4, false, true),
            (IPV4_INTERNET, Family::Ipv4, true, true),
            (IPV4_SUBNET, Family::Ipv4, true, true),
            (IPV4_SUBNET, Family::Ipv4, false, false),
            (IPV4_LOCALNETWORK, Family::Ipv4, true, false),
            (IPV4_NOTRAFFIC, Family::Ipv4, true, false),
            (IPV6_INTERNET, Family::Ipv4, false, false),
            (IPV4_INTERNET, Family::Ipv6, false, false),
            (IPV6_SUBNET, Family::Ipv6, true, true),
            (DISCONNECTED, Family::Ipv6, true, false),
        ];
        for (flags, family, same_subnet, reachable) in table {
            assert_eq!(path_connectivity(flags, family, same_subnet), reachable, "{flags:#x} {family} {same_subnet}");
        }
    }

    #[test]
    fn cost_and_portal() {
        let table = [
            (0, None),
            (COST_UNRESTRICTED, Some(false)),
            (COST_FIXED, Some(true)),
            (COST_VARIABLE, Some(true)),
            (COST_VARIABLE | 0x40000, Some(true)), // roaming
        ];
        for (cost, expected) in table {
            assert_eq!(metered(cost), expected, "cost {cost:#x}");
        }
        assert!(captive_portal(INTERNET_WEBHIJACK | 0x2));
        assert!(!captive_portal(0x2 | 0x4)); // proxied, corporate
    }

    #[test]
    fn interface_type_table() {
        let table = [
            (6, InterfaceKind::Ethernet, Transport::Ethernet),
            (71, InterfaceKind::Wifi, Transport::Wifi),
            (243, InterfaceKind::Cellular, Transport::Cellular),
            (244, InterfaceKind::Cellular, Transport::Cellular),
            (131, InterfaceKind::Vpn, Transport::Vpn),
            (23, InterfaceKind::Ppp, Transport::Vpn),
            (24, InterfaceKind::Loopback, Transport::Other),
            (53, InterfaceKind::Virtual, Transport::Other),
            (1, InterfaceKind::Other, Transport::Other),
        ];
        for (if_type, kind, transport) in table {
            assert_eq!(interface_kind(if_type), kind, "type {if_type}");
            assert_eq!(Transport::from(kind), transport, "type {if_type}");
        }
        let states = [
            (1, OperState::Up),
            (2, OperState::Down),
            (4, OperState::Unknown),
            (7, OperState::LowerLayerDown),
            (99, OperState::Unknown),
        ];
        for (status, state) in states {
            assert_eq!(oper_state(status), state);
        }
    }
}
