//! The neighbour entries (ARP, IPv6 neighbour discovery) of the default routes' gateways, and
//! asking Windows to resolve them again.
//!
//! Windows has no notification for neighbour changes, so the entries are read with every
//! re-read (IP Helper's interface, address and route notifications, NLM's events, the DNS
//! registry watch) and after a re-verification.
//!
//! `GetIpNetEntry2` reads one entry (the gateway's address and interface index); where it is
//! missing, the whole table (`GetIpNetTable2`) is read and the gateways' rows picked from it.
//! That is Wine 8.0: its iphlpapi exports `GetIpNetTable2` (from the host's own neighbour
//! table) but neither `GetIpNetEntry2` nor `ResolveIpNetEntry2`. Both are therefore looked up
//! at run time (`GetProcAddress`): a static import of a missing function would stop the
//! program from loading there at all.
//!
//! A gateway whose entry cannot be read (none yet, an interface gone since the routes were
//! read) has none here: no evidence, and the level is left alone.

use std::net::IpAddr;
use std::sync::OnceLock;

use windows::core::{s, w};
use windows::Win32::Foundation::{ERROR_SUCCESS, WIN32_ERROR};
use windows::Win32::NetworkManagement::IpHelper::{GetIpNetTable2, MIB_IPNET_ROW2, MIB_IPNET_TABLE2};
use windows::Win32::Networking::WinSock::{AF_INET, AF_INET6, SOCKADDR_INET};
use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

use super::iphlpapi::{inet_of, raw_ip_of_inet, MibTable};
use crate::model::GatewayNeighbour;
use crate::rows::{self, NeighbourRow};

/// `GetIpNetEntry2` (netioapi.h).
type EntryFn = unsafe extern "system" fn(*mut MIB_IPNET_ROW2) -> WIN32_ERROR;
/// `ResolveIpNetEntry2` (netioapi.h).
type ResolveFn = unsafe extern "system" fn(*mut MIB_IPNET_ROW2, *const SOCKADDR_INET) -> WIN32_ERROR;

/// The calls this system's iphlpapi offers.
struct Calls {
    entry: Option<EntryFn>,
    resolve: Option<ResolveFn>,
}

fn calls() -> &'static Calls {
    static CALLS: OnceLock<Calls> = OnceLock::new();
    CALLS.get_or_init(|| {
        // SAFETY: a static NUL-terminated name. The crate imports other functions from
        // iphlpapi.dll, so it is loaded for the life of the process and the handle stays valid.
        let Ok(module) = (unsafe { GetModuleHandleW(w!("iphlpapi.dll")) }) else {
            return Calls { entry: None, resolve: None };
        };
        // SAFETY: a live module handle and a static NUL-terminated name; the address found is
        // that export's, whose documented signature is `EntryFn`'s (a pointer to a row in,
        // a status out), so calling it through that type is calling it as declared.
        let entry = unsafe { GetProcAddress(module, s!("GetIpNetEntry2")) }
            .map(|f| unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, EntryFn>(f) });
        // SAFETY: as above, for `ResolveIpNetEntry2`, whose signature is `ResolveFn`'s.
        let resolve = unsafe { GetProcAddress(module, s!("ResolveIpNetEntry2")) }
            .map(|f| unsafe { std::mem::transmute::<unsafe extern "system" fn() -> isize, ResolveFn>(f) });
        Calls { entry, resolve }
    })
}

/// The row asking for `gateway` on interface `index`.
fn row_for(gateway: IpAddr, index: u32) -> MIB_IPNET_ROW2 {
    MIB_IPNET_ROW2 { Address: inet_of(gateway), InterfaceIndex: index, ..MIB_IPNET_ROW2::default() }
}

fn plain(row: &MIB_IPNET_ROW2) -> NeighbourRow {
    NeighbourRow { address: raw_ip_of_inet(&row.Address), interface_index: row.InterfaceIndex, state: row.State.0 }
}

