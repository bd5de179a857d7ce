//! `netreach watch`: the baseline, then one line per event until interrupted.

use std::process::ExitCode;
use std::sync::mpsc;

use netreach::EventKind;

use crate::output::{self, OnSignal};
use crate::{human, Failure, Monitored};

pub(crate) fn run(args: &Monitored) -> Result<ExitCode, Failure> {
    output::exit_on_signals(OnSignal::Succeed)?;
    output::exit_when_reader_leaves();
    let monitor = args.monitor()?;
    let (finished, outcome) = mpsc::channel::<Result<ExitCode, String>>();
    let json = args.common.json;
    // Lines are written on the monitor's own thread, as each event is published: handing every
    // event to another thread first was most of the latency over `ip monitor`. A slow reader
    // then slows the monitor, which a netlink overrun and resync absorb.
    let mut line = Vec::with_capacity(1024); // reused: no allocation per event
    #[cfg(target_os = "linux")]
    let mut systemd = crate::sd_notify::enabled().then(crate::sd_notify::Follow::default);
    #[cfg(target_os = "linux")]
    crate::sd_notify::start_watchdog();
    monitor.on_event(move |event| {
        #[cfg(target_os = "linux")]
        if let Some(systemd) = systemd.as_mut() {
            systemd.event(event);
        }
        line.clear();
        let encoded = if json {
            let encoded = serde_json::to_writer(&mut line, event).map_err(|e| e.to_string());
            line.push(b'\n');
            encoded
        } else {
            line.extend_from_slice(human::event(event).escaped().as_bytes());
            Ok(())
        };
        let verdict = encoded.and_then(|()| output::write_lines(&mut std::io::stdout().lock(), &line));
        match (verdict, &event.kind) {
            (Ok(false), _) => drop(finished.send(Ok(ExitCode::SUCCESS))), // the reader left
            (Err(e), _) => drop(finished.send(Err(e))),
            (Ok(true), EventKind::Error { fatal: true, message }) => drop(finished.send(Err(message.clone()))),
            (Ok(true), _) => {}
        }
    });
    // Ends with the first verdict; a monitor that stopped drops the callback and the sender.
    Ok(outcome.recv().unwrap_or(Ok(ExitCode::SUCCESS))?)
}
