//! Benchmark for gateway liveness (issue 13, item 1; prints figures, not a timed test).
//!
//! `cargo run --release -p netreach-bench --bin neighbours [-- --seconds S] [-- --quick]`
//! (defaults: 30 s of churn at 10,000 changes/s; `--quick`: 10 s).
//!
//! - Churn: 10,000 neighbour changes per second on addresses that are not the gateway
//!   (`ip -batch` fed at that pace: 500 entries in 198.18.0.0/15 whose link-layer address
//!   changes every round, so each change is announced). CPU time of the monitor's thread (a
//!   library monitor in this process; `/proc/self/task`) against `ip monitor neigh` over the
//!   same window, and the monitor thread's wake-ups (voluntary context switches).
//! - Gateway loss -> reachability event: a changer's own rtnetlink socket sets the gateway's
//!   entry `FAILED` (as the kernel does when ARP goes unanswered) and back to `REACHABLE`;
//!   t0 right before `send()`, t1 in a library callback seeing the IPv4 level. Paired: a plain
//!   socket joined to the neighbour group, read on its own thread, timestamps the same
//!   message (the kernel's delivery alone).

#[path = "../machine.rs"]
mod machine;
use machine::{load, machine};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use netreach::{EventKind, Level, Monitor, ReachabilityOf};
use testns::thread;
use testns::NetNs;

const CHANGES_PER_SECOND: usize = 10_000;
const ENTRIES: usize = 500;
const SAMPLES: usize = 200;
const HZ: f64 = 100.0; // USER_HZ: /proc's clock ticks
/// The neighbour group (linux/rtnetlink.h).
const RTNLGRP_NEIGH: u32 = 3;

fn main() {
    if !testns::require_root("neighbours benchmark") {
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1)?.parse::<usize>().ok())
        .unwrap_or(if quick { 10 } else { 30 });
    let mut out = std::io::stdout();
    writeln!(out, "machine: {}", machine()).unwrap();
    let ns = NetNs::new("bench-neigh");
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    ns.ip("neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud reachable");
    // By a /proc path: no inotify watch on /run/netns.
    let file = std::fs::File::open(ns.path()).expect("namespace file");
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    let monitor = Monitor::builder().netns_path(path).build().expect("monitor");
    assert_eq!(monitor.snapshot().gateways.len(), 1, "the gateway is followed");
    churn(&ns, seconds);
    latency(&ns, &monitor);
    writeln!(out, "load at the end: {}", load()).unwrap();
}

/// The monitor thread's wake-ups and CPU so far.
fn engine_thread() -> thread::Usage {
    thread::usage("netreach", Duration::from_secs(5))
}

fn churn(ns: &NetNs, seconds: usize) {
    let mut out = std::io::stdout();
    let mut peer = Command::new("ip")
        .args(["-n", ns.name(), "monitor", "neigh"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ip monitor neigh");
    let peer_stat = std::path::PathBuf::from(format!("/proc/{}/stat", peer.id()));
    let (engine_before, peer_before) = (engine_thread(), thread::cpu_ticks(&peer_stat));
    let (written, elapsed) = testns::churn::paced(ns, CHANGES_PER_SECOND, seconds, |k| {
        let (round, i) = (k / ENTRIES, k % ENTRIES);
        let address = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 1)) + i as u32);
        format!("neigh replace {address} dev va lladdr 02:00:00:{:02x}:{:02x}:01\n", round / 256 % 256, round % 256)
    });
    let elapsed = elapsed.as_secs_f64();
    let (engine_after, peer_after) = (engine_thread(), thread::cpu_ticks(&peer_stat));
    let _ = peer.kill();
    let _ = peer.wait();
    let percent = |ticks: u64| ticks as f64 / HZ / elapsed * 100.0;
    let engine = percent(engine_after.cpu_ticks - engine_before.cpu_ticks);
    writeln!(
        out,
        "churn: {written} neighbour changes in {elapsed:.1} s ({:.0}/s), none of them the gateway",
        written as f64 / elapsed
    )
    .unwrap();
    writeln!(out, "| process | CPU during the churn (% of one core) | wake-ups | goal |").unwrap();
    writeln!(out, "|---|---:|---:|---|").unwrap();
    let pass = if engine <= 1.0 { "PASS" } else { "**MISS**" };
    writeln!(
        out,
        "| netreach monitor thread | {engine:.2}% | {} | <= 1%: {pass} |",
        engine_after.wakeups - engine_before.wakeups
    )
    .unwrap();
    writeln!(out, "| `ip monitor neigh` | {:.2}% | | |", percent(peer_after - peer_before)).unwrap();
}

