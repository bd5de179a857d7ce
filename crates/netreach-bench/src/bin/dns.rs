//! Benchmark for following the resolver configuration (issue 13, item 2; prints figures, not a
//! timed test).
//!
//! `cargo run --release -p netreach-bench --bin dns [-- --quick]` (as root; 500 replacements,
//! `--quick` 100).
//!
//! The process first enters a mount namespace of its own with a private, empty `/etc` and
//! `/run` (tmpfs), so the host's own resolver configuration is neither read nor written. Then
//! `/etc/resolv.conf` is replaced by rename (as DHCP clients and resolvconf write it), each time
//! with another nameserver: t0 right before `rename()`, t1 when a library callback sees the
//! `dns_changed` event naming the new server. Paired: a bare inotify watch on `/etc`, read on
//! its own thread, stamps the same rename (the kernel's delivery alone), so the figure a
//! loaded machine adds to both shows.

#[path = "../machine.rs"]
mod machine;
use machine::machine;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netreach::{EventKind, Monitor};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

const TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    if !testns::require_root("dns benchmark") {
        std::process::exit(1);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let samples = if quick { 100 } else { 500 };
    private_etc_and_run();
    std::fs::write("/etc/resolv.conf", "nameserver 192.0.2.53\n").expect("writing the private resolv.conf");

    let (seen, changes) = mpsc::channel::<(Instant, Option<String>)>();
    let monitor = Monitor::new().expect("monitor");
    monitor.on_event(move |event| {
        if let EventKind::DnsChanged { after, .. } = &event.kind {
            let first = after.nameservers.first().map(|n| n.address.to_string());
            let _ = seen.send((Instant::now(), first));
        }
    });
    let (notified, inotified) = mpsc::channel::<Instant>();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).expect("inotify");
    inotify.add_watch("/etc", AddWatchFlags::IN_MOVED_TO).expect("watching /etc");
    std::thread::spawn(move || {
        while let Ok(events) = inotify.read_events() {
            let now = Instant::now();
            if events.iter().any(|e| e.name.as_deref().is_some_and(|n| n == "resolv.conf"))
                && notified.send(now).is_err()
            {
                return;
            }
        }
    });

    let (mut library, mut kernel) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    for i in 0..samples {
        let server = Ipv4Addr::new(198, 51, 100, (i % 250) as u8 + 1).to_string();
        std::fs::write("/etc/resolv.conf.new", format!("nameserver {server}\nsearch bench.example\n")).unwrap();
        let t0 = Instant::now();
        std::fs::rename("/etc/resolv.conf.new", "/etc/resolv.conf").expect("rename");
        let t1 = loop {
            let (at, first) = changes.recv_timeout(TIMEOUT).expect("dns_changed in time");
            if first.as_deref() == Some(server.as_str()) {
                break at;
            }
        };
        let tk = inotified.recv_timeout(TIMEOUT).expect("the inotify event in time");
        library.push(t1.saturating_duration_since(t0));
        kernel.push(tk.saturating_duration_since(t0));
    }
    library.sort();
    kernel.sort();
    let mut out = std::io::stdout();
    writeln!(out, "machine: {}", machine()).unwrap();
    writeln!(out, "\n| resolv.conf replaced by rename -> | samples | p50 | p99 | max | goal |").unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---|").unwrap();
    let row = |what: &str, sorted: &[Duration], goal: &str| {
        format!(
            "| {what} | {} | {:?} | {:?} | {:?} | {goal} |",
            sorted.len(),
            percentile(sorted, 50),
            percentile(sorted, 99),
            sorted.last().copied().unwrap_or_default()
        )
    };
    let verdict =
        if percentile(&library, 50) <= Duration::from_millis(1) { "p50 <= 1 ms: PASS" } else { "p50 <= 1 ms: MISS" };
    writeln!(out, "{}", row("`dns_changed` in a library callback", &library, verdict)).unwrap();
    writeln!(out, "{}", row("a bare inotify watch on /etc (paired)", &kernel, "the kernel's delivery")).unwrap();
}

/// A mount namespace of this process's own, where /etc and /run are empty tmpfs: what the
/// benchmark writes never reaches the host.
fn private_etc_and_run() {
    unshare(CloneFlags::CLONE_NEWNS).expect("a mount namespace of our own");
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .expect("making our mounts private");
    for dir in ["/etc", "/run"] {
        mount(Some("netreach-bench"), dir, Some("tmpfs"), MsFlags::empty(), None::<&str>).expect("a private tmpfs");
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}
