//! Benchmark for per-connection path monitoring (prints figures; not a timed test).
//!
//! `cargo run --release -p netreach-bench --bin paths [-- --quick]`
//!
//! - 100,000 paths on one Monitor: bytes per path beyond the Monitor's own baseline (goal
//!   <= 512), and how long one link-down takes to reach every affected path's callback
//!   (time to the last delivery, p50/p99 over repeated flips; goal p99 <= 50 ms).
//! - An unrelated change (a route no path's remote lies in, on another interface) must cost the
//!   same with 100,000 paths as with none: the time from issuing it to the next event.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use netreach::{EventKind, Monitor, PathMonitor};
use testns::NetNs;

const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    if !testns::require_root("paths benchmark") {
        std::process::exit(1);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (paths, flips, probes) = if quick { (20_000, 5, 5) } else { (100_000, 20, 15) };

    let ns = testns::uplinks("bench-paths");

    let monitor = Monitor::builder().netns(ns.name()).build().expect("monitor");
    let events = monitor.subscribe();
    let unrelated_without = unrelated_change_cost(&ns, &events, probes);

    let before = rss_bytes();
    let started = Instant::now();
    let watched: Vec<PathMonitor> = (0..paths).map(|i| watch(&monitor, i)).collect();
    let created = started.elapsed();
    let per_path = (rss_bytes().saturating_sub(before)) as f64 / paths as f64;
    assert!(watched.iter().all(PathMonitor::is_reachable), "every path starts reachable");

    // Every callback counts deliveries; the bench waits until all `paths` arrived.
    let delivered = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    for p in &watched {
        let (delivered, done_tx) = (delivered.clone(), done_tx.clone());
        let total = paths;
        p.on_change(move |_| {
            if delivered.fetch_add(1, Ordering::SeqCst) + 1 == total {
                let _ = done_tx.send(Instant::now());
            }
        });
    }
    wait_all(&done_rx, &delivered); // the initial statuses

    // When netreach got the kernel's report of va's carrier change: monitor callbacks run on the
    // engine thread right before the paths react to the same message.
    let reported = Arc::new(std::sync::Mutex::new(None));
    let at = reported.clone();
    monitor.on_event(move |e| {
        if matches!(&e.kind, EventKind::InterfaceChanged { after, .. } if after.name == "va") {
            *at.lock().unwrap() = Some(Instant::now());
        }
    });
    let (mut to_last, mut from_report, mut up_from_report) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..flips {
        for (command, reachable) in [("link set vb down", false), ("link set vb up", true)] {
            delivered.store(0, Ordering::SeqCst);
            *reported.lock().unwrap() = None;
            let t0 = Instant::now();
            ns.ip(command);
            let last = wait_all(&done_rx, &delivered);
            let since_report = last - reported.lock().unwrap().expect("va's change was reported");
            if reachable {
                up_from_report.push(since_report);
            } else {
                to_last.push(last - t0);
                from_report.push(since_report);
            }
            assert!(watched.iter().all(|p| p.is_reachable() == reachable), "after {command}");
        }
    }
    let unrelated_with = unrelated_change_cost(&ns, &events, probes);

    to_last.sort();
    from_report.sort();
    up_from_report.sort();
    let p = |q: f64| to_last[((to_last.len() - 1) as f64 * q).round() as usize];
    let r = |q: f64| from_report[((from_report.len() - 1) as f64 * q).round() as usize];
    let u = |q: f64| up_from_report[((up_from_report.len() - 1) as f64 * q).round() as usize];
    println!("machine: {}", testns_machine());
    println!("paths benchmark ({} paths{})", paths, if quick { ", --quick" } else { "" });
    println!("| measure | value | goal |");
    println!("|---|---|---|");
    println!(
        "| create {paths} paths | {:.0} ms ({:.1} us each) | - |",
        ms(created),
        created.as_secs_f64() * 1e6 / paths as f64
    );
    println!("| memory per path (RSS delta / paths) | {per_path:.0} B | <= 512 B: {} |", verdict(per_path <= 512.0));
    println!(
        "| kernel's link-down report -> last of {paths} callbacks, p50 / p99 over {flips} flips | {:.1} / {:.1} ms | p99 <= 50 ms: {} |",
        ms(r(0.5)),
        ms(r(0.99)),
        verdict(r(0.99) <= Duration::from_millis(50))
    );
    println!(
        "| `ip link set vb down` issued -> last of {paths} callbacks, p50 / p99 | {:.1} / {:.1} ms | (info: adds `ip` start-up and the kernel's own work) |",
        ms(p(0.5)),
        ms(p(0.99)),
    );
    println!(
        "| kernel's link-up report -> last of {paths} callbacks, p50 / p99 | {:.1} / {:.1} ms | (info: every path asks the kernel for its route again) |",
        ms(u(0.5)),
        ms(u(0.99)),
    );
    println!(
        "| unrelated change -> next event, 0 paths vs {paths} paths (median of {probes}) | {:.2} ms vs {:.2} ms | no growth: {} |",
        ms(unrelated_without),
        ms(unrelated_with),
        verdict(unrelated_with <= unrelated_without * 2 + Duration::from_millis(1))
    );
}

/// Path `i`: alternately IPv4 remotes off-subnet (203.0.113.0/24) and IPv6 remotes
/// (2001:db8:ffff::/48), all from the addresses on `va`.
fn watch(monitor: &Monitor, i: usize) -> PathMonitor {
    let (local, remote): (IpAddr, IpAddr) = if i % 2 == 0 {
        ("192.0.2.10".parse().unwrap(), format!("203.0.113.{}", 1 + (i / 2) % 254).parse().unwrap())
    } else {
        ("2001:db8::10".parse().unwrap(), format!("2001:db8:ffff::{:x}", 1 + i / 2).parse().unwrap())
    };
    monitor.watch_path(local, remote).expect("watch path")
}

fn wait_all(done: &mpsc::Receiver<Instant>, delivered: &AtomicUsize) -> Instant {
    done.recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("only {} deliveries arrived in {TIMEOUT:?}", delivered.load(Ordering::SeqCst)))
}

/// Median time from issuing "add a route no path uses, then an address on `wa`" (one `ip
/// -batch`) to the address event: the route change's path work delays that event.
fn unrelated_change_cost(ns: &NetNs, events: &netreach::Subscription, probes: usize) -> Duration {
    while events.try_recv().is_ok() {}
    let mut samples = Vec::new();
    for i in 0..probes {
        let t0 = Instant::now();
        ns.ip_batch(&format!("route add 2001:db8:aaaa:{i:x}::/64 dev wa\naddr add 198.51.100.{}/32 dev wa\n", 100 + i));
        loop {
            let e = events.recv_timeout(TIMEOUT).expect("address event");
            if matches!(e.kind, EventKind::AddressAdded { ref interface, .. } if interface == "wa") {
                samples.push(t0.elapsed());
                break;
            }
        }
        ns.ip_batch(&format!("route del 2001:db8:aaaa:{i:x}::/64\naddr del 198.51.100.{}/32 dev wa\n", 100 + i));
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn testns_machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}
