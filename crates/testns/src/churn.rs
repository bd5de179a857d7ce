//! Churn at a steady rate: `ip -batch` inside a namespace, fed a slice of commands every tick,
//! for the benchmarks that measure what a storm of changes costs a monitor.
//!
//! ```no_run
//! let ns = testns::NetNs::new("churn");
//! let (written, elapsed) = testns::churn::paced(&ns, 10_000, 30, |k| format!("route add 198.18.{}.{}/32 dev lo\n", k / 250, k % 250));
//! println!("{written} changes in {elapsed:?}");
//! ```

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::NetNs;

/// How often a slice of commands is written.
const TICK: Duration = Duration::from_millis(10);

/// Runs `per_second * seconds` commands through one `ip -force -batch -` in `ns`, a slice
/// every 10 ms; `command(k)` is the k-th command, with its newline. Returns how many were
/// written and how long it took, once `ip` has run them all.
pub fn paced(
    ns: &NetNs,
    per_second: usize,
    seconds: usize,
    mut command: impl FnMut(usize) -> String,
) -> (usize, Duration) {
    let mut ip = std::process::Command::new("ip")
        .args(["-n", ns.name(), "-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ip -batch");
    let mut input = ip.stdin.take().expect("stdin");
    let per_tick = per_second * TICK.as_millis() as usize / 1000;
    let total = per_second * seconds;
    let start = Instant::now();
    let (mut written, mut next) = (0, start);
    while written < total {
        let slice: String = (written..written + per_tick).map(&mut command).collect();
        input.write_all(slice.as_bytes()).expect("feeding ip -batch");
        written += per_tick;
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    drop(input);
    let _ = ip.wait();
    (written, start.elapsed())
}