/// The entries of `wanted` (gateway, interface index) that Windows has, sorted.
pub(crate) fn read(wanted: &[(IpAddr, u32)]) -> Vec<GatewayNeighbour> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let rows = match calls().entry {
        Some(get) => wanted.iter().filter_map(|&(gateway, index)| entry(get, gateway, index)).collect(),
        None => from_table(wanted),
    };
    let mut found: Vec<GatewayNeighbour> = rows.iter().filter_map(|row| rows::gateway_neighbour(row).ok()).collect();
    found.sort_by_key(|n| (n.address, n.interface_index));
    found.dedup();
    found
}

/// One entry by `GetIpNetEntry2`; `None` when there is none (or it cannot be read).
fn entry(get: EntryFn, gateway: IpAddr, index: u32) -> Option<NeighbourRow> {
    #[cfg(test)]
    super::session::faults::check("GetIpNetEntry2").ok()?;
    let mut row = row_for(gateway, index);
    // SAFETY: `get` is GetIpNetEntry2, called as declared (see `calls`); `row` is a live local
    // with the address and interface index set, which the call reads, filling in the rest.
    (unsafe { get(&mut row) } == ERROR_SUCCESS).then(|| plain(&row))
}

/// The rows of `wanted` from the whole table (`GetIpNetTable2`), read per family: Wine 8.0
/// answers `AF_INET` only (`ERROR_INVALID_FUNCTION` for `AF_INET6`, and for `AF_UNSPEC`
/// after filling in the IPv4 rows), so a family that fails has no entries here.
fn from_table(wanted: &[(IpAddr, u32)]) -> Vec<NeighbourRow> {
    let wanted = |row: &NeighbourRow| {
        row.address.ip().is_ok_and(|ip| wanted.iter().any(|&(g, i)| g == ip && i == row.interface_index))
    };
    let mut found = Vec::new();
    #[cfg(test)]
    if super::session::faults::check("GetIpNetTable2").is_err() {
        return found;
    }
    for family in [AF_INET, AF_INET6] {
        let mut table: *mut MIB_IPNET_TABLE2 = std::ptr::null_mut();
        // SAFETY: `table` is a live local the call sets to a table it allocated, which the
        // `MibTable` below owns and frees (whatever the result); it stays null if nothing was
        // allocated.
        let result = unsafe { GetIpNetTable2(family, &mut table) };
        let owned: MibTable<MIB_IPNET_TABLE2, MIB_IPNET_ROW2> = MibTable {
            table,
            count: |t| t.NumEntries,
            first: std::mem::offset_of!(MIB_IPNET_TABLE2, Table),
            row: std::marker::PhantomData,
        };
        if result == ERROR_SUCCESS {
            found.extend(owned.rows().iter().map(plain).filter(wanted));
        }
    }
    found
}

/// Asks Windows to resolve each of `wanted` again now (`ResolveIpNetEntry2`: an ARP request
/// or a neighbour solicitation to the gateway, sent by Windows). Each call returns once the
/// gateway answered or Windows' own retransmissions ran out (a few seconds), so the wait is
/// bounded by Windows. Returns the gateways asked, or why none could be: the call is missing
/// (Wine 8.0).
pub(crate) fn reverify(wanted: &[(IpAddr, u32)]) -> Result<usize, String> {
    let resolve = calls().resolve.ok_or("this system's iphlpapi has no ResolveIpNetEntry2")?;
    for &(gateway, index) in wanted {
        let mut row = row_for(gateway, index);
        // SAFETY: `resolve` is ResolveIpNetEntry2, called as declared (see `calls`); `row` is a
        // live local with the address and interface index set, which the call reads and fills;
        // a null source address lets Windows choose it. The outcome is read back by `read`.
        let _ = unsafe { resolve(&mut row, std::ptr::null()) };
    }
    Ok(wanted.len())
}
