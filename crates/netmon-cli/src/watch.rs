//! `netmon watch`: the baseline, then one line per event until interrupted.

use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc;

use netmon::EventKind;

use crate::{human, Monitored};

pub(crate) fn run(args: &Monitored) -> Result<ExitCode, String> {
    install_exit_handlers()?;
    let monitor = args.monitor().map_err(|e| e.to_string())?;
    let (finished, outcome) = mpsc::channel::<Result<ExitCode, String>>();
    let json = args.common.json;
    // Lines are written on the monitor's own thread, as each event is published: handing every
    // event to another thread first was most of the latency over `ip monitor`. A slow reader
    // then slows the monitor, which a netlink overrun and resync absorb.
    let mut line = Vec::with_capacity(1024); // reused: no allocation per event
    monitor.on_event(move |event| {
        line.clear();
        let encoded = if json {
            let encoded = serde_json::to_writer(&mut line, event).map_err(|e| e.to_string());
            line.push(b'\n');
            encoded
        } else {
            line.extend_from_slice(human::event(event).escaped().as_bytes());
            Ok(())
        };
        let verdict = encoded.and_then(|()| write_flushed(&mut std::io::stdout().lock(), &line));
        match (verdict, &event.kind) {
            (Ok(false), _) => drop(finished.send(Ok(ExitCode::SUCCESS))), // the reader left
            (Err(e), _) => drop(finished.send(Err(e))),
            (Ok(true), EventKind::Error { fatal: true, message }) => drop(finished.send(Err(message.clone()))),
            (Ok(true), _) => {}
        }
    });
    // Ends with the first verdict; a monitor that stopped drops the callback and the sender.
    outcome.recv().unwrap_or(Ok(ExitCode::SUCCESS))
}

/// For commands that run until stopped: SIGINT and SIGTERM end them with exit code 0, and so
/// does the reader of their output going away. Both handler threads sleep in blocking calls,
/// so they cost no wake-ups while idle.
pub(crate) fn install_exit_handlers() -> Result<(), String> {
    ctrlc::set_handler(|| std::process::exit(0)).map_err(|e| format!("installing signal handlers: {e}"))?;
    exit_when_reader_leaves();
    Ok(())
}

/// Writes one line of JSON and flushes it; `Ok(false)` when the reader has gone (Rust ignores
/// SIGPIPE, so a closed pipe such as `netmon watch | head -1` shows up here as EPIPE). Human
/// text goes out through [`crate::terminal::Lines`] instead, escaped.
pub(crate) fn print_line(out: &mut impl Write, line: &str) -> Result<bool, String> {
    write_flushed(out, format!("{line}\n").as_bytes())
}

/// Writes `bytes` (whole lines) in one go and flushes them; `Ok(false)` when the reader has gone.
pub(crate) fn write_flushed(out: &mut impl Write, bytes: &[u8]) -> Result<bool, String> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("writing to standard output: {e}")),
    }
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
