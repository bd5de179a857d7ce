//! Standard output written in whole lines, and exits that never cut one.
//!
//! A JSON Lines reader must only ever see whole lines. Every line (or block of lines: a human
//! baseline) goes out in one `write_all` while a gate says "busy"; an exit (a signal, the
//! reader leaving) closes the gate to new writes, waits for the write in progress to finish,
//! and exits between lines. The wait is bounded by [`EXIT_GRACE`] so a reader that stopped
//! reading cannot keep the process alive: past it, the exit happens anyway.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long an exit waits for a line being written to finish. A reader that takes longer to
/// read the rest of the line (it stalled) sees the process exit anyway, that line cut.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Whether a line is being written, whether the process is exiting, and how many threads wait
/// for a write to end.
struct Gate {
    busy: bool,
    exiting: bool,
    /// Threads in `WRITE_ENDED.wait*`: a write ends with a wake-up only when someone waits, so
    /// the usual line costs no futex call (a Condvar's notify is a syscall even with nobody
    /// waiting; it was one more syscall per `watch` line).
    waiting: usize,
}

static GATE: Mutex<Gate> = Mutex::new(Gate { busy: false, exiting: false, waiting: 0 });
/// Signalled when a write ends.
static WRITE_ENDED: Condvar = Condvar::new();

fn gate() -> MutexGuard<'static, Gate> {
    // The gate's fields are always consistent; a panic elsewhere cannot break them.
    GATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes one line (a newline is added) and flushes it; `Ok(false)` when the reader has gone.
pub(crate) fn print_line(out: &mut impl Write, line: &str) -> Result<bool, String> {
    write_lines(out, format!("{line}\n").as_bytes())
}

/// Writes `bytes` (whole lines) in one go and flushes them; `Ok(false)` when the reader has
/// gone (Rust ignores SIGPIPE, so a closed pipe such as `netreach watch | head -1` shows up here
/// as EPIPE). Once an exit has begun, it never returns: the process ends before a new line
/// could start.
pub(crate) fn write_lines(out: &mut impl Write, bytes: &[u8]) -> Result<bool, String> {
    {
        let mut gate = gate();
        while gate.busy || gate.exiting {
            gate.waiting += 1;
            gate = WRITE_ENDED.wait(gate).unwrap_or_else(|p| p.into_inner());
            gate.waiting -= 1;
        }
        gate.busy = true;
    }
    let result = match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("writing to standard output: {e}")),
    };
    let mut gate = gate();
    gate.busy = false;
    // Read under the lock that every waiter holds while it counts itself in: no lost wake-up.
    let someone_waits = gate.waiting > 0;
    drop(gate);
    if someone_waits {
        WRITE_ENDED.notify_all();
    }
    result
}

/// Exits with `code` between two lines: no new line starts, the one being written is finished
/// first (for at most [`EXIT_GRACE`]).
pub(crate) fn exit_between_lines(code: i32) -> ! {
    let mut gate = gate();
    if gate.exiting {
        // Another thread is already exiting, with its own code: let it.
        gate.waiting += 1; // for good: this thread never leaves
        loop {
            gate = WRITE_ENDED.wait(gate).unwrap_or_else(|p| p.into_inner());
        }
    }
    gate.exiting = true;
    gate.waiting += 1; // no need to count out: the process ends below
    let (_held, _) = WRITE_ENDED.wait_timeout_while(gate, EXIT_GRACE, |g| g.busy).unwrap_or_else(|p| p.into_inner());
    // Exiting with the gate held: no writer can start meanwhile.
    std::process::exit(code)
}

/// What a terminating signal (SIGINT, SIGTERM, SIGHUP) means for the exit code.
#[derive(Clone, Copy)]
pub(crate) enum OnSignal {
    /// Exit 0: the command runs until stopped (`watch`, `check --watch`).
    Succeed,
    /// Exit 128 + the signal's number, as shells report a killed command: 130 for SIGINT,
    /// 143 for SIGTERM, 129 for SIGHUP (`wait`). 130 on Windows (Ctrl-C).
    Interrupted,
}

/// Makes SIGINT, SIGTERM and SIGHUP end the process between two lines, with the exit code
/// `on` says. Must be called before any thread starts: the signals are blocked in the calling
/// thread, every thread started afterwards inherits that, and one thread takes them with
/// sigwait(), so it sleeps at no cost until one comes and no write is interrupted.
#[cfg(unix)]
pub(crate) fn exit_on_signals(on: OnSignal) -> Result<(), String> {
    use nix::sys::signal::{SigSet, Signal};
    let signals: SigSet = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP].into_iter().collect();
    signals.thread_block().map_err(|e| format!("blocking signals: {}", e.desc()))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // sigwait() fails only for an invalid set, which this one is not.
            if let Ok(signal) = signals.wait() {
                exit_between_lines(match on {
                    OnSignal::Succeed => 0,
                    OnSignal::Interrupted => 128 + signal as i32,
                })
            }
        })
        .map_err(|e| format!("starting the signal thread: {e}"))?;
    Ok(())
}

/// Windows: Ctrl-C (and closing the console) end the process between two lines.
#[cfg(not(unix))]
pub(crate) fn exit_on_signals(on: OnSignal) -> Result<(), String> {
    let code = match on {
        OnSignal::Succeed => 0,
        OnSignal::Interrupted => 130,
    };
    ctrlc::set_handler(move || exit_between_lines(code)).map_err(|e| format!("installing signal handlers: {e}"))
}

/// Exits 0 as soon as whoever reads our output goes away (`netreach watch | head -1`), instead
/// of only at the next write, which may be hours away on a quiet network. A thread blocks in
/// poll() asking for no events: only POLLERR (pipe reader gone) and POLLHUP (terminal hung up)
/// wake it, so it costs nothing while idle. Regular files never report either.
#[cfg(unix)]
pub(crate) fn exit_when_reader_leaves() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    std::thread::spawn(|| {
        let stdout = std::io::stdout();
        loop {
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) if fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)) => {
                    exit_between_lines(0)
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return, // not pollable: fall back to noticing EPIPE on the next write
            }
        }
    });
}

#[cfg(not(unix))]
pub(crate) fn exit_when_reader_leaves() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_whole_and_broken_pipes_are_not_errors() {
        let mut out = Vec::new();
        assert_eq!(print_line(&mut out, "one"), Ok(true));
        assert_eq!(write_lines(&mut out, b"two\nthree\n"), Ok(true));
        assert_eq!(out, b"one\ntwo\nthree\n");

        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert_eq!(print_line(&mut Gone, "x"), Ok(false));
        assert!(!gate().busy, "the gate is open again after a failed write");
    }
}
