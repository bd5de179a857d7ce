//! `netreach check LOCAL REMOTE`: is one connection's path reachable?

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Args;
use netreach::EventKind;

use crate::output::{self, OnSignal};
use crate::terminal::Lines;
use crate::{human, Common, Failure};

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The connection's local address (the one it is bound to).
    local: IpAddr,
    /// The connection's remote address.
    remote: IpAddr,
    /// Keep running and print every change of the path's status.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode, Failure> {
    if args.watch {
        output::exit_on_signals(OnSignal::Succeed)?;
    }
    let monitor = args.common.monitor()?;
    // The path's stream only carries its status: why the monitor stopped (e.g. its namespace
    // was deleted) comes from the monitor's own fatal error, kept here. Callbacks run before
    // the monitor closes its path streams, so it is known by the time the stream ends.
    let fatal = Arc::new(Mutex::new(None::<String>));
    if args.watch {
        let fatal = fatal.clone();
        monitor.on_event(move |event| {
            if let EventKind::Error { fatal: true, message } = &event.kind {
                *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
            }
        });
    }
    // The monitor must outlive the path watched through it.
    let path = monitor.watch_path(args.local, args.remote)?;
    let mut out = std::io::stdout().lock();
    if !args.watch {
        let status = path.status();
        let text = if args.common.json {
            serde_json::to_string(&status).map_err(|e| e.to_string())? + "\n"
        } else {
            Lines::one(human::path(&status)).escaped()
        };
        output::write_lines(&mut out, text.as_bytes())?; // a reader that left early changes nothing here
        return Ok(if status.is_reachable() { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    output::exit_when_reader_leaves();
    let events = path.subscribe();
    for event in events.iter() {
        let text = if args.common.json {
            serde_json::to_string(&event).map_err(|e| e.to_string())? + "\n"
        } else {
            human::path_event(&event).escaped()
        };
        if !output::write_lines(&mut out, text.as_bytes())? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // The stream ended: the monitor stopped.
    let cause = fatal.lock().unwrap_or_else(|p| p.into_inner()).take();
    Err(cause.unwrap_or_else(|| "the monitor stopped".into()).into())
}
