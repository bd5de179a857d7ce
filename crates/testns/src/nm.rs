//! A real NetworkManager on a real dbus-daemon, in private namespaces (see `nm/nm-sandbox.sh`,
//! which does the work): NM manages one veth end `nm0` (198.51.100.2/24) whose peer holds
//! the HTTP endpoint of NM's connectivity check (198.51.100.1:8080, `nm/portal-server.py`).
//! Tests switch the endpoint's behaviour, kill and restart NM, the bus and the endpoint, and
//! run GLib's `GNetworkMonitor` next to netreach. Everything is torn down on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Whether NetworkManager, dbus-daemon and python3-gi are installed. When they are not, this
/// prints why the test is skipped and returns false, or panics under NETREACH_REQUIRE_ROOT=1
/// (the test command installs them).
pub fn require_networkmanager(test: &str) -> bool {
    let missing: Vec<&str> = [
        ("NetworkManager", "/usr/sbin/NetworkManager"),
        ("dbus-daemon", "/usr/bin/dbus-daemon"),
        ("busctl", "/usr/bin/busctl"),
        ("nmcli", "/usr/bin/nmcli"),
        ("python3-gi", "/usr/lib/python3/dist-packages/gi/__init__.py"),
    ]
    .into_iter()
    .filter(|(_, path)| !Path::new(path).exists())
    .map(|(name, _)| name)
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("NETREACH_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{test}: needs {missing:?} (scripts/test installs them), and NETREACH_REQUIRE_ROOT=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs {missing:?} installed (scripts/test installs them)");
    false
}

/// Options of a sandbox.
#[derive(Debug, Clone, Default)]
pub struct NmOptions {
    /// The bus policy refuses `CheckConnectivity`, as NM refuses an unprivileged caller.
    pub deny_check: bool,
}

/// A running sandbox: dbus-daemon, NetworkManager, the check endpoint.
pub struct NmSandbox {
    dir: PathBuf,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nm").join(name)
}

impl NmSandbox {
    /// Starts a sandbox and waits until NM reports full connectivity (~0.3 s).
    pub fn up() -> NmSandbox {
        NmSandbox::with(NmOptions::default())
    }

    /// Starts a sandbox with `options`.
    pub fn with(options: NmOptions) -> NmSandbox {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("netreach-nm-{}-{n}", std::process::id()));
        let sandbox = NmSandbox { dir };
        let mut up = sandbox.script();
        up.arg("up").env("NMSB_DENY_CHECK", if options.deny_check { "1" } else { "0" });
        run(up, "starting the NetworkManager sandbox");
        sandbox
    }

    fn script(&self) -> Command {
        let mut command = Command::new(script("nm-sandbox.sh"));
        command.env("NMSB_DIR", &self.dir);
        command
    }

    /// Runs one of the script's verbs (`kill-nm`, `start-nm`, `kill-bus`, `start-bus`,
    /// `kill-http`, `start-http`).
    pub fn control(&self, verb: &str) {
        let mut command = self.script();
        command.arg(verb);
        run(command, &format!("nm-sandbox {verb}"));
    }

    /// The D-Bus address of the sandbox's system bus, as seen from the host.
    pub fn bus_address(&self) -> String {
        format!("unix:path={}", self.dir.join("system_bus_socket").display())
    }

    fn var(&self, name: &str) -> String {
        let env = std::fs::read_to_string(self.dir.join("state.env")).expect("sandbox state.env");
        env.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("{name} unset")).into()
    }

    /// The network namespace NM manages (a path for `MonitorBuilder::netns_path`).
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.var("HOLDER")))
    }

    /// The network namespace of the check endpoint's side (`peer0`, 198.51.100.1), for a
    /// server of a test's own next to the endpoint (`http::Server::start_at`).
    pub fn server_netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(self.var("SRV_NS"))
    }

    /// Sets what the check endpoint answers: `ok`, `wrong` (portal: wrong body), `redirect`
    /// (portal: 302), `header`, `hang`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("mode"), format!("{mode}\n")).expect("writing the endpoint mode");
    }

    /// Runs a command inside NM's namespaces (network, mount: its /run and bus) and returns
    /// its standard output; panics with its error output if it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut command = self.script();
        command.arg("exec").args(args);
        run(command, &format!("{args:?} in the sandbox"))
    }

    /// `nmcli ARGS` inside the sandbox.
    pub fn nmcli(&self, args: &[&str]) -> String {
        let mut all = vec!["nmcli", "--wait", "10"];
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// `ip ARGS` inside NM's network namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["ip"];
        all.extend_from_slice(args);
        self.exec(&all)
    }

    /// Sets a property of NM's manager object with `busctl`, e.g.
    /// `("ConnectivityCheckEnabled", "b", "false")`.
    pub fn set_property(&self, name: &str, signature: &str, value: &str) {
        let mut command = Command::new("busctl");
        command.arg(format!("--address={}", self.bus_address())).args([
            "set-property",
            "org.freedesktop.NetworkManager",
            "/org/freedesktop/NetworkManager",
            "org.freedesktop.NetworkManager",
            name,
            signature,
            value,
        ]);
        run(command, &format!("setting NM's {name}"));
    }

    /// A command running `args` inside NM's namespaces (network, mount: its /run, so the
    /// default system bus is the sandbox's), for a test to spawn and time itself.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.script();
        command.arg("exec").args(args);
        command
    }

    /// Stops NetworkManager (`"nm"`) or the sandbox's dbus-daemon (`"bus"`) with SIGSTOP until
    /// the guard drops, which continues it (SIGCONT), so a failing test never leaves it frozen.
    pub fn freeze(&self, who: &str) -> Frozen {
        let pid = self.var(match who {
            "nm" => "NM_PID",
            "bus" => "DBUS_PID",
            other => panic!("freeze: {other}? (nm or bus)"),
        });
        signal(&pid, "-STOP");
        // `kill` returns before the process has stopped: on a loaded machine it could still
        // answer a call made right after (seen in CI: a Ping answered, then CheckConnectivity
        // left to its 30 s bound). Frozen means every thread stopped; the kernel announces
        // that only to a parent, so /proc is polled, bounded.
        crate::wait_until(Duration::from_secs(5), &format!("{who} (pid {pid}) to stop"), || stopped(&pid));
        Frozen { pid }
    }

    /// Starts GLib's `GNetworkMonitor` inside the sandbox (see [`GlibMonitor`]).
    pub fn glib_monitor(&self) -> GlibMonitor {
        let mut command = self.script();
        command.arg("exec").arg(script("glib-monitor.py")).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().expect("starting glib-monitor.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if tx.send(GlibState::from(&value)).is_err() {
                    return;
                }
            }
        });
        let mut monitor = GlibMonitor { child, lines, last: None };
        monitor.last = Some(monitor.next(Duration::from_secs(10)).expect("GLib's initial state"));
        monitor
    }
}

