//! `netreach wait`: block until the machine reaches a level, bounded by a timeout.
//!
//! Exits 0 as soon as the level is reached (at once when it already is), 1 at the timeout
//! naming what is missing, 128 + the signal's number on SIGINT (130), SIGTERM (143) or SIGHUP
//! (129), 1 naming the cause when the monitor stops (e.g. its namespace was deleted). It never
//! waits past its timeout, start-up included: the monitor is built on a thread that is waited
//! for no longer than the deadline, the only other blocking call is a receive bounded by it, and
//! leaving cancels a probe in flight. What counts as reached is in `wait/goal.rs`.

mod goal;

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use netreach::{
    derive_kernel_reachability, BackendKind, EventKind, Family, Level, Monitor, NetworkState, Reachability, RecvError,
    Snapshot, Source,
};

use self::goal::Goal;
use crate::output::{self, OnSignal};
use crate::{Failure, Monitored};

#[derive(Args)]
pub(crate) struct WaitArgs {
    /// The level to reach: online, site or local.
    #[arg(long, default_value = "online", value_parser = parse_level)]
    level: Level,
    /// Give up after this long, e.g. 500ms, 30s, 2m (at most 365 days); 0 checks once.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// The level must be reached through this interface (up, with carrier, by its own addresses
    /// and default routes), at LEVEL when given (else --level). Repeatable: all of them must,
    /// or one with --any.
    #[arg(long = "interface", value_name = "NAME[:LEVEL]", value_parser = goal::parse_interface)]
    interfaces: Vec<(String, Option<Level>)>,
    /// One of the --interface interfaces reaching its level suffices.
    #[arg(long, requires = "interfaces")]
    any: bool,
    /// Leave this interface out (its addresses and routes) when judging the machine as a whole.
    /// Repeatable.
    #[arg(long, value_name = "NAME", conflicts_with = "interfaces")]
    ignore: Vec<String>,
    /// Only IPv4 counts (with -6: both must reach the level).
    #[arg(short = '4', long = "ipv4")]
    ipv4: bool,
    /// Only IPv6 counts (with -4: both must reach the level).
    #[arg(short = '6', long = "ipv6")]
    ipv6: bool,
    /// Also require a usable resolver: a nameserver configured that the routes reach; with
    /// --probe, a name that resolves (every --url must then name a host).
    #[arg(long)]
    dns: bool,
    #[command(flatten)]
    pub(crate) monitored: Monitored,
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.parse::<Level>().map_err(|e| e.to_string())? {
        level @ (Level::Online | Level::Site | Level::Local) => Ok(level),
        other => Err(format!("cannot wait for '{other}' (expected online, site or local)")),
    }
}

impl WaitArgs {
    /// Options that contradict each other are a command-line mistake (exit 2).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.dns && self.monitored.probe.enabled() {
            if let Some(url) = self.monitored.probe.urls().iter().find(|u| names_an_address(u)) {
                return Err(format!("--dns with --probe needs a name to resolve, but --url {url} names an address"));
            }
        }
        Ok(())
    }
}

/// The goal the options describe.
fn goal_of(args: &WaitArgs) -> Goal {
    let families = match (args.ipv4, args.ipv6) {
        (true, false) => vec![Family::Ipv4],
        (false, true) => vec![Family::Ipv6],
        (true, true) => vec![Family::Ipv4, Family::Ipv6],
        (false, false) => Vec::new(),
    };
    Goal {
        level: args.level,
        interfaces: args.interfaces.clone(),
        any: args.any,
        ignore: args.ignore.clone(),
        all_families: args.ipv4 && args.ipv6,
        families,
        dns: args.dns,
        probe: args.monitored.probe.enabled(),
    }
}

/// Whether a probe URL's host is an address literal (`http://192.0.2.1/`, `http://[::1]/`).
fn names_an_address(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    host.starts_with('[') || host.rsplit_once(':').map_or(host, |(h, _)| h).parse::<std::net::Ipv4Addr>().is_ok()
}

pub(crate) fn run(args: &WaitArgs) -> Result<ExitCode, Failure> {
    let deadline = crate::duration::deadline_after(args.timeout);
    output::exit_on_signals(OnSignal::Interrupted)?;
    let goal = goal_of(args);
    let Some(monitor) = start(args, deadline)? else {
        let waited = humantime::format_duration(args.timeout);
        let why = format!("the monitor was still starting: {} did not answer", starting_sources(args));
        if args.monitored.common.json {
            let report = serde_json::json!({
                "reached": false,
                "level": goal.level,
                "reachability": Level::Unknown,
                "missing": [why],
                "failed": why,
            });
            output::print_line(&mut std::io::stdout().lock(), &report.to_string())?;
        }
        crate::terminal::error_line(&format!(
            "netreach wait: timed out after {waited} waiting for {}: {why}",
            goal.level
        ));
        return Ok(ExitCode::from(1));
    };
    let events = monitor.subscribe();
    if args.timeout.is_zero() && goal.probe {
        monitor.check()?; // "check once" includes one probe
    }
    loop {
        let state = monitor.snapshot();
        let unmet = goal::unmet(&state, &goal);
        if unmet.is_empty() {
            return finish(args, &goal, &state, unmet);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return finish(args, &goal, &state, unmet);
        }
        // Any event may change the answer; the state is re-read rather than the event decoded.
        match events.recv_timeout(left) {
            Ok(event) => {
                // The monitor stopped: say why, e.g. "network namespace /run/netns/x was deleted".
                if let EventKind::Error { fatal: true, message } = event.kind {
                    return Err(message.into());
                }
            }
            Err(RecvError::Timeout) => {}
            Err(RecvError::Closed) => return Err("the monitor stopped".into()),
        }
    }
}

