//! Plain data: one address on an interface, its flags and scope, and address families.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Scope of an address, as the kernel reports it.
///
/// ```
/// use netreach::AddressScope;
/// assert_eq!(netreach::Address::new("192.0.2.1".parse().unwrap(), 24).scope, AddressScope::Global);
/// assert_eq!(serde_json::to_string(&AddressScope::Link).unwrap(), r#""link""#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressScope {
    /// Valid everywhere.
    #[default]
    Global,
    /// Site-local (deprecated for IPv6, rarely used).
    Site,
    /// Valid only on this link (169.254/16, fe80::/10).
    Link,
    /// Valid only on this host (127/8, ::1).
    Host,
    /// Valid nowhere.
    Nowhere,
}

/// Flags of an address that decide whether it can be used.
///
/// ```
/// let mut a = netreach::Address::new("2001:db8::1".parse().unwrap(), 64);
/// a.flags.tentative = true; // duplicate address detection still running
/// assert!(!a.is_usable());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddressFlags {
    /// Duplicate address detection still running: not usable yet.
    pub tentative: bool,
    /// Preferred lifetime over: kept for existing connections, avoided for new ones.
    pub deprecated: bool,
    /// An IPv6 privacy (temporary) address.
    pub temporary: bool,
    /// Duplicate address detection failed: never usable.
    pub dad_failed: bool,
    /// Configured statically (no lifetime).
    pub permanent: bool,
}

/// One address on an interface.
///
/// ```
/// let a = netreach::Address::new("169.254.7.1".parse().unwrap(), 16);
/// assert_eq!(a.family(), netreach::Family::Ipv4);
/// assert!(a.is_usable() && a.is_link_local() && !a.is_loopback());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The address itself.
    pub address: IpAddr,
    /// Prefix length of the on-link subnet.
    pub prefix_len: u8,
    /// Scope as the kernel reports it.
    pub scope: AddressScope,
    /// Usability flags.
    pub flags: AddressFlags,
    /// Seconds of valid lifetime left when last reported; `None` for forever.
    pub valid_lifetime: Option<u32>,
    /// Seconds of preferred lifetime left when last reported; `None` for forever.
    pub preferred_lifetime: Option<u32>,
}

impl Address {
    /// A permanent, global address with no flags set: a convenient start for tests and docs.
    ///
    /// ```
    /// let a = netreach::Address::new("192.0.2.10".parse().unwrap(), 24);
    /// assert_eq!(a.prefix_len, 24);
    /// assert!(a.is_usable());
    /// ```
    pub fn new(address: IpAddr, prefix_len: u8) -> Self {
        Address {
            address,
            prefix_len,
            scope: AddressScope::Global,
            flags: AddressFlags { permanent: true, ..Default::default() },
            valid_lifetime: None,
            preferred_lifetime: None,
        }
    }

    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }

    /// True when the kernel would use this address as a source: not tentative, not DAD-failed.
    /// Deprecated addresses still count: the kernel falls back to them when nothing better
    /// exists, and existing connections keep working.
    pub fn is_usable(&self) -> bool {
        !self.flags.tentative && !self.flags.dad_failed
    }

    /// True for link-local addresses (169.254.0.0/16, fe80::/10) and link scope.
    pub fn is_link_local(&self) -> bool {
        self.scope == AddressScope::Link
            || match self.address {
                IpAddr::V4(a) => a.is_link_local(),
                IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
            }
    }

    /// True for loopback addresses and host scope.
    pub fn is_loopback(&self) -> bool {
        self.scope == AddressScope::Host || self.address.is_loopback()
    }

    /// True when everything but the lifetimes is equal. The kernel re-announces addresses
    /// whenever their lifetimes are refreshed (router advertisements, DHCP renewals); such a
    /// refresh is not a change (tailscale#4282).
    pub fn same_properties(&self, other: &Address) -> bool {
        self.address == other.address
            && self.prefix_len == other.prefix_len
            && self.scope == other.scope
            && self.flags == other.flags
    }

    /// Sort and identity key: an address is identified by its value and prefix length.
    pub(crate) fn key(&self) -> (IpAddr, u8) {
        (self.address, self.prefix_len)
    }
}

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// The family of an address.
    ///
    /// ```
    /// use netreach::Family;
    /// assert_eq!(Family::of(&"2001:db8::1".parse().unwrap()), Family::Ipv6);
    /// ```
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        })
    }
}
