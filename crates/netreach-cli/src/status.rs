//! `netreach status`: one reading of the current state.

use std::process::ExitCode;

use crate::{diagnosis, human, output, Failure, Monitored};

pub(crate) fn run(args: &Monitored) -> Result<ExitCode, Failure> {
    let monitor = args.reading()?;
    // With --probe, probe now so the verdict is in what is printed.
    let state = if args.probe.enabled() { monitor.check()? } else { monitor.snapshot() };
    let text = if args.common.json {
        serde_json::to_string_pretty(&diagnosis::WithDiagnosis::of(&state)).map_err(|e| e.to_string())? + "\n"
    } else {
        human::state(&state).escaped()
    };
    output::write_lines(&mut std::io::stdout().lock(), text.as_bytes())?; // a reader that left changes nothing
    Ok(ExitCode::SUCCESS)
}
