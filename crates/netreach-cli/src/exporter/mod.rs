//! `netreach exporter`: the state of one namespace, or of every namespace, as Prometheus
//! metrics over HTTP (`/metrics`) and/or in a file for node_exporter's textfile collector.
//!
//! Data flows one way: monitors (one per namespace) -> their callbacks count events into the
//! registry and bump its change signal -> a scrape reads snapshots and formats; the textfile
//! writer and systemd's STATUS= wake on the change signal. Nothing runs on a timer (except
//! systemd's watchdog keep-alives when the unit asks for them).

mod http;
mod metrics;
mod netns_follow;
mod registry;
mod text;
mod textfile;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::output::{self, OnSignal};
use crate::{probe, sd_notify, Failure};
use registry::{lock, NamedPath, Namespace, Registry, Watched};

/// The default listening address: loopback only. Port 9986: free in Prometheus' default port
/// allocations list (the 9100-9999 range its exporters share) as far as we could check.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9986";

#[derive(Args)]
pub(crate) struct ExporterArgs {
    /// Serve /metrics on this address and port (IPv6 as [::1]:9986). Default 127.0.0.1:9986,
    /// unless --textfile is given alone (then no HTTP).
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<SocketAddr>,
    /// Write the metrics to FILE for node_exporter's textfile collector (name it *.prom):
    /// atomically, whenever they change.
    #[arg(long, value_name = "FILE")]
    textfile: Option<PathBuf>,
    /// Export this network namespace instead of our own: a name (/run/netns/NAME) or a path.
    #[arg(long, value_name = "NAME|PATH", conflicts_with = "all_netns")]
    netns: Option<String>,
    /// Export our own namespace (netns="") and every namespace under the --netns-dir
    /// directories, following them as they are created and deleted (needs CAP_SYS_ADMIN).
    #[arg(long)]
    all_netns: bool,
    /// A directory of namespace files for --all-netns (repeatable; default /run/netns), e.g. a
    /// container runtime's.
    #[arg(long = "netns-dir", value_name = "DIR", requires = "all_netns")]
    netns_dirs: Vec<PathBuf>,
    /// Watch the path from LOCAL to REMOTE as netreach_path_reachable{path="NAME"}
    /// (repeatable; in our own namespace, or the one of --netns).
    #[arg(long = "path", value_name = "NAME=LOCAL,REMOTE", value_parser = parse_path)]
    paths: Vec<PathSpec>,
    /// What refines the kernel's view in our own namespace: auto, kernel or networkmanager.
    #[arg(long, value_name = "auto|kernel|networkmanager", default_value = "auto")]
    backend: netreach::BackendKind,
    #[command(flatten)]
    probe: probe::Switch,
}

/// `--path NAME=LOCAL,REMOTE`.
#[derive(Clone, Debug)]
pub(crate) struct PathSpec {
    name: String,
    local: IpAddr,
    remote: IpAddr,
}

fn parse_path(value: &str) -> Result<PathSpec, String> {
    let usage = || format!("'{value}': expected NAME=LOCAL,REMOTE, e.g. uplink=192.0.2.10,198.51.100.1");
    let (name, ends) = value.split_once('=').ok_or_else(usage)?;
    let (local, remote) = ends.split_once(',').ok_or_else(usage)?;
    if name.is_empty() {
        return Err(usage());
    }
    let address = |a: &str| a.trim().parse::<IpAddr>().map_err(|_| format!("'{a}' is not an IP address ({})", usage()));
    Ok(PathSpec { name: name.to_owned(), local: address(local)?, remote: address(remote)? })
}

fn bad_input(message: String) -> Failure {
    Failure { message, code: 2 }
}

impl ExporterArgs {
    fn builder(&self) -> Result<netreach::MonitorBuilder, netreach::Error> {
        let builder = netreach::Monitor::builder().backend(self.backend);
        let builder = match &self.netns {
            Some(ns) if ns.contains('/') => builder.netns_path(ns),
            Some(ns) => builder.netns(ns.clone()),
            None => builder,
        };
        self.probe.apply(builder)
    }

    fn dirs(&self) -> Vec<PathBuf> {
        if self.netns_dirs.is_empty() {
            vec![PathBuf::from("/run/netns")]
        } else {
            self.netns_dirs.clone()
        }
    }
}

