//! IP Helper's rows as plain values, and what they mean: adapters (`IP_ADAPTER_ADDRESSES`),
//! their unicast addresses, routes (`MIB_IPFORWARD_ROW2`) and interface metrics
//! (`MIB_IPINTERFACE_ROW`) become netreach's interfaces, addresses and default routes.
//!
//! Pure, so it is compiled and fixture-tested on every platform; `iphlpapi.rs` copies the
//! Windows structures into these rows (the only unsafe part) and hands them here. Rows are
//! untrusted input, and every odd one has a defined outcome, never a panic:
//! - an address or route of another family than `AF_INET`/`AF_INET6`, or with a prefix
//!   longer than its family allows, is skipped ([`RowError`] says why);
//! - an adapter with neither an IPv4 nor an IPv6 interface index has no IP stack: skipped;
//! - an empty (or absent) friendly name becomes `#INDEX`; a name that is not valid UTF-16
//!   (an unpaired surrogate) gets a display form in `name`, each such unit written
//!   `\u{d800}` and each backslash `\\`, and its exact code units in `name_bytes` (UTF-16LE),
//!   as Linux does for names that are not UTF-8 (valid names are kept exactly);
//! - a route whose interface has no metric row keeps its own metric (see [`effective_metric`]);
//! - a DNS server of another family, or a suffix that is empty, is skipped; a suffix that is
//!   not valid UTF-16 gets the display form names get;
//! - a neighbour row of another family, or with a state outside `NL_NEIGHBOR_STATE`, is
//!   skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{
    Address, AddressFlags, AddressScope, DefaultRoute, Family, GatewayNeighbour, Interface, NeighbourState,
    NetworkState, OperState,
};
use crate::nlm;

/// `AF_INET` as IP Helper writes it (ws2def.h).
pub const AF_INET: u16 = 2;
/// `AF_INET6` as IP Helper writes it (ws2def.h).
pub const AF_INET6: u16 = 23;
/// "Forever" in IP Helper lifetimes.
pub const INFINITE: u32 = u32::MAX;
/// `NL_DAD_STATE` values (nldef.h).
pub const DAD_TENTATIVE: i32 = 1;
/// `IpDadStateDuplicate`.
pub const DAD_DUPLICATE: i32 = 2;
/// `IpDadStateDeprecated`.
pub const DAD_DEPRECATED: i32 = 3;
/// `IpSuffixOriginRandom` (`NL_SUFFIX_ORIGIN`): a temporary (privacy) address.
pub const SUFFIX_RANDOM: i32 = 5;
/// Windows has one routing table; reported as Linux's `main` so output reads the same.
pub const MAIN_TABLE: u32 = 254;

/// A socket address as IP Helper lays it out: its family and the address bytes (4 for
/// `AF_INET`, 16 for `AF_INET6`, whatever was there for anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawIp {
    /// `sa_family`.
    pub family: u16,
    /// The address in network order.
    pub bytes: Vec<u8>,
}

/// Why a row was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// A family other than `AF_INET` and `AF_INET6`, or an address of the wrong length.
    Family(u16, usize),
    /// A prefix longer than the family's addresses.
    PrefixLength(u8),
    /// An adapter without an interface index.
    NoIndex,
    /// A neighbour state outside `NL_NEIGHBOR_STATE`.
    NeighbourState(i32),
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RowError::Family(family, len) => write!(f, "an address of family {family} ({len} bytes)"),
            RowError::PrefixLength(len) => write!(f, "a prefix of {len} bits, longer than its family's"),
            RowError::NoIndex => f.write_str("an adapter with no interface index"),
            RowError::NeighbourState(state) => write!(f, "a neighbour state of {state}"),
        }
    }
}

