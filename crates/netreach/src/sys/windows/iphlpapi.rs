//! IP Helper reads: the adapters with their addresses and DNS servers and suffixes
//! (`GetAdaptersAddresses`), the routes (`GetIpForwardTable2`), the interface metrics
//! (`GetIpInterfaceTable`), the gateways' neighbour entries (`neighbours.rs`), and route
//! lookups for path monitors (`GetBestRoute2`). This file only copies Windows' structures into plain
//! rows (the unsafe part); what they mean is decided in `rows.rs`, pure and tested everywhere.

use std::collections::HashMap;
use std::ffi::c_void;
use std::net::IpAddr;

use windows::core::GUID;
use windows::Win32::Foundation::{
    ERROR_BUFFER_OVERFLOW, ERROR_HOST_UNREACHABLE, ERROR_NETWORK_UNREACHABLE, ERROR_NOT_FOUND, ERROR_NOT_SUPPORTED,
    ERROR_SUCCESS, WIN32_ERROR,
};
use windows::Win32::NetworkManagement::IpHelper::{
    ConvertInterfaceLuidToGuid, FreeMibTable, GetAdaptersAddresses, GetBestRoute2, GetIpForwardTable2,
    GetIpInterfaceTable, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH,
    IP_ADAPTER_DNS_SERVER_ADDRESS_XP, IP_ADAPTER_DNS_SUFFIX, IP_ADAPTER_UNICAST_ADDRESS_LH, MIB_IPFORWARD_ROW2,
    MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW, MIB_IPINTERFACE_TABLE,
};
use windows::Win32::Networking::WinSock::{
    ADDRESS_FAMILY, AF_INET, AF_INET6, AF_UNSPEC, SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_INET,
};

use crate::model::NetworkState;
use crate::rows::{self, AdapterRow, InterfaceMetricRow, RawIp, RouteRow, UnicastRow};

/// A Win32 error code as an `io::Error` (its text comes from the system).
pub(crate) fn win32(code: WIN32_ERROR) -> std::io::Error {
    std::io::Error::from_raw_os_error(code.0 as i32)
}

/// The machine's interfaces and default routes, plus every interface's GUID (what NLM
/// connections name as their adapter), as a number.
pub(crate) struct Snapshot {
    pub state: NetworkState,
    pub guids: HashMap<u32, u128>,
}

/// Reads interfaces, addresses, default routes, interface metrics, the resolver
/// configuration and the default routes' gateways' neighbour entries.
pub(crate) fn snapshot() -> std::io::Result<Snapshot> {
    let rows = Rows::read()?;
    let mut state = rows::state(&rows.adapters, &rows.routes, &rows.metrics);
    state.dns = Some(rows::dns(&rows.adapters));
    state.gateways = super::neighbours::read(&rows::gateways(&state));
    Ok(Snapshot { state, guids: rows.guids })
}

/// Everything IP Helper says, as plain rows, plus each interface's GUID.
struct Rows {
    adapters: Vec<AdapterRow>,
    guids: HashMap<u32, u128>,
    routes: Vec<RouteRow>,
    metrics: Vec<InterfaceMetricRow>,
}

impl Rows {
    fn read() -> std::io::Result<Rows> {
        let buffer = adapters()?;
        let (mut adapters, mut guids) = (Vec::new(), HashMap::new());
        let mut next = buffer.first();
        while let Some(adapter) = next {
            // SAFETY: `adapter` is an entry of `buffer`, which a successful GetAdaptersAddresses
            // filled and which lives until this function returns.
            let row = unsafe { adapter_row(adapter) };
            let mut guid = GUID::zeroed();
            // SAFETY: both pointers are to live locals of the declared types; the call reads the
            // LUID and writes only the GUID.
            if unsafe { ConvertInterfaceLuidToGuid(&adapter.Luid, &mut guid) } == ERROR_SUCCESS {
                if let Ok(interface) = rows::interface(&row) {
                    guids.entry(interface.index).or_insert(guid.to_u128());
                }
            }
            adapters.push(row);
            // SAFETY: `Next` is null or points to the next entry, which GetAdaptersAddresses laid
            // out (aligned, initialised) inside the same live buffer.
            next = unsafe { adapter.Next.as_ref() };
        }
        let routes = RouteTable::read()?.rows().iter().map(route_row).collect();
        Ok(Rows { adapters, guids, routes, metrics: interface_metrics()? })
    }
}

