//! The C enums and their mapping from netreach's Rust enums. Rust's enums are
//! `#[non_exhaustive]`: a value this version does not know maps to an `OTHER` entry, so a
//! newer netreach never hands C a number outside its enum.

use std::ffi::{c_char, c_int};

use netreach::{Level, ReachabilityOf, Source, Transport};

use crate::args::name;
use crate::error::Failure;

/// Qt's reachability levels, worst to best (comparable with `<`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachLevel {
    /// Not known (yet).
    Unknown = 0,
    /// No usable network.
    Disconnected = 1,
    /// Link-local connectivity only.
    Local = 2,
    /// A routable address on a local network, no way out.
    Site = 3,
    /// A way out to the internet.
    Online = 4,
}

/// Which source decided a level.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachSource {
    /// The kernel's interfaces, addresses and routes.
    Kernel = 0,
    /// netreach's HTTP connectivity probe.
    Probe = 1,
    /// NetworkManager.
    Networkmanager = 2,
    /// Windows' Network List Manager.
    Windows = 3,
    /// A source newer than this header: see the JSON.
    Other = 99,
}

/// The medium of the connection (Qt's `TransportMedium`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachTransport {
    /// Not known.
    Unknown = 0,
    /// Wired Ethernet (also bridges and veths).
    Ethernet = 1,
    /// IEEE 802.11 wireless.
    Wifi = 2,
    /// Mobile broadband.
    Cellular = 3,
    /// Bluetooth tethering.
    Bluetooth = 4,
    /// A VPN or tunnel.
    Vpn = 5,
    /// Anything else.
    Other = 6,
}

/// A yes/no that may be unknown (metered, captive portal).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachTristate {
    /// Not known.
    Unknown = -1,
    /// No.
    No = 0,
    /// Yes.
    Yes = 1,
}

/// Which reachability: the overall one or one address family's. Passed to functions as an
/// `int` (any other value is refused with `NETREACH_STATUS_INVALID_INPUT`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetreachFamily {
    /// The better of the two families.
    Overall = 0,
    /// IPv4.
    Ipv4 = 4,
    /// IPv6.
    Ipv6 = 6,
}

/// Reads a family number from C.
pub(crate) fn parse_family(value: c_int) -> Result<NetreachFamily, Failure> {
    match value {
        0 => Ok(NetreachFamily::Overall),
        4 => Ok(NetreachFamily::Ipv4),
        6 => Ok(NetreachFamily::Ipv6),
        other => Err(Failure::invalid(format!(
            "unknown family {other} (expected NETREACH_FAMILY_OVERALL, _IPV4 or _IPV6: 0, 4 or 6)"
        ))),
    }
}

impl From<ReachabilityOf> for NetreachFamily {
    fn from(of: ReachabilityOf) -> Self {
        match of {
            ReachabilityOf::Ipv4 => NetreachFamily::Ipv4,
            ReachabilityOf::Ipv6 => NetreachFamily::Ipv6,
            ReachabilityOf::Overall => NetreachFamily::Overall,
        }
    }
}

impl From<Level> for NetreachLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Disconnected => NetreachLevel::Disconnected,
            Level::Local => NetreachLevel::Local,
            Level::Site => NetreachLevel::Site,
            Level::Online => NetreachLevel::Online,
            Level::Unknown => NetreachLevel::Unknown,
        }
    }
}

impl From<Source> for NetreachSource {
    fn from(source: Source) -> Self {
        match source {
            Source::Kernel => NetreachSource::Kernel,
            Source::Probe => NetreachSource::Probe,
            Source::NetworkManager => NetreachSource::Networkmanager,
            Source::Windows => NetreachSource::Windows,
            _ => NetreachSource::Other,
        }
    }
}

impl From<Option<Transport>> for NetreachTransport {
    fn from(transport: Option<Transport>) -> Self {
        match transport {
            None => NetreachTransport::Unknown,
            Some(Transport::Ethernet) => NetreachTransport::Ethernet,
            Some(Transport::Wifi) => NetreachTransport::Wifi,
            Some(Transport::Cellular) => NetreachTransport::Cellular,
            Some(Transport::Bluetooth) => NetreachTransport::Bluetooth,
            Some(Transport::Vpn) => NetreachTransport::Vpn,
            Some(_) => NetreachTransport::Other,
        }
    }
}

impl From<Option<bool>> for NetreachTristate {
    fn from(value: Option<bool>) -> Self {
        match value {
            None => NetreachTristate::Unknown,
            Some(false) => NetreachTristate::No,
            Some(true) => NetreachTristate::Yes,
        }
    }
}

/// The name of a level as netreach's JSON writes it (`"online"`), or `"invalid"` for a number
/// outside `NetreachLevel`. Static: never freed.
///
/// ```c
/// printf("ipv4: %s\n", netreach_level_name(level));
/// ```
#[no_mangle]
pub extern "C" fn netreach_level_name(level: c_int) -> *const c_char {
    name(match level {
        0 => c"unknown",
        1 => c"disconnected",
        2 => c"local",
        3 => c"site",
        4 => c"online",
        _ => c"invalid",
    })
}

/// The name of a source as netreach's JSON writes it (`"networkmanager"`), `"other"` for
/// `NETREACH_SOURCE_OTHER`, `"invalid"` outside the enum. Static: never freed.
///
/// ```c
/// printf("decided by %s\n", netreach_source_name(source));
/// ```
#[no_mangle]
pub extern "C" fn netreach_source_name(source: c_int) -> *const c_char {
    name(match source {
        0 => c"kernel",
        1 => c"probe",
        2 => c"networkmanager",
        3 => c"windows",
        99 => c"other",
        _ => c"invalid",
    })
}

/// The name of a transport as netreach's JSON writes it (`"wifi"`), `"unknown"` for
/// `NETREACH_TRANSPORT_UNKNOWN`, `"invalid"` outside the enum. Static: never freed.
///
/// ```c
/// printf("transport: %s\n", netreach_transport_name(netreach_state_transport(state)));
/// ```
#[no_mangle]
pub extern "C" fn netreach_transport_name(transport: c_int) -> *const c_char {
    name(match transport {
        0 => c"unknown",
        1 => c"ethernet",
        2 => c"wifi",
        3 => c"cellular",
        4 => c"bluetooth",
        5 => c"vpn",
        6 => c"other",
        _ => c"invalid",
    })
}
