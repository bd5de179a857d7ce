//! Idle cost: how often `netreach watch` wakes up, and how much memory it holds, while nothing
//! changes. `ip monitor` on the same namespace, watched over the same window, is the anchor.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use testns::NetNs;

use crate::util::{Fallible, Guarded};

/// Both processes must have gone this long without a context switch before counting starts:
/// they have then finished starting up. A fixed pause is not enough: while the kernel is
/// still tearing down an earlier namespace it holds the RTNL lock, and their first dumps wait.
const SETTLE: Duration = Duration::from_secs(1);
/// ...within this long; past it counting starts anyway (with a warning): on a host where
/// namespaces churn, netreach may never be quiet for long, and that is part of the result.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);

/// What one process cost over the window.
pub struct Cost {
    /// Context switches of all its threads during the window: every wake-up is one.
    pub wakeups: u64,
    pub threads: usize,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

pub struct Idle {
    pub window: Duration,
    pub netreach: Cost,
    pub ip_monitor: Cost,
    /// Namespaces deleted from /run/netns by anyone during the window (context: netreach
    /// watches that directory to notice its own namespace going away, so each one wakes it).
    pub namespace_deletions: usize,
}

pub fn measure(window: Duration, netreach: &Path) -> Fallible<Idle> {
    let ns = idle_namespace();
    let mut watch = Guarded::spawn(Command::new(netreach).args(["watch", "--netns", ns.name()]), Stdio::null())?;
    let mut ip = Guarded::spawn(
        Command::new("ip").args(["-n", ns.name(), "monitor", "link", "address", "route"]),
        Stdio::null(),
    )?;
    settle(&[watch.0.id(), ip.0.id()])?;
    let deletions = DeletionCounter::start()?;
    let before = [switches(watch.0.id())?, switches(ip.0.id())?];
    std::thread::sleep(window);
    watch.check_alive("netreach watch")?;
    ip.check_alive("ip monitor")?;
    let after = [switches(watch.0.id())?, switches(ip.0.id())?];
    Ok(Idle {
        window,
        netreach: cost(watch.0.id(), before[0], after[0])?,
        ip_monitor: cost(ip.0.id(), before[1], after[1])?,
        namespace_deletions: deletions.count(),
    })
}

/// Returns once none of `pids` has switched for [`SETTLE`], or after [`SETTLE_LIMIT`].
fn settle(pids: &[u32]) -> Fallible<()> {
    let read = || pids.iter().map(|pid| switches(*pid)).collect::<Fallible<Vec<_>>>();
    let start = Instant::now();
    let (mut last, mut quiet_since) = (read()?, Instant::now());
    while quiet_since.elapsed() < SETTLE {
        if start.elapsed() > SETTLE_LIMIT {
            eprintln!("  warning: the idle processes still woke up after {SETTLE_LIMIT:?}; counting anyway");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
        let now = read()?;
        if now != last {
            (last, quiet_since) = (now, Instant::now());
        }
    }
    Ok(())
}

/// Counts namespace files deleted from /run/netns while it lives.
struct DeletionCounter(Inotify);

impl DeletionCounter {
    fn start() -> Fallible<DeletionCounter> {
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|e| format!("inotify: {e}"))?;
        inotify
            .add_watch("/run/netns", AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
            .map_err(|e| format!("watching /run/netns: {e}"))?;
        Ok(DeletionCounter(inotify))
    }

    /// Deletions so far; reading stops at the first error, which is EAGAIN once all are read.
    fn count(&self) -> usize {
        std::iter::from_fn(|| self.0.read_events().ok()).map(|events| events.len()).sum()
    }
}

/// A configured but quiet namespace: a veth pair with static addresses (`nodad`, and no
/// link-local addresses, whose duplicate address detection would finish mid-window) and a
/// default route. Nothing in it changes by itself, so every wake-up is the watcher's own.
fn idle_namespace() -> NetNs {
    let ns = NetNs::new("idle");
    ns.ip_batch(
        "link add vi0 type veth peer name vi1\n\
         link set vi0 addrgenmode none\n\
         link set vi1 addrgenmode none\n\
         link set vi0 up\n\
         link set vi1 up\n\
         addr add 192.0.2.1/24 dev vi0\n\
         addr add 2001:db8::1/64 dev vi0 nodad\n\
         route add default via 192.0.2.254 dev vi0\n",
    );
    ns
}

/// Context switches (voluntary + involuntary) summed over all threads, and the thread count.
fn switches(pid: u32) -> Fallible<(u64, usize)> {
    let tasks = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&tasks).map_err(|e| format!("{tasks}: {e}"))?;
    let mut total = (0, 0);
    for entry in entries {
        let path = entry.map_err(|e| format!("{tasks}: {e}"))?.path().join("status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        total.0 += field(&status, "voluntary_ctxt_switches")? + field(&status, "nonvoluntary_ctxt_switches")?;
        total.1 += 1;
    }
    Ok(total)
}

fn cost(pid: u32, before: (u64, usize), after: (u64, usize)) -> Fallible<Cost> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(Cost {
        // A thread that exited during the window takes its count with it; never negative.
        wakeups: after.0.saturating_sub(before.0),
        threads: after.1,
        rss_kib: field(&status, "VmRSS")?,
        hwm_kib: field(&status, "VmHWM")?,
    })
}

/// The number in a `/proc/*/status` line such as `VmRSS: 3000 kB`.
fn field(status: &str, name: &str) -> Fallible<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {name} in /proc status"))
}
