//! IP Helper: the interfaces, addresses and default routes (`GetAdaptersAddresses`,
//! `GetIpForwardTable2`), change notifications, and route lookups for path monitors
//! (`GetBestRoute2`).

use std::collections::HashMap;
use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::mpsc::Sender;

use windows::core::GUID;
use windows::Win32::Foundation::{
    ERROR_BUFFER_OVERFLOW, ERROR_HOST_UNREACHABLE, ERROR_NETWORK_UNREACHABLE, ERROR_NOT_FOUND, ERROR_NOT_SUPPORTED,
    ERROR_SUCCESS, HANDLE, WIN32_ERROR,
};
use windows::Win32::NetworkManagement::IpHelper::{
    CancelMibChangeNotify2, ConvertInterfaceLuidToGuid, FreeMibTable, GetAdaptersAddresses, GetBestRoute2,
    GetIpForwardTable2, NotifyIpInterfaceChange, NotifyRouteChange2, NotifyUnicastIpAddressChange,
    GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST, IP_ADAPTER_ADDRESSES_LH,
    IP_ADAPTER_UNICAST_ADDRESS_LH, MIB_IPFORWARD_ROW2, MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW,
    MIB_NOTIFICATION_TYPE, MIB_UNICASTIPADDRESS_ROW,
};
use windows::Win32::Networking::WinSock::{
    IpDadStateDeprecated, IpDadStateDuplicate, IpDadStateTentative, IpSuffixOriginRandom, AF_INET, AF_INET6, AF_UNSPEC,
    SOCKADDR, SOCKADDR_IN, SOCKADDR_IN6, SOCKADDR_INET,
};

use super::Msg;
use crate::model::{Address, AddressFlags, AddressScope, DefaultRoute, Family, Interface, NetworkState};
use crate::nlm;

/// A Win32 error code as an `io::Error` (its text comes from the system).
fn win32(code: WIN32_ERROR) -> std::io::Error {
    std::io::Error::from_raw_os_error(code.0 as i32)
}

/// Windows has one routing table; reported as Linux's `main` so output reads the same.
const MAIN_TABLE: u32 = 254;
/// "Forever" in IP Helper lifetimes.
const INFINITE: u32 = u32::MAX;

/// The machine's interfaces and default routes, plus every interface's GUID (what NLM
/// connections name as their adapter).
pub(crate) struct Snapshot {
    pub state: NetworkState,
    pub guids: HashMap<u32, GUID>,
}

