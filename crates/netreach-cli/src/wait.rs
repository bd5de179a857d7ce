//! `netreach wait`: block until the machine reaches a level, bounded by a timeout.
//!
//! Exits 0 as soon as the level is reached (at once when it already is), 1 at the timeout
//! naming what is missing, 128 + the signal's number on SIGINT (130), SIGTERM (143) or SIGHUP
//! (129), 1 naming the cause when the monitor stops (e.g. its namespace was deleted). It never
//! waits past its timeout, start-up included: the monitor is built on a thread that is waited
//! for no longer than the deadline, the only other blocking call is a receive bounded by it, and
//! leaving cancels a probe in flight.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use netreach::{
    derive_kernel_reachability, BackendKind, EventKind, Family, Level, Monitor, NetworkState, Reachability, RecvError,
    Source,
};

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
    /// The level must be reached through this interface (it must be up with carrier).
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,
    #[command(flatten)]
    pub(crate) monitored: Monitored,
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.parse::<Level>().map_err(|e| e.to_string())? {
        level @ (Level::Online | Level::Site | Level::Local) => Ok(level),
        other => Err(format!("cannot wait for '{other}' (expected online, site or local)")),
    }
}

/// What counts as reached.
#[derive(Debug, Clone)]
struct Goal {
    level: Level,
    interface: Option<String>,
    /// With the probe on, `online` must be confirmed by it (the kernel only says a way out
    /// exists). Lower levels need no confirmation: a probe can only lower a family to `site`.
    probe: bool,
}