impl Drop for NmSandbox {
    fn drop(&mut self) {
        let _ = self.script().arg("down").status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process of the sandbox stopped by [`NmSandbox::freeze`], continued on drop.
pub struct Frozen {
    pid: String,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // Never a panic here (it may run while a failed test unwinds).
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}

/// Whether every thread of process `pid` is stopped (state `T`).
fn stopped(pid: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|task| {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("State:")).is_some_and(|s| s.trim_start().starts_with('T'))
    })
}

fn signal(pid: &str, which: &str) {
    let mut command = Command::new("kill");
    command.args([which, pid]);
    run(command, &format!("kill {which} {pid}"));
}

fn run(mut command: Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One reading of GLib's `GNetworkMonitor`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlibState {
    /// Its backend type, e.g. `GNetworkMonitorNM`.
    pub backend: String,
    /// `network-available`.
    pub available: bool,
    /// `connectivity`: `local`, `limited`, `portal` or `full`.
    pub connectivity: String,
    /// `network-metered`.
    pub metered: bool,
    /// When it printed this (seconds since the epoch, its clock).
    pub time: f64,
}

impl From<&serde_json::Value> for GlibState {
    fn from(v: &serde_json::Value) -> Self {
        GlibState {
            backend: v["type"].as_str().unwrap_or_default().into(),
            available: v["available"].as_bool().unwrap_or_default(),
            connectivity: v["connectivity"].as_str().unwrap_or_default().into(),
            metered: v["metered"].as_bool().unwrap_or_default(),
            time: v["time"].as_f64().unwrap_or_default(),
        }
    }
}

/// GLib's `GNetworkMonitor` in a child process (python3-gi), reporting every change.
pub struct GlibMonitor {
    child: Child,
    lines: mpsc::Receiver<GlibState>,
    last: Option<GlibState>,
}

impl GlibMonitor {
    /// The next reading, if one comes within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<GlibState> {
        let state = self.lines.recv_timeout(timeout).ok()?;
        self.last = Some(state.clone());
        Some(state)
    }

    /// The latest reading seen.
    pub fn last(&self) -> &GlibState {
        self.last.as_ref().expect("a first reading")
    }

    /// Waits until GLib's reading satisfies `want` (checking the latest one first); panics
    /// with what it saw after `timeout`.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, want: impl Fn(&GlibState) -> bool) -> GlibState {
        let deadline = Instant::now() + timeout;
        let mut seen = vec![self.last().clone()];
        if want(self.last()) {
            return self.last().clone();
        }
        while let Some(state) = self.next(deadline.saturating_duration_since(Instant::now())) {
            if want(&state) {
                return state;
            }
            seen.push(state);
        }
        panic!("GLib never reached {what}; saw {seen:#?}");
    }
}

impl Drop for GlibMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