/// Reads interfaces, addresses and default routes.
pub(crate) fn snapshot() -> std::io::Result<Snapshot> {
    let buffer = adapters()?;
    let mut state = NetworkState::default();
    let mut guids = HashMap::new();
    let mut next = buffer.first();
    while let Some(adapter) = next {
        // SAFETY: `adapter` is an entry of `buffer`, which a successful GetAdaptersAddresses
        // filled and which lives until this function returns.
        let (interface, guid) = unsafe { interface(adapter) };
        if let Some(guid) = guid {
            guids.insert(interface.index, guid);
        }
        state.interfaces.push(interface);
        // SAFETY: `Next` is null or points to the next entry, which GetAdaptersAddresses laid out
        // (aligned, initialised) inside the same live buffer.
        next = unsafe { adapter.Next.as_ref() };
    }
    state.interfaces.sort_by_key(|i| i.index);
    state.interfaces.dedup_by_key(|i| i.index);
    state.default_routes = default_routes(&state)?;
    Ok(Snapshot { state, guids })
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
    let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
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

/// One adapter as an interface, with its GUID.
///
/// # Safety
/// `adapter` comes from a successful `GetAdaptersAddresses` whose buffer is alive.
unsafe fn interface(adapter: &IP_ADAPTER_ADDRESSES_LH) -> (Interface, Option<GUID>) {
    // SAFETY: a union of plain integers (an alignment u64, or `Length` and `IfIndex`): any bits
    // read as `IfIndex` are a valid u32.
    let index = match unsafe { adapter.Anonymous1.Anonymous.IfIndex } {
        0 => adapter.Ipv6IfIndex,
        v4 => v4,
    };
    // SAFETY: by this function's contract the buffer is alive, and GetAdaptersAddresses points
    // `FriendlyName` at a NUL-terminated string inside it (it is never skipped: no
    // GAA_FLAG_SKIP_FRIENDLY_NAME).
    let name = unsafe { adapter.FriendlyName.to_string() }.unwrap_or_default();
    let oper_state = nlm::oper_state(adapter.OperStatus.0 as u32);
    let mac_len = (adapter.PhysicalAddressLength as usize).min(adapter.PhysicalAddress.len());
    let mac = (mac_len > 0)
        .then(|| adapter.PhysicalAddress[..mac_len].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
    let mut addresses = Vec::new();
    let mut next = adapter.FirstUnicastAddress as *const IP_ADAPTER_UNICAST_ADDRESS_LH;
    // SAFETY: `FirstUnicastAddress` and each entry's `Next` are null or point to an entry of
    // the same live buffer (this function's contract), laid out aligned and initialised.
    while let Some(unicast) = unsafe { next.as_ref() } {
        // SAFETY: `unicast` is an entry of the live buffer, as `address` requires.
        if let Some(address) = unsafe { address(unicast) } {
            addresses.push(address);
        }
        next = unicast.Next;
    }
    addresses.sort_by_key(|a| (a.family(), a.key()));
    addresses.dedup_by_key(|a| a.key());
    let mut guid = GUID::zeroed();
    let luid = adapter.Luid;
    // SAFETY: both pointers are to live locals of the declared types; the call reads the LUID
    // and writes only the GUID.
    let guid = (unsafe { ConvertInterfaceLuidToGuid(&luid, &mut guid) } == ERROR_SUCCESS).then_some(guid);
    let interface = Interface {
        index,
        name,
        // Windows names are UTF-16, converted before this point.
        name_bytes: None,
        kind: nlm::interface_kind(adapter.IfType),
        // GetAdaptersAddresses lists enabled adapters only: a disabled one is absent.
        up: true,
        oper_state,
        carrier: !matches!(
            oper_state,
            crate::OperState::Down | crate::OperState::LowerLayerDown | crate::OperState::NotPresent
        ),
        mtu: adapter.Mtu,
        mac,
        addresses,
    };
    (interface, guid)
}

/// # Safety
/// `unicast` is an entry of a live `GetAdaptersAddresses` buffer.
unsafe fn address(unicast: &IP_ADAPTER_UNICAST_ADDRESS_LH) -> Option<Address> {
    // SAFETY: `lpSockaddr` is null or points into the live buffer at a SOCKADDR_IN or
    // SOCKADDR_IN6 that GetAdaptersAddresses wrote whole and aligned, as `ip_of` requires.
    let ip = unsafe { ip_of(unicast.Address.lpSockaddr) }?;
    let lifetime = |v: u32| (v != INFINITE).then_some(v);
    let scope = if ip.is_loopback() {
        AddressScope::Host
    } else if Address::new(ip, 0).is_link_local() {
        AddressScope::Link
    } else {
        AddressScope::Global
    };
    Some(Address {
        address: ip,
        prefix_len: unicast.OnLinkPrefixLength,
        scope,
        flags: AddressFlags {
            tentative: unicast.DadState == IpDadStateTentative,
            deprecated: unicast.DadState == IpDadStateDeprecated,
            temporary: unicast.SuffixOrigin == IpSuffixOriginRandom,
            dad_failed: unicast.DadState == IpDadStateDuplicate,
            permanent: unicast.ValidLifetime == INFINITE,
        },
        valid_lifetime: lifetime(unicast.ValidLifetime),
        preferred_lifetime: lifetime(unicast.PreferredLifetime),
    })
}

/// # Safety
/// `sockaddr` is null or points to a live, initialised socket address of at least
/// `SOCKADDR`'s size, aligned for `SOCKADDR_IN` and `SOCKADDR_IN6`, and whole for its family:
/// a full `SOCKADDR_IN` when `AF_INET`, a full `SOCKADDR_IN6` when `AF_INET6`.
unsafe fn ip_of(sockaddr: *const SOCKADDR) -> Option<IpAddr> {
    // SAFETY: null, or a live address at least as large and aligned as SOCKADDR (the contract).
    let family = unsafe { sockaddr.as_ref() }?.sa_family;
    if family == AF_INET {
        // SAFETY: the family says a whole, aligned SOCKADDR_IN is there (the contract).
        let v4 = unsafe { &*(sockaddr as *const SOCKADDR_IN) };
        // SAFETY: every member of the IN_ADDR union is plain bytes or integers: any bits are valid.
        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(unsafe { v4.sin_addr.S_un.S_addr }))))
    } else if family == AF_INET6 {
        // SAFETY: the family says a whole, aligned SOCKADDR_IN6 is there (the contract).
        let v6 = unsafe { &*(sockaddr as *const SOCKADDR_IN6) };
        // SAFETY: every member of the IN6_ADDR union is plain bytes or integers: any bits are valid.
        Some(IpAddr::V6(Ipv6Addr::from(unsafe { v6.sin6_addr.u.Byte })))
    } else {
        None
    }
}

