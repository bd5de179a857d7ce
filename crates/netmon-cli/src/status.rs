//! `netmon status`: one reading of the current state.

use std::io::Write;
use std::process::ExitCode;

use crate::{human, Monitored};

pub(crate) fn run(args: &Monitored) -> Result<ExitCode, String> {
    let monitor = args.monitor().map_err(|e| e.to_string())?;
    // With --probe, probe now so the verdict is in what is printed.
    let state = if args.probe.enabled() { monitor.check().map_err(|e| e.to_string())? } else { monitor.snapshot() };
    let text = if args.common.json {
        serde_json::to_string_pretty(&*state).map_err(|e| e.to_string())? + "\n"
    } else {
        human::state(&state).escaped()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(format!("writing to standard output: {e}")),
    }
}
