//! Benchmark for a router-sized routing table (prints figures; not a timed test).
//!
//! `cargo run --release -p netreach-bench --bin routes [-- --routes N] [-- --seconds S]`
//! (defaults: 1,048,576 routes, 30 s of churn at 10,000 changes/s; `--quick`: 131,072 routes,
//! 10 s).
//!
//! - The table: IPv4 /32 routes in 198.18.0.0/15 (the benchmarking range) at up to 8 metrics
//!   each, loaded into a namespace's main table with `ip -batch`.
//! - `netreach status --json` wall time with the table against a peer namespace without it (same
//!   uplink and default route), the runs alternating.
//! - The same for IPv6 (`--ipv6-routes N`, default 200,000; quick: 25,000 /64s in `main`):
//!   IPv6 tables are read whole (their defaults come last), a documented bound; beside it what
//!   the kernel alone spends on the table: the whole dump, the walk alone (a dump filtered to
//!   no route), one route lookup.
//! - Churn: 10,000 non-default route changes per second (`ip -batch` fed at that pace, half
//!   additions, half removals): CPU time and RSS of `netreach watch --json`, of `ip monitor
//!   route` and of GLib's `GNetworkMonitor` (python3-gi, its netlink backend: no system bus in
//!   the namespace) over the same window.
//! - Reachability after a reject-route or rule change: a changer's own rtnetlink socket adds a
//!   `blackhole` default in front of the real one (or an `unreachable` rule) and removes it;
//!   t0 right before `send()`, t1 in a library callback seeing the new IPv4 level.

#[path = "../fib6.rs"]
mod fib6;
#[path = "../machine.rs"]
mod machine;
use machine::{load, machine};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_route::route::{RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use netreach::{EventKind, Level, Monitor, ReachabilityOf};
use testns::NetNs;

const CHANGES_PER_SECOND: usize = 10_000;
const SAMPLES: usize = 200;

fn main() {
    if !testns::require_root("routes benchmark") {
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)?.parse::<usize>().ok());
    let routes = value("--routes").unwrap_or(if quick { 131_072 } else { 1_048_576 });
    let seconds = value("--seconds").unwrap_or(if quick { 10 } else { 30 });
    let netreach = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/netreach");
    assert!(netreach.exists(), "build it first: cargo build --release -p netreach-cli");

    println!("machine: {}", machine());
    // The peer: the same namespace without the table, measured in turn with it (so the
    // machine's load falls on both alike).
    let uplink = |name: &str| {
        let ns = NetNs::new(name);
        ns.veth("va", "vb");
        ns.ip("addr add 192.0.2.10/24 dev va");
        ns.ip("route add default via 192.0.2.1 metric 100");
        ns
    };
    let ns = uplink("bench-routes");
    let peer = uplink("bench-routes-peer");

    let loaded = Instant::now();
    load_table(&ns, routes);
    println!("loaded {routes} routes with ip -batch in {:.1} s", loaded.elapsed().as_secs_f64());
    let (without, with) = status_times(&netreach, &peer, &ns);
    println!("| measure | value | goal |");
    println!("|---|---|---|");
    let ratio = with.as_secs_f64() / without.as_secs_f64();
    println!(
        "| `status --json` wall time, median of {STATUS_RUNS}, runs alternating: without the table / with {routes} routes | {:.2} ms / {:.2} ms ({ratio:.2}x) | <= 1.5x: {} |",
        ms(without),
        ms(with),
        verdict(ratio <= 1.5)
    );

    ipv6_tables(&netreach, value("--ipv6-routes").unwrap_or(if quick { 25_000 } else { 200_000 }));

    churn(&netreach, &ns, seconds);
    reject_latency(&ns);
    println!("load at the end: {}", load());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "**MISS**"
    }
}

/// Runs of `status --json` in each namespace.
const STATUS_RUNS: usize = 15;

/// Median `status --json` wall time in `a` and in `b`, the runs alternating.
fn status_times(netreach: &std::path::Path, a: &NetNs, b: &NetNs) -> (Duration, Duration) {
    let run = |ns: &NetNs| {
        let start = Instant::now();
        // Run inside the namespace: no inotify watch on /run/netns (a per-user resource
        // other processes on a shared machine may have used up).
        let out = ns.command(&netreach.to_string_lossy()).args(["status", "--json"]).output().expect("status");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        start.elapsed()
    };
    let (mut times_a, mut times_b): (Vec<Duration>, Vec<Duration>) = (0..STATUS_RUNS).map(|_| (run(a), run(b))).unzip();
    times_a.sort();
    times_b.sort();
    (times_a[STATUS_RUNS / 2], times_b[STATUS_RUNS / 2])
}