/// One acknowledged request on the changer's socket; t0 right before `send()`.
fn request(socket: &Socket, sequence: u32, message: NeighbourMessage) -> Instant {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE;
    header.sequence_number = sequence;
    let mut message =
        NetlinkMessage::new(header, NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(message)));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    let t0 = Instant::now();
    socket.send(&bytes, 0).expect("send");
    let mut buffer = Vec::with_capacity(8192);
    socket.recv(&mut buffer, 0).expect("ack");
    t0
}

fn gateway_entry(state: NeighbourState) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = 0; // set by the caller
    m.header.state = state;
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::new(192, 0, 2, 1))));
    if state == NeighbourState::Reachable {
        m.attributes.push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 1]));
    }
    m
}

fn latency(ns: &NetNs, monitor: &Monitor) {
    let mut out = std::io::stdout();
    let index = ns.index("va");
    let (tx, rx) = mpsc::channel();
    let _callback = monitor.on_event(move |e| {
        if let EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv4, new, .. } = e.kind {
            let _ = tx.send((Instant::now(), new));
        }
    });
    let (changer, peer) = ns.run_inside(|| {
        let mut changer = Socket::new(NETLINK_ROUTE).expect("socket");
        changer.bind_auto().expect("bind");
        let mut peer = Socket::new(NETLINK_ROUTE).expect("socket");
        peer.bind(&SocketAddr::new(0, 0)).expect("bind");
        peer.add_membership(RTNLGRP_NEIGH).expect("join");
        (changer, peer)
    });
    let (peer_tx, peer_rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        let mut buffer = Vec::with_capacity(8192);
        if peer.recv(&mut buffer, 0).is_err() || peer_tx.send(Instant::now()).is_err() {
            return;
        }
    });
    let (mut library, mut kernel) = (Vec::new(), Vec::new());
    let mut sequence = 0;
    for _ in 0..SAMPLES {
        for (state, want) in [(NeighbourState::Failed, Level::Site), (NeighbourState::Reachable, Level::Online)] {
            let mut entry = gateway_entry(state);
            entry.header.ifindex = index;
            sequence += 1;
            while peer_rx.try_recv().is_ok() {} // earlier messages (the kernel's own timers)
            let t0 = request(&changer, sequence, entry);
            let (t1, level) = rx.recv_timeout(Duration::from_secs(10)).expect("the level changes");
            assert_eq!(level, want);
            let delivered = peer_rx.recv_timeout(Duration::from_secs(10)).expect("the peer sees it");
            if want == Level::Site {
                library.push(t1.saturating_duration_since(t0));
                kernel.push(delivered.saturating_duration_since(t0));
            }
        }
    }
    let p = |samples: &mut Vec<Duration>, q: usize| {
        samples.sort();
        samples[(samples.len() * q).div_ceil(100).max(1) - 1].as_secs_f64() * 1e6
    };
    writeln!(out, "| gateway FAILED -> ..., {SAMPLES} samples | p50 | p99 | goal p50 |").unwrap();
    writeln!(out, "|---|---:|---:|---|").unwrap();
    let p50 = p(&mut library, 50);
    let pass = if p50 <= 100.0 { "PASS" } else { "**MISS**" };
    writeln!(
        out,
        "| library callback (IPv4 level -> site) | {p50:.0} µs | {:.0} µs | <= 100 µs: {pass} |",
        p(&mut library, 99)
    )
    .unwrap();
    writeln!(
        out,
        "| peer: a plain neighbour socket's thread | {:.0} µs | {:.0} µs | |",
        p(&mut kernel, 50),
        p(&mut kernel, 99)
    )
    .unwrap();
}
