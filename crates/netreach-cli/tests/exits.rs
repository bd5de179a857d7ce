//! How commands end: signals end them between two lines (never mid-line) with documented exit
//! codes, within a bound even when the reader stalls; a monitor that stops names its cause.
#![cfg(target_os = "linux")] // network namespaces

use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use testns::kit::{wait_exit, TIMEOUT};
use testns::{wait_until, NetNs};

const LINKS: usize = 2000;

fn netreach() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netreach"))
}

/// A namespace with [`LINKS`] links (veth pairs: this kernel may lack the dummy driver): a
/// baseline far larger than a pipe's buffer.
fn crowded(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    let batch: String = (0..LINKS / 2).map(|i| format!("link add a{i} type veth peer name b{i}\n")).collect();
    ns.ip_batch(&batch);
    ns
}

/// Bytes waiting in the pipe, and the pipe's capacity.
fn pipe_fill(pipe: &ChildStdout) -> (usize, usize) {
    let mut queued: libc::c_int = 0;
    // SAFETY: `pipe` owns its open fd for the whole call; FIONREAD writes one int, and `queued`
    // is a live c_int.
    unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut queued) };
    // SAFETY: `pipe` owns its open fd for the whole call; F_GETPIPE_SZ takes no argument.
    let capacity = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_GETPIPE_SZ) };
    (queued as usize, capacity as usize)
}

/// Starts `netreach ARGS` writing into a pipe, reads a little, waits until the writer is blocked
/// on a full pipe in the middle of the baseline, sends `signal`, then reads everything left.
/// Returns the exit status and every byte the reader saw.
fn signal_mid_baseline(args: &[&str], signal: Signal) -> (std::process::ExitStatus, Vec<u8>) {
    let mut child = netreach().args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = vec![0u8; 4096];
    stdout.read_exact(&mut seen).expect("the baseline starts");
    wait_until(TIMEOUT, "the writer blocked on a full pipe", || {
        let (queued, capacity) = pipe_fill(&stdout);
        queued + 4096 >= capacity
    });
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = stdout.read_to_end(&mut rest);
        let _ = tx.send(rest);
    });
    let rest = rx.recv_timeout(TIMEOUT).expect("netreach closed its output in time");
    seen.extend(rest);
    (wait_exit(&mut child, TIMEOUT), seen)
}

#[test]
fn sigterm_mid_baseline_ends_between_json_lines() {
    testns::skip_unless_root!();
    let ns = crowded("lines");
    for run in 0..5 {
        let (status, bytes) = signal_mid_baseline(&["watch", "--json", "--netns", ns.name()], Signal::SIGTERM);
        assert_eq!(status.code(), Some(0), "run {run}");
        assert!(bytes.len() > 64 * 1024 && bytes.ends_with(b"\n"), "run {run}: {} bytes, cut mid-line", bytes.len());
        let lines: Vec<Value> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap_or_else(|e| panic!("run {run}: a line is not JSON: {e}")))
            .collect();
        assert_eq!(lines[0]["type"], "baseline");
        assert_eq!(lines[0]["state"]["interfaces"].as_array().map(Vec::len), Some(LINKS + 1), "run {run}");
    }
}

#[test]
fn sigterm_mid_baseline_ends_between_human_lines() {
    testns::skip_unless_root!();
    let ns = crowded("hlines");
    for run in 0..3 {
        let (status, bytes) = signal_mid_baseline(&["watch", "--netns", ns.name()], Signal::SIGTERM);
        assert_eq!(status.code(), Some(0), "run {run}");
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert!(text.ends_with('\n'), "run {run}: cut mid-line");
        // The whole baseline block was written: every link's line is there.
        let links = text.lines().filter(|l| l.contains(" (veth) ")).count();
        assert_eq!(links, LINKS, "run {run}");
    }
}

#[test]
fn a_stalled_reader_delays_the_exit_only_by_the_grace() {
    testns::skip_unless_root!();
    let ns = crowded("stall");
    let mut child = netreach().args(["watch", "--json", "--netns", ns.name()]).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    wait_until(TIMEOUT, "the writer blocked on a full pipe", || {
        let (queued, capacity) = pipe_fill(&stdout);
        queued + 4096 >= capacity
    });
    let start = Instant::now();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    // Nobody reads: the line cannot finish, and the exit comes after the 2 s grace.
    let status = wait_exit(&mut child, TIMEOUT);
    let took = start.elapsed();
    assert_eq!(status.code(), Some(0));
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(5), "took {took:?}");
    drop(stdout);
}

fn has_inotify(pid: u32) -> bool {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
    fds.filter_map(|fd| std::fs::read_link(fd.path()).ok()).any(|target| target.as_os_str() == "anon_inode:inotify")
}

#[test]
fn wait_exit_codes_are_128_plus_the_signal() {
    testns::skip_unless_root!();
    let ns = NetNs::new("wsig"); // never online: wait waits
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143), (Signal::SIGHUP, 129)] {
        let mut child = netreach().args(["wait", "--netns", ns.name(), "--timeout", "60s"]).spawn().unwrap();
        let pid = child.id();
        wait_until(TIMEOUT, "the monitor running", || has_inotify(pid));
        let start = Instant::now();
        kill(Pid::from_raw(pid as i32), signal).unwrap();
        assert_eq!(wait_exit(&mut child, TIMEOUT).code(), Some(code), "{signal}");
        assert!(start.elapsed() < Duration::from_secs(2), "{signal}: {:?}", start.elapsed());
    }
}

#[test]
fn a_deleted_namespace_is_named_by_check_watch_and_wait() {
    testns::skip_unless_root!();
    for args in [vec!["check", "--watch", "--netns", "NS", "192.0.2.10", "192.0.2.20"], vec!["wait", "--netns", "NS"]] {
        let ns = NetNs::new("gone");
        ns.veth("va", "vb");
        ns.ip("addr add 192.0.2.10/24 dev va");
        let path = ns.path();
        let name = ns.name().to_owned();
        let args: Vec<&str> = args.iter().map(|&a| if a == "NS" { name.as_str() } else { a }).collect();
        let mut child = netreach().args(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        wait_until(TIMEOUT, "the monitor watching for the namespace's deletion", || has_inotify(pid));
        ns.delete();
        let status = wait_exit(&mut child, TIMEOUT);
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{args:?}: {err}");
        let want = format!("netreach: network namespace {} was deleted", path.display());
        assert!(err.contains(&want), "{args:?}: {err:?}");
    }
}
