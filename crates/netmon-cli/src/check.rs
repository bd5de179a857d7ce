//! `netmon check LOCAL REMOTE`: is one connection's path reachable?

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Args;
use netmon::EventKind;

use crate::terminal::Lines;
use crate::watch::write_flushed;
use crate::{human, Common};

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

/// Bad input (`check` only): 2, like a bad command line.
const BAD_INPUT: u8 = 2;

pub(crate) fn run(args: &CheckArgs) -> Result<ExitCode, String> {
    if args.watch {
        crate::watch::install_exit_handlers()?;
    }
    // The monitor must outlive the path watched through it.
    let watched = args.common.monitor().and_then(|monitor| Ok((monitor.watch_path(args.local, args.remote)?, monitor)));
    let (path, _monitor) = match watched {
        Ok(both) => both,
        Err(e @ (netmon::Error::InvalidInput(_) | netmon::Error::Namespace { .. })) => {
            crate::terminal::error_line(&format!("netmon: {e}"));
            return Ok(ExitCode::from(BAD_INPUT));
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut out = std::io::stdout().lock();
    if !args.watch {
        let status = path.status();
        let text = if args.common.json {
            serde_json::to_string(&status).map_err(|e| e.to_string())? + "\n"
        } else {
            Lines::one(human::path(&status)).escaped()
        };
        write_flushed(&mut out, text.as_bytes())?; // a reader that left early changes nothing here
        return Ok(if status.reachable { ExitCode::SUCCESS } else { ExitCode::from(1) });
    }
    let events = path.subscribe();
    for event in events.iter() {
        let text = if args.common.json {
            serde_json::to_string(&event).map_err(|e| e.to_string())? + "\n"
        } else {
            human::event(&event).escaped()
        };
        if !write_flushed(&mut out, text.as_bytes())? {
            return Ok(ExitCode::SUCCESS);
        }
        if let EventKind::Error { fatal: true, message } = &event.kind {
            return Err(message.clone());
        }
    }
    // The subscription ended: the monitor stopped; its reason was printed as an event.
    Ok(ExitCode::from(1))
}