/// IPv6 defaults sit at the root of the kernel's fib6 tree, which its walk visits last, and no
/// filter selects them: each listed IPv6 table is read whole (see sys/linux/tables.rs). The
/// cost, paired as above: `routes` IPv6 /64s in 2001:db8::/32 in `main`, against a peer
/// without them; then what the kernel alone spends on that table ([`fib6::costs`]).
fn ipv6_tables(netreach: &std::path::Path, routes: usize) {
    let uplink = |name: &str| {
        let ns = NetNs::new(name);
        ns.veth("va", "vb");
        ns.ip("addr add 192.0.2.10/24 dev va");
        ns.ip("addr add 2001:db8::10/64 dev va nodad");
        ns.ip("route add default via 192.0.2.1");
        ns.ip("-6 route add default via 2001:db8::1");
        ns
    };
    let (ns, peer) = (uplink("bench-routes6"), uplink("bench-routes6-peer"));
    let mut batch = String::with_capacity(routes * 48);
    for i in 0..routes {
        batch.push_str(&format!("route add 2001:db8:{:x}:{:x}::/64 via 2001:db8::1\n", 0x100 + i / 65_536, i % 65_536));
    }
    ns.ip_batch(&batch);
    let (without, with) = status_times(netreach, &peer, &ns);
    let ratio = with.as_secs_f64() / without.as_secs_f64();
    println!(
        "| `status --json`, IPv6: without the table / with {routes} IPv6 routes (read whole: the documented bound) | {:.2} ms / {:.2} ms ({ratio:.2}x) | <= 1.5x: {} |",
        ms(without),
        ms(with),
        verdict(ratio <= 1.5)
    );
    let kernel = fib6::costs(&ns, STATUS_RUNS);
    println!(
        "| the kernel alone, median of {STATUS_RUNS}: `main` dumped whole ({} routes) / filtered to no route (the walk alone) / one fibmatch lookup | {:.2} ms / {:.2} ms / {:.3} ms | - |",
        kernel.routes,
        ms(kernel.whole),
        ms(kernel.walk),
        ms(kernel.lookup)
    );
}

/// Route `i` of the table: a /32 in 198.18.0.0/15 at one of 8 metrics.
fn route(i: usize) -> String {
    let host = (i % 131_072) as u32;
    let metric = 1 + i / 131_072;
    let address = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + host);
    format!("{address}/32 via 192.0.2.1 metric {metric}")
}

fn load_table(ns: &NetNs, routes: usize) {
    let mut batch = String::with_capacity(routes * 48);
    for i in 0..routes {
        batch.push_str("route add ");
        batch.push_str(&route(i));
        batch.push('\n');
    }
    ns.ip_batch(&batch);
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    testns::thread::cpu_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// A process's VmRSS and VmHWM, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

/// Waits until the process has used no CPU for 0.5 s (its start-up dump is done), at most 120 s.
fn settle(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = cpu_ticks(pid);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        let now = cpu_ticks(pid);
        if now == last {
            return;
        }
        last = now;
    }
}

struct Watched {
    name: &'static str,
    child: Child,
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn churn(netreach: &std::path::Path, ns: &NetNs, seconds: usize) {
    let spawn = |name: &'static str, command: &mut Command| Watched {
        name,
        child: command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect(name),
    };
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testns/nm/glib-monitor.py");
    let mut watchers = vec![
        spawn("`netreach watch --json`", ns.command(&netreach.to_string_lossy()).args(["watch", "--json"])),
        spawn("`ip monitor route`", Command::new("ip").args(["-n", ns.name(), "monitor", "route"])),
    ];
    if script.exists() && std::path::Path::new("/usr/lib/python3/dist-packages/gi/__init__.py").exists() {
        // No system bus inside: GLib falls back to its netlink backend, which reads routes.
        let mut glib = ns.command("env");
        // Debian's python3 (where python3-gi lives), not whatever python3 comes first in PATH.
        glib.args(["DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent", "/usr/bin/python3"]).arg(&script);
        watchers.push(spawn("GLib `GNetworkMonitor`", &mut glib));
    } else {
        println!("(python3-gi not installed: GLib's monitor skipped)");
    }
    for w in &watchers {
        settle(w.child.id());
    }
    let before: Vec<u64> = watchers.iter().map(|w| cpu_ticks(w.child.id())).collect();

