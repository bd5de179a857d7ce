//! DNS servers per adapter, the DNS registry watch, the gateways' neighbour entries and
//! link-local route lookups, against what Wine answers.
//!
//! Wine answers these from the Linux host it runs on: `GetAdaptersAddresses` lists the
//! servers of the host's `/etc/resolv.conf` on every adapter, and `GetIpNetTable2` the host's
//! IPv4 neighbour table (`/proc/net/arp`). Both files are readable here through Wine's `Z:`
//! drive, so they are the ground truth the monitor's state is compared with.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::mpsc;

use windows::core::{w, PCWSTR};
use windows::Win32::Foundation::ERROR_SUCCESS;
use windows::Win32::System::Registry::{
    RegCloseKey, RegCreateKeyExW, RegDeleteTreeW, RegSetValueExW, HKEY, HKEY_LOCAL_MACHINE, KEY_ALL_ACCESS,
    REG_OPTION_VOLATILE, REG_SZ,
};

use super::dnswatch::DnsWatch;
use super::session::faults::FAIL;
use super::tests::{serial, TIMEOUT};
use super::{iphlpapi, neighbours, Msg};
use crate::{Monitor, NeighbourState};

/// A file of the Linux host, through Wine's `Z:` drive.
fn host_file(path: &str) -> String {
    std::fs::read_to_string(format!("Z:{}", path.replace('/', "\\"))).unwrap_or_default()
}

#[test]
fn dns_servers_are_the_adapters_as_wine_reads_the_hosts_resolv_conf() {
    let _turn = serial();
    let resolv = host_file("/etc/resolv.conf");
    let expected: BTreeSet<IpAddr> = resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse().ok())
        .collect();
    let monitor = Monitor::new().expect("monitor");
    let dns = monitor.snapshot().dns.clone().expect("Windows reads the DNS configuration");
    assert_eq!(dns.origin.manager, crate::DnsManager::Windows);
    let seen: BTreeSet<IpAddr> = dns.nameservers.iter().map(|n| n.address).collect();
    assert_eq!(seen, expected, "{dns:?} vs {resolv}");
    // Every server names its adapter, one that exists and is not loopback.
    let state = monitor.snapshot();
    for server in &dns.nameservers {
        let name = server.interface.as_deref().expect("an adapter");
        let adapter = state.interfaces.iter().find(|i| i.name == name).expect("a known adapter");
        assert_ne!(adapter.kind, crate::InterfaceKind::Loopback, "{server}");
    }
    if !resolv.lines().any(|l| l.starts_with("search") || l.starts_with("domain")) {
        assert!(dns.search.is_empty(), "{:?}", dns.search);
    }
}

/// Creates (volatile: gone at the next Wine prefix start anyway) and removes a test key.
struct TestKey(HKEY, PCWSTR);

impl TestKey {
    fn create(path: PCWSTR) -> TestKey {
        let mut key = HKEY::default();
        // SAFETY: a predefined root, a static NUL-terminated path, no class or security
        // attributes; `key` is a live local, closed in drop.
        let result = unsafe {
            RegCreateKeyExW(
                HKEY_LOCAL_MACHINE,
                path,
                None,
                None,
                REG_OPTION_VOLATILE,
                KEY_ALL_ACCESS,
                None,
                &mut key,
                None,
            )
        };
        assert_eq!(result, ERROR_SUCCESS, "RegCreateKeyExW");
        TestKey(key, path)
    }

    fn set(&self, value: &str) {
        let data: Vec<u8> = value.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
        // SAFETY: an open key (KEY_ALL_ACCESS), a static value name and a live byte slice.
        assert_eq!(unsafe { RegSetValueExW(self.0, w!("NameServer"), None, REG_SZ, Some(&data)) }, ERROR_SUCCESS);
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        // SAFETY: the key this value opened, closed once.
        let _ = unsafe { RegCloseKey(self.0) };
        // SAFETY: a predefined root and the static path of the test's own key.
        let _ = unsafe { RegDeleteTreeW(HKEY_LOCAL_MACHINE, self.1) };
    }
}

