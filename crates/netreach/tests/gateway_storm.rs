//! A neighbour storm on addresses that are not the gateway does not wake the monitor: the
//! kernel-side filter drops those messages before they reach its socket. Its own test binary
//! (one process, one monitor), so the monitor's thread is the only one named `netreach` and
//! its wake-ups can be counted: every return from its wait is a voluntary context switch
//! (`/proc/self/task/TID/status`). Paired in the same run: a plain socket joined to the
//! neighbour group, without a filter, counts what the storm sent.
#![cfg(target_os = "linux")] // network namespaces

mod common;

use std::io::Write;
use std::time::Instant;

use common::*;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use netreach::{Level, Monitor, ReachabilityOf};
use testns::thread;

/// Changes per round and rounds: 500 entries (well under the neighbour table's default size
/// limit) whose link-layer address changes every round, so each change is announced.
const ENTRIES: usize = 500;
const ROUNDS: usize = 10;

/// The monitor thread's wake-ups and CPU so far, once it sleeps.
fn engine_thread() -> thread::Usage {
    thread::usage("netreach", EVENT_TIMEOUT)
}

#[test]
fn a_neighbour_storm_on_other_addresses_does_not_wake_the_monitor() {
    testns::skip_unless_root!();
    let ns = ns_with_veth("gwstorm");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    ns.ip("neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud reachable");
    let monitor = Monitor::builder().netns(ns.name()).build().expect("monitor");
    let sub = monitor.subscribe();
    sub.recv_timeout(EVENT_TIMEOUT).expect("baseline");
    assert_eq!(monitor.snapshot().gateways.len(), 1, "the gateway is followed");
    let peer = ns.run_inside(|| {
        let mut socket = Socket::new(NETLINK_ROUTE).expect("socket");
        socket.bind(&SocketAddr::new(0, 0)).expect("bind");
        socket.add_membership(libc::RTNLGRP_NEIGH).expect("join");
        socket.set_rx_buf_sz(8 << 20).expect("receive buffer");
        socket.set_non_blocking(true).expect("non-blocking");
        socket
    });
    let mut batch = String::new();
    for round in 0..ROUNDS {
        for i in 0..ENTRIES {
            let (a, b) = (i / 250, i % 250 + 1);
            batch += &format!("neigh replace 198.18.{a}.{b} dev va lladdr 02:00:00:00:{round:02x}:{b:02x}\n");
        }
    }
    let before = engine_thread();
    let started = Instant::now();
    ns.ip_batch(&batch);
    let storm = started.elapsed();
    // The peer's count: everything the storm announced (drained after it).
    let mut announced = 0;
    let mut buffer = Vec::with_capacity(65536);
    loop {
        buffer.clear();
        match peer.recv(&mut buffer, 0) {
            Ok(_) => announced += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("peer socket: {e}"),
        }
    }
    // Then the gateway's own entry changes: that passes, and once its event is out the
    // monitor's thread has read everything its socket held.
    ns.ip("neigh replace 192.0.2.1 dev va nud failed");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    let after = engine_thread();
    let (wakeups, cpu_ticks) = (after.wakeups - before.wakeups, after.cpu_ticks - before.cpu_ticks);
    writeln!(
        std::io::stdout(),
        "neighbour storm: {} changes in {:.0} ms; peer socket without filter: {announced} datagrams; monitor \
         thread: {wakeups} wake-ups (including the gateway's change), {cpu_ticks} clock ticks of CPU",
        ENTRIES * ROUNDS,
        storm.as_secs_f64() * 1000.0,
    )
    .unwrap();
    assert!(announced >= ENTRIES * ROUNDS, "the storm was announced: {announced}");
    assert!(wakeups <= 3, "{wakeups} wake-ups for {announced} announcements");
}
