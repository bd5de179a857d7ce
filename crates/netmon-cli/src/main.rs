//! `netmon`: is this machine online, how, and the moment that changes.
//!
//! Exit codes (all subcommands):
//! - 0: success (`watch`: stopped by SIGINT/SIGTERM or a closed output pipe)
//! - 1: the monitor could not start (e.g. no such namespace) or failed fatally; the reason
//!   is on stderr
//! - 2: bad command line (unknown subcommand or option), or bad input to `check`
//!
//! `check` without `--watch` exits 0 when the path is reachable and 1 when it is not.
//! `probe` exits 0 online, 1 otherwise, 2 bad input; `wait` 0 reached, 1 timed out, 130 SIGINT.

mod check;
mod human;
mod probe;
mod status;
mod terminal;
mod wait;
mod watch;

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

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
    Status(Monitored),
    /// Print the current state, then one line per change until interrupted.
    Watch(Monitored),
    /// Is the path from LOCAL to REMOTE reachable? Exit 0 if so, 1 if not, 2 for bad input.
    Check(check::CheckArgs),
    /// Probe connectivity now over plain HTTP: verdict per family (online, captive portal,
    /// limited) with timings. Exit 0 online, 1 not, 2 bad input.
    Probe(probe::ProbeArgs),
    /// Wait until the machine reaches a level: exit 0 when reached (at once if it is), 1 at
    /// the timeout (saying what is missing), 130 on SIGINT.
    Wait(wait::WaitArgs),
}

/// Options of the commands that run a monitor and may probe.
#[derive(Args)]
pub(crate) struct Monitored {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    probe: probe::Switch,
}

impl Monitored {
    pub(crate) fn monitor(&self) -> Result<netmon::Monitor, netmon::Error> {
        self.probe.apply(self.common.builder())?.build()
    }
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
        self.builder().build()
    }

    pub(crate) fn builder(&self) -> netmon::MonitorBuilder {
        let builder = netmon::Monitor::builder().backend(self.backend);
        match self.netns() {
            Some(netmon::Netns::Path(path)) => builder.netns_path(path),
            Some(netmon::Netns::Name(name)) => builder.netns(name),
            None => builder,
        }
    }

    /// The namespace asked for: a value with a `/` is a path, anything else a name.
    pub(crate) fn netns(&self) -> Option<netmon::Netns> {
        self.netns.as_ref().map(|ns| {
            if ns.contains('/') {
                netmon::Netns::Path(ns.into())
            } else {
                netmon::Netns::Name(ns.clone())
            }
        })
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: our own text, as clap prints it
        Err(e) => {
            // A usage error quotes the arguments given: escaped like every other message.
            e.render().to_string().trim_end().lines().for_each(terminal::error_line);
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    if let Command::Status(monitored) | Command::Watch(monitored) = &cli.command {
        if let Err(message) = monitored.probe.validate() {
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
            // exit code 2
        }
    }
    let result = match &cli.command {
        Command::Status(common) => status::run(common),
        Command::Watch(common) => watch::run(common),
        Command::Check(args) => check::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Wait(args) => wait::run(args),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            terminal::error_line(&format!("netmon: {message}"));
            ExitCode::from(1)
        }
    }
}
