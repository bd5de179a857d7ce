//! `netreach check LOCAL REMOTE`: is one connection's path reachable?

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use clap::Args;
use netreach::{EventKind, Monitor, PathOptions};

use crate::output::{self, OnSignal};
use crate::terminal::Lines;
use crate::{human, Common, Failure};

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// The connection's local address (the one it is bound to); an IPv6 link-local address
    /// may name its link: fe80::10%eth1 or fe80::10%3.
    local: Endpoint,
    /// The connection's remote address; an IPv6 link-local address names its link:
    /// fe80::1%eth1 or fe80::1%3.
    remote: Endpoint,
    /// Judge the path as for a socket with this mark (SO_MARK; decimal or 0x hex), which
    /// `ip rule ... fwmark` rules match.
    #[arg(long, value_name = "MARK", value_parser = parse_mark)]
    mark: Option<u32>,
    /// Judge the path as for a socket owned by this uid, which `ip rule ... uidrange` rules
    /// match (default: this process's).
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
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
    let monitor = if args.watch { args.common.monitor()? } else { args.common.reading()? };
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
    let mut options = PathOptions::new();
    options.mark = args.mark;
    options.uid = args.uid;
    let local = args.local.resolve(&monitor, "LOCAL")?;
    let remote = args.remote.resolve(&monitor, "REMOTE")?;
    // The monitor must outlive the path watched through it.
    let path = monitor.watch_path_with(local, remote, options)?;
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

/// An address as given on the command line: `ADDR`, or `ADDR%LINK` for an IPv6 link-local
/// address, LINK an interface name or index (as `ping` and `ip` take them).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    ip: IpAddr,
    link: Option<String>,
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, link) = match text.split_once('%') {
            Some((address, link)) => (address, Some(link)),
            None => (text, None),
        };
        let ip: IpAddr = address.parse().map_err(|e| format!("{e}"))?;
        match (ip, link) {
            (_, None) => Ok(Endpoint { ip, link: None }),
            (_, Some("")) => Err("nothing after %: name the link (an interface name or index)".into()),
            (IpAddr::V6(v6), Some(link)) if v6.is_unicast_link_local() => {
                Ok(Endpoint { ip, link: Some(link.to_owned()) })
            }
            (_, Some(_)) => Err(format!("only IPv6 link-local addresses (fe80::/10) take a %LINK; {ip} does not")),
        }
    }
}

impl Endpoint {
    /// The socket address the library takes: the link, if named, as the scope id. A name is
    /// looked up among the monitored namespace's interfaces (not this process's): first as a
    /// name, then as an index.
    fn resolve(&self, monitor: &Monitor, which: &str) -> Result<SocketAddr, Failure> {
        let (IpAddr::V6(v6), Some(link)) = (self.ip, &self.link) else { return Ok(SocketAddr::new(self.ip, 0)) };
        let state = monitor.snapshot();
        let by_name = state.interfaces.iter().find(|i| i.name == *link).map(|i| i.index);
        let Some(index) = by_name.or_else(|| link.parse::<u32>().ok().filter(|&n| n != 0)) else {
            return Err(Failure::invalid_input(format!(
                "{which} {v6}%{link}: no interface is named {link:?} (see `netreach status`)"
            )));
        };
        Ok(SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, index)))
    }
}

/// A mark as `ip rule` takes it: decimal, or hexadecimal after `0x`.
fn parse_mark(text: &str) -> Result<u32, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|e| format!("{e} (a mark is a 32-bit number: 7 or 0x7)"))
}
