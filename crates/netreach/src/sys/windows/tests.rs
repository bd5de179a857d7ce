//! The Windows backend against the real Network List Manager and IP Helper (under Wine here).
//!
//! Wine answers NLM queries, enumerates connections and their adapters, and honours
//! Advise/Unadvise, all for real; but it never fires NLM events or IP Helper notifications.
//! So event handling is driven the way Windows would drive it: through the sink's own COM
//! interface (QueryInterface, then the event method) and through the registered IP Helper
//! callback with its registered context. What is checked is the monitor's output.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use windows::core::{IUnknown, Interface, GUID};
use windows::Win32::Networking::NetworkListManager::{
    INetworkConnectionEvents, INetworkCostManagerEvents, INetworkListManagerEvents, NLM_CONNECTION_PROPERTY_CHANGE,
    NLM_CONNECTIVITY,
};
use windows::Win32::System::Com::{CoInitializeEx, CoUninitialize, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED};

use super::com::{tests_hook::LAST, ComThread};
use super::iphlpapi;
use super::notify::{tests_hook as ip_hook, Notifications};
use super::Msg;
use crate::{nlm, Level, Monitor, PathMonitor, Source, Subscription, Unreachable};

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);

/// The hooks hold the last advised sinks: every test that advises (a monitor, or
/// `connected_interface`'s own COM thread) takes turns, or it would swap the sinks another
/// test is counting references on.
static SERIAL: Mutex<()> = Mutex::new(());

pub(super) fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// This test thread in the multithreaded apartment, like the RPC threads NLM calls sinks on.
/// Not `Send` (the marker): it is left on the thread that joined.
pub(super) struct Mta(PhantomData<*const ()>);

impl Mta {
    pub(super) fn enter() -> Mta {
        // SAFETY: the reserved argument is null (None); joining changes only this test thread.
        unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) }.ok().expect("CoInitializeEx");
        Mta(PhantomData)
    }
}

impl Drop for Mta {
    fn drop(&mut self) {
        // SAFETY: balances the CoInitializeEx that succeeded on this thread (an `Mta` exists only
        // then and cannot leave the thread). Each test declares its `Mta` first, so its COM
        // references drop before it.
        unsafe { CoUninitialize() };
    }
}

/// The sinks the last monitor advised, asked for their event interfaces as Windows would.
pub(super) struct Sinks {
    pub(super) list: INetworkListManagerEvents,
    pub(super) connection: INetworkConnectionEvents,
    pub(super) cost: INetworkCostManagerEvents,
    /// The objects themselves, for reference counts: the same objects as the interfaces above,
    /// which keep them alive.
    raw: [*mut c_void; 3],
}

impl Sinks {
    /// Each sink's reference count (AddRef, then Release, returns it).
    pub(super) fn references(&self) -> [u32; 3] {
        self.raw.map(|raw| {
            // SAFETY: `raw` is an `IUnknown` of one of our sinks, kept alive by this struct's
            // interface (a QueryInterface of the same object) for the whole borrow.
            let unknown = unsafe { IUnknown::from_raw_borrowed(&raw) }.unwrap();
            // SAFETY: the live object's own AddRef, through its vtable, on itself.
            unsafe { (unknown.vtable().AddRef)(raw) };
            // SAFETY: undoes the AddRef just above: the count is back where it was, and the
            // object stays alive (this struct still holds its reference).
            unsafe { (unknown.vtable().Release)(raw) }
        })
    }
}

pub(super) fn advised_sinks() -> Sinks {
    let last = LAST.lock().unwrap();
    let advised = last.as_ref().expect("a monitor advised its sinks");
    // SAFETY: `raw` is an owned `IUnknown` reference `LAST` holds, and the lock is held for
    // every use of `ask`: the borrow is valid, and `clone` (AddRef) gives us our own reference.
    let ask = |raw: &*mut c_void| unsafe { IUnknown::from_raw_borrowed(raw) }.unwrap().clone();
    Sinks {
        list: ask(&advised.list).cast().expect("QueryInterface"),
        connection: ask(&advised.connection).cast().expect("QueryInterface"),
        cost: ask(&advised.cost).cast().expect("QueryInterface"),
        raw: [advised.list, advised.connection, advised.cost],
    }
}

