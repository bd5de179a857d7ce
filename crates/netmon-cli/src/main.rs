//! `netmon`: is this machine online, how, and the moment that changes.
//!
//! Exit codes (all subcommands):
//! - 0: success (`watch`: stopped by SIGINT/SIGTERM or a closed output pipe)
//! - 1: the monitor could not start (e.g. no such namespace) or failed fatally; the reason
//!   is on stderr
//! - 2: bad command line (unknown subcommand or option), or bad input to `check`
//!
//! `check` without `--watch` exits 0 when the path is reachable and 1 when it is not.

mod check;
mod human;
mod status;
mod watch;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Is this machine online, how, and the moment that changes.
#[derive(Parser)]
#[command(name = "netmon", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print reachability, default routes and interfaces once.
    Status(Common),
    /// Print the current state, then one line per change until interrupted.
    Watch(Common),
    /// Is the path from LOCAL to REMOTE reachable? Exit 0 if so, 1 if not, 2 for bad input.
    Check(check::CheckArgs),
}

/// Options every subcommand takes.
#[derive(Args)]
pub(crate) struct Common {
    /// Print JSON (`status`: one object; `watch`: JSON Lines, one event per line).
    #[arg(long)]
    json: bool,
    /// Monitor a network namespace instead of our own: a name (as in `ip netns list`, i.e.
    /// /run/netns/NAME) or a path such as /proc/PID/ns/net.
    #[arg(long, value_name = "NAME|PATH")]
    netns: Option<String>,
    /// What refines the kernel's view: `auto` (NetworkManager when the system bus answers,
    /// for our own namespace), `kernel`, or `networkmanager` (fail if it is not running).
    #[arg(long, value_name = "auto|kernel|networkmanager", default_value = "auto")]
    backend: netmon::BackendKind,
}

impl Common {
    pub(crate) fn monitor(&self) -> Result<netmon::Monitor, netmon::Error> {
        let builder = netmon::Monitor::builder().backend(self.backend);
        let builder = match &self.netns {
            Some(ns) if ns.contains('/') => builder.netns_path(ns),
            Some(ns) => builder.netns(ns.as_str()),
            None => builder,
        };
        builder.build()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Status(common) => status::run(common),
        Command::Watch(common) => watch::run(common),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("netmon: {message}");
            ExitCode::from(1)
        }
    }
}