#[test]
fn a_change_under_the_tcpip_keys_reads_again_and_others_do_not() {
    let _turn = serial();
    let (to_backend, inbox) = mpsc::channel();
    let watch = DnsWatch::start(to_backend).expect("RegNotifyChangeKeyValue");
    // Elsewhere in the registry: nothing. (Absence can only be waited for; a short bound.)
    let other = TestKey::create(w!(r"SOFTWARE\netreach-test"));
    other.set("192.0.2.55");
    let woke = inbox.recv_timeout(std::time::Duration::from_millis(300));
    assert!(woke.is_err(), "no wake for other keys");
    // An adapter's key, as DHCP or the adapter's settings write it; a value set twice (the
    // notification is asked for again after each one).
    let adapter = TestKey::create(w!(
        r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{0e7e0000-0000-4000-8000-00000000beef}"
    ));
    assert!(matches!(inbox.recv_timeout(TIMEOUT), Ok(Msg::IpChanged)), "a new adapter key");
    while inbox.try_recv().is_ok() {} // one change may signal more than once
    for server in ["192.0.2.53", "192.0.2.54"] {
        adapter.set(server);
        assert!(matches!(inbox.recv_timeout(TIMEOUT), Ok(Msg::IpChanged)), "NameServer {server}");
        while inbox.try_recv().is_ok() {}
    }
    drop(watch);
    // The watch is gone: a change reaches nobody, and nothing breaks.
    adapter.set("192.0.2.56");
}

#[test]
fn the_gateways_entries_are_the_hosts_arp_entries() {
    let _turn = serial();
    let state = iphlpapi::snapshot().expect("snapshot").state;
    let Some(route) = state.default_routes.iter().find(|r| r.gateway.is_some_and(|g| g.is_ipv4())) else {
        return; // nothing to compare: no IPv4 gateway on this host (the state has no entries then)
    };
    let gateway = route.gateway.unwrap();
    // /proc/net/arp: "IP address  HW type  Flags  HW address  Mask  Device"; flag 0x2 is a
    // complete entry. Wine shows complete entries as reachable.
    let arp = host_file("/proc/net/arp");
    let line = arp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[0].parse() == Ok(gateway) && f[5] == route.interface);
    let entry = state.gateways.iter().find(|n| n.address == gateway && n.interface_index == route.interface_index);
    match line {
        Some(fields) if u32::from_str_radix(fields[2].trim_start_matches("0x"), 16).unwrap_or(0) & 2 != 0 => {
            let entry = entry.unwrap_or_else(|| panic!("{gateway} is complete in {arp} but not read: {state:?}"));
            assert!(!entry.is_unreachable() && entry.state != NeighbourState::Incomplete, "{entry:?}");
        }
        _ => assert!(entry.is_none_or(|e| e.state != NeighbourState::Reachable), "{entry:?} vs {arp}"),
    }
    // Only the default routes' gateways are read, never the rest of the table (Wine lists
    // multicast entries on every interface).
    assert!(state.gateways.iter().all(|n| state.default_routes.iter().any(|r| r.gateway == Some(n.address))));
    assert_eq!(neighbours::read(&[]), []);
    // The monitor has the same entries, and a reachable gateway leaves the level alone.
    let monitor = Monitor::new().expect("monitor");
    assert_eq!(monitor.snapshot().gateways, state.gateways);
    assert!(!matches!(monitor.snapshot().reasons.ipv4, Some(crate::Reason::GatewayUnreachable { .. })));
    // Re-verifying needs ResolveIpNetEntry2, which Wine 8.0 lacks: said so, nothing sent.
    let wanted = crate::rows::gateways(&state);
    assert!(neighbours::reverify(&wanted).unwrap_err().contains("ResolveIpNetEntry2"));
}