/// `GetAdaptersAddresses`' output: a linked list in one buffer, 8-byte aligned. Either empty
/// (no adapters) or a buffer a successful call filled, its first entry at the start: only
/// [`adapters`] makes one.
struct Adapters(Vec<u64>);

// The buffer is a `Vec<u64>` so that its start is aligned for the entries.
const _: () = assert!(std::mem::align_of::<IP_ADAPTER_ADDRESSES_LH>() <= std::mem::align_of::<u64>());

impl Adapters {
    fn first(&self) -> Option<&IP_ADAPTER_ADDRESSES_LH> {
        // SAFETY: a non-empty buffer was filled by a successful GetAdaptersAddresses, which put
        // its first entry (whole, inside the size it was given) at the start; the start is
        // aligned for it (asserted above) and every byte is initialised (zeroed, then written).
        // The reference borrows `self`, so the buffer outlives it.
        (!self.0.is_empty()).then(|| unsafe { &*(self.0.as_ptr() as *const IP_ADAPTER_ADDRESSES_LH) })
    }
}

fn adapters() -> std::io::Result<Adapters> {
    let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST;
    // The list can grow between the sizing call and the read: retry a few times (Microsoft's
    // own sample does the same).
    let mut size: u32 = 16 * 1024;
    for _ in 0..4 {
        let mut buffer = vec![0u64; (size as usize).div_ceil(8)];
        // SAFETY: `buffer` holds at least `size` bytes (size / 8 rounded up, in u64s), aligned
        // for the entries; `size` tells the call that capacity (it writes no more) and receives
        // the size needed on ERROR_BUFFER_OVERFLOW. The reserved argument is null (None).
        let result = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC.0),
                flags,
                None,
                Some(buffer.as_mut_ptr() as *mut IP_ADAPTER_ADDRESSES_LH),
                &mut size,
            )
        };
        match WIN32_ERROR(result) {
            ERROR_SUCCESS => return Ok(Adapters(buffer)),
            ERROR_BUFFER_OVERFLOW => continue,
            // No adapters at all.
            e if e == WIN32_ERROR(232) || e == WIN32_ERROR(1168) => return Ok(Adapters(Vec::new())),
            e => return Err(win32(e)),
        }
    }
    Err(std::io::Error::other("GetAdaptersAddresses: the adapter list kept growing"))
}

