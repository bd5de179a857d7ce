//! Throw-away network namespaces for netreach's tests and benchmarks, driven with the real
//! `ip` (iproute2) against the real kernel. Every namespace is deleted on drop.
//!
//! Root is needed. Tests open with [`skip_unless_root!`] (or call [`require_root`]): without
//! root they print why they skip, unless `NETREACH_REQUIRE_ROOT=1` is set (as the project's
//! test command does), in which case a missing root is a failure, so CI can never pass by
//! skipping. [`kit`] holds that and the bounded waits the tests share.
//!
//! Addresses used with these namespaces must come from the documentation ranges
//! (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

pub mod churn;
pub mod gateway;
pub mod http;
pub mod kit;
pub mod nm;
pub mod thread;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// True when the test may run. Without root: prints the reason and returns false, or panics
/// when `NETREACH_REQUIRE_ROOT=1`.
///
/// ```
/// if !testns::require_root("doc example") {
///     return;
/// }
/// ```
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions. (std offers no way to read the effective uid.)
    let root = unsafe { geteuid() } == 0;
    if !root {
        if std::env::var("NETREACH_REQUIRE_ROOT").as_deref() == Ok("1") {
            panic!("{test}: needs root for network namespaces, and NETREACH_REQUIRE_ROOT=1 forbids skipping");
        }
        eprintln!(
            "SKIPPED {test}: needs root to create network namespaces (run as root; CI sets NETREACH_REQUIRE_ROOT=1)"
        );
    }
    root
}

extern "C" {
    fn geteuid() -> u32;
    fn setns(fd: i32, nstype: i32) -> i32;
}

/// `CLONE_NEWNET` from `<sched.h>`.
const CLONE_NEWNET: i32 = 0x4000_0000;

/// A network namespace that exists until this value is dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl NetNs {
    /// Creates `/run/netns/nmt-<tag>-<pid>-<n>` with its loopback up.
    pub fn new(tag: &str) -> NetNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("nmt-{tag}-{}-{n}", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = NetNs { name };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `ip -n NAME ARGS...` (arguments split on whitespace); panics with its stderr on
    /// failure. Returns stdout.
    pub fn ip(&self, args: &str) -> String {
        self.try_ip(args).unwrap_or_else(|e| panic!("ip -n {} {args}: {e}", self.name))
    }

    /// Like [`NetNs::ip`] but returns the error text instead of panicking.
    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args.split_whitespace())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `ip -n NAME ARGS...` with arguments that need not be UTF-8 (Linux allows any bytes
    /// but '/', whitespace and NUL in interface names); panics with its stderr on failure.
    pub fn ip_bytes(&self, args: &[&[u8]]) {
        use std::os::unix::ffi::OsStrExt;
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
            .stdin(Stdio::null())
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs `ip -n NAME -batch -` with these lines (one command each, without `ip`).
    pub fn ip_batch(&self, lines: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["-n", &self.name, "-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run ip");
        child.stdin.take().expect("stdin").write_all(lines.as_bytes()).expect("write batch");
        let out = child.wait_with_output().expect("ip -batch");
        assert!(out.status.success(), "ip -batch failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Parses `ip -n NAME -j ARGS...`.
    pub fn ip_json(&self, args: &str) -> serde_json::Value {
        let out = self.ip(&format!("-j {args}"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {args}: {e}: {out}"))
    }

    /// Creates a veth pair `a`/`b` inside this namespace, both ends up.
    pub fn veth(&self, a: &str, b: &str) {
        self.ip(&format!("link add {a} type veth peer name {b}"));
        self.ip(&format!("link set {a} up"));
        self.ip(&format!("link set {b} up"));
    }

    /// Kernel interface index of `name`.
    pub fn index(&self, name: &str) -> u32 {
        let v = self.ip_json(&format!("link show dev {name}"));
        v[0]["ifindex"].as_u64().unwrap_or_else(|| panic!("no ifindex for {name}: {v}")) as u32
    }

    /// `Command` for a program run inside the namespace (`ip netns exec NAME PROGRAM`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a helper thread that has entered this namespace (sockets it opens stay in
    /// the namespace) and returns its result.
    pub fn run_inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(self.path()).expect("open namespace file");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    use std::os::fd::AsRawFd;
                    // SAFETY: setns on a namespace file we hold open; affects only this thread.
                    let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .expect("namespace thread panicked")
        })
    }

    /// Moves interface `link` of this namespace into `other`.
    pub fn move_link(&self, link: &str, other: &NetNs) {
        self.ip(&format!("link set {link} netns {}", other.name()));
    }

    /// Deletes the namespace now (`ip netns del`), consuming the handle; panics with `ip`'s
    /// own words if it could not (a test that waits for the deletion to be noticed must not
    /// wait for one that never happened).
    pub fn delete(mut self) {
        let out = Command::new("ip").args(["netns", "del", &self.name]).output().expect("run ip netns del");
        assert!(out.status.success(), "ip netns del {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        assert!(!self.path().exists(), "{} still exists after ip netns del", self.path().display());
        self.name.clear(); // nothing left for Drop to do
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return; // deleted already
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

fn run(c: &mut Command) -> Output {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Two uplinks, `va` (192.0.2.10/24, 2001:db8::10/64) and `wa` (198.51.100.10/24,
/// 2001:db8:2::10/64), their peers `vb`/`wb` up in the same namespace (carrier); no routes
/// beyond the links' own.
pub fn two_links(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.veth("wa", "wb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    ns.ip("addr add 198.51.100.10/24 dev wa");
    ns.ip("addr add 2001:db8:2::10/64 dev wa nodad");
    ns
}

/// A namespace for path monitors: veth `va` (192.0.2.10/24, 2001:db8::10/64) whose peer `vb`
/// is up, a second pair `wa`/`wb` (198.51.100.10/24), and IPv4 and IPv6 default routes through
/// `va` (via 192.0.2.1 and 2001:db8::1). Used by the path tests and the paths benchmark.
pub fn uplinks(tag: &str) -> NetNs {
    let ns = NetNs::new(tag);
    ns.veth("va", "vb");
    ns.veth("wa", "wb");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("addr add 2001:db8::10/64 dev va nodad");
    ns.ip("addr add 198.51.100.10/24 dev wa");
    ns.ip("route add default via 192.0.2.1");
    ns.ip("-6 route add default via 2001:db8::1");
    ns
}

/// Polls `condition` until it holds or `timeout` passes; panics naming `what` on timeout.
/// For conditions on external state with no event to wait on (kernel state read with `ip`).
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Threads of this process.
pub fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().parse().unwrap_or(0))))
        .unwrap_or(0)
}