pub(crate) fn run(args: &WaitArgs) -> Result<ExitCode, Failure> {
    let deadline = crate::duration::deadline_after(args.timeout);
    output::exit_on_signals(OnSignal::Interrupted)?;
    let goal = Goal { level: args.level, interface: args.interface.clone(), probe: args.monitored.probe.enabled() };
    let Some(monitor) = start(args, deadline)? else {
        let waited = humantime::format_duration(args.timeout);
        let why = format!("the monitor was still starting: {} did not answer", starting_sources(args));
        if args.monitored.common.json {
            let report = serde_json::json!({
                "reached": false,
                "level": goal.level,
                "reachability": Level::Unknown,
                "missing": [why],
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
        if reached(&state, &goal) {
            return finish(args, &goal, &state, true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return finish(args, &goal, &state, false);
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

fn finish(args: &WaitArgs, goal: &Goal, state: &NetworkState, reached: bool) -> Result<ExitCode, Failure> {
    let missing = if reached { Vec::new() } else { missing(state, goal) };
    if args.monitored.common.json {
        let report = serde_json::json!({
            "reached": reached,
            "level": goal.level,
            "reachability": state.reachability.overall,
            "missing": missing,
        });
        output::print_line(&mut std::io::stdout().lock(), &report.to_string())?;
    }
    if reached {
        return Ok(ExitCode::SUCCESS);
    }
    let waited = humantime::format_duration(args.timeout);
    let message = format!("netreach wait: timed out after {waited} waiting for {}: {}", goal.level, missing.join("; "));
    crate::terminal::error_line(&message);
    Ok(ExitCode::from(1))
}

/// The kernel's reading through one interface alone: its addresses and its default routes.
fn via_interface(state: &NetworkState, name: &str) -> Option<Reachability> {
    let iface = state.interfaces.iter().find(|i| i.name == name)?;
    let mut alone = NetworkState::default();
    alone.interfaces = vec![iface.clone()];
    alone.default_routes = state.default_routes.iter().filter(|r| r.interface_index == iface.index).cloned().collect();
    Some(derive_kernel_reachability(&alone))
}

fn family_reached(state: &NetworkState, goal: &Goal, family: Family) -> bool {
    let effective = state.reachability.family(family);
    let confirmed = !(goal.probe && goal.level == Level::Online) || effective.source != Source::Kernel;
    let through = match &goal.interface {
        Some(name) => via_interface(state, name).is_some_and(|r| r.family(family).reachability >= goal.level),
        None => true,
    };
    effective.reachability >= goal.level && confirmed && through
}

/// Reached when some family reaches the level (through the interface, confirmed when probing).
fn reached(state: &NetworkState, goal: &Goal) -> bool {
    [Family::Ipv4, Family::Ipv6].into_iter().any(|f| family_reached(state, goal, f))
}

/// What stands between the state and the goal, e.g. `ipv4: site (no default route)`.
fn missing(state: &NetworkState, goal: &Goal) -> Vec<String> {
    let mut out = Vec::new();
    let iface = goal.interface.as_ref().map(|name| (name, state.interfaces.iter().find(|i| &i.name == name)));
    match iface {
        Some((name, None)) => out.push(format!("interface {name}: does not exist")),
        Some((name, Some(i))) if !i.up => out.push(format!("interface {name}: down")),
        Some((name, Some(i))) if !i.carrier => out.push(format!("interface {name}: no carrier")),
        _ => {}
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        if family_reached(state, goal, family) {
            continue;
        }
        let effective = state.reachability.family(family);
        let line = if effective.reachability < goal.level {
            format!(
                "{family}: {} ({})",
                effective.reachability,
                why(state, family, effective.reachability, effective.source)
            )
        } else if let Some((name, Some(_))) = iface {
            let level = via_interface(state, name).map(|r| r.family(family).reachability).unwrap_or_default();
            format!("{family} via {name}: {level} ({})", level_words(level))
        } else if iface.is_some() {
            continue; // the interface line says it
        } else {
            format!("{family}: {} (not confirmed by the probe yet)", effective.reachability)
        };
        out.push(line);
    }
    out
}

/// Why a family stands at `level`, in words.
fn why(state: &NetworkState, family: Family, level: Level, source: Source) -> String {
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
    use netreach::{Address, DefaultRoute, FamilyReachability, Interface, InterfaceKind, Verdict};

    fn state(carrier: bool, route: bool, verdicts: Vec<Verdict>) -> NetworkState {
        let eth = Interface {
            index: 2,
            name: "eth0".into(),
            kind: InterfaceKind::Ethernet,
            up: true,
            carrier,
            addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
            ..Default::default()
        };
        let routes = if route {
            vec![DefaultRoute {
                family: Family::Ipv4,
                gateway: Some("192.0.2.1".parse().unwrap()),
                interface: "eth0".into(),
                interface_index: 2,
                metric: 0,
                table: 254,
            }]
        } else {
            vec![]
        };
        let mut s = NetworkState::default();
        (s.interfaces, s.default_routes, s.verdicts) = (vec![eth], routes, verdicts);
        (s.reachability, s.details) = netreach::derive(&s);
        s
    }

    fn goal(level: Level, interface: Option<&str>, probe: bool) -> Goal {
        Goal { level, interface: interface.map(str::to_owned), probe }
    }

    #[test]
    fn reached_and_missing_table() {
        let online = Verdict { ipv4: Some(Level::Online), captive_portal: Some(false), ..Verdict::new(Source::Probe) };
        let portal = Verdict {
            ipv4: Some(Level::Site),
            captive_portal: Some(true),
            portal_url: Some("http://portal.test/".into()),
            ..Verdict::new(Source::Probe)
        };
        let table: Vec<(&str, NetworkState, Goal, bool, Vec<&str>)> = vec![
            ("online", state(true, true, vec![]), goal(Level::Online, None, false), true, vec![]),
            (
                "no default route",
                state(true, false, vec![]),
                goal(Level::Online, None, false),
                false,
                vec!["ipv4: site (no default route)", "ipv6: disconnected (no usable address on a ready interface)"],
            ),
            ("site is enough", state(true, false, vec![]), goal(Level::Site, None, false), true, vec![]),
            (
                "probe not in yet",
                state(true, true, vec![]),
                goal(Level::Online, None, true),
                false,
                vec!["ipv4: online (not confirmed by the probe yet)", "ipv6: disconnected"],
            ),
            ("probe confirmed", state(true, true, vec![online]), goal(Level::Online, None, true), true, vec![]),
            (
                "portal",
                state(true, true, vec![portal.clone()]),
                goal(Level::Online, None, true),
                false,
                vec!["ipv4: site (probe: captive portal at http://portal.test/)"],
            ),
            ("portal still reaches site", state(true, true, vec![portal]), goal(Level::Site, None, true), true, vec![]),
            (
                "no carrier",
                state(false, true, vec![]),
                goal(Level::Local, Some("eth0"), false),
                false,
                vec!["interface eth0: no carrier", "ipv4: disconnected"],
            ),
            (
                "no such interface",
                state(true, true, vec![]),
                goal(Level::Site, Some("wlan0"), false),
                false,
                vec!["interface wlan0: does not exist"],
            ),
            (
                "through the interface",
                state(true, true, vec![]),
                goal(Level::Online, Some("eth0"), false),
                true,
                vec![],
            ),
        ];
        for (name, state, goal, want, lines) in table {
            assert_eq!(reached(&state, &goal), want, "{name}");
            let got = missing(&state, &goal);
            for line in &lines {
                assert!(got.iter().any(|g| g.starts_with(line)), "{name}: want {line:?} in {got:?}");
            }
        }
    }

    #[test]
    fn interface_reading_ignores_other_interfaces() {
        let mut s = state(true, true, vec![]);
        s.interfaces.push(Interface { index: 3, name: "eth1".into(), up: true, ..Default::default() });
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