/// One adapter copied into a plain row.
///
/// # Safety
/// `adapter` comes from a successful `GetAdaptersAddresses` whose buffer is alive.
unsafe fn adapter_row(adapter: &IP_ADAPTER_ADDRESSES_LH) -> AdapterRow {
    // SAFETY: a union of plain integers (an alignment u64, or `Length` and `IfIndex`): any bits
    // read as `IfIndex` are a valid u32.
    let if_index = unsafe { adapter.Anonymous1.Anonymous.IfIndex };
    // SAFETY: by this function's contract the buffer is alive, and GetAdaptersAddresses points
    // `FriendlyName` at a NUL-terminated string inside it (it is never skipped: no
    // GAA_FLAG_SKIP_FRIENDLY_NAME), or leaves it null, which is checked first.
    let friendly_name = (!adapter.FriendlyName.is_null()).then(|| unsafe { adapter.FriendlyName.as_wide() }.to_vec());
    let mac_len = (adapter.PhysicalAddressLength as usize).min(adapter.PhysicalAddress.len());
    let mut unicast = Vec::new();
    let mut next = adapter.FirstUnicastAddress as *const IP_ADAPTER_UNICAST_ADDRESS_LH;
    // SAFETY: `FirstUnicastAddress` and each entry's `Next` are null or point to an entry of
    // the same live buffer (this function's contract), laid out aligned and initialised.
    while let Some(entry) = unsafe { next.as_ref() } {
        // SAFETY: `lpSockaddr` is null or points into the live buffer at a SOCKADDR_IN or
        // SOCKADDR_IN6 that GetAdaptersAddresses wrote whole and aligned, as `raw_ip` requires.
        if let Some(address) = unsafe { raw_ip(entry.Address.lpSockaddr) } {
            unicast.push(UnicastRow {
                address,
                prefix_len: entry.OnLinkPrefixLength,
                dad_state: entry.DadState.0,
                suffix_origin: entry.SuffixOrigin.0,
                valid_lifetime: entry.ValidLifetime,
                preferred_lifetime: entry.PreferredLifetime,
            });
        }
        next = entry.Next;
    }
    let mut dns_servers = Vec::new();
    let mut next = adapter.FirstDnsServerAddress as *const IP_ADAPTER_DNS_SERVER_ADDRESS_XP;
    // SAFETY: `FirstDnsServerAddress` and each entry's `Next` are null or point to an entry of
    // the same live buffer (this function's contract; DNS servers are not skipped).
    while let Some(entry) = unsafe { next.as_ref() } {
        // SAFETY: as for the unicast addresses: null, or a whole, aligned SOCKADDR_IN or
        // SOCKADDR_IN6 in the live buffer.
        dns_servers.extend(unsafe { raw_ip(entry.Address.lpSockaddr) });
        next = entry.Next;
    }
    // SAFETY: `DnsSuffix` is null or a NUL-terminated string inside the live buffer, as for
    // `FriendlyName` above.
    let dns_suffix = (!adapter.DnsSuffix.is_null()).then(|| unsafe { adapter.DnsSuffix.as_wide() }.to_vec());
    let mut dns_suffixes = Vec::new();
    let mut next = adapter.FirstDnsSuffix as *const IP_ADAPTER_DNS_SUFFIX;
    // SAFETY: `FirstDnsSuffix` and each entry's `Next` are null or point to an entry of the
    // same live buffer, whose `String` is a fixed array (read up to its first NUL, or whole).
    while let Some(entry) = unsafe { next.as_ref() } {
        let end = entry.String.iter().position(|&u| u == 0).unwrap_or(entry.String.len());
        dns_suffixes.push(entry.String[..end].to_vec());
        next = entry.Next;
    }
    AdapterRow {
        if_index,
        ipv6_if_index: adapter.Ipv6IfIndex,
        friendly_name,
        if_type: adapter.IfType,
        oper_status: adapter.OperStatus.0 as u32,
        mtu: adapter.Mtu,
        physical_address: adapter.PhysicalAddress[..mac_len].to_vec(),
        unicast,
        dns_servers,
        dns_suffix,
        dns_suffixes,
    }
}

/// The family and address bytes of a socket address; `None` for a null pointer.
///
/// # Safety
/// `sockaddr` is null or points to a live, initialised socket address of at least
/// `SOCKADDR`'s size, aligned for `SOCKADDR_IN` and `SOCKADDR_IN6`, and whole for its family:
/// a full `SOCKADDR_IN` when `AF_INET`, a full `SOCKADDR_IN6` when `AF_INET6`.
unsafe fn raw_ip(sockaddr: *const SOCKADDR) -> Option<RawIp> {
    // SAFETY: null, or a live address at least as large and aligned as SOCKADDR (the contract).
    let family = unsafe { sockaddr.as_ref() }?.sa_family;
    let bytes = if family == AF_INET {
        // SAFETY: the family says a whole, aligned SOCKADDR_IN is there (the contract).
        let v4 = unsafe { &*(sockaddr as *const SOCKADDR_IN) };
        // SAFETY: every member of the IN_ADDR union is plain bytes or integers: any bits are valid.
        unsafe { v4.sin_addr.S_un.S_addr }.to_ne_bytes().to_vec()
    } else if family == AF_INET6 {
        // SAFETY: the family says a whole, aligned SOCKADDR_IN6 is there (the contract).
        let v6 = unsafe { &*(sockaddr as *const SOCKADDR_IN6) };
        // SAFETY: every member of the IN6_ADDR union is plain bytes or integers: any bits are valid.
        unsafe { v6.sin6_addr.u.Byte }.to_vec()
    } else {
        Vec::new() // another family: `rows` skips it
    };
    Some(RawIp { family: family.0, bytes })
}

