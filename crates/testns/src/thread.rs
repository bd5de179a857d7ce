//! One named thread of this process, as the kernel counts it: how often it woke and how
//! much CPU it used (`/proc/self/task/TID/status` and `stat`). Tests and benchmarks that
//! check "this thread does not wake" read it before and after.
//!
//! ```no_run
//! let before = testns::thread::usage("netreach", std::time::Duration::from_secs(5));
//! // ... changes the thread must not see ...
//! let after = testns::thread::usage("netreach", std::time::Duration::from_secs(5));
//! assert!(after.wakeups - before.wakeups <= 1);
//! ```

use std::path::Path;
use std::time::Duration;

/// What the kernel counted for one thread so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Voluntary context switches: every return from a blocking wait is one.
    pub wakeups: u64,
    /// User plus system time, in clock ticks.
    pub cpu_ticks: u64,
}

/// The usage of the one thread named `name`, once it exists and sleeps.
///
/// A thread takes its name only when it first runs (std names it from inside), so right after
/// `spawn` returns it may still carry its parent's name; and counting from a thread that is
/// still starting would count its start. Waits (bounded by `timeout`, polling: the kernel
/// announces neither) until exactly one thread has the name and is asleep. Panics when two
/// threads have it or none sleeps with it in time.
pub fn usage(name: &str, timeout: Duration) -> Usage {
    let mut found = None;
    crate::wait_until(timeout, &format!("a sleeping thread named {name:?}"), || {
        found = sleeping(name);
        found.is_some()
    });
    found.expect("found")
}

fn sleeping(name: &str) -> Option<Usage> {
    let mut found = None;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        assert!(found.is_none(), "two threads of this process are named {name:?}");
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
        if !field("State:").is_some_and(|s| s.starts_with('S')) {
            return None;
        }
        let wakeups = field("voluntary_ctxt_switches:").and_then(|v| v.parse().ok())?;
        found = Some(Usage { wakeups, cpu_ticks: cpu_ticks(&task.path().join("stat")) });
    }
    found
}

/// utime + stime of a `stat` file (this process's threads or another process), in clock ticks.
pub fn cpu_ticks(stat: &Path) -> u64 {
    let stat = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command (which is in parentheses, and may hold spaces): utime and
    // stime are the 14th and 15th of the line, 12th and 13th after it.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}
