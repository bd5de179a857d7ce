//! Plain data describing what the machine's network looks like at one moment.
//!
//! Everything here is serde-serialisable and free of I/O, so it can be built by any backend,
//! compared, diffed ([`crate::event::diff`]) and printed (`netreach status --json`).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub(crate) use crate::address::{Address, AddressFlags, AddressScope, Family};
use crate::reachability::Reachability;
use crate::verdict::{Details, Verdict};

/// Everything netreach knows about one network namespace (or machine) at one moment.
///
/// ```
/// let state = netreach::NetworkState::default();
/// assert!(state.interfaces.is_empty());
/// assert_eq!(state.reachability.overall, netreach::Level::Unknown);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive] // grows with new kinds of input (neighbours, DNS): start from `default()`
pub struct NetworkState {
    /// Overall and per-family reachability, each tagged with its source. Flattened so the JSON
    /// reads `{"reachability": "online", "ipv4": {"reachability": ...}, ...}`.
    #[serde(flatten)]
    pub reachability: Reachability,
    /// Transport, metering and captive portal (flattened in JSON as well).
    #[serde(flatten)]
    pub details: Details,
    /// The latest verdict of every source above the kernel (probe, NetworkManager, Windows),
    /// from which `reachability` and `details` were refined ([`crate::refine`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdicts: Vec<Verdict>,
    /// Interfaces sorted by index.
    pub interfaces: Vec<Interface>,
    /// Default routes (IPv4 `0.0.0.0/0`, IPv6 `::/0`) of every routing table, sorted. Other
    /// routes are deliberately not mirrored: a full BGP table must not cost memory here.
    pub default_routes: Vec<DefaultRoute>,
}

impl NetworkState {
    /// The interface with this index, if known.
    ///
    /// ```
    /// let state = netreach::NetworkState::default();
    /// assert!(state.interface(1).is_none());
    /// ```
    pub fn interface(&self, index: u32) -> Option<&Interface> {
        self.position(index).ok().map(|i| &self.interfaces[i])
    }

    /// The interface with this name, if known. A name that is not UTF-8 is matched by its
    /// display form ([`Interface::name`]) when no UTF-8 name is exactly `name`.
    ///
    /// ```
    /// let mut odd = netreach::Interface { index: 2, ..Default::default() };
    /// odd.set_name(b"w\xff");
    /// let mut state = netreach::NetworkState::default();
    /// state.interfaces.push(odd);
    /// assert_eq!(state.interface_by_name("w\\xff").map(|i| i.index), Some(2));
    /// ```
    pub fn interface_by_name(&self, name: &str) -> Option<&Interface> {
        let exact = self.interfaces.iter().find(|i| i.name_bytes.is_none() && i.name == name);
        exact.or_else(|| self.interfaces.iter().find(|i| i.name == name))
    }

    /// Where an interface with `index` is (`Ok`) or would be inserted (`Err`).
    pub(crate) fn position(&self, index: u32) -> Result<usize, usize> {
        self.interfaces.binary_search_by_key(&index, |i| i.index)
    }
}

/// What kind of link an interface is, from the kernel's link info and, for hardware, sysfs.
/// New kinds may be added (`#[non_exhaustive]`).
///
/// ```
/// use netreach::InterfaceKind;
/// assert!(InterfaceKind::Bridge.is_host_internal() && !InterfaceKind::Wifi.is_host_internal());
/// assert_eq!(serde_json::to_string(&InterfaceKind::Wifi).unwrap(), r#""wifi""#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InterfaceKind {
    /// Wired Ethernet, and Ethernet-type links built on other links (VLAN, bond, team,
    /// macvlan, ipvlan): they are an uplink exactly as much as the device under them.
    Ethernet,
    /// IEEE 802.11 wireless.
    Wifi,
    /// Mobile broadband (WWAN, rmnet).
    Cellular,
    /// Bluetooth network encapsulation (PAN).
    Bluetooth,
    /// The loopback interface.
    Loopback,
    /// A software bridge (docker0, virbr0, ...).
    Bridge,
    /// One end of a virtual Ethernet pair: inside a container or namespace, the uplink.
    Veth,
    /// A tun or tap device (OpenVPN, tailscale, user-space stacks).
    Tun,
    /// A kernel VPN link: WireGuard, XFRM/VTI (IPsec).
    Vpn,
    /// A point-to-point protocol link (DSL, dial-up, some modems and VPNs).
    Ppp,
    /// Another software link: dummy, VXLAN, GRE and IP-in-IP tunnels, VRF, ...
    Virtual,
    /// The kernel did not say.
    #[default]
    Other,
}

impl InterfaceKind {
    /// Kinds whose addresses are usually host-internal plumbing (container bridges, tunnels to
    /// nowhere, dummies). They count towards reachability only when a default route leaves
    /// through them; see the table at [`crate::derive_kernel_reachability`].
    pub fn is_host_internal(self) -> bool {
        matches!(self, Self::Bridge | Self::Tun | Self::Vpn | Self::Virtual)
    }
}

/// RFC 2863 operational state, as the kernel reports it (`IFLA_OPERSTATE`).
///
/// ```
/// use netreach::{Interface, OperState};
/// let eth0 = Interface { up: true, carrier: true, oper_state: OperState::Unknown, ..Default::default() };
/// assert!(eth0.is_ready(), "tun and many virtual drivers never report a state: carrier tells");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperState {
    /// The driver does not report it (common for tun and loopback).
    #[default]
    Unknown,
    /// Some component is missing.
    NotPresent,
    /// Down.
    Down,
    /// Down because a lower layer is (e.g. a VLAN whose parent is down).
    LowerLayerDown,
    /// In a test mode.
    Testing,
    /// Waiting for an external event (e.g. 802.1X authentication).
    Dormant,
    /// Up and ready to pass packets.
    Up,
}

