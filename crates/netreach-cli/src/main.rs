//! `netreach`: is this machine online, how, and the moment that changes.
//!
//! Exit codes (all subcommands):
//! - 0: success (`watch`, `check --watch`: stopped by SIGINT/SIGTERM/SIGHUP or a closed
//!   output pipe)
//! - 1: the monitor could not start or failed fatally (e.g. its namespace was deleted); the
//!   reason is on stderr
//! - 2: bad command line (unknown subcommand or option, a DURATION above 365 days, a probe
//!   option without --probe) or bad input: a bad address, URL, or --netns that names no
//!   network namespace (a missing file, a FIFO, a directory, another kind of namespace...)
//!
//! `check` without `--watch` exits 0 when the path is reachable and 1 when it is not.
//! `why` exits 0 when no layer of the diagnosis fails (and HOST resolves), 1 when one does.
//! `probe` exits 0 online, 1 otherwise; `wait` 0 reached, 1 timed out, and 128 + the signal's
//! number when a signal ends it, as shells report: 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
//! Signals end a command between two output lines, never in the middle of one.

#[cfg(target_os = "linux")]
mod assets;
mod check;
mod diagnosis;
mod duration;
#[cfg(target_os = "linux")]
mod exporter;
mod human;
mod output;
mod probe;
#[cfg(target_os = "linux")]
mod sd_notify;
mod status;
mod terminal;
mod wait;
mod watch;
mod why;

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Is this machine online, how, and the moment that changes.
#[derive(Parser)]
#[command(name = "netreach", version, about, long_about = None)]
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
    /// the timeout (saying what is missing), 130 on SIGINT, 143 on SIGTERM, 129 on SIGHUP.
    Wait(wait::WaitArgs),
    /// Why not online: run the active checks (gateway re-verification, a lookup of HOST, the
    /// probe), saying what is sent before sending it, then the layered diagnosis and one
    /// sentence saying what to do. Exit 0 when nothing fails, 1 when a layer fails or HOST does
    /// not resolve, 2 for bad input (an invalid HOST or --url).
    Why(why::WhyArgs),
    /// Export reachability as Prometheus metrics, over HTTP or for node_exporter.
    ///
    /// Serves Prometheus text or OpenMetrics on /metrics (default 127.0.0.1:9986) and/or
    /// writes the metrics for node_exporter's textfile collector; --all-netns covers every
    /// network namespace. Runs until SIGINT/SIGTERM (exit 0); exits 1 when the monitor cannot
    /// start, 2 for an address that cannot be bound (in use, not local, not permitted), a
    /// --textfile in a missing directory, a --netns-dir that cannot be read or bad options.
    #[cfg(target_os = "linux")]
    Exporter(exporter::ExporterArgs),
    /// Write man pages and shell completions to DIR (for packaging).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Assets(assets::AssetsArgs),
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
    pub(crate) fn monitor(&self) -> Result<netreach::Monitor, netreach::Error> {
        self.probe.apply(self.common.builder())?.build()
    }

    /// A monitor for one reading ([`Common::reading`]).
    pub(crate) fn reading(&self) -> Result<netreach::Monitor, netreach::Error> {
        self.probe.apply(self.common.builder().watch_files(false))?.build()
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
    backend: netreach::BackendKind,
}

impl Common {
    pub(crate) fn monitor(&self) -> Result<netreach::Monitor, netreach::Error> {
        self.builder().build()
    }

    /// A monitor for one reading, then gone: it watches no files (inotify marks would make
    /// the command wait up to about 15 ms at its exit for the kernel to retire them; see
    /// `MonitorBuilder::watch_files`).
    pub(crate) fn reading(&self) -> Result<netreach::Monitor, netreach::Error> {
        self.builder().watch_files(false).build()
    }

    pub(crate) fn builder(&self) -> netreach::MonitorBuilder {
        let builder = netreach::Monitor::builder().backend(self.backend);
        match self.netns() {
            Some(netreach::Netns::Path(path)) => builder.netns_path(path),
            Some(netreach::Netns::Name(name)) => builder.netns(name),
            None => builder,
        }
    }

    /// The namespace asked for: a value with a `/` is a path, anything else a name.
    pub(crate) fn netns(&self) -> Option<netreach::Netns> {
        self.netns.as_ref().map(|ns| {
            if ns.contains('/') {
                netreach::Netns::Path(ns.into())
            } else {
                netreach::Netns::Name(ns.clone())
            }
        })
    }
}

/// Why a command failed, and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// Bad input found after parsing (e.g. a link name the monitored namespace lacks): exit 2.
    pub(crate) fn invalid_input(message: String) -> Self {
        Failure { message, code: 2 }
    }
}

/// A fatal failure: exit code 1.
impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { message, code: 1 }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// Bad input (an address, a URL, a namespace that is not one) exits 2 in every subcommand,
/// since 1 already means something there (`check`: unreachable, `wait`: timed out).
impl From<netreach::Error> for Failure {
    fn from(e: netreach::Error) -> Self {
        // Any namespace that cannot be used is bad input here, whatever its kind (missing,
        // not a network namespace, not enterable): the user named it.
        let code = if e.kind() == netreach::ErrorKind::InvalidInput || e.netns().is_some() { 2 } else { 1 };
        Failure { message: e.to_string(), code }
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
    if let Command::Status(monitored) | Command::Watch(monitored) | Command::Wait(wait::WaitArgs { monitored, .. }) =
        &cli.command
    {
        if let Err(message) = monitored.probe.validate() {
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
            // exit code 2
        }
    }
    if let Command::Wait(args) = &cli.command {
        if let Err(message) = args.validate() {
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
        Command::Why(args) => why::run(args),
        #[cfg(target_os = "linux")]
        Command::Exporter(args) => exporter::run(args),
        #[cfg(target_os = "linux")]
        Command::Assets(args) => assets::run(args),
    };
    match result {
        Ok(code) => code,
        Err(Failure { message, code }) => {
            terminal::error_line(&format!("netreach: {message}"));
            ExitCode::from(code)
        }
    }
}