fn ip_of_inet(addr: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: a SOCKADDR_INET is the union of SOCKADDR_IN and SOCKADDR_IN6, so it is as large
    // and aligned as either (and larger than SOCKADDR). Its leading family field says which
    // member was written (ours start zeroed, IP Helper writes its own whole), so the member
    // `ip_of` reads for that family is whole and initialised.
    unsafe { ip_of(addr as *const SOCKADDR_INET as *const SOCKADDR) }
}

fn inet_of(ip: IpAddr) -> SOCKADDR_INET {
    let mut inet = SOCKADDR_INET::default();
    match ip {
        IpAddr::V4(v4) => {
            inet.Ipv4.sin_family = AF_INET;
            inet.Ipv4.sin_addr.S_un.S_addr = u32::from(v4).to_be();
        }
        IpAddr::V6(v6) => {
            inet.Ipv6.sin6_family = AF_INET6;
            inet.Ipv6.sin6_addr.u.Byte = v6.octets();
        }
    }
    inet
}

/// `GetIpForwardTable2`'s table, freed by `FreeMibTable` on drop.
struct RouteTable(*mut MIB_IPFORWARD_TABLE2);

impl RouteTable {
    /// The routing table (both families); empty when there are no routes.
    fn read() -> std::io::Result<RouteTable> {
        let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
        // SAFETY: `table` is a live local the call sets to a table it allocated, which this
        // `RouteTable` then owns and frees with FreeMibTable; it stays null if nothing was
        // allocated, which `rows` and `drop` handle.
        match unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) } {
            ERROR_SUCCESS | ERROR_NOT_FOUND => Ok(RouteTable(table)),
            e => Err(win32(e)),
        }
    }

    fn rows(&self) -> &[MIB_IPFORWARD_ROW2] {
        if self.0.is_null() {
            return &[];
        }
        // SAFETY: a non-null table from GetIpForwardTable2 is alive and initialised until `drop`.
        let count = unsafe { (*self.0).NumEntries } as usize;
        // `Table` is declared `[_; 1]` but is a variable-length array: the pointer to its first
        // row is derived from the table's own pointer, not from a reference to the one declared
        // row, so it may reach every row.
        let first = self.0.wrapping_byte_add(std::mem::offset_of!(MIB_IPFORWARD_TABLE2, Table));
        // SAFETY: the table holds `count` initialised, aligned rows from `first` on, alive until
        // `drop`; the slice borrows `self`, so it cannot outlive them.
        unsafe { std::slice::from_raw_parts(first.cast::<MIB_IPFORWARD_ROW2>(), count) }
    }
}

impl Drop for RouteTable {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: GetIpForwardTable2 allocated this table; it is freed once, here, and no
            // row borrowed from it (`rows` borrows `self`) outlives `self`.
            unsafe { FreeMibTable(self.0 as *const c_void) };
        }
    }
}

/// The default routes (prefix length 0) of both families.
fn default_routes(state: &NetworkState) -> std::io::Result<Vec<DefaultRoute>> {
    let table = RouteTable::read()?;
    let mut routes: Vec<DefaultRoute> = table.rows().iter().filter_map(|row| default_route(state, row)).collect();
    routes.sort();
    routes.dedup();
    Ok(routes)
}