/// One network interface and its addresses.
///
/// ```no_run
/// let state = netreach::Monitor::new()?.snapshot();
/// for i in state.interfaces.iter().filter(|i| i.is_ready()) {
///     println!("{} ({:?}): {} addresses", i.name, i.kind, i.addresses.len());
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Kernel interface index.
    pub index: u32,
    /// Interface name, e.g. `eth0`. Linux allows any bytes in a name: one that is not UTF-8
    /// is shown here in a display form (see [`Interface::set_name`]) and kept exactly in
    /// [`Interface::name_bytes`].
    pub name: String,
    /// The exact name when it is not UTF-8 (then `name` is its display form); `None` (and
    /// absent from JSON) for every UTF-8 name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_bytes: Option<Vec<u8>>,
    /// What kind of link this is.
    pub kind: InterfaceKind,
    /// Administratively up (`IFF_UP`, `ip link set X up`).
    pub up: bool,
    /// Operational state.
    pub oper_state: OperState,
    /// Physical layer up (`IFF_LOWER_UP`).
    pub carrier: bool,
    /// Maximum transmission unit in bytes.
    pub mtu: u32,
    /// Hardware address, lower-case colon-separated hex; `None` when the link has none.
    pub mac: Option<String>,
    /// Addresses sorted by (family, address, prefix length).
    pub addresses: Vec<Address>,
}

impl Interface {
    /// True when the link can pass packets: administratively up, carrier present and not in a
    /// down, dormant or testing operational state (`unknown` counts as up: tun and many
    /// virtual drivers never report an operational state).
    ///
    /// ```
    /// let mut eth = netreach::Interface { up: true, carrier: true, ..Default::default() };
    /// assert!(eth.is_ready());
    /// eth.oper_state = netreach::OperState::Dormant;
    /// assert!(!eth.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.up && self.carrier && matches!(self.oper_state, OperState::Up | OperState::Unknown)
    }

    /// Sets the name from the kernel's bytes. A UTF-8 name is kept as is. Any other keeps its
    /// bytes in [`Interface::name_bytes`] and gets a display form in [`Interface::name`]: each
    /// byte that is not part of valid UTF-8 is written `\xNN` and a backslash `\\`, so two
    /// different such names never share a display form (and `name_bytes` tells them from a
    /// UTF-8 name that happens to read the same).
    ///
    /// ```
    /// let mut i = netreach::Interface::default();
    /// i.set_name("eth0".as_bytes());
    /// assert_eq!((i.name.as_str(), i.name_bytes.as_deref()), ("eth0", None));
    /// i.set_name(b"w\xff\\\xc3\xa9");
    /// assert_eq!(i.name, "w\\xff\\\\é");
    /// assert_eq!(i.raw_name(), b"w\xff\\\xc3\xa9");
    /// ```
    pub fn set_name(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(name) => (self.name, self.name_bytes) = (name.to_owned(), None),
            Err(_) => (self.name, self.name_bytes) = (display_name(bytes), Some(bytes.to_vec())),
        }
    }

    /// The name exactly as the kernel (or OS) gave it.
    pub fn raw_name(&self) -> &[u8] {
        self.name_bytes.as_deref().unwrap_or(self.name.as_bytes())
    }

    /// The same interface without its addresses: what interface events compare and carry.
    pub fn link_only(&self) -> Interface {
        Interface { addresses: Vec::new(), ..self.clone() }
    }

    /// True when the link properties (everything but addresses) are equal.
    pub(crate) fn same_link(&self, other: &Interface) -> bool {
        self.index == other.index
            && self.name == other.name
            && self.name_bytes == other.name_bytes
            && self.kind == other.kind
            && self.up == other.up
            && self.oper_state == other.oper_state
            && self.carrier == other.carrier
            && self.mtu == other.mtu
            && self.mac == other.mac
    }
}

/// The display form of a name that is not UTF-8 (see [`Interface::set_name`]).
fn display_name(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut shown = String::with_capacity(bytes.len() * 2);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => shown.push_str("\\\\"),
                c => shown.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(shown, "\\x{b:02x}");
        }
    }
    shown
}

/// A default route (`0.0.0.0/0` or `::/0`) that forwards packets (unicast type). One entry per
/// next hop: a multipath default route appears once for each of its interfaces.
///
/// ```no_run
/// for route in &netreach::Monitor::new()?.snapshot().default_routes {
///     println!("{} via {:?} dev {} metric {}", route.family, route.gateway, route.interface, route.metric);
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DefaultRoute {
    /// Address family of the route.
    pub family: Family,
    /// Next-hop gateway; `None` for a route straight out of a point-to-point link.
    pub gateway: Option<IpAddr>,
    /// Name of the outgoing interface, derived from `interface_index`: it follows renames
    /// (reported by [`crate::EventKind::InterfaceChanged`], not as a route change) and is empty
    /// while the interface is not known.
    pub interface: String,
    /// Index of the outgoing interface.
    pub interface_index: u32,
    /// Route metric (priority); lower wins.
    pub metric: u32,
    /// Routing table id (254 is `main`).
    pub table: u32,
}

impl DefaultRoute {
    /// Identity of a route: everything but the interface name, which is derived from the index.
    pub(crate) fn same_route(&self, other: &DefaultRoute) -> bool {
        self.family == other.family
            && self.gateway == other.gateway
            && self.interface_index == other.interface_index
            && self.metric == other.metric
            && self.table == other.table
    }
}
