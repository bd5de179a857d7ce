//! A burst of 10,000 address changes against a deliberately tiny receive buffer: the monitor
//! must overrun, say so with a resync, and end up equal to the kernel.
#![cfg(target_os = "linux")] // network namespaces; Windows: src/sys/windows/tests*.rs (under Wine)

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use netreach::{EventKind, Monitor, NetworkState};
use testns::NetNs;

/// (interface, address, prefix) for every address the kernel reports (`ip -j addr`).
fn kernel_addresses(ns: &NetNs) -> BTreeSet<(String, String, u64)> {
    let mut set = BTreeSet::new();
    for link in ns.ip_json("addr show").as_array().unwrap() {
        let name = link["ifname"].as_str().unwrap().to_owned();
        for a in link["addr_info"].as_array().unwrap() {
            set.insert((name.clone(), a["local"].as_str().unwrap().to_owned(), a["prefixlen"].as_u64().unwrap()));
        }
    }
    set
}

fn monitor_addresses(state: &NetworkState) -> BTreeSet<(String, String, u64)> {
    state
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter().map(|a| (i.name.clone(), a.address.to_string(), u64::from(a.prefix_len))))
        .collect()
}

#[test]
fn storm_with_tiny_buffer_resyncs_to_the_kernel_state() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("storm");
    let monitor = Monitor::builder().netns(ns.name()).receive_buffer(4096).build().unwrap();
    // A callback sees every event (callbacks are drained right after each publish, so they
    // never lag), including the resync notice. It holds the monitor's thread in its first call
    // (the baseline) until the burst is over: a monitor that reads fast enough would otherwise
    // keep up with a 4 KiB buffer now and then, and there would be no overrun to test.
    let resyncs = Arc::new(AtomicUsize::new(0));
    let counter = resyncs.clone();
    let (entered, holding) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    monitor.on_event(move |e| {
        if entered.send(()).is_ok() {
            let _ = released.recv(); // only the first call: `entered` is closed afterwards
        }
        if matches!(e.kind, EventKind::Resynced { .. }) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    holding.recv_timeout(Duration::from_secs(10)).expect("the callback holds the monitor's thread");
    drop(holding);

    // 10,000 changes in one burst: 20 rounds of adding 250 addresses (19 of them removed
    // again), then 250 more. IPv4 /32s keep the kernel's own work small (IPv6 insertion is
    // linear per interface: the same burst in IPv6 takes the kernel ~35 s).
    let mut batch = Vec::new();
    for round in 0..20 {
        batch.extend((1..=250).map(|i| format!("addr add 198.51.100.{i}/32 dev va")));
        if round < 19 {
            batch.extend((1..=250).map(|i| format!("addr del 198.51.100.{i}/32 dev va")));
        }
    }
    batch.extend((1..=250).map(|i| format!("addr add 203.0.113.{i}/32 dev va")));
    assert_eq!(batch.len(), 10_000);
    ns.ip_batch(&(batch.join("\n") + "\n"));
    drop(release);

    let kernel = kernel_addresses(&ns);
    assert_eq!(
        kernel.iter().filter(|(_, a, _)| a.starts_with("198.51.100.") || a.starts_with("203.0.113.")).count(),
        500
    );
    testns::wait_until(Duration::from_secs(60), "the monitor to match the kernel", || {
        monitor_addresses(&monitor.snapshot()) == kernel
    });
    // The snapshot is updated before callbacks run (outside the lock), so the resync's
    // callback may still be on its way when the state already matches: wait for it, bounded.
    testns::wait_until(EVENT_TIMEOUT, "a 4 KiB buffer to overrun and be reported as a resync", || {
        resyncs.load(Ordering::SeqCst) >= 1
    });
}
