//! Benchmark for the NetworkManager backend (prints figures; not a timed test).
//!
//! `cargo run --release -p netreach-bench --bin networkmanager [-- --quick]`
//!
//! On a real NetworkManager + dbus-daemon sandbox (testns::nm), NM's connectivity is flipped
//! between `portal` and `full` by switching its check endpoint and asking NM to check. For
//! each flip three clocks (all CLOCK_REALTIME, same machine) are compared:
//! - t0: a plain D-Bus client of this process receives NM's first `PropertiesChanged` that
//!   carries the new value (the device's `Ip4Connectivity`, a few tens of µs before the
//!   manager's `Connectivity`);
//! - netreach: a subscriber callback receives the NetworkManager verdict with the new portal
//!   state (goal: p50 <= 1 ms after t0);
//! - GLib: `GNetworkMonitor` (NM backend, python3-gi, its own process) notifies
//!   `connectivity`. The ratio GLib / netreach of the p50s is printed.
//!
//! Then the device is disconnected by NM (`nmcli device disconnect`) and reactivated, and
//! for each disconnect t0 is NM's first `PropertiesChanged` saying its `State` is no longer
//! connected (disconnecting, 30, comes first), against the moment a subscriber callback sees
//! netreach's overall reachability become `disconnected` (p50 and p99).

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use netreach::{BackendKind, EventKind, Level, Monitor, ReachabilityOf, Source};
use testns::nm::{require_networkmanager, NmSandbox};
use zbus::zvariant::OwnedValue;

const TIMEOUT: Duration = Duration::from_secs(20);
const NM: &str = "org.freedesktop.NetworkManager";

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// Receives NM's `PropertiesChanged` signals on its own connection: (receipt time, property,
/// value) for `Connectivity`, `Ip4Connectivity` and the manager's `State`.
fn listen(address: String) -> mpsc::Receiver<(f64, &'static str, u32)> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        zbus::block_on(async move {
            let conn = zbus::connection::Builder::address(address.as_str())?.build().await?;
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender(NM)?
                .interface("org.freedesktop.DBus.Properties")?
                .member("PropertiesChanged")?
                .path_namespace("/org/freedesktop/NetworkManager")?
                .build();
            let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
            let _ = ready_tx.send(());
            while let Some(Ok(message)) = stream.next().await {
                let at = now();
                let Ok((_, changed, _)) =
                    message.body().deserialize::<(String, HashMap<String, OwnedValue>, Vec<String>)>()
                else {
                    continue;
                };
                let manager = message.header().path().is_some_and(|p| p.as_str() == "/org/freedesktop/NetworkManager");
                for key in ["Ip4Connectivity", "Connectivity", "State"] {
                    if key == "State" && !manager {
                        continue; // devices and active connections have a `State` too
                    }
                    let value = changed.get(key).and_then(|v| v.try_clone().ok()).and_then(|v| u32::try_from(v).ok());
                    if let Some(value) = value {
                        if tx.send((at, key, value)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            zbus::Result::Ok(())
        })
        .expect("listening to NetworkManager's signals");
    });
    ready.recv_timeout(TIMEOUT).expect("signal listener ready");
    rx
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    if !testns::require_root("networkmanager benchmark") || !require_networkmanager("networkmanager benchmark") {
        std::process::exit(1);
    }
    let flips = if std::env::args().any(|a| a == "--quick") { 40 } else { 200 };
    let sandbox = NmSandbox::up();
    let bus = listen(sandbox.bus_address());
    let monitor = Monitor::builder()
        .netns_path(sandbox.netns_path())
        .backend(BackendKind::NetworkManager)
        .system_bus_address(sandbox.bus_address())
        .build()
        .expect("monitor with the NetworkManager backend");
    let (tx, netreach_events) = mpsc::channel();
    monitor.on_event(move |event| {
        if let EventKind::VerdictChanged { verdict } = &event.kind {
            if verdict.source == Source::NetworkManager {
                let _ = tx.send((now(), verdict.captive_portal));
            }
        }
    });
    let mut glib = sandbox.glib_monitor();
    let caller = zbus::block_on(zbus::connection::Builder::address(sandbox.bus_address().as_str()).unwrap().build())
        .expect("D-Bus connection for CheckConnectivity");

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..flips {
        let portal = i % 2 == 0;
        sandbox.set_mode(if portal { "wrong" } else { "ok" });
        let want = if portal { 2 } else { 4 };
        zbus::block_on(caller.call_method(
            Some(NM),
            "/org/freedesktop/NetworkManager",
            Some(NM),
            "CheckConnectivity",
            &(),
        ))
        .expect("CheckConnectivity");
        let t0 = loop {
            let (at, key, value) = bus.recv_timeout(TIMEOUT).expect("NM's signal");
            if key != "State" && value == want {
                break at;
            }
        };
        let t_netreach = loop {
            let (at, captive) = netreach_events.recv_timeout(TIMEOUT).expect("netreach's verdict");
            if captive == Some(portal) {
                break at;
            }
        };
        let word = if portal { "portal" } else { "full" };
        let t_glib = glib.wait_for(TIMEOUT, word, |g| g.connectivity == word).time;
        ours.push((t_netreach - t0) * 1e3);
        theirs.push((t_glib - t0) * 1e3);
        // Signals of this flip that the listener has not handed over yet are told apart by value.
        while bus.try_recv().is_ok() {}
    }
    ours.sort_by(f64::total_cmp);
    theirs.sort_by(f64::total_cmp);
    println!("NetworkManager PropertiesChanged -> subscriber, {flips} portal/full flips (ms):");
    for (name, v) in [("netreach", &ours), ("GLib GNetworkMonitor", &theirs)] {
        println!(
            "  {name:<22} min {:.3}  p50 {:.3}  p90 {:.3}  max {:.3}",
            percentile(v, 0.0),
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 1.0)
        );
    }
    let ratio = percentile(&theirs, 0.5) / percentile(&ours, 0.5);
    println!("  goal netreach p50 <= 1 ms: {}", if percentile(&ours, 0.5) <= 1.0 { "met" } else { "NOT met" });
    println!("  GLib p50 / netreach p50 = {ratio:.1}x");
    disconnects(&sandbox, &monitor, &bus, flips / 4);
}