impl RawIp {
    /// The address it holds.
    pub fn ip(&self) -> Result<IpAddr, RowError> {
        match (self.family, self.bytes.as_slice()) {
            (AF_INET, &[a, b, c, d]) => Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
            (AF_INET6, bytes) if bytes.len() == 16 => {
                let mut octets = [0; 16];
                octets.copy_from_slice(bytes);
                Ok(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            (family, bytes) => Err(RowError::Family(family, bytes.len())),
        }
    }
}

/// One unicast address of an adapter (`IP_ADAPTER_UNICAST_ADDRESS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnicastRow {
    pub address: RawIp,
    /// `OnLinkPrefixLength`.
    pub prefix_len: u8,
    /// `DadState` (`NL_DAD_STATE`).
    pub dad_state: i32,
    /// `SuffixOrigin` (`NL_SUFFIX_ORIGIN`).
    pub suffix_origin: i32,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
}

/// One adapter (`IP_ADAPTER_ADDRESSES`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdapterRow {
    /// `IfIndex` (0 without IPv4).
    pub if_index: u32,
    /// `Ipv6IfIndex` (0 without IPv6).
    pub ipv6_if_index: u32,
    /// `FriendlyName` up to its NUL; `None` for a null pointer.
    pub friendly_name: Option<Vec<u16>>,
    pub if_type: u32,
    pub oper_status: u32,
    pub mtu: u32,
    /// `PhysicalAddress`, its first `PhysicalAddressLength` bytes (at most 8).
    pub physical_address: Vec<u8>,
    pub unicast: Vec<UnicastRow>,
    /// `FirstDnsServerAddress` and the entries after it.
    pub dns_servers: Vec<RawIp>,
    /// `DnsSuffix` up to its NUL (the connection-specific suffix); `None` for a null pointer.
    pub dns_suffix: Option<Vec<u16>>,
    /// `FirstDnsSuffix` and the entries after it (the adapter's suffix search list).
    pub dns_suffixes: Vec<Vec<u16>>,
}

/// One neighbour entry (`MIB_IPNET_ROW2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourRow {
    pub address: RawIp,
    pub interface_index: u32,
    /// `State` (`NL_NEIGHBOR_STATE`).
    pub state: i32,
}

/// One route (`MIB_IPFORWARD_ROW2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    /// `DestinationPrefix.Prefix`.
    pub prefix: RawIp,
    /// `DestinationPrefix.PrefixLength`.
    pub prefix_len: u8,
    pub next_hop: RawIp,
    pub interface_index: u32,
    /// `Metric`: Microsoft calls it "the route metric offset" (see [`effective_metric`]).
    pub metric: u32,
}

/// One interface's metric for one family (`MIB_IPINTERFACE_ROW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceMetricRow {
    pub family: u16,
    pub interface_index: u32,
    pub metric: u32,
}

/// The metric Windows ranks a route by: `MIB_IPFORWARD_ROW2.Metric` is an offset, and "the
/// actual route metric used to compute the route preferences is the summation of interface
/// metric specified in the Metric member of the MIB_IPINTERFACE_ROW structure and the route
/// metric offset" (Microsoft, MIB_IPFORWARD_ROW2; `route print` shows that sum). Without a
/// metric row for the route's interface and family, the offset alone. Saturates, never wraps.
pub fn effective_metric(route: &RouteRow, metrics: &[InterfaceMetricRow]) -> u32 {
    let interface = metrics
        .iter()
        .find(|m| m.family == route.prefix.family && m.interface_index == route.interface_index)
        .map_or(0, |m| m.metric);
    route.metric.saturating_add(interface)
}

/// The name of an interface from its UTF-16 friendly name, and its exact code units (as
/// UTF-16LE bytes) when it is not valid UTF-16 (see the module notes).
pub fn name(units: Option<&[u16]>, index: u32) -> (String, Option<Vec<u8>>) {
    let units = units.unwrap_or_default();
    if units.is_empty() {
        return (format!("#{index}"), None);
    }
    match String::from_utf16(units) {
        Ok(name) => (name, None),
        Err(_) => (display_name(units), Some(units.iter().flat_map(|u| u.to_le_bytes()).collect())),
    }
}

