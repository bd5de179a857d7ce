//! The C API from C and from Qt, against the library this build made (compiler flags from its
//! pkg-config file), in namespaces the tests create. Linux only (namespaces).
//!
//! - tests/c/api_test.c, compiled with the system's C compiler, runs under AddressSanitizer,
//!   LeakSanitizer and UBSan.
//! - The Qt 6 bridge (qt/), built with CMake against Debian's qt6-base-dev: its signals must
//!   arrive on the Qt thread, in the order of the kernel's changes.
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testns::kit::Lines;

#[test]
fn c_program_exercises_every_function_clean_under_asan() {
    testns::skip_unless_root!();
    let build = common::Build::new("api");
    let program = build.compile("tests/c/api_test.c", &["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    let ns = testns::uplinks("capi");
    // Nobody answers for the gateways here: static entries, which check()'s re-verification of
    // the gateways leaves alone, keep it from (rightly) finding them dead.
    ns.ip("neigh replace 192.0.2.1 dev va lladdr 02:00:00:00:00:01 nud permanent");
    ns.ip("neigh replace 2001:db8::1 dev va lladdr 02:00:00:00:00:01 nud permanent");
    let out = Command::new(&program)
        .arg(ns.name())
        // Leaks are errors; exitcode 23 tells a sanitizer report from a failed check.
        .env("ASAN_OPTIONS", "detect_leaks=1:exitcode=23:abort_on_error=0")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .expect("running the C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::report(&stdout, &stderr);
    assert!(!stderr.contains("Sanitizer"), "sanitizer report:\n{stderr}");
    assert!(out.status.success(), "C test failed ({}):\n{stdout}\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    let passed: usize = last.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(last.ends_with(" passed, 0 failed") && passed > 100, "summary: {last}");

    // The static library, with the system libraries the .pc file lists, passes the same.
    let program = build.compile_static("tests/c/api_test.c");
    let out = Command::new(&program).arg(ns.name()).output().expect("running the static C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "static C test failed ({}):\n{stdout}", out.status);
    assert_eq!(stdout.lines().last(), Some(last), "same checks, same result");
}

/// Builds qt/ in the scratch directory; returns the console program.
fn build_console(build: &common::Build) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../qt");
    let dir = build.dir.join("qt-build");
    for step in [
        vec!["-S".into(), source.display().to_string(), "-B".into(), dir.display().to_string()],
        vec!["--build".into(), dir.display().to_string(), "-j2".into()],
    ] {
        let out = Command::new("cmake")
            .args(&step)
            .env("PKG_CONFIG_PATH", &build.dir)
            .output()
            .expect("cmake (apt install cmake qt6-base-dev)");
        assert!(
            out.status.success(),
            "cmake {step:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir.join("netreach-qt-console")
}

/// The `signal=... value=...` part of every signal line until `n` arrived (bounded), each
/// checked to have come on the Qt thread.
fn signals(lines: &Lines, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let line = lines.next(Duration::from_secs(10)).expect("a signal line within 10 s");
            let line = String::from_utf8(line).expect("UTF-8 line");
            assert!(line.contains(" qt_thread=1 "), "signal off the Qt thread: {line}");
            let field = |key: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(key))
                    .unwrap_or_else(|| panic!("no {key} in {line}"))
                    .to_owned()
            };
            (format!("{}.{}", field("source="), field("signal=")), field("value="))
        })
        .collect()
}

#[test]
fn qt_signals_arrive_in_order_on_the_qt_thread() {
    testns::skip_unless_root!();
    let build = common::Build::new("qt");
    let console = build_console(&build);
    let ns = testns::NetNs::new("qt");
    ns.veth("va", "vb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");

    let lines = Lines::spawn(
        Command::new(&console)
            .args(["--netns", ns.name(), "--backend", "kernel", "--path", "192.0.2.10", "203.0.113.1"])
            .args(["--count", "6", "--timeout-ms", "30000"])
            .stderr(Stdio::inherit()),
    );
    let ready = String::from_utf8(lines.next(Duration::from_secs(10)).expect("ready line")).expect("UTF-8");
    assert_eq!(ready.trim(), "ready reachability=Online portal=0 transport=Ethernet metered=0 path=reachable");

    ns.ip("link set dev vb down");
    let down = signals(&lines, 3);
    ns.ip("link set dev vb up");
    let up = signals(&lines, 3);

    // Per object, in the order of the changes; the path's signals interleave with the
    // information's as netreach's thread delivered them, so each object is checked alone.
    let of = |all: &[(String, String)], source: &str| -> Vec<String> {
        all.iter().filter(|(s, _)| s.starts_with(source)).map(|(s, v)| format!("{s}={v}")).collect()
    };
    let both: Vec<_> = down.iter().chain(&up).cloned().collect();
    assert_eq!(
        of(&both, "netreach."),
        [
            "netreach.reachabilityChanged=Disconnected",
            "netreach.transportMediumChanged=Unknown",
            "netreach.reachabilityChanged=Online",
            "netreach.transportMediumChanged=Ethernet",
        ],
        "all signals: {both:?}"
    );
    assert_eq!(
        of(&both, "netreach-path."),
        ["netreach-path.reachabilityChanged=false:no_carrier", "netreach-path.reachabilityChanged=true"],
        "all signals: {both:?}"
    );
}