/// Builds the monitor, waiting for it no longer than the deadline (except with `--timeout 0`,
/// "check once", where start-up gets its own bounds): a source that does not answer while
/// starting (a stopped NetworkManager or system bus) must not hold `wait` past its timeout.
/// `None` when the deadline came first; the half-started monitor is left to the process exit.
fn start(args: &WaitArgs, deadline: Instant) -> Result<Option<Monitor>, Failure> {
    let builder = args.monitored.probe.apply(args.monitored.common.builder())?;
    if args.timeout.is_zero() {
        return Ok(Some(builder.build()?));
    }
    let (built, monitor) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("netreach-start".into())
        .spawn(move || drop(built.send(builder.build())))
        .map_err(|e| format!("starting the monitor: {e}"))?;
    match monitor.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(result) => Ok(Some(result?)),
        Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("starting the monitor failed".into()),
    }
}

/// What a monitor of these options waits for while starting, in words.
fn starting_sources(args: &WaitArgs) -> &'static str {
    let common = &args.monitored.common;
    match common.backend {
        BackendKind::Kernel => "the kernel",
        BackendKind::Auto if common.netns.is_some() => "the kernel",
        _ => "NetworkManager or the system bus",
    }
}

/// Reports the outcome: reached when nothing is `missing`; else the first unmet condition is
/// the message (JSON: `failed`, with every unmet one in `missing`).
fn finish(args: &WaitArgs, goal: &Goal, state: &Snapshot, missing: Vec<String>) -> Result<ExitCode, Failure> {
    let reached = missing.is_empty();
    if args.monitored.common.json {
        let report = serde_json::json!({
            "reached": reached,
            "level": goal.level,
            "reachability": state.reachability.overall,
            "missing": missing,
            "failed": (!reached).then(|| goal::first_condition(&missing)),
            "first_failing_layer": (!reached).then(|| first_failing_layer(state)).flatten(),
        });
        output::print_line(&mut std::io::stdout().lock(), &report.to_string())?;
    }
    if reached {
        return Ok(ExitCode::SUCCESS);
    }
    let waited = humantime::format_duration(args.timeout);
    let first = goal::first_condition(&missing);
    let mut message = format!("netreach wait: timed out after {waited} waiting for {}: {first}", goal.level);
    if let Some(layer) = crate::diagnosis::first_failing(&netreach::diagnose(state)) {
        message.push_str(&format!(" — first failing layer: {layer}"));
    }
    crate::terminal::error_line(&message);
    Ok(ExitCode::from(1))
}

/// The first failing layer of the diagnosis, as JSON: `{"family": ..., "layer": ..., "status":
/// "failed", "finding": {...}}`; `None` when a family has none.
fn first_failing_layer(state: &Snapshot) -> Option<serde_json::Value> {
    let diagnosis = netreach::diagnose(state);
    let (family, check) = diagnosis.first_failing()?;
    let mut value = serde_json::to_value(check).ok()?;
    value.as_object_mut()?.insert("family".into(), serde_json::to_value(family).ok()?);
    Some(value)
}

/// The kernel's reading through one interface alone: its addresses and its default routes.
fn via_interface(state: &Snapshot, name: &str) -> Option<Reachability> {
    let iface = state.interface_by_name(name)?;
    let mut alone = NetworkState::default();
    alone.interfaces = vec![iface.clone()];
    alone.default_routes = state.default_routes.iter().filter(|r| r.interface_index == iface.index).cloned().collect();
    Some(derive_kernel_reachability(&alone))
}

/// Why a family stands at `level`, in words.
fn why(state: &Snapshot, family: Family, level: Level, source: Source) -> String {
    if source != Source::Kernel {
        let verdict = state.verdicts.iter().find(|v| v.source == source);
        if state.details.captive_portal == Some(true) {
            let at = state.details.portal_url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default();
            return format!("{source}: captive portal{at}");
        }
        if let Some(note) = verdict.and_then(|v| v.note.as_deref()) {
            return format!("{source}: {note}");
        }
        return format!("limited by {source}");
    }
    match state.reasons.family(family) {
        Some(reason) => reason.to_string(),
        None => level_words(level).into(),
    }
}

/// A level in words, when no reason is known (a reading through one interface alone).
fn level_words(level: Level) -> &'static str {
    match level {
        Level::Unknown => "not known yet",
        Level::Disconnected => "no usable address on a ready interface",
        Level::Local => "only link-local addresses",
        Level::Site => "no default route",
        Level::Online => "a default route exists",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach::{FamilyReachability, Interface};

    #[test]
    fn interface_reading_ignores_other_interfaces() {
        let mut s = goal::tests::state(true, true, vec![]).into_state();
        s.interfaces.push(Interface { index: 3, name: "eth1".into(), up: true, ..Default::default() });
        let s = netreach::derive(s);
        let r = via_interface(&s, "eth1").unwrap();
        assert_eq!(r.ipv4, FamilyReachability { reachability: Level::Disconnected, source: Source::Kernel });
        assert_eq!(via_interface(&s, "eth0").unwrap().ipv4.reachability, Level::Online);
    }

    #[test]
    fn only_reachable_levels_can_be_awaited() {
        assert_eq!(parse_level("site"), Ok(Level::Site));
        assert!(parse_level("unknown").unwrap_err().contains("online, site or local"));
        assert!(parse_level("up").is_err());
    }
}