/// The display form of a name that is not valid UTF-16.
fn display_name(units: &[u16]) -> String {
    let mut shown = String::with_capacity(units.len());
    for unit in char::decode_utf16(units.iter().copied()) {
        match unit {
            Ok('\\') => shown.push_str("\\\\"),
            Ok(c) => shown.push(c),
            Err(e) => shown.push_str(&format!("\\u{{{:x}}}", e.unpaired_surrogate())),
        }
    }
    shown
}

fn check_prefix(ip: IpAddr, prefix_len: u8) -> Result<(), RowError> {
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(RowError::PrefixLength(prefix_len));
    }
    Ok(())
}

/// One unicast row as an address.
pub fn address(row: &UnicastRow) -> Result<Address, RowError> {
    let ip = row.address.ip()?;
    check_prefix(ip, row.prefix_len)?;
    let lifetime = |v: u32| (v != INFINITE).then_some(v);
    let scope = if ip.is_loopback() {
        AddressScope::Host
    } else if Address::new(ip, 0).is_link_local() {
        AddressScope::Link
    } else {
        AddressScope::Global
    };
    Ok(Address {
        address: ip,
        prefix_len: row.prefix_len,
        scope,
        flags: AddressFlags {
            tentative: row.dad_state == DAD_TENTATIVE,
            deprecated: row.dad_state == DAD_DEPRECATED,
            temporary: row.suffix_origin == SUFFIX_RANDOM,
            dad_failed: row.dad_state == DAD_DUPLICATE,
            permanent: row.valid_lifetime == INFINITE,
        },
        valid_lifetime: lifetime(row.valid_lifetime),
        preferred_lifetime: lifetime(row.preferred_lifetime),
    })
}

