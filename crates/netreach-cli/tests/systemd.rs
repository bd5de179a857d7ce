//! systemd's readiness protocol: `exporter` and `watch` send READY=1 once the first state is
//! known, STATUS= on each change and WATCHDOG=1 when WATCHDOG_USEC asks for it, to a
//! NOTIFY_SOCKET datagram socket the test listens on (as systemd does).
#![cfg(target_os = "linux")]

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use testns::kit::{until, TIMEOUT};
use testns::NetNs;

struct Listener {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Listener {
    fn new(tag: &str) -> Listener {
        let path = std::env::temp_dir().join(format!("netreach-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        Listener { socket: UnixDatagram::bind(&path).unwrap(), path }
    }

    /// The next datagram, within `timeout`.
    fn next(&self, timeout: Duration) -> Result<String, String> {
        self.socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `netreach ARGS` in `ns`'s network namespace, told to notify `listener`; with a watchdog
/// interval when asked (systemd sets WATCHDOG_PID to the service's pid: the shell's, which
/// the exec()s keep).
fn start(ns: &NetNs, listener: &Listener, watchdog_usec: Option<u32>, args: &[&str]) -> Running {
    let mut script = String::new();
    if let Some(usec) = watchdog_usec {
        script.push_str(&format!("WATCHDOG_PID=$$ WATCHDOG_USEC={usec} "));
    }
    script.push_str("exec nsenter --net=\"$0\" -- \"$@\"");
    let child = Command::new("sh")
        .args(["-c", &script])
        .arg(ns.path())
        .arg(env!("CARGO_BIN_EXE_netreach"))
        .args(args)
        .env("NOTIFY_SOCKET", &listener.path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Running(child)
}

fn wait_for(listener: &Listener, what: &str, want: impl Fn(&String) -> bool) -> (String, Vec<String>) {
    until(TIMEOUT, what, |t| listener.next(t), want)
}

#[test]
fn exporter_is_ready_with_its_first_state_then_reports_changes_and_keeps_the_watchdog() {
    testns::skip_unless_root!();
    let ns = testns::uplinks("notify-exp");
    let listener = Listener::new("exp");
    let dir = std::env::temp_dir().join(format!("netreach-notify-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("netreach.prom").display().to_string();
    // Textfile only: no listening socket at all.
    let exporter = start(&ns, &listener, Some(300_000), &["exporter", "--textfile", &file]);
    let (ready, _) = wait_for(&listener, "READY=1", |m| m.contains("READY=1"));
    assert!(ready.contains("STATUS=online (ipv4 online, ipv6 online)"), "{ready}");
    wait_for(&listener, "a watchdog keep-alive", |m| m.contains("WATCHDOG=1"));
    // The uplink loses its carrier: IPv4 keeps a routable address on wa, so site.
    ns.ip("link set vb down");
    wait_for(&listener, "STATUS= site", |m| m.contains("STATUS=site (ipv4 site"));
    drop(exporter); // stopped (and reaped) first: it may be writing the file
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn watch_is_ready_after_its_baseline_and_reports_changes() {
    testns::skip_unless_root!();
    let ns = testns::uplinks("notify-watch");
    let listener = Listener::new("watch");
    let _watch = start(&ns, &listener, None, &["watch"]);
    let (ready, before) = wait_for(&listener, "READY=1", |m| m.contains("READY=1"));
    assert!(before.is_empty(), "nothing before READY=1: {before:?}");
    assert!(ready.contains("STATUS=online (ipv4 online, ipv6 online)"), "{ready}");
    ns.ip("link set vb down");
    let (_, updates) = wait_for(&listener, "STATUS= site", |m| m.contains("STATUS=site (ipv4 site"));
    assert!(updates.iter().all(|m| m.starts_with("STATUS=") && !m.contains("READY")), "{updates:?}");
    // Without WATCHDOG_USEC, no keep-alives.
    assert!(!updates.iter().any(|m| m.contains("WATCHDOG")));
}
