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
