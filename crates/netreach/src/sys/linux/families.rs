//! Which address families a change concerns: the families whose route decision is asked
//! again. Its own module because both the event socket (a policy message names its family)
//! and the decision use it, and the decision already depends on the sockets.

use std::net::IpAddr;

use crate::model::Family;

/// A set of families: those whose answers are to be asked again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Families {
    ipv4: bool,
    ipv6: bool,
}

impl Families {
    pub(super) const NONE: Families = Families { ipv4: false, ipv6: false };
    pub(super) const BOTH: Families = Families { ipv4: true, ipv6: true };

    pub(super) fn of(family: Family) -> Families {
        Families { ipv4: family == Family::Ipv4, ipv6: family == Family::Ipv6 }
    }

    pub(super) fn of_address(address: IpAddr) -> Families {
        Families::of(if address.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 })
    }

    pub(super) fn has(self, address: IpAddr) -> bool {
        if address.is_ipv4() {
            self.ipv4
        } else {
            self.ipv6
        }
    }

    /// Whether any family is in the set.
    pub(super) fn any(self) -> bool {
        self.ipv4 || self.ipv6
    }

    /// Both sets together.
    pub(super) fn with(self, other: Families) -> Families {
        Families { ipv4: self.ipv4 || other.ipv4, ipv6: self.ipv6 || other.ipv6 }
    }

    /// The families of a netlink message whose header starts with the address family byte
    /// (`rtmsg`, `fib_rule_hdr`, `nhmsg`, `netconfmsg`): `AF_INET` or `AF_INET6` alone, both
    /// for anything else (`AF_UNSPEC`: a nexthop group, a netconf setting for all).
    pub(super) fn of_raw(family: u8) -> Families {
        match i32::from(family) {
            libc::AF_INET => Families::of(Family::Ipv4),
            libc::AF_INET6 => Families::of(Family::Ipv6),
            _ => Families::BOTH,
        }
    }
}