/// Waits (bounded) for `done`, woken by each event of `events`.
pub(super) fn wait_for<T>(events: &Subscription<T>, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = events.recv_timeout(left);
    }
    true
}

/// A real NLM connection, the interface it runs over, and an IPv4 address of that interface.
pub(super) fn connected_interface() -> (GUID, u32, IpAddr, u8) {
    let snapshot = iphlpapi::snapshot().expect("GetAdaptersAddresses");
    let (to_backend, _inbox) = mpsc::channel();
    let (_com, reading) = ComThread::start(to_backend).expect("NLM");
    for connection in &reading.connections {
        let Some((&index, _)) = snapshot.guids.iter().find(|(_, g)| **g == connection.adapter.to_u128()) else {
            continue;
        };
        let interface = snapshot.state.interface(index).unwrap();
        let v4 = interface.addresses.iter().find(|a| a.address.is_ipv4() && !a.is_loopback() && a.prefix_len <= 30);
        if let Some(address) = v4 {
            return (connection.id, index, address.address, address.prefix_len);
        }
    }
    panic!("no NLM connection matches an adapter with an IPv4 address: {reading:?}");
}

/// Another host of `local`'s subnet.
pub(super) fn neighbour(local: IpAddr, prefix_len: u8) -> IpAddr {
    let IpAddr::V4(v4) = local else { unreachable!() };
    let network = u32::from(v4) & (u32::MAX << (32 - prefix_len));
    let host = if network + 1 == u32::from(v4) { network + 2 } else { network + 1 };
    IpAddr::V4(Ipv4Addr::from(host))
}

#[test]
fn initial_state_comes_from_ip_helper_and_nlm() {
    let _turn = serial();
    let monitor = Monitor::new().expect("monitor");
    let state = monitor.snapshot();
    let direct = iphlpapi::snapshot().expect("GetAdaptersAddresses").state;
    let names = |s: &crate::NetworkState| s.interfaces.iter().map(|i| (i.index, i.name.clone())).collect::<Vec<_>>();
    assert_eq!(names(&state), names(&direct));
    assert!(!state.interfaces.is_empty());
    assert_eq!(state.default_routes, direct.default_routes);
    let verdict = state.verdicts.iter().find(|v| v.source == Source::Windows).expect("an NLM verdict");
    assert!(verdict.ipv4.is_some() && verdict.ipv6.is_some(), "{verdict:?}");
}

#[test]
fn connections_match_adapters_by_guid() {
    let _turn = serial(); // connected_interface() advises sinks, replacing the hook's
    let (id, index, local, _) = connected_interface();
    assert_ne!(id, GUID::zeroed());
    let snapshot = iphlpapi::snapshot().unwrap();
    assert_eq!(snapshot.state.interface(index).map(|i| i.addresses.iter().any(|a| a.address == local)), Some(true));
}

#[test]
fn connectivity_events_reach_the_monitor_through_the_sink() {
    let _turn = serial();
    let _mta = Mta::enter();
    let monitor = Monitor::new().expect("monitor");
    let events = monitor.subscribe();
    let before = monitor.snapshot().reachability;
    assert!(before.overall > Level::Disconnected, "the test needs a way out: {before:?}");
    let list = advised_sinks().list;

    // Windows says: nothing. The kernel's levels are lowered, and Windows is named.
    // SAFETY: `list` is a live reference to our own in-process sink (a QueryInterface of the
    // advised object); the argument is a plain value.
    unsafe { list.ConnectivityChanged(NLM_CONNECTIVITY(nlm::DISCONNECTED as i32)) }.expect("S_OK");
    let down = |m: &Monitor| m.snapshot().reachability.overall == Level::Disconnected;
    assert!(wait_for(&events, || down(&monitor)), "{:?}", monitor.snapshot().reachability);
    assert_eq!(monitor.snapshot().reachability.source, Source::Windows);

    // Subnet only over IPv4: `site`, never more than the kernel's own level.
    // SAFETY: as above.
    unsafe { list.ConnectivityChanged(NLM_CONNECTIVITY(nlm::IPV4_SUBNET as i32)) }.unwrap();
    let site = |m: &Monitor| m.snapshot().reachability.ipv4.reachability == Level::Site.min(before.ipv4.reachability);
    assert!(wait_for(&events, || site(&monitor)), "{:?}", monitor.snapshot().reachability);

    // An IP Helper notification (through the registered callback and context) re-reads the
    // adapters and NLM itself: the real, Wine-reported reading comes back.
    // SAFETY: `monitor` is alive, and under `serial` no other test registers: `LAST_CONTEXT` is
    // the context of its live registration.
    unsafe { ip_hook::route_changed(*ip_hook::LAST_CONTEXT.lock().unwrap() as *const c_void) };
    assert!(wait_for(&events, || monitor.snapshot().reachability == before), "{:?}", monitor.snapshot());
}

