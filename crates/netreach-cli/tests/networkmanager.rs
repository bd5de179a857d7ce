//! The CLI against a real NetworkManager and dbus-daemon (testns::nm) that stop answering
//! (SIGSTOP, continued by a guard even when a test fails), and idle with NM followed.
//! Commands run inside the sandbox's namespaces, where the sandbox's bus is the system bus,
//! so the default backend (`auto`) uses NM there.
#![cfg(target_os = "linux")] // NetworkManager, network namespaces

use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use testns::nm::NmSandbox;

/// The sandbox's own check endpoint: the probe never leaves the sandbox.
const URL: &str = "http://198.51.100.1:8080/";
/// Bound for a command that used to never return: far above a correct run (about 2 s: one
/// unanswered D-Bus call), far below "never".
const NEVER: Duration = Duration::from_secs(20);

/// Runs `netreach ARGS` inside the sandbox; kills it and fails after [`NEVER`].
fn netreach(sandbox: &NmSandbox, args: &[&str]) -> (Output, Duration) {
    let mut all = vec![env!("CARGO_BIN_EXE_netreach")];
    all.extend_from_slice(args);
    let start = Instant::now();
    let mut child = sandbox
        .command(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning netreach in the sandbox");
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > NEVER {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netreach {args:?} still running after {NEVER:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("netreach's output");
    (out, start.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn frozen_networkmanager_never_hangs_status_or_wait() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let _frozen = sandbox.freeze("nm");
    // auto: NM's silence is left behind; the kernel and the probe answer.
    let (out, took) = netreach(&sandbox, &["status", "--probe", "--url", URL]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("probe says"), "{out:?}");
    assert!(took < Duration::from_secs(10), "status --probe took {took:?}");
    // Explicit: a clear error naming who did not answer.
    let (out, took) = netreach(&sandbox, &["status", "--backend", "networkmanager", "--probe", "--url", URL]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("NetworkManager did not answer within 2 s"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(10), "status --backend networkmanager took {took:?}");
    // "Check once" checks once, boundedly.
    let (out, took) = netreach(&sandbox, &["wait", "--timeout", "0", "--probe", "--url", URL]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    assert!(took < Duration::from_secs(10), "wait --timeout 0 --probe took {took:?}");
}

#[test]
fn wait_keeps_its_timeout_while_networkmanager_or_the_bus_is_frozen() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    for who in ["nm", "bus"] {
        let _frozen = sandbox.freeze(who);
        // 5 s before (NM's first reading awaited); now the deadline plus process start-up.
        let (out, took) = netreach(&sandbox, &["wait", "--timeout", "1s"]);
        assert_eq!(out.status.code(), Some(1), "{who}: {}", stderr(&out));
        assert!(stderr(&out).contains("NetworkManager or the system bus did not answer"), "{who}: {}", stderr(&out));
        assert!(took < Duration::from_millis(1800), "{who}: wait --timeout 1s took {took:?}");
        let (out, took) = netreach(&sandbox, &["wait", "--timeout", "3s", "--probe", "--url", URL]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{who}: {out:?}");
        assert!(took < Duration::from_millis(3800), "{who}: wait --timeout 3s --probe took {took:?}");
    }
}

/// Voluntary plus involuntary context switches of every thread of `pid`: (thread id and name,
/// count).
fn switches(pid: u32) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the child's threads").flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        let field = |name: &str| {
            status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
        };
        let name = status.lines().find_map(|l| l.strip_prefix("Name:")).unwrap_or("?").trim();
        let name = format!("{} {name}", task.file_name().to_string_lossy());
        out.push((name, field("voluntary_ctxt_switches:") + field("nonvoluntary_ctxt_switches:")));
    }
    out
}

#[test]
fn networkmanager_backend_makes_no_idle_wakeups() {
    testns::skip_unless_root!(networkmanager);
    let sandbox = NmSandbox::up();
    let args = [env!("CARGO_BIN_EXE_netreach"), "watch", "--json", "--backend", "networkmanager"];
    let mut child: Child = sandbox.command(&args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("watch");
    // The baseline is printed once NM's first reading is in: the start-up is over.
    let mut lines = BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    lines.read_line(&mut first).expect("watch's baseline");
    assert!(first.contains(r#""verdicts":[{"source":"networkmanager""#), "{first}");
    // Measurement windows, not synchronisation: nothing changes in the sandbox meanwhile. NM
    // may still settle a value just after start-up (metering, a late signal) and the sandbox's
    // kernel may send a stray notification, both one-offs, where a poller wakes in every
    // window: the quietest of three windows is judged.
    let mut windows = Vec::new();
    for _ in 0..3 {
        let before = switches(child.id());
        std::thread::sleep(Duration::from_secs(4));
        let after = switches(child.id());
        let woke: Vec<(String, u64)> = after
            .iter()
            .map(|(name, n)| (name.clone(), n - before.iter().find(|(b, _)| b == name).map_or(0, |(_, m)| *m).min(*n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let quiet = woke.is_empty();
        windows.push(woke);
        if quiet {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let quietest = windows.iter().map(|w| w.iter().map(|(_, n)| n).sum::<u64>()).min().unwrap_or(0);
    // Before: `blocking-1` woke twice a second (8 per window, in every window). Slack of 2
    // for a one-off landing in every window on a loaded machine (none seen in practice).
    assert!(quietest <= 2, "idle wake-ups per 4 s window: {windows:?}");
}
