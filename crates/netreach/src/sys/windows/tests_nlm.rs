//! The Network List Manager session under Wine: a path's first judgement, the portal flag
//! after a connectivity change, faults at each step of opening the session, no cost manager.
//! Events are driven through the advised sinks as Windows would (see `tests.rs`).

use std::sync::atomic::Ordering;

use windows::Win32::Foundation::E_ACCESSDENIED;
use windows::Win32::Networking::NetworkListManager::NLM_CONNECTIVITY;

use super::com::tests_hook::ALIVE;
use super::session::faults::{FAIL, PORTAL};
use super::tests::{advised_sinks, connected_interface, serial, wait_for, Mta};
use crate::nlm::{self, Portal};
use crate::{Level, Monitor, PathMonitor, Source, Unreachable};

/// Makes `call` fail (or the portal read as `portal`) until dropped.
struct Armed;

impl Armed {
    fn fail(call: &'static str) -> Armed {
        *FAIL.lock().unwrap() = Some(call);
        Armed
    }

    fn portal(portal: Portal) -> Armed {
        *PORTAL.lock().unwrap() = Some(portal);
        Armed
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        *FAIL.lock().unwrap() = None;
        *PORTAL.lock().unwrap() = None;
    }
}

#[test]
fn a_path_made_while_nlm_says_no_internet_stays_reachable_until_a_later_change() {
    let _turn = serial();
    let _mta = Mta::enter();
    let (id, index, local, _) = connected_interface();
    let monitor = Monitor::new().expect("monitor");
    let connection = advised_sinks().connection;
    let set = |flags: u32| {
        // SAFETY: `connection` is a live reference to our own in-process sink (a QueryInterface
        // of the advised object); the GUID is a live local, only read; the flags are a value.
        unsafe { connection.NetworkConnectionConnectivityChanged(id, NLM_CONNECTIVITY(flags as i32)) }.expect("S_OK");
    };
    let name = monitor.snapshot().interface(index).unwrap().name.clone();
    let none = Some(Unreachable::NoConnectivity { interface: name.as_str().into() });
    let reason = |p: &PathMonitor| p.status().reason().cloned();
    let before = monitor.watch_path(local, "198.51.100.1".parse().unwrap()).expect("path out");
    assert!(before.is_reachable(), "the test needs a way out: {:?}", before.status());

    // Windows' internet check fails (a blocked check host): only the subnet. A path that was
    // there before the reading is lowered by it.
    set(nlm::IPV4_SUBNET);
    assert!(wait_for(&before.subscribe(), || reason(&before) == none), "{:?}", before.status());

    // A connection made now works, whatever that older reading says: reachable.
    let after = monitor.watch_path(local, "198.51.100.2".parse().unwrap()).expect("path out");
    assert!(after.is_reachable(), "{:?}", after.status());
    // Until a later change says otherwise (still no internet).
    let events = after.subscribe();
    set(nlm::IPV4_SUBNET | nlm::IPV4_LOCALNETWORK);
    assert!(wait_for(&events, || reason(&after) == none), "{:?}", after.status());
}

#[test]
fn levels_follow_microsofts_definitions_through_the_sink() {
    let _turn = serial();
    let _mta = Mta::enter();
    let monitor = Monitor::new().expect("monitor");
    let events = monitor.subscribe();
    let kernel = crate::derive_kernel_reachability(&monitor.snapshot()).ipv4.reachability;
    assert!(kernel >= Level::Site, "the test needs IPv4 at site or better: {kernel:?}");
    let list = advised_sinks().list;
    let say = |flags: u32| {
        // SAFETY: `list` is a live reference to our own in-process sink (a QueryInterface of the
        // advised object); the argument is a plain value.
        unsafe { list.ConnectivityChanged(NLM_CONNECTIVITY(flags as i32)) }.expect("S_OK");
    };
    let ipv4 = |m: &Monitor| {
        let r = m.snapshot().reachability.ipv4;
        (r.reachability, r.source)
    };
    say(nlm::DISCONNECTED);
    assert!(wait_for(&events, || ipv4(&monitor) == (Level::Disconnected, Source::Windows)), "{:?}", ipv4(&monitor));
    // "Connectivity to a routed network": `site` (Qt would say `local`).
    say(nlm::IPV4_LOCALNETWORK);
    assert!(wait_for(&events, || ipv4(&monitor) == (Level::Site, Source::Windows)), "{:?}", ipv4(&monitor));
    // "Cannot detect any traffic": no evidence either way, the kernel's level stands.
    say(nlm::IPV4_NOTRAFFIC);
    assert!(wait_for(&events, || ipv4(&monitor) == (kernel, Source::Kernel)), "{:?}", ipv4(&monitor));
}

