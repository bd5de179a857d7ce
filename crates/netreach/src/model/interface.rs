//! Plain data: one network interface, its kind and operational state.

use serde::{Deserialize, Serialize};

use super::address::Address;

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
pub(crate) fn display_name(bytes: &[u8]) -> String {
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
