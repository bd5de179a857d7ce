//! Small helpers shared by the measurements: errors, namespaces, child processes, statistics.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

/// A failed measurement, in words. Every failure ends the run with a non-zero exit code.
pub type Fallible<T> = Result<T, String>;

/// Runs `f` on a helper thread that has entered the network namespace at `path`, and returns
/// its result. Sockets keep the namespace they were created in, so what `f` opens stays bound
/// to that namespace after the helper exits; the caller's threads never change namespace.
pub fn in_namespace<T: Send>(path: &Path, f: impl FnOnce() -> Fallible<T> + Send) -> Fallible<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering {}: {e}", path.display()))?;
                f()
            })
            .join()
            .unwrap_or_else(|panic| Err(format!("namespace helper thread panicked: {}", panic_message(&panic))))
    })
}

/// The text of a caught panic.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// A child process that is killed and reaped when this value is dropped, so no benchmark
/// child outlives a failed measurement.
pub struct Guarded(pub Child);

impl Guarded {
    /// Spawns `command` with stdin closed and stderr inherited (so its complaints are visible).
    pub fn spawn(command: &mut Command, stdout: Stdio) -> Fallible<Guarded> {
        command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .map(Guarded)
            .map_err(|e| format!("cannot start {command:?}: {e}"))
    }

    /// Fails if the process has already exited: a dead observer would only produce timeouts.
    pub fn check_alive(&mut self, what: &str) -> Fallible<()> {
        match self.0.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{what} exited early ({status})")),
            Err(e) => Err(format!("{what}: cannot query its status: {e}")),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Nearest-rank percentile (`p` in 0..=100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Median of unsorted samples.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 50)
}

/// A duration as people read it: microseconds below a millisecond, milliseconds above.
pub fn fmt_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 100_000.0 {
        format!("{:.2} ms", micros / 1000.0)
    } else {
        format!("{:.0} ms", micros / 1000.0)
    }
}