fn default_route(state: &NetworkState, row: &MIB_IPFORWARD_ROW2) -> Option<DefaultRoute> {
    if row.DestinationPrefix.PrefixLength != 0 {
        return None;
    }
    let family = Family::of(&ip_of_inet(&row.DestinationPrefix.Prefix)?);
    let gateway = ip_of_inet(&row.NextHop).filter(|g| !g.is_unspecified());
    let interface = state.interface(row.InterfaceIndex).map(|i| i.name.clone()).unwrap_or_default();
    Some(DefaultRoute {
        family,
        gateway,
        interface,
        interface_index: row.InterfaceIndex,
        metric: row.Metric,
        table: MAIN_TABLE,
    })
}

/// The interface Windows would send traffic from `local` to `remote` through: `GetBestRoute2`
/// (`Ok(None)` when there is no route).
pub(crate) fn best_route(local: IpAddr, remote: IpAddr) -> std::io::Result<Option<u32>> {
    let (source, destination) = (inet_of(local), inet_of(remote));
    let mut row = MIB_IPFORWARD_ROW2::default();
    let mut chosen = SOCKADDR_INET::default();
    // SAFETY: every pointer is to a live local of the declared type: the source and destination
    // are read, the best route and source address written. No LUID (None) and index 0 let the
    // system choose the interface.
    let result = unsafe { GetBestRoute2(None, 0, Some(&source), &destination, 0, &mut row, &mut chosen) };
    match result {
        ERROR_SUCCESS => Ok(Some(row.InterfaceIndex)),
        ERROR_NETWORK_UNREACHABLE | ERROR_HOST_UNREACHABLE | ERROR_NOT_FOUND => Ok(None),
        ERROR_NOT_SUPPORTED => longest_match(remote),
        e => Err(win32(e)),
    }
}

/// Where `GetBestRoute2` is missing (Wine 8.0 answers `ERROR_NOT_SUPPORTED`): the routing
/// table's longest matching prefix, lowest metric among equals. This ignores what only the
/// system knows (interface metrics, the source address's interface under the strong host
/// model), so it is used only where the system cannot answer.
fn longest_match(remote: IpAddr) -> std::io::Result<Option<u32>> {
    let table = RouteTable::read()?;
    let covering = table.rows().iter().filter_map(|row| {
        let prefix = ip_of_inet(&row.DestinationPrefix.Prefix)?;
        let length = row.DestinationPrefix.PrefixLength;
        crate::path::in_prefix(remote, prefix, length).then_some((length, row.Metric, row.InterfaceIndex))
    });
    Ok(covering.max_by_key(|&(length, metric, _)| (length, std::cmp::Reverse(metric))).map(|(.., index)| index))
}

/// The IP Helper change notifications, registered for as long as this lives. Each callback's
/// context is a boxed channel sender and nothing else: a late callback can only send a message
/// that nobody reads. `CancelMibChangeNotify2` waits for running callbacks, so the context is
/// freed only after every registration is cancelled.
pub(crate) struct Notifications {
    handles: Vec<HANDLE>,
    context: *mut Sender<Msg>,
}

// SAFETY: the handles are only passed to CancelMibChangeNotify2, which takes them from any
// thread, and the context, a `Box<Sender<Msg>>`, is only freed in Drop: a box of a `Send` value
// may be freed on another thread. Until then IP Helper's threads share it as `&Sender<Msg>`,
// which needs `Sync`. Both bounds are asserted below.
unsafe impl Send for Notifications {}

const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Sender<Msg>>();
};

