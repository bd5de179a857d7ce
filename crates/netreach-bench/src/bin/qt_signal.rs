//! Benchmark: the Qt bridge's signal beside Qt's own `QNetworkInformation` (its
//! NetworkManager backend) on the same NetworkManager change, in the same run and process.
//!
//! `cargo run --release -p netreach-bench --bin qt_signal [-- --quick]`
//!
//! Builds the C library and qt/ (CMake, Debian's qt6-base-dev), starts the NetworkManager
//! sandbox (testns::nm: the real daemon on a private dbus-daemon) and runs
//! `netreach-qt-console --qt-information` against it: one Qt event loop holding both
//! `NetReachInformation` (netreach's NM backend) and `QNetworkInformation` (Qt's NM plugin,
//! on the sandbox's bus). Each flip switches NM's check endpoint between a portal and a working
//! answer and calls `CheckConnectivity`; t0 (CLOCK_MONOTONIC) is taken right before that call,
//! and both `reachabilityChanged` signals (Site, then Online again) carry their own stamps.
//! Printed: p50/p99 from t0 of each (both include NM's own HTTP check), and the p50 of the
//! per-flip gap netreach - Qt. Prints the load average before and after.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use testns::kit::Lines;
use testns::nm::NmSandbox;

const NM: &str = "org.freedesktop.NetworkManager";
const LINE_WAIT: Duration = Duration::from_secs(20);

fn monotonic_ns() -> i64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    t.tv_sec() * 1_000_000_000 + t.tv_nsec()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds libnetreach_c (release) and the console; returns the console's path.
fn build_console() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let json = run(
        Command::new(env!("CARGO")).args(["build", "--release", "-p", "netreach-c", "--lib", "--message-format=json"]),
        "cargo build -p netreach-c",
    );
    let so = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "netreach_c")
        .flat_map(|v| v["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .expect("libnetreach_c.so");
    let libdir = so.parent().expect("library directory");
    let dir = libdir.join("qt-bench");
    std::fs::create_dir_all(&dir).expect("build directory");
    let template = std::fs::read_to_string(root.join("crates/netreach-c/netreach-c.pc.in")).expect("pc template");
    let include = root.join("crates/netreach-c/include").canonicalize().expect("include directory");
    let pc = template
        .replace("@LIBDIR@", &libdir.display().to_string())
        .replace("@INCLUDEDIR@", &include.display().to_string());
    std::fs::write(dir.join("netreach-c.pc"), pc).expect("writing the .pc file");
    let build = dir.join("build");
    let (source, build_arg) = (root.join("qt").display().to_string(), build.display().to_string());
    for step in
        [vec!["-S", &source, "-B", &build_arg, "-DCMAKE_BUILD_TYPE=Release"], vec!["--build", &build_arg, "-j2"]]
    {
        run(Command::new("cmake").args(&step).env("PKG_CONFIG_PATH", &dir), "cmake (apt install cmake qt6-base-dev)");
    }
    build.join("netreach-qt-console")
}

/// Reads signal lines until both sources reported `value`; returns their stamps.
fn both(lines: &Lines, value: &str) -> (i64, i64) {
    let (mut ours, mut qt) = (None, None);
    while ours.is_none() || qt.is_none() {
        let line = String::from_utf8(lines.next(LINE_WAIT).expect("a signal within 20 s")).expect("UTF-8");
        let field =
            |key: &str| line.split_whitespace().find_map(|f| f.strip_prefix(key)).unwrap_or_default().to_owned();
        if field("signal=") != "reachabilityChanged" || field("value=") != value {
            continue;
        }
        assert_eq!(field("qt_thread="), "1", "signal off the Qt thread: {line}");
        let stamp: i64 = field("mono_ns=").parse().expect("mono_ns");
        match field("source=").as_str() {
            "netreach" => ours = Some(stamp),
            "qt" => qt = Some(stamp),
            _ => {}
        }
    }
    (ours.expect("netreach"), qt.expect("qt"))
}

fn p(sorted: &[f64], q: usize) -> f64 {
    sorted[((sorted.len() * q).div_ceil(100)).max(1) - 1]
}

fn main() {
    if !testns::require_root("qt_signal benchmark") || !testns::nm::require_networkmanager("qt_signal benchmark") {
        std::process::exit(1);
    }
    let flips = if std::env::args().any(|a| a == "--quick") { 20 } else { 100 };
    let console = build_console();
    println!("load average before: {}", loadavg());
    let sandbox = NmSandbox::up();
    let bus = sandbox.bus_address();
    let netns = sandbox.netns_path().display().to_string();
    let lines = Lines::spawn(
        Command::new(&console)
            .args(["--netns", &netns, "--backend", "networkmanager", "--bus", &bus, "--qt-information"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus)
            .stderr(Stdio::inherit()),
    );
    loop {
        let line = String::from_utf8(lines.next(LINE_WAIT).expect("the console's ready line")).expect("UTF-8");
        if line.starts_with("qt backend=") {
            assert!(line.contains("backend=networkmanager"), "Qt's backend: {line}");
        }
        if line.starts_with("ready ") {
            break;
        }
    }
    let caller = zbus::block_on(zbus::connection::Builder::address(bus.as_str()).expect("bus address").build())
        .expect("D-Bus connection for CheckConnectivity");

    let (mut ours, mut theirs, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..flips {
        let portal = i % 2 == 0;
        sandbox.set_mode(if portal { "wrong" } else { "ok" });
        let t0 = monotonic_ns();
        zbus::block_on(caller.call_method(
            Some(NM),
            "/org/freedesktop/NetworkManager",
            Some(NM),
            "CheckConnectivity",
            &(),
        ))
        .expect("CheckConnectivity");
        let (a, b) = both(&lines, if portal { "Site" } else { "Online" });
        ours.push((a - t0) as f64 / 1e3);
        theirs.push((b - t0) as f64 / 1e3);
        gaps.push((a - b) as f64 / 1e3);
    }
    for v in [&mut ours, &mut theirs, &mut gaps] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "\n{flips} NetworkManager connectivity flips (portal <-> full), CheckConnectivity -> reachabilityChanged:\n"
    );
    println!("| Qt signal | p50 | p99 |\n|---|---|---|");
    println!("| netreach bridge `NetReachInformation` | {:.0} µs | {:.0} µs |", p(&ours, 50), p(&ours, 99));
    println!("| Qt `QNetworkInformation` (networkmanager) | {:.0} µs | {:.0} µs |", p(&theirs, 50), p(&theirs, 99));
    println!("\nper-flip gap netreach - Qt: p50 {:+.0} µs, p99 {:+.0} µs", p(&gaps, 50), p(&gaps, 99));
    println!("load average after: {}", loadavg());
}