#[test]
fn a_link_local_remote_is_looked_up_on_its_scope() {
    let _turn = serial();
    let state = iphlpapi::snapshot().expect("snapshot").state;
    let Some((index, local)) = state.interfaces.iter().find_map(|i| {
        let a = i.addresses.iter().find(|a| a.address.is_ipv6() && a.is_link_local())?;
        Some((i.index, a.address))
    }) else {
        return; // no IPv6 link-local address on this host
    };
    let remote: IpAddr = "fe80::1:2".parse().unwrap();
    assert_eq!(iphlpapi::best_route(local, remote, Some(index)).expect("lookup"), Some(index));
    // On a link with no route to fe80::/64 (an index no adapter has), no route.
    assert_eq!(iphlpapi::best_route(local, remote, Some(u32::MAX - 1)).expect("lookup"), None);
    // The monitor's path check takes the scope from the address and judges it on that link.
    let monitor = Monitor::new().expect("monitor");
    let local = std::net::SocketAddr::V6(std::net::SocketAddrV6::new(local.to_string().parse().unwrap(), 0, 0, index));
    let remote = std::net::SocketAddr::V6(std::net::SocketAddrV6::new("fe80::1:2".parse().unwrap(), 443, 0, index));
    let path = monitor.watch_socket_addrs(local, remote).expect("a link-local path with its scope");
    let status = path.status();
    let name = &state.interface(index).unwrap().name;
    assert_eq!(status.interface(), Some(name.as_str()), "{status:?}");
    assert!(status.same_subnet(), "{status:?}");
    // Whether it carries traffic is then NLM's word on that link (Wine says IPv6 has no
    // traffic): never "no route".
    let nlm_says = |reason: &crate::Unreachable| matches!(reason, crate::Unreachable::NoConnectivity { interface } if &**interface == name.as_str());
    assert!(status.reason().is_none_or(nlm_says), "{status:?}");
}

/// Makes one named call fail while it lives (the COM tests' switch, `session::faults`).
struct Failing;

impl Failing {
    fn call(call: &'static str) -> Failing {
        *FAIL.lock().unwrap() = Some(call);
        Failing
    }
}

impl Drop for Failing {
    fn drop(&mut self) {
        *FAIL.lock().unwrap() = None;
    }
}

#[test]
fn faults_of_the_new_calls_have_their_documented_outcomes() {
    let _turn = serial();
    // The watch cannot be armed: no monitor, and the error names the call.
    let failing = Failing::call("RegNotifyChangeKeyValue");
    let error = Monitor::new().map(drop).expect_err("no monitor without the DNS watch").to_string();
    assert!(error.contains("RegNotifyChangeKeyValue"), "{error}");
    drop(failing);
    // Armed, then re-arming fails: the change is still read, the failure reported, and the
    // watch ends (its thread is joined when dropped: no hang).
    let (to_backend, inbox) = mpsc::channel();
    let watch = DnsWatch::start(to_backend).expect("armed");
    let failing = Failing::call("RegNotifyChangeKeyValue");
    let adapter = TestKey::create(w!(
        r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{0e7e0000-0000-4000-8000-00000000f00d}"
    ));
    assert!(matches!(inbox.recv_timeout(TIMEOUT), Ok(Msg::IpChanged)));
    let reported = inbox.recv_timeout(TIMEOUT);
    assert!(matches!(&reported, Ok(Msg::Error(m)) if m.contains("re-arming")), "{:?}", reported.is_ok());
    drop(failing);
    drop(adapter);
    drop(watch);
    // The neighbour table cannot be read: no entries (no evidence), and the rest is read.
    let failing = Failing::call("GetIpNetTable2");
    let state = iphlpapi::snapshot().expect("the rest is read").state;
    drop(failing);
    assert_eq!(state.gateways, []);
    assert!(!state.interfaces.is_empty());
}

#[test]
fn a_reverification_is_answered_only_after_its_reading_was_handed_out_and_check_works() {
    use crate::sys::{Input, KernelConfig};
    let _turn = serial(); // opening the source advises sinks
    let (mut kernel, _) = super::Kernel::open(&KernelConfig::default()).expect("the source opens");
    let (reply, applied) = mpsc::sync_channel(1);
    kernel.to_self.send(Msg::Reverified(reply)).unwrap();
    assert!(matches!(kernel.next(), Ok(Input::Reread { resync: None, .. })), "the reading first");
    assert!(applied.try_recv().is_err(), "not answered while the engine may still be applying it");
    // The engine asks for its next input only once it has handled the reading: that is when
    // the answer goes (a wake gives that next call something to return).
    kernel.to_self.send(Msg::Wake).unwrap();
    assert!(matches!(kernel.next(), Ok(Input::Woken)));
    assert!(applied.try_recv().is_ok(), "answered");
    drop(kernel);
    // A monitor's check(): under Wine nothing can be asked (no ResolveIpNetEntry2), so it
    // returns at once with the state as read.
    let monitor = Monitor::new().expect("monitor");
    let started = std::time::Instant::now();
    let state = monitor.check().expect("check");
    assert!(started.elapsed() < TIMEOUT);
    assert_eq!(state.gateways, monitor.snapshot().gateways);
}
