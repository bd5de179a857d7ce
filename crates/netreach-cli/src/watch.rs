//! `netreach watch`: the baseline, then one line per event until interrupted.

use std::process::ExitCode;
use std::sync::mpsc;

use netreach::EventKind;

use crate::diagnosis::WithDiagnosis;
use crate::output::{self, OnSignal};
use crate::{human, Failure, Monitored};

pub(crate) fn run(args: &Monitored) -> Result<ExitCode, Failure> {
    output::exit_on_signals(OnSignal::Succeed)?;
    output::exit_when_reader_leaves();
    let monitor = args.monitor()?;
    let (finished, outcome) = mpsc::channel::<Result<ExitCode, String>>();
    let json = args.common.json;
    // Lines are written on the monitor's own thread, as each change is published: handing every
    // event to another thread first was most of the latency over `ip monitor`. A slow reader
    // then slows the monitor, which a netlink overrun and resync absorb. A change's lines go
    // out in one write (a syscall per line cost CPU the reader needed to see the first one).
    let mut lines = Vec::with_capacity(4096); // reused: no allocation per change
    #[cfg(target_os = "linux")]
    let mut systemd = crate::sd_notify::enabled().then(crate::sd_notify::Follow::default);
    #[cfg(target_os = "linux")]
    crate::sd_notify::start_watchdog();
    monitor.on_events(move |batch| {
        #[cfg(target_os = "linux")]
        if let Some(systemd) = systemd.as_mut() {
            batch.iter().for_each(|event| systemd.event(event));
        }
        lines.clear();
        let encoded = batch.iter().try_for_each(|event| {
            if let (true, EventKind::Baseline { state }) = (json, &event.kind) {
                // The state as `status --json` prints it: with its diagnosis.
                let baseline = Baseline { timestamp: event, kind: "baseline", state: WithDiagnosis::of(state) };
                serde_json::to_writer(&mut lines, &baseline).map_err(|e| e.to_string())?;
                lines.push(b'\n');
            } else if json {
                serde_json::to_writer(&mut lines, event).map_err(|e| e.to_string())?;
                lines.push(b'\n');
            } else {
                lines.extend_from_slice(human::event(event).escaped().as_bytes());
            }
            Ok(())
        });
        let fatal = batch.iter().find_map(|event| match &event.kind {
            EventKind::Error { fatal: true, message } => Some(message.clone()),
            _ => None,
        });
        match (encoded.and_then(|()| output::write_lines(&mut std::io::stdout().lock(), &lines)), fatal) {
            (Ok(false), _) => drop(finished.send(Ok(ExitCode::SUCCESS))), // the reader left
            (Err(e), _) => drop(finished.send(Err(e))),
            (Ok(true), Some(message)) => drop(finished.send(Err(message))),
            (Ok(true), None) => {}
        }
    });
    // Ends with the first verdict; a monitor that stopped drops the callback and the sender.
    Ok(outcome.recv().unwrap_or(Ok(ExitCode::SUCCESS))?)
}

/// A baseline event as JSON: the library's (timestamp, type, state), the state with its
/// diagnosis, so that folding `diagnosis_changed` events into it gives what a fresh
/// `status --json` says.
#[derive(serde::Serialize)]
struct Baseline<'a> {
    #[serde(serialize_with = "timestamp_of")]
    timestamp: &'a netreach::Event,
    #[serde(rename = "type")]
    kind: &'static str,
    state: WithDiagnosis<'a>,
}

/// The event's `timestamp` as the library writes it (RFC 3339, microseconds).
fn timestamp_of<S: serde::Serializer>(event: &&netreach::Event, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(event.timestamp))
}