#[test]
fn connection_events_drive_paths_by_qts_current_rule() {
    let _turn = serial();
    let _mta = Mta::enter();
    let (id, index, local, prefix_len) = connected_interface();
    let monitor = Monitor::new().expect("monitor");
    let connection = advised_sinks().connection;
    let near = monitor.watch_path(local, neighbour(local, prefix_len)).expect("same-subnet path");
    let far = monitor.watch_path(local, "198.51.100.1".parse().unwrap()).expect("path out");
    let (near_events, far_events) = (near.subscribe(), far.subscribe());
    assert!(near.status().same_subnet() && !far.status().same_subnet());
    let initial = (near.status(), far.status());
    assert!(initial.0.is_reachable(), "{:?}", initial.0);

    let set = |flags: u32| {
        let flags = NLM_CONNECTIVITY(flags as i32);
        // SAFETY: `connection` is a live reference to our own in-process sink (a QueryInterface
        // of the advised object); the GUID is a live local, only read; the flags are a value.
        unsafe { connection.NetworkConnectionConnectivityChanged(id, flags) }.expect("S_OK");
    };
    let reason = |p: &PathMonitor| p.status().reason().cloned();
    let name = monitor.snapshot().interface(index).unwrap().name.clone();
    let none = Some(Unreachable::NoConnectivity { interface: name.as_str().into() });

    set(nlm::DISCONNECTED);
    assert!(wait_for(&near_events, || reason(&near) == none), "{:?}", near.status());
    assert!(wait_for(&far_events, || reason(&far) == none), "{:?}", far.status());

    // Subnet connectivity carries the same-subnet path only.
    set(nlm::IPV4_SUBNET);
    assert!(wait_for(&near_events, || near.is_reachable()), "{:?}", near.status());
    assert_eq!(reason(&far), none);

    // Qt's current rule: connectivity to a routed network carries a same-subnet path too.
    set(nlm::DISCONNECTED);
    assert!(wait_for(&near_events, || reason(&near) == none), "{:?}", near.status());
    set(nlm::IPV4_LOCALNETWORK);
    assert!(wait_for(&near_events, || near.is_reachable()), "{:?}", near.status());
    assert_eq!(reason(&far), none);

    // An event for a connection not seen before makes NLM be read again: Wine's real
    // connectivity comes back for both paths.
    let other = GUID::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    // SAFETY: as in `set`.
    unsafe { connection.NetworkConnectionConnectivityChanged(other, NLM_CONNECTIVITY(0)) }.unwrap();
    assert!(wait_for(&far_events, || far.status() == initial.1), "{:?}", far.status());
    assert_eq!(near.status(), initial.0);

    // A property change is handled (not E_NOTIMPL): NLM is read again, and Wine's real
    // connectivity comes back.
    set(nlm::DISCONNECTED);
    assert!(wait_for(&near_events, || reason(&near) == none), "{:?}", near.status());
    // SAFETY: as in `set`.
    unsafe { connection.NetworkConnectionPropertyChanged(id, NLM_CONNECTION_PROPERTY_CHANGE(1)) }.expect("S_OK");
    assert!(wait_for(&near_events, || near.status() == initial.0), "{:?}", near.status());
    assert!(wait_for(&far_events, || far.status() == initial.1), "{:?}", far.status());
}

