//! Listing at scale: 1,000 interfaces with 10,000 addresses in one namespace, read whole.
//!
//! Two comparisons: whole processes (`netreach status --json` against `ip -j addr show`, both
//! started, read to the end and reaped), and in-process (the library's build + initial
//! snapshot against the `if-watch` crate reporting every address once).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use if_watch::IfEvent;
use netreach::Monitor;
use serde_json::Value;
use testns::NetNs;

use crate::util::{in_namespace, median, Fallible};

/// veth pairs created: two interfaces each.
const PAIRS: usize = 500;
/// IPv6 addresses per interface.
const ADDRESSES_PER_INTERFACE: usize = 10;
/// Longest any single listing may take before the measurement fails.
const LISTING_TIMEOUT: Duration = Duration::from_secs(60);

/// Medians over `runs` runs of each contender.
pub struct Listing {
    pub runs: usize,
    pub interfaces: usize,
    /// Addresses in the namespace, as `ip` counts them (including loopback's).
    pub addresses: usize,
    pub ip_process: Duration,
    pub netreach_process: Duration,
    pub netreach_snapshot: Duration,
    pub if_watch: Duration,
}

pub fn measure(runs: usize, netreach: &Path) -> Fallible<Listing> {
    let ns = NetNs::new("scale");
    populate(&ns);
    let interfaces = ns.ip_json("link show").as_array().map_or(0, Vec::len);
    let addresses = count_ip_addresses(&ns.ip_json("addr show"));
    eprintln!("  namespace: {interfaces} interfaces, {addresses} addresses");

    let ip_command = || {
        let mut c = Command::new("ip");
        c.args(["-n", ns.name(), "-j", "addr", "show"]);
        c
    };
    let netreach_command = || {
        let mut c = Command::new(netreach);
        c.args(["status", "--json", "--netns", ns.name()]);
        c
    };
    // One unmeasured run of each checks the output and warms the page cache.
    check_count("ip -j addr show", count_ip_addresses(&json(&run(&mut ip_command())?.1)?), addresses)?;
    check_count(
        "netreach status --json",
        count_netreach_addresses(&json(&run(&mut netreach_command())?.1)?),
        addresses,
    )?;
    check_count("the library's snapshot", netreach_snapshot(ns.name())?.1, addresses)?;
    if_watch_listing(&ns.path(), addresses)?;

    // Alternate the contenders so slow drifts of the machine hit both alike.
    let (mut ip, mut cli, mut library, mut if_watch) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        ip.push(run(&mut ip_command())?.0);
        cli.push(run(&mut netreach_command())?.0);
        library.push(netreach_snapshot(ns.name())?.0);
        if_watch.push(if_watch_listing(&ns.path(), addresses)?);
    }
    Ok(Listing {
        runs,
        interfaces,
        addresses,
        ip_process: median(ip),
        netreach_process: median(cli),
        netreach_snapshot: median(library),
        if_watch: median(if_watch),
    })
}

/// 500 veth pairs, left down (no link-local addresses or duplicate address detection
/// changing the namespace while it is measured), each end with 10 addresses from
/// 2001:db8::/32 added with `nodad` so none is tentative. One `ip -batch` for speed.
fn populate(ns: &NetNs) {
    let mut batch = String::new();
    for pair in 0..PAIRS {
        batch += &format!("link add sa{pair} type veth peer name sb{pair}\n");
    }
    for n in 0..PAIRS * 2 {
        let name = if n < PAIRS { format!("sa{n}") } else { format!("sb{}", n - PAIRS) };
        for host in 1..=ADDRESSES_PER_INTERFACE {
            batch += &format!("addr add 2001:db8:{:x}::{host:x}/64 dev {name} nodad\n", n + 1);
        }
    }
    ns.ip_batch(&batch);
}

/// Runs a command to completion, reading all its output; returns the wall time and stdout.
fn run(command: &mut Command) -> Fallible<(Duration, Vec<u8>)> {
    let start = Instant::now();
    let output = command.output().map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let elapsed = start.elapsed();
    if !output.status.success() {
        return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok((elapsed, output.stdout))
}

fn json(bytes: &[u8]) -> Fallible<Value> {
    serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))
}

fn count_ip_addresses(links: &Value) -> usize {
    let links = links.as_array().map(Vec::as_slice).unwrap_or_default();
    links.iter().map(|l| l["addr_info"].as_array().map_or(0, Vec::len)).sum()
}

fn count_netreach_addresses(state: &Value) -> usize {
    let interfaces = state["interfaces"].as_array().map(Vec::as_slice).unwrap_or_default();
    interfaces.iter().map(|i| i["addresses"].as_array().map_or(0, Vec::len)).sum()
}

fn check_count(who: &str, counted: usize, expected: usize) -> Fallible<()> {
    if counted == expected {
        Ok(())
    } else {
        Err(format!("{who} listed {counted} addresses, the namespace has {expected}"))
    }
}

/// The library's start: build (sockets, dumps, engine thread) plus the first snapshot.
/// Returns the time and the number of addresses in the snapshot.
fn netreach_snapshot(netns: &str) -> Fallible<(Duration, usize)> {
    let start = Instant::now();
    let monitor = Monitor::builder().netns(netns).build().map_err(|e| format!("starting the monitor: {e}"))?;
    let state = monitor.snapshot();
    let elapsed = start.elapsed();
    Ok((elapsed, state.interfaces.iter().map(|i| i.addresses.len()).sum()))
}

/// The time from creating an `if-watch` watcher until it has reported `expected` addresses.
/// if-watch only watches its caller's namespace, so the whole run happens on a thread that
/// entered the namespace first (not timed), with a single-threaded tokio runtime.
fn if_watch_listing(path: &Path, expected: usize) -> Fallible<Duration> {
    in_namespace(path, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        runtime.block_on(async {
            let start = Instant::now();
            let mut watcher = if_watch::tokio::IfWatcher::new().map_err(|e| format!("if-watch: {e}"))?;
            let mut reported = 0;
            let listing = async {
                while reported < expected {
                    match watcher.next().await {
                        Some(Ok(IfEvent::Up(_))) => reported += 1,
                        Some(Ok(IfEvent::Down(_))) => {}
                        Some(Err(e)) => return Err(format!("if-watch: {e}")),
                        None => return Err("if-watch ended".to_string()),
                    }
                }
                Ok(())
            };
            tokio::time::timeout(LISTING_TIMEOUT, listing).await.map_err(|_| {
                format!("if-watch reported {reported} of {expected} addresses in {LISTING_TIMEOUT:?}")
            })??;
            Ok(start.elapsed())
        })
    })
}

/// `--compare`: the medians of `runs` runs of each binary's `status --json` on the populated
/// namespace, alternated so that drifts of the machine hit both alike, and each going first
/// in every other round (the second run of a round finds caches the first one warmed).
pub fn compare(runs: usize, binaries: [&Path; 2]) -> Fallible<[Duration; 2]> {
    let ns = NetNs::new("scale");
    populate(&ns);
    let addresses = count_ip_addresses(&ns.ip_json("addr show"));
    let command = |binary: &Path| {
        let mut c = Command::new(binary);
        c.args(["status", "--json", "--netns", ns.name()]);
        c
    };
    for binary in binaries {
        let listed = count_netreach_addresses(&json(&run(&mut command(binary))?.1)?);
        check_count(&binary.display().to_string(), listed, addresses)?;
    }
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..runs {
        for who in [round % 2, 1 - round % 2] {
            times[who].push(run(&mut command(binaries[who]))?.0);
        }
    }
    Ok(times.map(median))
}