pub(crate) fn run(args: &ExporterArgs) -> Result<ExitCode, Failure> {
    args.probe.validate().map_err(bad_input)?;
    if let Some(file) = &args.textfile {
        textfile::check(file).map_err(bad_input)?;
    }
    if args.all_netns {
        netns_follow::check(&args.dirs(), !args.netns_dirs.is_empty()).map_err(bad_input)?;
    }
    output::exit_on_signals(OnSignal::Succeed)?; // before any thread starts
    let listen = match (args.listen, &args.textfile) {
        (Some(address), _) => Some(address),
        (None, None) => Some(DEFAULT_LISTEN.parse().map_err(|_| "bad default address")?),
        (None, Some(_)) => None,
    };
    // Bound before the monitors start: a busy port fails at once.
    let listener = listen.map(http::bind).transpose().map_err(bad_input)?;

    let registry = Arc::new(Registry::new(args.probe.enabled()));
    let monitor = args.builder()?.build()?;
    let counters = registry.follow(&monitor);
    let mut paths = Vec::new();
    for spec in &args.paths {
        let path = monitor.watch_path(spec.local, spec.remote)?;
        let (changes, mine) = (registry.changes.clone(), counters.clone());
        path.on_change(move |_| {
            lock(&mine).path_changes += 1;
            changes.bump();
        });
        paths.push(NamedPath { name: spec.name.clone(), local: spec.local, remote: spec.remote, monitor: path });
    }
    let label = args.netns.clone().unwrap_or_default();
    registry.insert(Namespace {
        label,
        path: None,
        identity: None,
        watched: Watched::Running { monitor, paths, counters },
        _file: None,
        formatted: None,
    });

    if args.all_netns {
        raise_fd_limit();
        let probe = args.probe.clone();
        let open: netns_follow::Open = Box::new(move |path| {
            let builder = netreach::Monitor::builder().backend(netreach::BackendKind::Kernel).netns_path(path);
            probe.apply(builder)?.build()
        });
        netns_follow::start(args.dirs(), registry.clone(), open)?;
    }
    if let Some(file) = &args.textfile {
        textfile::start(file.clone(), registry.clone())?;
    }
    if sd_notify::enabled() {
        start_status(registry.clone());
    }
    sd_notify::start_watchdog();
    match listener {
        Some(listener) => match http::serve(listener, registry)? {},
        None => loop {
            std::thread::park(); // the textfile writer works; signals end the process
        },
    }
}

/// Each namespace's monitor holds about eight file descriptors (netlink sockets, the
/// namespace, eventfds): the usual soft limit of 1024 would stop near 120 namespaces. The soft
/// limit is raised to the hard one, as systemd advises for programs that need many (its hard
/// limit is 524288); a failure leaves the limit as it was.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// systemd's status line: our own namespace's levels, and how many namespaces are online.
fn status_line(registry: &Registry) -> String {
    let namespaces = lock(&registry.namespaces);
    let mut line = String::new();
    let (mut online, mut total) = (0, 0);
    for namespace in namespaces.values() {
        let state = match &namespace.watched {
            Watched::Running { monitor, .. } => Some(monitor.snapshot()),
            Watched::Failed(_) => None,
        };
        if namespace.path.is_none() {
            line = state.as_deref().map(sd_notify::describe).unwrap_or_default();
        } else {
            total += 1;
            online += usize::from(state.is_some_and(|s| s.reachability.overall == netreach::Level::Online));
        }
    }
    if total > 0 {
        line.push_str(&format!("; namespaces online: {online} of {total}"));
    }
    line
}

/// READY=1 with the first status now (the first state is known: monitors start with it),
/// then STATUS= whenever the line changes, from a thread that sleeps until a change.
fn start_status(registry: Arc<Registry>) {
    let mut seen = registry.changes.current();
    let mut last = status_line(&registry);
    sd_notify::ready(&last);
    let _ = std::thread::Builder::new().name("sd-status".into()).spawn(move || loop {
        seen = registry.changes.wait_past(seen);
        let line = status_line(&registry);
        if line != last {
            sd_notify::status(&line);
            last = line;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_options_parse_and_bad_ones_say_what_is_expected() {
        let p = parse_path("uplink=192.0.2.10,198.51.100.1").unwrap();
        assert_eq!(
            (p.name.as_str(), p.local.to_string(), p.remote.to_string()),
            ("uplink", "192.0.2.10".into(), "198.51.100.1".into())
        );
        for bad in ["uplink", "=192.0.2.10,198.51.100.1", "u=192.0.2.10", "u=192.0.2.10,x"] {
            assert!(parse_path(bad).unwrap_err().contains("NAME=LOCAL,REMOTE"), "{bad}");
        }
    }
}