pub(super) fn raw_ip_of_inet(addr: &SOCKADDR_INET) -> RawIp {
    // SAFETY: a SOCKADDR_INET is the union of SOCKADDR_IN and SOCKADDR_IN6, so it is as large
    // and aligned as either (and larger than SOCKADDR). Its leading family field says which
    // member was written (ours start zeroed, IP Helper writes its own whole), so the member
    // `raw_ip` reads for that family is whole and initialised; the pointer is not null.
    unsafe { raw_ip(addr as *const SOCKADDR_INET as *const SOCKADDR) }.unwrap_or(RawIp { family: 0, bytes: Vec::new() })
}

pub(super) fn inet_of(ip: IpAddr) -> SOCKADDR_INET {
    let mut inet = SOCKADDR_INET::default();
    match ip {
        IpAddr::V4(v4) => {
            inet.Ipv4.sin_family = AF_INET;
            inet.Ipv4.sin_addr.S_un.S_addr = u32::from_ne_bytes(v4.octets());
        }
        IpAddr::V6(v6) => {
            inet.Ipv6.sin6_family = AF_INET6;
            inet.Ipv6.sin6_addr.u.Byte = v6.octets();
        }
    }
    inet
}

fn route_row(row: &MIB_IPFORWARD_ROW2) -> RouteRow {
    RouteRow {
        prefix: raw_ip_of_inet(&row.DestinationPrefix.Prefix),
        prefix_len: row.DestinationPrefix.PrefixLength,
        next_hop: raw_ip_of_inet(&row.NextHop),
        interface_index: row.InterfaceIndex,
        metric: row.Metric,
    }
}

/// A table IP Helper allocated (`GetIpForwardTable2`, `GetIpInterfaceTable`): a count, then
/// that many rows; freed by `FreeMibTable` on drop.
pub(super) struct MibTable<T, R> {
    pub(super) table: *mut T,
    pub(super) count: fn(&T) -> u32,
    pub(super) first: usize,
    pub(super) row: std::marker::PhantomData<R>,
}

impl<T, R> MibTable<T, R> {
    pub(super) fn rows(&self) -> &[R] {
        if self.table.is_null() {
            return &[];
        }
        // SAFETY: a non-null table from IP Helper is alive and initialised until `drop`.
        let count = (self.count)(unsafe { &*self.table }) as usize;
        // `Table` is declared `[_; 1]` but is a variable-length array: the pointer to its first
        // row is derived from the table's own pointer, not from a reference to the one declared
        // row, so it may reach every row.
        let first = self.table.wrapping_byte_add(self.first);
        // SAFETY: the table holds `count` initialised, aligned rows from `first` on, alive until
        // `drop`; the slice borrows `self`, so it cannot outlive them.
        unsafe { std::slice::from_raw_parts(first.cast::<R>(), count) }
    }
}

impl<T, R> Drop for MibTable<T, R> {
    fn drop(&mut self) {
        if !self.table.is_null() {
            // SAFETY: IP Helper allocated this table; it is freed once, here, and no row
            // borrowed from it (`rows` borrows `self`) outlives `self`.
            unsafe { FreeMibTable(self.table as *const c_void) };
        }
    }
}

/// The routing table (both families).
struct RouteTable;

impl RouteTable {
    /// Every route; empty when there are none.
    fn read() -> std::io::Result<MibTable<MIB_IPFORWARD_TABLE2, MIB_IPFORWARD_ROW2>> {
        let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
        // SAFETY: `table` is a live local the call sets to a table it allocated, which the
        // `MibTable` then owns and frees; it stays null if nothing was allocated.
        match unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) } {
            ERROR_SUCCESS | ERROR_NOT_FOUND => Ok(MibTable {
                table,
                count: |t| t.NumEntries,
                first: std::mem::offset_of!(MIB_IPFORWARD_TABLE2, Table),
                row: std::marker::PhantomData,
            }),
            e => Err(win32(e)),
        }
    }
}

/// Every interface's metric for `family`, or the error code.
fn interface_table(family: ADDRESS_FAMILY) -> Result<Vec<InterfaceMetricRow>, WIN32_ERROR> {
    let mut table: *mut MIB_IPINTERFACE_TABLE = std::ptr::null_mut();
    // SAFETY: `table` is a live local the call sets to a table it allocated, which the
    // `MibTable` below owns and frees; it stays null if nothing was allocated.
    let result = unsafe { GetIpInterfaceTable(family, &mut table) };
    let owned: MibTable<MIB_IPINTERFACE_TABLE, MIB_IPINTERFACE_ROW> = MibTable {
        table,
        count: |t| t.NumEntries,
        first: std::mem::offset_of!(MIB_IPINTERFACE_TABLE, Table),
        row: std::marker::PhantomData,
    };
    match result {
        ERROR_SUCCESS | ERROR_NOT_FOUND => Ok(owned
            .rows()
            .iter()
            .map(|r| InterfaceMetricRow { family: r.Family.0, interface_index: r.InterfaceIndex, metric: r.Metric })
            .collect()),
        e => Err(e),
    }
}