impl Notifications {
    /// Registers for interface, address and route changes of both families.
    pub(crate) fn register(to_backend: Sender<Msg>) -> std::io::Result<Notifications> {
        let mut this = Notifications { handles: Vec::new(), context: Box::into_raw(Box::new(to_backend)) };
        let context = this.context as *const c_void;
        // Each registration below is sound for the same reasons: the callback has the signature
        // IP Helper calls; `context` is the boxed sender, alive until `drop` has cancelled every
        // registration (and CancelMibChangeNotify2 waits for a callback in progress); `handle`
        // is a live local for the out-handle. If one fails, `this` drops: the earlier ones are
        // cancelled and the context freed.
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyIpInterfaceChange(AF_UNSPEC, Some(on_interface), Some(context), false, &mut handle) })?;
        this.handles.push(handle);
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyUnicastIpAddressChange(AF_UNSPEC, Some(on_address), Some(context), false, &mut handle) })?;
        this.handles.push(handle);
        let mut handle = HANDLE::default();
        // SAFETY: see above.
        check(unsafe { NotifyRouteChange2(AF_UNSPEC, Some(on_route), context, false, &mut handle) })?;
        this.handles.push(handle);
        #[cfg(test)]
        {
            *tests_hook::LAST_CONTEXT.lock().unwrap() = this.context as usize;
        }
        Ok(this)
    }
}

fn check(result: WIN32_ERROR) -> std::io::Result<()> {
    if result == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(win32(result))
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        for handle in self.handles.drain(..) {
            // Fails only for a handle that is not registered, which cannot happen here.
            // SAFETY: `handle` came from a successful registration and is cancelled once (it is
            // drained). This never runs on a callback's thread (callbacks only send), so the
            // wait for a callback in progress cannot wait for itself.
            let _ = unsafe { CancelMibChangeNotify2(handle) };
        }
        // SAFETY: `context` came from `Box::into_raw` in `register` and is freed only here,
        // once. Every registration that could pass it to a callback is cancelled above, and
        // CancelMibChangeNotify2 returned after any callback in progress: nothing reads it now.
        drop(unsafe { Box::from_raw(self.context) });
    }
}

/// Every notification means "read again": the re-read is diffed by the engine. Sending fails
/// only once the backend has stopped, which is harmless.
///
/// # Safety
/// `context` is the `Sender<Msg>` registered by [`Notifications::register`], alive until the
/// registration is cancelled.
unsafe fn notify(context: *const c_void) {
    // SAFETY: by the contract, null or the live boxed sender; a shared reference is fine from
    // any of IP Helper's threads at once, as `Sender` is `Sync` (asserted above).
    if let Some(sender) = unsafe { (context as *const Sender<Msg>).as_ref() } {
        let _ = sender.send(Msg::IpChanged);
    }
}

/// The three callbacks ignore the row and the kind of change: they only say "read again".
///
/// # Safety
/// `context` is the one registered with the callback (as for [`notify`]): IP Helper passes
/// back exactly that, and only until the registration is cancelled.
unsafe extern "system" fn on_interface(
    context: *const c_void,
    _: *const MIB_IPINTERFACE_ROW,
    _: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// # Safety
/// As for [`on_interface`].
unsafe extern "system" fn on_address(
    context: *const c_void,
    _: *const MIB_UNICASTIPADDRESS_ROW,
    _: MIB_NOTIFICATION_TYPE,
) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// # Safety
/// As for [`on_interface`].
unsafe extern "system" fn on_route(context: *const c_void, _: *const MIB_IPFORWARD_ROW2, _: MIB_NOTIFICATION_TYPE) {
    // SAFETY: the registered context, as `notify` requires (this function's contract).
    unsafe { notify(context) }
}

/// Tests call the registered callbacks themselves: Wine never fires them.
#[cfg(test)]
pub(crate) mod tests_hook {
    use std::ffi::c_void;
    use std::sync::Mutex;

    /// The context of the last registration (an address, so the static is `Send`).
    pub(crate) static LAST_CONTEXT: Mutex<usize> = Mutex::new(0);

    /// Calls the route-change callback exactly as IP Helper would, with `context`.
    ///
    /// # Safety
    /// `context` is the context of a [`super::Notifications`] that is still alive (what
    /// [`LAST_CONTEXT`] holds while the last one registered lives).
    pub(crate) unsafe fn route_changed(context: *const c_void) {
        // SAFETY: a live registration's context (this function's contract), and a null row,
        // which `on_route` never reads.
        unsafe { super::on_route(context, std::ptr::null(), Default::default()) }
    }
}