/// NM's announced disconnect -> netreach's overall `disconnected`, over `cycles` disconnects.
fn disconnects(sandbox: &NmSandbox, monitor: &Monitor, bus: &mpsc::Receiver<(f64, &'static str, u32)>, cycles: usize) {
    let (tx, down) = mpsc::channel();
    let id = monitor.on_event(move |event| {
        if let EventKind::ReachabilityChanged { family: ReachabilityOf::Overall, new: Level::Disconnected, .. } =
            event.kind
        {
            let _ = tx.send(now());
        }
    });
    let mut delays = Vec::new();
    for _ in 0..cycles {
        while bus.try_recv().is_ok() {}
        while down.try_recv().is_ok() {}
        sandbox.nmcli(&["device", "disconnect", "nm0"]);
        let t0 = loop {
            let (at, key, value) = bus.recv_timeout(TIMEOUT).expect("NM's State signal");
            if key == "State" && value < 50 {
                break at;
            }
        };
        let t_netreach = down.recv_timeout(TIMEOUT).expect("netreach's disconnected");
        delays.push((t_netreach - t0) * 1e3);
        sandbox.nmcli(&["connection", "up", "sandbox-nm0"]);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while monitor.snapshot().reachability.overall != Level::Online {
            assert!(std::time::Instant::now() < deadline, "NM did not come back online");
            std::thread::sleep(Duration::from_millis(5)); // a benchmark's pacing, not a test's sync
        }
    }
    monitor.remove_callback(id);
    delays.sort_by(f64::total_cmp);
    println!("NetworkManager State no longer connected -> overall disconnected, {cycles} disconnects (ms):");
    println!(
        "  netreach                 min {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&delays, 0.0),
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0)
    );
}