/// One adapter as an interface; its addresses that cannot be read are skipped.
pub fn interface(row: &AdapterRow) -> Result<Interface, RowError> {
    let index = match (row.if_index, row.ipv6_if_index) {
        (0, 0) => return Err(RowError::NoIndex),
        (0, v6) => v6,
        (v4, _) => v4,
    };
    let oper_state = nlm::oper_state(row.oper_status);
    let (name, name_bytes) = name(row.friendly_name.as_deref(), index);
    let mac = (!row.physical_address.is_empty())
        .then(|| row.physical_address.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
    let mut addresses: Vec<Address> = row.unicast.iter().filter_map(|u| address(u).ok()).collect();
    addresses.sort_by_key(|a| (a.family(), a.key()));
    addresses.dedup_by_key(|a| a.key());
    Ok(Interface {
        index,
        name,
        name_bytes,
        kind: nlm::interface_kind(row.if_type),
        // GetAdaptersAddresses lists enabled adapters only: a disabled one is absent.
        up: true,
        oper_state,
        carrier: !matches!(oper_state, OperState::Down | OperState::LowerLayerDown | OperState::NotPresent),
        mtu: row.mtu,
        mac,
        addresses,
    })
}

/// One route as a default route (prefix length 0), with its effective metric; `Ok(None)` for
/// any other route.
pub fn default_route(
    state: &NetworkState,
    row: &RouteRow,
    metrics: &[InterfaceMetricRow],
) -> Result<Option<DefaultRoute>, RowError> {
    let destination = row.prefix.ip()?;
    check_prefix(destination, row.prefix_len)?;
    if row.prefix_len != 0 {
        return Ok(None);
    }
    let gateway = row.next_hop.ip().ok().filter(|g| !g.is_unspecified());
    let interface = state.interface(row.interface_index).map(|i| i.name.clone()).unwrap_or_default();
    Ok(Some(DefaultRoute {
        family: Family::of(&destination),
        gateway,
        interface,
        interface_index: row.interface_index,
        metric: effective_metric(row, metrics),
        table: MAIN_TABLE,
    }))
}

/// The machine's state from its rows: interfaces by index (the first of a duplicate index
/// kept), then default routes, each family's preferred (lowest effective metric) first.
pub fn state(adapters: &[AdapterRow], routes: &[RouteRow], metrics: &[InterfaceMetricRow]) -> NetworkState {
    let interfaces = adapters.iter().filter_map(|a| interface(a).ok()).collect();
    let mut state = NetworkState { interfaces, ..NetworkState::default() };
    state.interfaces.sort_by_key(|i| i.index);
    state.interfaces.dedup_by_key(|i| i.index);
    let mut defaults: Vec<DefaultRoute> =
        routes.iter().filter_map(|r| default_route(&state, r, metrics).ok().flatten()).collect();
    defaults.sort_by(|a, b| {
        (a.family, a.metric, a.interface_index).cmp(&(b.family, b.metric, b.interface_index)).then(a.cmp(b))
    });
    defaults.dedup();
    state.default_routes = defaults;
    state
}

/// The interface the routing table sends `remote` through: the longest matching prefix,
/// lowest effective metric among equals (ties: the lower interface index); with a `scope` (a
/// link-local path's link), among that interface's routes only. For where the system cannot
/// answer itself (see `iphlpapi::best_route`).
pub fn longest_match(
    remote: IpAddr,
    scope: Option<u32>,
    routes: &[RouteRow],
    metrics: &[InterfaceMetricRow],
) -> Option<u32> {
    let on_link = routes.iter().filter(|row| scope.is_none_or(|index| row.interface_index == index));
    let covering = on_link.filter_map(|row| {
        let prefix = row.prefix.ip().ok()?;
        check_prefix(prefix, row.prefix_len).ok()?;
        let rank =
            (row.prefix_len, std::cmp::Reverse(effective_metric(row, metrics)), std::cmp::Reverse(row.interface_index));
        crate::path::in_prefix(remote, prefix, row.prefix_len).then_some((rank, row.interface_index))
    });
    covering.max_by_key(|(rank, _)| *rank).map(|(_, index)| index)
}

/// `NL_NEIGHBOR_STATE` as netreach's: `NlnsUnreachable` (0) is what Windows concludes when
/// resolution goes unanswered, `NlnsIncomplete` (1) a resolution still under way.
pub fn neighbour_state(state: i32) -> Result<NeighbourState, RowError> {
    Ok(match state {
        0 => NeighbourState::Failed,
        1 => NeighbourState::Incomplete,
        2 => NeighbourState::Probe,
        3 => NeighbourState::Delay,
        4 => NeighbourState::Stale,
        5 => NeighbourState::Reachable,
        6 => NeighbourState::Permanent,
        other => return Err(RowError::NeighbourState(other)),
    })
}

/// One neighbour row as a gateway's entry.
pub fn gateway_neighbour(row: &NeighbourRow) -> Result<GatewayNeighbour, RowError> {
    Ok(GatewayNeighbour {
        address: row.address.ip()?,
        interface_index: row.interface_index,
        state: neighbour_state(row.state)?,
        // Windows keeps no such time in the entry (`ReachabilityTime` is a timer, not a date).
        unanswered_since: None,
    })
}

/// The gateways whose neighbour entries are read: each default route's, once.
pub fn gateways(state: &NetworkState) -> Vec<(IpAddr, u32)> {
    let mut wanted: Vec<(IpAddr, u32)> =
        state.default_routes.iter().filter_map(|r| Some((r.gateway?, r.interface_index))).collect();
    wanted.sort_unstable();
    wanted.dedup();
    wanted
}

/// Where a link-local IPv6 remote with a scope goes when the system cannot say: out of the
/// scope's interface if it has an IPv6 link-local address (fe80::/64 is on-link on every
/// interface with IPv6, RFC 4291 2.5.6, whether a copy of the table lists it or not), else
/// nowhere.
pub fn link_local_on(scope: u32, adapters: &[AdapterRow]) -> Option<u32> {
    let on_link = |a: &&AdapterRow| a.ipv6_if_index == scope || (a.ipv6_if_index == 0 && a.if_index == scope);
    let adapter = adapters.iter().find(on_link)?;
    let has_link_local =
        adapter.unicast.iter().any(|u| matches!(u.address.ip(), Ok(IpAddr::V6(v6)) if v6.is_unicast_link_local()));
    has_link_local.then_some(scope)
}

#[path = "rows_dns.rs"]
mod dns;
pub use dns::dns;

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