/// Every interface's metric of both families. `GetIpInterfaceTable` answers
/// `ERROR_NOT_SUPPORTED` when there is no stack of the family (its documentation), and then
/// that family has no routes to rank either. (Wine 8.0's is a stub answering that for both:
/// route metrics alone rank its routes, see `rows::effective_metric`.)
fn interface_metrics() -> std::io::Result<Vec<InterfaceMetricRow>> {
    let mut metrics = Vec::new();
    for family in [AF_INET, AF_INET6] {
        match interface_table(family) {
            Ok(rows) => metrics.extend(rows),
            Err(ERROR_NOT_SUPPORTED) => {}
            Err(e) => return Err(win32(e)),
        }
    }
    Ok(metrics)
}

/// The interface Windows would send traffic from `local` to `remote` through: `GetBestRoute2`
/// (`Ok(None)` when there is no route). A link-local path is judged on its link: with a
/// `scope` (the interface index of its scope id), the lookup is made on that interface and
/// the addresses carry it as their scope id, as a socket bound there would.
pub(crate) fn best_route(local: IpAddr, remote: IpAddr, scope: Option<u32>) -> std::io::Result<Option<u32>> {
    let (mut source, mut destination) = (inet_of(local), inet_of(remote));
    if let Some(index) = scope {
        for (inet, ip) in [(&mut source, local), (&mut destination, remote)] {
            if ip.is_ipv6() {
                inet.Ipv6.Anonymous.sin6_scope_id = index;
            }
        }
    }
    let mut row = MIB_IPFORWARD_ROW2::default();
    let mut chosen = SOCKADDR_INET::default();
    // SAFETY: every pointer is to a live local of the declared type: the source and destination
    // are read, the best route and source address written. No LUID (None); the index is the
    // scope's interface, or 0 to let the system choose.
    let result =
        unsafe { GetBestRoute2(None, scope.unwrap_or(0), Some(&source), &destination, 0, &mut row, &mut chosen) };
    match result {
        ERROR_SUCCESS => Ok(Some(row.InterfaceIndex)),
        ERROR_NETWORK_UNREACHABLE | ERROR_HOST_UNREACHABLE | ERROR_NOT_FOUND => Ok(None),
        ERROR_NOT_SUPPORTED => not_supported(remote, scope),
        e => Err(win32(e)),
    }
}

/// `GetBestRoute2`'s `ERROR_NOT_SUPPORTED` means, by its documentation, that there is no
/// stack for the remote's family on this computer: then no route. A family with an address
/// on some adapter has a stack, so for it the answer can only be the function's own absence
/// (Wine 8.0's `GetBestRoute2` is a stub): then the routing table's longest matching prefix,
/// lowest effective metric among equals, on the scope's interface when there is one
/// (`rows::longest_match`); a link-local remote with a scope is on its link when that link
/// has IPv6 (`rows::link_local_on`: Wine's table copy lists no IPv6 routes). That ignores what only the system knows (the source address's
/// interface under the strong host model), so it is used only then.
fn not_supported(remote: IpAddr, scope: Option<u32>) -> std::io::Result<Option<u32>> {
    let rows = Rows::read()?;
    let family = if remote.is_ipv4() { rows::AF_INET } else { rows::AF_INET6 };
    if let (Some(index), IpAddr::V6(v6)) = (scope, remote) {
        if v6.is_unicast_link_local() {
            return Ok(rows::link_local_on(index, &rows.adapters));
        }
    }
    let stack = rows.adapters.iter().flat_map(|a| &a.unicast).any(|u| u.address.family == family);
    Ok(stack.then(|| rows::longest_match(remote, scope, &rows.routes, &rows.metrics)).flatten())
}