    let (written, elapsed) = testns::churn::paced(ns, CHANGES_PER_SECOND, seconds, |k| {
        // Change k: add, or remove what k - 1 added (metric 9: not in the loaded table).
        let host = (k / 2) % 131_072;
        let verb = if k % 2 == 0 { "add" } else { "del" };
        let address = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + host as u32);
        format!("route {verb} {address}/32 via 192.0.2.1 metric 9\n")
    });
    let hz = 100.0; // USER_HZ: /proc's clock ticks
    println!(
        "churn: {written} route changes in {:.1} s ({:.0}/s) on top of the loaded table",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64()
    );
    println!("| process | CPU during the churn (% of one core) | VmRSS | VmHWM |");
    println!("|---|---:|---:|---:|");
    for (w, before) in watchers.iter_mut().zip(before) {
        let used = (cpu_ticks(w.child.id()) - before) as f64 / hz;
        let (rss, hwm) = memory(w.child.id());
        let alive = matches!(w.child.try_wait(), Ok(None));
        let note = if alive { "" } else { " (exited early)" };
        println!(
            "| {}{note} | {:.2}% | {:.1} MiB | {:.1} MiB |",
            w.name,
            used / elapsed.as_secs_f64() * 100.0,
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
}

/// One acknowledged rtnetlink request inside the namespace; t0 right before `send()`.
struct Changer {
    socket: Socket,
    sequence: u32,
}

impl Changer {
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> Instant {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);
        let t0 = Instant::now();
        self.socket.send(&bytes, 0).expect("send");
        let mut buffer = Vec::with_capacity(8192);
        self.socket.recv(&mut buffer, 0).expect("ack");
        t0
    }
}

fn blackhole_default() -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = AddressFamily::Inet;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.scope = RouteScope::Universe;
    m.header.kind = RouteType::BlackHole;
    m
}

fn unreachable_rule() -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.action = RuleAction::Unreachable;
    m.attributes.push(RuleAttribute::Priority(50));
    m
}

fn reject_latency(ns: &NetNs) {
    // The namespace by a /proc path: such a monitor sets no inotify watch on /run/netns (a
    // per-user resource other processes on a shared machine may have used up).
    let file = std::fs::File::open(ns.path()).expect("namespace file");
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    let monitor = Monitor::builder().netns_path(path).build().expect("monitor");
    let (tx, rx) = mpsc::channel();
    let _callback = monitor.on_event(move |e| {
        if let EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv4, new, .. } = e.kind {
            let _ = tx.send((Instant::now(), new));
        }
    });
    let mut changer = ns.run_inside(|| {
        let mut socket = Socket::new(NETLINK_ROUTE).expect("socket");
        socket.bind_auto().expect("bind");
        Changer { socket, sequence: 0 }
    });
    println!("| change -> library callback (IPv4 level), {SAMPLES} samples each | p50 | p99 | goal p50 |");
    println!("|---|---:|---:|---|");
    type Step = fn(&mut Changer) -> Instant;
    let kinds: [(&str, Step, Step); 2] = [
        (
            "blackhole default in front of the real one",
            |c| c.request(RouteNetlinkMessage::NewRoute(blackhole_default()), NLM_F_CREATE),
            |c| c.request(RouteNetlinkMessage::DelRoute(blackhole_default()), 0),
        ),
        (
            "`ip rule add unreachable`",
            |c| c.request(RouteNetlinkMessage::NewRule(unreachable_rule()), NLM_F_CREATE),
            |c| c.request(RouteNetlinkMessage::DelRule(unreachable_rule()), 0),
        ),
    ];
    for (name, apply, undo) in kinds {
        let mut samples = Vec::new();
        for _ in 0..SAMPLES {
            for (step, want) in [(apply, Level::Site), (undo, Level::Online)] {
                let t0 = step(&mut changer);
                let (t1, level) = rx.recv_timeout(Duration::from_secs(10)).expect("the level changes");
                assert_eq!(level, want, "{name}");
                if want == Level::Site {
                    samples.push(t1.saturating_duration_since(t0));
                }
            }
        }
        samples.sort();
        let p = |q: usize| samples[(samples.len() * q).div_ceil(100).max(1) - 1];
        let p50 = p(50);
        println!(
            "| {name} | {:.0} µs | {:.0} µs | <= 100 µs: {} |",
            p50.as_secs_f64() * 1e6,
            p(99).as_secs_f64() * 1e6,
            verdict(p50 <= Duration::from_micros(100))
        );
    }
}
