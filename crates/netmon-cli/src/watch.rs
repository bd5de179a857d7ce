//! `netmon watch`: the baseline, then one line per event until interrupted.

use std::io::Write;
use std::process::ExitCode;

use netmon::EventKind;

use crate::{human, Common};

pub(crate) fn run(common: &Common) -> Result<ExitCode, String> {
    // SIGINT and SIGTERM end the watch normally. The handler thread sleeps in a blocking read,
    // so it costs no wake-ups while idle.
    ctrlc::set_handler(|| std::process::exit(0)).map_err(|e| format!("installing signal handlers: {e}"))?;
    let monitor = common.monitor().map_err(|e| e.to_string())?;
    exit_when_reader_leaves();
    let events = monitor.subscribe();
    let mut out = std::io::stdout().lock();
    for event in events.iter() {
        let line =
            if common.json { serde_json::to_string(&event).map_err(|e| e.to_string())? } else { human::event(&event) };
        // Rust ignores SIGPIPE, so a closed pipe (`netmon watch | head -1`) is an EPIPE here.
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
            Err(e) => return Err(format!("writing to standard output: {e}")),
        }
        if let EventKind::Error { fatal: true, message } = &event.kind {
            return Err(message.clone());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Exits 0 as soon as whoever reads our output goes away (`netmon watch | head -1`), instead
/// of only at the next write, which may be hours away on a quiet network. A thread blocks in
/// poll() asking for no events: only POLLERR (pipe reader gone) and POLLHUP (terminal hung up)
/// wake it, so it costs nothing while idle. Regular files never report either.
#[cfg(unix)]
fn exit_when_reader_leaves() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    std::thread::spawn(|| {
        let stdout = std::io::stdout();
        loop {
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) if fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)) => {
                    std::process::exit(0)
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return, // not pollable: fall back to noticing EPIPE on the next write
            }
        }
    });
}

#[cfg(not(unix))]
fn exit_when_reader_leaves() {}