#[test]
fn cost_events_set_metered() {
    let _turn = serial();
    let _mta = Mta::enter();
    let monitor = Monitor::new().expect("monitor");
    let events = monitor.subscribe();
    let cost = advised_sinks().cost;
    let metered = |m: &Monitor| m.snapshot().details.metered;
    // SAFETY: `cost` is a live reference to our own in-process sink (a QueryInterface of the
    // advised object); a null destination means the machine-wide cost, which the sink checks
    // for and never dereferences.
    unsafe { cost.CostChanged(nlm::COST_VARIABLE, std::ptr::null()) }.expect("S_OK");
    assert!(wait_for(&events, || metered(&monitor) == Some(true)), "{:?}", monitor.snapshot().details);
    // SAFETY: as above.
    unsafe { cost.CostChanged(nlm::COST_UNRESTRICTED, std::ptr::null()) }.expect("S_OK");
    assert!(wait_for(&events, || metered(&monitor) == Some(false)), "{:?}", monitor.snapshot().details);
    // SAFETY: as above; the sink ignores the destination.
    unsafe { cost.DataPlanStatusChanged(std::ptr::null()) }.expect("S_OK");
}

#[test]
fn sinks_are_unadvised_on_drop_and_late_calls_are_harmless() {
    let _turn = serial();
    let _mta = Mta::enter();
    let monitor = Monitor::new().expect("monitor");
    let sinks = advised_sinks();
    // Ours (the hook's and the interfaces above), plus the connection point's.
    let advised = sinks.references();
    drop(monitor);
    assert_eq!(sinks.references(), advised.map(|n| n - 1), "Unadvise released each connection point's reference");
    // COM could still call a sink it held: nothing to reach, nothing happens.
    // SAFETY: `sinks` holds live references to our own in-process sinks (they outlive the
    // monitor, which is the point); the arguments are plain values.
    unsafe { sinks.list.ConnectivityChanged(NLM_CONNECTIVITY(0)) }.expect("S_OK after the monitor is gone");
    // SAFETY: as above; the GUID is a temporary that outlives the call, only read.
    unsafe { sinks.connection.NetworkConnectionConnectivityChanged(GUID::zeroed(), NLM_CONNECTIVITY(0)) }.unwrap();
    // SAFETY: as above; a null destination is the machine-wide cost, never dereferenced.
    unsafe { sinks.cost.CostChanged(nlm::COST_FIXED, std::ptr::null()) }.unwrap();
}

#[test]
fn late_ip_helper_callback_is_harmless() {
    let _turn = serial();
    let (to_backend, inbox) = mpsc::channel::<Msg>();
    let notifications = Notifications::register(to_backend).expect("NotifyIpInterfaceChange and friends");
    let context = *ip_hook::LAST_CONTEXT.lock().unwrap() as *const c_void;
    // SAFETY: the context of `notifications`, registered just above (under `serial`, nothing
    // else registers) and alive until the end of the test.
    unsafe { ip_hook::route_changed(context) };
    assert!(matches!(inbox.try_recv(), Ok(Msg::IpChanged)));
    // The backend's loop has ended: the callback's send fails quietly.
    drop(inbox);
    // SAFETY: as above: `notifications` is still alive.
    unsafe { ip_hook::route_changed(context) };
    drop(notifications); // cancels every registration, then frees the context
}

#[test]
fn route_lookups_follow_the_routing_table() {
    // GetBestRoute2 on Windows; the routing table's longest match under Wine, which lacks it.
    let _turn = serial(); // connected_interface() advises sinks, replacing the hook's
    let (_, index, local, prefix_len) = connected_interface();
    assert_eq!(iphlpapi::best_route(local, neighbour(local, prefix_len), None).expect("route lookup"), Some(index));
    let state = iphlpapi::snapshot().unwrap().state;
    let default = state.default_routes.iter().find(|r| r.family == crate::Family::Ipv4).map(|r| r.interface_index);
    let remote = "198.51.100.1".parse().unwrap();
    assert_eq!(iphlpapi::best_route(local, remote, None).expect("route lookup"), default);
}

