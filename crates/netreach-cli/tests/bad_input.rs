//! Bad command lines and bad namespaces: every subcommand refuses them at once with exit 2 and
//! a message naming the option or the file, never a panic, never a hang.
#![cfg(target_os = "linux")] // network namespaces; Windows has tests/windows.rs

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

/// Runs netreach, failing the test (instead of hanging it) if it has not exited after 10 s.
fn run(args: &[&str]) -> (Output, Duration) {
    let child = netreach().args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let child = child.expect("run netreach");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || drop(tx.send(child.wait_with_output())));
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(out) => (out.expect("netreach output"), start.elapsed()),
        Err(_) => {
            // SAFETY: kill(2) takes integers only and touches none of our memory. The pid is
            // the hung child's, not yet reaped (`wait_with_output` has not returned; were the
            // child to exit and be reaped this very instant, the signal could reach a recycled
            // pid, a risk accepted in a test whose child hangs).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("netreach {args:?} did not exit within 10 s");
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_duration_option_is_bounded_at_parse_time() {
    const HUGE: &str = "18446744073709551615s";
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["wait", "--timeout", HUGE], "'--timeout <DURATION>'", "at most 365d"),
        (vec!["wait", "--timeout", "366d"], "'--timeout <DURATION>'", "at most 365d"),
        (vec!["probe", "--probe-timeout", HUGE], "'--probe-timeout <DURATION>'", "at most 365d"),
        (vec!["status", "--probe", "--probe-timeout", HUGE], "'--probe-timeout <DURATION>'", "at most 365d"),
        (vec!["watch", "--probe", "--probe-timeout", HUGE], "'--probe-timeout <DURATION>'", "at most 365d"),
        (vec!["wait", "--probe", "--probe-timeout", HUGE], "'--probe-timeout <DURATION>'", "at most 365d"),
        (vec!["probe", "--probe-timeout", "0"], "'--probe-timeout <DURATION>'", "above zero"),
        (vec!["wait", "--probe", "--probe-timeout", "0s"], "'--probe-timeout <DURATION>'", "above zero"),
    ];
    for (args, option, why) in cases {
        let (out, _) = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option) && err.contains(why), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn probe_options_without_probe_are_refused_alike() {
    for command in ["status", "watch", "wait"] {
        for (option, value) in [("--url", "http://192.0.2.1/"), ("--probe-timeout", "3s")] {
            let (out, _) = run(&[command, option, value]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{command} {option}: {err}");
            assert!(err.contains(&format!("{option} applies to the probe: add --probe")), "{command}: {err}");
        }
    }
}

/// A scratch directory holding a FIFO, a symlink to it and a socket.
struct Files {
    dir: PathBuf,
    _socket: std::os::unix::net::UnixListener,
}

impl Files {
    fn new() -> Files {
        let dir = std::env::temp_dir().join(format!("netreach-cli-bad-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        mkfifo(&dir.join("fifo"));
        std::os::unix::fs::symlink(dir.join("fifo"), dir.join("link")).unwrap();
        let socket = std::os::unix::net::UnixListener::bind(dir.join("socket")).unwrap();
        Files { dir, _socket: socket }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn mkfifo(path: &Path) {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo {path:?}");
}

/// Every subcommand with `--netns VALUE`, asked nothing that could reach the network.
fn every_subcommand(netns: &str) -> [Vec<&str>; 5] {
    let url = "http://192.0.2.1/";
    [
        vec!["status", "--netns", netns],
        vec!["watch", "--json", "--netns", netns],
        vec!["check", "--netns", netns, "192.0.2.10", "192.0.2.20"],
        vec!["probe", "--url", url, "--netns", netns],
        vec!["wait", "--timeout", "0", "--netns", netns],
    ]
}

fn assert_refused_at_once(netns: &str, want: &str) {
    for args in every_subcommand(netns) {
        let (out, took) = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("network namespace {netns}: {want}")), "{args:?}: {err}");
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    }
}

#[test]
fn files_that_are_not_network_namespaces_are_refused_at_once_by_every_subcommand() {
    let files = Files::new();
    let path = |name: &str| files.dir.join(name).to_string_lossy().into_owned();
    for (netns, want) in [
        (path("fifo"), "a FIFO (named pipe), not a namespace file"),
        (path("link"), "a FIFO (named pipe), not a namespace file"),
        (path("socket"), "a socket, not a namespace file"),
        (files.dir.to_string_lossy().into_owned(), "a directory, not a namespace file"),
        ("/dev/null".into(), "a character device, not a namespace file"),
        ("/etc/hostname".into(), "a regular file, not a namespace file"),
        ("/proc/self/ns/uts".into(), "a namespace, but a uts namespace, not a network namespace"),
        ("/nonexistent/netns".into(), "cannot open"),
    ] {
        assert_refused_at_once(&netns, want);
    }
}

#[test]
fn a_fifo_named_in_run_netns_is_refused_at_once() {
    testns::skip_unless_root!();
    let name = format!("nmt-fifo-{}", std::process::id());
    let path = Path::new("/run/netns").join(&name);
    std::fs::create_dir_all("/run/netns").unwrap();
    mkfifo(&path);
    for args in every_subcommand(&name) {
        let (out, took) = run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("network namespace {}: a FIFO (named pipe)", path.display())), "{err}");
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    }
    let _ = std::fs::remove_file(&path);
    // And a name that names nothing: the same exit code in every subcommand.
    for args in every_subcommand("nmt-no-such-namespace") {
        let (out, _) = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("no network namespace named 'nmt-no-such-namespace'"), "{args:?}");
    }
}
