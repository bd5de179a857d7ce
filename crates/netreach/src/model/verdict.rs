//! Plain data: what a source that knows more than the kernel says ([`Verdict`]), and the
//! details beyond a level ([`Details`], [`Transport`]). How verdicts refine the kernel's
//! levels is in `refine.rs` ([`crate::refine()`] has the rules).

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::disagreement::Disagreement;
use super::interface::InterfaceKind;
use super::level::{Level, Source};

/// What carries the traffic out of the machine.
///
/// ```
/// use netreach::{InterfaceKind, Transport};
/// assert_eq!(Transport::from(InterfaceKind::Wifi), Transport::Wifi);
/// assert_eq!(Transport::from(InterfaceKind::Tun), Transport::Vpn);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transport {
    /// Wired Ethernet (and bridges and veths, which carry Ethernet frames).
    Ethernet,
    /// IEEE 802.11 wireless.
    Wifi,
    /// Mobile broadband.
    Cellular,
    /// Bluetooth tethering.
    Bluetooth,
    /// A VPN or tunnel (WireGuard, tun, PPP).
    Vpn,
    /// Anything else.
    Other,
}

impl From<InterfaceKind> for Transport {
    fn from(kind: InterfaceKind) -> Self {
        match kind {
            InterfaceKind::Ethernet | InterfaceKind::Bridge | InterfaceKind::Veth => Transport::Ethernet,
            InterfaceKind::Wifi => Transport::Wifi,
            InterfaceKind::Cellular => Transport::Cellular,
            InterfaceKind::Bluetooth => Transport::Bluetooth,
            InterfaceKind::Tun | InterfaceKind::Vpn | InterfaceKind::Ppp => Transport::Vpn,
            InterfaceKind::Loopback | InterfaceKind::Virtual | InterfaceKind::Other => Transport::Other,
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Ethernet => "ethernet",
            Transport::Wifi => "wifi",
            Transport::Cellular => "cellular",
            Transport::Bluetooth => "bluetooth",
            Transport::Vpn => "vpn",
            Transport::Other => "other",
        })
    }
}

/// What one source above the kernel says. `None` fields mean "no opinion".
///
/// ```
/// use netreach::{Level, Source, Verdict};
/// let v = Verdict { ipv4: Some(Level::Online), ..Verdict::new(Source::Probe) };
/// assert_eq!(v.level(netreach::Family::Ipv4), Some(Level::Online));
/// assert_eq!(v.level(netreach::Family::Ipv6), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Who says it.
    pub source: Source,
    /// Level of IPv4, when this source knows it.
    pub ipv4: Option<Level>,
    /// Level of IPv6, when this source knows it.
    pub ipv6: Option<Level>,
    /// Whether a captive portal is in the way, when this source can tell.
    pub captive_portal: Option<bool>,
    /// The portal's address (e.g. from a redirect's `Location`), when known.
    pub portal_url: Option<String>,
    /// Whether traffic is metered (billed by volume), when this source knows it.
    pub metered: Option<bool>,
    /// What carries the traffic, when this source knows it.
    pub transport: Option<Transport>,
    /// Why, in words, when there is something to explain (e.g. "NetworkManager's
    /// connectivity check is disabled").
    pub note: Option<String>,
    /// The probe only: its endpoint names did not resolve (the resolver's error), so the
    /// families it limits failed at name resolution, not at HTTP. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unresolved: Option<String>,
}

impl Verdict {
    /// A verdict of `source` with no opinion on anything yet; [`Verdict::level`] reads one
    /// family's.
    ///
    /// ```
    /// use netreach::{Family, Level, Source, Verdict};
    /// let v = Verdict { ipv4: Some(Level::Online), ..Verdict::new(Source::Probe) };
    /// assert_eq!((v.level(Family::Ipv4), v.level(Family::Ipv6)), (Some(Level::Online), None));
    /// ```
    pub fn new(source: Source) -> Self {
        Verdict {
            source,
            ipv4: None,
            ipv6: None,
            captive_portal: None,
            portal_url: None,
            metered: None,
            transport: None,
            note: None,
            unresolved: None,
        }
    }

    /// The level this verdict gives one family.
    pub fn level(&self, family: Family) -> Option<Level> {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

/// How the traffic leaves, beyond the level: transport, metering and captive portal.
///
/// ```
/// let d = netreach::Details::default();
/// assert_eq!(d.captive_portal, None); // unknown until a probe or daemon says
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Details {
    /// What carries the traffic out: from the best source that knows, else the kind of the
    /// interface of the default route that makes the machine online.
    pub transport: Option<Transport>,
    /// Whether traffic is metered; `None` when no source knows (the kernel never does).
    pub metered: Option<bool>,
    /// Whether a captive portal is in the way; `None` when no source checked.
    pub captive_portal: Option<bool>,
    /// The portal's address, when one is in the way and its address is known.
    pub portal_url: Option<String>,
    /// Where sources disagree: who said what and which rule decided (empty when they agree).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<Disagreement>,
}