#[test]
fn the_portal_flag_is_read_again_after_a_connectivity_change() {
    let _turn = serial();
    let _mta = Mta::enter();
    // Windows reports a portal in the way over IPv4 (NA_InternetConnectivityV4: WEBHIJACK).
    let portal = Armed::portal(Portal { ipv4: Some(true), ipv6: None });
    let monitor = Monitor::new().expect("monitor");
    let events = monitor.subscribe();
    let state = monitor.snapshot();
    assert_eq!(state.details.captive_portal, Some(true), "{:?}", state.details);
    // A portal means `site`, for the family behind it.
    assert_eq!((state.reachability.ipv4.reachability, state.reachability.ipv4.source), (Level::Site, Source::Windows));
    // The user logs in: the property drops WEBHIJACK, and NLM announces only a connectivity
    // change (no PropertyChanged, which Microsoft documents for authentication changes).
    *PORTAL.lock().unwrap() = Some(Portal { ipv4: Some(false), ipv6: None });
    let list = advised_sinks().list;
    // SAFETY: `list` is a live reference to our own in-process sink (a QueryInterface of the
    // advised object); the argument is a plain value.
    unsafe { list.ConnectivityChanged(NLM_CONNECTIVITY(nlm::IPV4_INTERNET as i32)) }.expect("S_OK");
    let cleared = |m: &Monitor| m.snapshot().details.captive_portal == Some(false);
    assert!(wait_for(&events, || cleared(&monitor)), "{:?}", monitor.snapshot().details);
    drop(portal);
}

#[test]
fn a_fault_at_each_step_of_opening_the_session_unwinds_everything_before_it() {
    let _turn = serial();
    let _mta = Mta::enter();
    assert_eq!(ALIVE.load(Ordering::SeqCst), 0, "no COM thread before");
    // (the call that fails, whether the sinks exist by then)
    let steps = [
        ("CoInitializeEx(COINIT_MULTITHREADED)", false),
        ("CoCreateInstance(NetworkListManager)", false),
        ("IConnectionPoint::Advise(INetworkListManagerEvents)", true),
        ("IConnectionPoint::Advise(INetworkConnectionEvents)", true),
        ("INetworkListManager::GetConnectivity", true),
    ];
    for (call, sinks_made) in steps {
        *super::com::tests_hook::LAST.lock().unwrap() = None;
        let armed = Armed::fail(call);
        let error = Monitor::new().map(drop).expect_err(call).to_string();
        drop(armed);
        assert!(error.contains(&format!("{call} failed: HRESULT 0x80004005")), "{call}: {error}");
        assert_eq!(ALIVE.load(Ordering::SeqCst), 0, "{call}: the COM thread has ended");
        let advised = super::com::tests_hook::LAST.lock().unwrap().is_some();
        assert_eq!(advised, sinks_made, "{call}");
        if sinks_made {
            // Each sink is referenced by the test hook and the test's own interface only: every
            // advice made before the failure was unadvised (a connection point's reference is
            // gone), and the session's own references are released.
            assert_eq!(advised_sinks().references(), [2, 2, 2], "{call}");
        }
    }
    // Nothing armed: the same machine gives a monitor whose advices hold their references.
    let monitor = Monitor::new().expect("monitor");
    assert_eq!(advised_sinks().references(), [3, 3, 3]);
    assert_eq!(ALIVE.load(Ordering::SeqCst), 1);
    drop(monitor);
    assert_eq!(ALIVE.load(Ordering::SeqCst), 0);
}

#[test]
fn without_a_cost_manager_metered_is_unknown_and_the_monitor_works() {
    let _turn = serial();
    let _mta = Mta::enter();
    // As on Windows Server, where INetworkCostManager and its events are not supported.
    let armed = Armed::fail("IConnectionPoint::Advise(INetworkCostManagerEvents)");
    let monitor = Monitor::new().expect("a monitor without cost");
    drop(armed);
    let events = monitor.subscribe();
    let sinks = advised_sinks();
    // The list and connection sinks are advised, the cost sink is not.
    assert_eq!(sinks.references(), [3, 3, 2]);
    let state = monitor.snapshot();
    assert_eq!(state.details.metered, None);
    let verdict = state.verdicts.iter().find(|v| v.source == Source::Windows).expect("an NLM verdict");
    let note = verdict.note.as_deref().unwrap_or_default();
    assert!(note.contains("metered is unknown") && note.contains("INetworkCostManagerEvents"), "{note}");
    // A connectivity change reads NLM again: still no cost, and the rest follows.
    // SAFETY: `sinks.list` is a live reference to our own in-process sink; a plain value.
    unsafe { sinks.list.ConnectivityChanged(NLM_CONNECTIVITY(nlm::DISCONNECTED as i32)) }.expect("S_OK");
    let down = |m: &Monitor| m.snapshot().reachability.overall == Level::Disconnected;
    assert!(wait_for(&events, || down(&monitor)), "{:?}", monitor.snapshot().reachability);
    assert_eq!(monitor.snapshot().details.metered, None);
}

#[test]
fn com_failures_name_the_hresult_and_its_message() {
    let message = super::session::failed("CoCreateInstance(NetworkListManager)", E_ACCESSDENIED.into());
    let text = windows::core::Error::from(E_ACCESSDENIED).message();
    assert!(!text.is_empty());
    assert_eq!(message, format!("CoCreateInstance(NetworkListManager) failed: HRESULT 0x80070005: {text}"));
}
