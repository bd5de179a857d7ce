//! What `netreach wait` waits for, as an ordered list of conditions, and which of them a state
//! does not meet yet, in words. Pure: `wait.rs` re-reads the state on every event and asks.
//!
//! The conditions, in the order the timeout message names the first unmet one:
//! 1. each `--interface NAME[:LEVEL]` (or one of them, with `--any`): up, carrier, and the
//!    level through that interface alone (its addresses and default routes), also within the
//!    effective level (a probe or daemon may lower it);
//! 2. without `--interface`: the level overall, leaving out `--ignore`d interfaces;
//! 3. with `--dns`: a usable resolver (a nameserver the kernel's route decision reaches
//!    through a ready interface), and with `--probe` a name that resolves.
//!
//! Families: any one reaching the level suffices; `-4` or `-6` names the one that counts,
//! both together require both (as systemd-networkd-wait-online does).

use std::net::IpAddr;

use netreach::{
    derive_kernel_reachability, Family, Level, NameserverAnswer, NetworkState, Reachability, Snapshot, Source,
};

use super::{level_words, via_interface, why};

/// What counts as reached.
#[derive(Debug, Clone, Default)]
pub(crate) struct Goal {
    pub(crate) level: Level,
    /// `--interface NAME[:LEVEL]`, in the order given; `None` takes `level`.
    pub(crate) interfaces: Vec<(String, Option<Level>)>,
    /// One of `interfaces` suffices.
    pub(crate) any: bool,
    /// Interfaces left out of the overall reading.
    pub(crate) ignore: Vec<String>,
    /// The families that count; `all_families`: each of them must reach the level.
    pub(crate) families: Vec<Family>,
    pub(crate) all_families: bool,
    /// A usable resolver is required.
    pub(crate) dns: bool,
    /// With the probe on, `online` must be confirmed by it (the kernel only says a way out
    /// exists), and with `dns` a name must resolve (the probe's endpoints are names). Lower
    /// levels need no confirmation: a probe can only lower a family to `site`.
    pub(crate) probe: bool,
}

/// Parses `NAME` or `NAME:LEVEL`. Linux refuses `:` in interface names, so the last `:`
/// always separates a level.
pub(crate) fn parse_interface(s: &str) -> Result<(String, Option<Level>), String> {
    let (name, level) = match s.rsplit_once(':') {
        Some((name, level)) => (name, Some(super::parse_level(level)?)),
        None => (s, None),
    };
    if name.is_empty() {
        return Err(format!("'{s}' names no interface (expected NAME or NAME:LEVEL)"));
    }
    Ok((name.to_owned(), level))
}

impl Goal {
    fn counts(&self, f: Family) -> bool {
        self.families.is_empty() || self.families.contains(&f)
    }

    /// The families' outcome: met when any counting family passes (each, with `all_families`).
    fn families_pass(&self, pass: impl Fn(Family) -> bool) -> bool {
        let mut counted = [Family::Ipv4, Family::Ipv6].into_iter().filter(|f| self.counts(*f));
        if self.all_families {
            counted.all(pass)
        } else {
            counted.any(pass)
        }
    }

    /// Whether the effective level of `f` is at least `level` (confirmed by the probe when it
    /// runs and `online` is asked for).
    fn effective(&self, state: &Snapshot, f: Family, level: Level) -> bool {
        let effective = state.reachability.family(f);
        let confirmed = !(self.probe && level == Level::Online) || effective.source != Source::Kernel;
        effective.reachability >= level && confirmed
    }
}

/// The unmet conditions, first to last: empty when the goal is reached.
pub(crate) fn unmet(state: &Snapshot, goal: &Goal) -> Vec<String> {
    let mut out = Vec::new();
    if goal.interfaces.is_empty() {
        out.extend(overall(state, goal));
    } else {
        let failing: Vec<Vec<String>> = goal
            .interfaces
            .iter()
            .map(|(name, level)| interface(state, goal, name, level.unwrap_or(goal.level)))
            .collect();
        let met = |f: &Vec<String>| f.is_empty();
        if (goal.any && !failing.iter().any(met)) || (!goal.any && !failing.iter().all(met)) {
            out.extend(failing.into_iter().flatten());
        }
    }
    if goal.dns {
        out.extend(dns(state, goal));
    }
    out
}

/// The first unmet condition, from `unmet`'s lines: all its lines (an interface's or the
/// families' lines belong to one condition).
pub(crate) fn first_condition(unmet: &[String]) -> String {
    let condition = |line: &str| match line.strip_prefix("interface ") {
        Some(rest) => format!("interface {}", rest.split(": ").next().unwrap_or_default()),
        None if line.starts_with("dns:") => "dns".into(),
        None => "levels".into(),
    };
    let Some(first) = unmet.first().map(|l| condition(l)) else { return String::new() };
    let same: Vec<&str> = unmet.iter().take_while(|l| condition(l) == first).map(String::as_str).collect();
    same.join("; ")
}