#[test]
fn callers_in_a_single_threaded_apartment_just_work() {
    let _turn = serial();
    // A GUI thread: COM initialised as STA. The monitor's COM lives on its own MTA thread, so
    // RPC_E_CHANGED_MODE never reaches the caller.
    std::thread::spawn(|| {
        // SAFETY: the reserved argument is null (None); this thread is ours, made for the test.
        unsafe { CoInitializeEx(None, COINIT_APARTMENTTHREADED) }.ok().expect("STA");
        let monitor = Monitor::new().expect("a monitor from an STA thread");
        assert!(monitor.snapshot().verdicts.iter().any(|v| v.source == Source::Windows));
        drop(monitor);
        // SAFETY: balances the CoInitializeEx that succeeded on this thread above (a failure
        // panicked before here); nothing on this thread holds a COM reference any more.
        unsafe { CoUninitialize() };
    })
    .join()
    .unwrap();
}

#[test]
fn namespaces_are_refused_with_a_clear_error() {
    let error = Monitor::builder().netns("blue").build().unwrap_err().to_string();
    assert!(error.contains("only on Linux"), "{error}");
}

#[test]
fn a_burst_becomes_faults_woken_one_reread_then_the_newest_verdict_and_its_hints() {
    use super::session::{Connection, Reading};
    use crate::nlm::Portal;
    use crate::sys::{Input, KernelConfig};
    use crate::Update;

    let _turn = serial(); // opening the source advises sinks
    let (mut kernel, _) = super::Kernel::open(&KernelConfig::default()).expect("the source opens");
    let (&index, &adapter) = kernel.guids.iter().next().expect("an adapter");
    let old: Vec<u32> = kernel.guids.keys().copied().filter(|&i| kernel.connections.flags(i).is_some()).collect();
    // Flags this adapter did not have: its paths must be judged again, and so must those of
    // every interface whose connection the fresh reading no longer lists.
    let flags = kernel.connections.flags(index).unwrap_or(0) ^ NLM_CONNECTIVITY(1).0 as u32;
    let mut hinted: Vec<u32> = old.into_iter().filter(|&i| i != index).chain([index]).collect();
    hinted.sort_unstable();
    let portal = Portal { ipv4: Some(true), ipv6: None };
    let connection =
        Connection { id: GUID::from_u128(1), adapter: GUID::from_u128(adapter), connectivity: flags, portal };
    let fresh = Reading { connectivity: flags, metered: Some(true), connections: vec![connection], note: None };
    let stale = Reading { connectivity: 0, metered: None, connections: Vec::new(), note: None };
    for message in [
        Msg::Nlm(stale),
        Msg::IpChanged,
        Msg::Error("a fault".into()),
        Msg::Wake,
        Msg::IpChanged,
        Msg::Nlm(fresh.clone()),
    ] {
        kernel.to_self.send(message).unwrap();
    }
    assert!(matches!(kernel.next(), Ok(Input::Fault(m)) if m == "a fault"));
    assert!(matches!(kernel.next(), Ok(Input::Woken)));
    assert!(matches!(kernel.next(), Ok(Input::Reread { resync: None, .. })), "one re-read for both notifications");
    match kernel.next() {
        Ok(Input::Updates(updates)) => assert_eq!(updates, [Update::Verdict(super::verdict(&fresh))]),
        other => panic!("expected the newest reading's verdict, got {other:?}"),
    }
    let mut hints = Vec::new();
    while let Some(step) = kernel.steps.front() {
        assert!(matches!(step, super::Step::Input(Input::InterfaceHint(_))), "only hints are left");
        let Ok(Input::InterfaceHint(i)) = kernel.next() else { unreachable!() };
        hints.push(i);
    }
    assert_eq!(hints, hinted);
    assert_eq!(kernel.connections.flags(index), Some(flags));
}