/// Condition 1 for one interface: its link, then each counting family's level through it.
fn interface(state: &Snapshot, goal: &Goal, name: &str, level: Level) -> Vec<String> {
    let link = match state.interface_by_name(name) {
        None => Some("does not exist"),
        Some(i) if !i.up => Some("down"),
        Some(i) if !i.carrier => Some("no carrier"),
        Some(_) => None,
    };
    if let Some(link) = link {
        return vec![format!("interface {name}: {link}")];
    }
    let through = via_interface(state, name).unwrap_or_default();
    let pass = |f: Family| goal.effective(state, f, level) && through.family(f).reachability >= level;
    if goal.families_pass(pass) {
        return Vec::new();
    }
    families(goal, pass)
        .map(|f| {
            let effective = state.reachability.family(f);
            if effective.reachability < level {
                format!(
                    "interface {name}: {f}: {} ({})",
                    effective.reachability,
                    why(state, f, effective.reachability, effective.source)
                )
            } else if through.family(f).reachability < level {
                let via = through.family(f).reachability;
                format!("interface {name}: {f} via {name}: {via} ({})", level_words(via))
            } else {
                format!("interface {name}: {f}: {level} (not confirmed by the probe yet)")
            }
        })
        .collect()
}

/// The counting families that fail `pass`: all of them when any would do, else the failing.
fn families(goal: &Goal, pass: impl Fn(Family) -> bool) -> impl Iterator<Item = Family> {
    let failing: Vec<Family> =
        [Family::Ipv4, Family::Ipv6].into_iter().filter(|f| goal.counts(*f) && !pass(*f)).collect();
    failing.into_iter()
}

/// The kernel's reading without the ignored interfaces (their addresses and routes).
fn without_ignored(state: &Snapshot, goal: &Goal) -> Option<Reachability> {
    if goal.ignore.is_empty() {
        return None;
    }
    let indexes: Vec<u32> = goal.ignore.iter().filter_map(|n| state.interface_by_name(n)).map(|i| i.index).collect();
    let ignored = |index: u32| indexes.contains(&index);
    let mut kept = NetworkState::default();
    kept.interfaces = state.interfaces.iter().filter(|i| !ignored(i.index)).cloned().collect();
    kept.default_routes = state.default_routes.iter().filter(|r| !ignored(r.interface_index)).cloned().collect();
    Some(derive_kernel_reachability(&kept))
}

/// Condition 2: the level overall, each family within the reading without ignored interfaces.
fn overall(state: &Snapshot, goal: &Goal) -> Vec<String> {
    let kept = without_ignored(state, goal);
    let kept_level = |f: Family| kept.as_ref().map_or(Level::Online, |r| r.family(f).reachability);
    let pass = |f: Family| goal.effective(state, f, goal.level) && kept_level(f) >= goal.level;
    if goal.families_pass(pass) {
        return Vec::new();
    }
    families(goal, pass)
        .map(|f| {
            let effective = state.reachability.family(f);
            if effective.reachability < goal.level {
                format!("{f}: {} ({})", effective.reachability, why(state, f, effective.reachability, effective.source))
            } else if kept_level(f) < goal.level {
                let level = kept_level(f);
                format!("{f}: {level} without {} ({})", goal.ignore.join(", "), level_words(level))
            } else {
                format!("{f}: {} (not confirmed by the probe yet)", effective.reachability)
            }
        })
        .collect()
}

/// Condition 3: a nameserver the kernel's route decision reaches (the routes the monitor
/// looked up for them, [`NetworkState::nameserver_routes`]); with the probe, a name resolved.
fn dns(state: &Snapshot, goal: &Goal) -> Vec<String> {
    let Some(config) = &state.dns else {
        return vec!["dns: the resolver configuration is not known here".into()];
    };
    if config.nameservers.is_empty() {
        let problem = config.origin.problem.as_deref().map(|p| format!(": {p}")).unwrap_or_default();
        return vec![format!("dns: no nameserver configured in {}{problem}", config.origin.file)];
    }
    let reached: Vec<Option<bool>> = config.nameservers.iter().map(|n| reaches(state, goal, n.address)).collect();
    if reached.iter().all(Option::is_none) {
        return vec!["dns: the routes to the nameservers are not known yet".into()];
    }
    if !reached.contains(&Some(true)) {
        let first = &config.nameservers[0];
        let family = if first.address.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 };
        let level = state.reachability.family(family).reachability;
        return vec![format!("dns: no route to nameserver {first} ({family}: {level})")];
    }
    if goal.probe {
        let probe = state.verdicts.iter().find(|v| v.source == Source::Probe);
        if !probe.is_some_and(|v| v.ipv4 == Some(Level::Online) || v.ipv6 == Some(Level::Online)) {
            let note = probe.and_then(|v| v.note.as_deref()).unwrap_or("no answer yet");
            return vec![format!("dns: no name resolved yet (probe: {note})")];
        }
    }
    Vec::new()
}

/// Whether the kernel's route decision reaches a nameserver: a resolver on this host always;
/// else the route must leave through a ready interface that is not `--ignore`d. `None` when
/// its route was not looked up (yet).
fn reaches(state: &Snapshot, goal: &Goal, server: IpAddr) -> Option<bool> {
    let route = state.nameserver_routes.iter().find(|r| r.nameserver == server)?;
    Some(match &route.answer {
        NameserverAnswer::Local => true,
        NameserverAnswer::Out { interface_index, .. } => {
            state.interface(*interface_index).is_some_and(|i| i.is_ready() && !goal.ignore.contains(&i.name))
        }
        _ => false,
    })
}

#[cfg(test)]
#[path = "goal_tests.rs"]
pub(crate) mod tests;
