//! Human-readable rendering of states and events. Values are interpolated raw: the
//! [`Lines`] built here reach a terminal only escaped (see [`crate::terminal`]).

use std::fmt::Write;

use netreach::{
    Address, DefaultRoute, Details, DnsConfig, Event, EventKind, Family, Interface, PathEvent, PathEventKind,
    PathState, Snapshot, Verdict,
};

use crate::terminal::Lines;

/// The `netreach status` summary.
pub(crate) fn state(state: &Snapshot) -> Lines {
    let r = &state.reachability;
    let mut lines = Lines::default();
    lines.push(format!("reachability: {} ({})", r.overall, r.source));
    for (name, family) in [("ipv4", Family::Ipv4), ("ipv6", Family::Ipv6)] {
        let f = r.family(family);
        let why = state.reasons.family(family).map(|why| format!(" — {why}")).unwrap_or_default();
        lines.push(format!("  {name}: {} ({}){why}", f.reachability, f.source));
    }
    lines.append(crate::diagnosis::view(&netreach::diagnose(state)));
    lines.push(details(&state.details));
    for v in &state.verdicts {
        lines.push(format!("  {}", verdict(v)));
    }
    for d in &state.details.disagreements {
        lines.push(format!("  disagreement: {}", d.note));
    }
    lines.push("default routes:".into());
    if state.default_routes.is_empty() {
        lines.push("  (none)".into());
    }
    for route in &state.default_routes {
        lines.push(format!("  {}", self::route(route)));
    }
    if let Some(d) = &state.dns {
        lines.push(dns(d));
    }
    lines.push("interfaces:".into());
    for iface in &state.interfaces {
        lines.push(format!("  {}", interface(iface)));
        for a in &iface.addresses {
            lines.push(format!("      {}", address(a)));
        }
    }
    lines
}

/// e.g. `transport: wifi, metered: yes, captive portal: yes (http://192.0.2.1/login)`.
fn details(d: &Details) -> String {
    let known = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let transport = d.transport.map(|t| t.to_string()).unwrap_or_else(|| "unknown".into());
    let portal = d.portal_url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
    format!(
        "transport: {transport}, metered: {}, captive portal: {}{portal}",
        known(d.metered),
        known(d.captive_portal)
    )
}

/// A details event: the new details, then each disagreement among the sources (or that they
/// agree again).
fn details_change(before: &Details, after: &Details) -> String {
    let mut line = details(after);
    for d in &after.disagreements {
        let _ = write!(line, "; disagreement: {}", d.note);
    }
    if after.disagreements.is_empty() && !before.disagreements.is_empty() {
        line.push_str("; the sources agree");
    }
    line
}

/// e.g. `dns: 198.51.100.1, 2001:db8::1 (search lan.example) from /etc/resolv.conf ->
/// /run/systemd/resolve/stub-resolv.conf, systemd-resolved stub 127.0.0.53`.
fn dns(d: &DnsConfig) -> String {
    let mut line = String::from("dns: ");
    if d.nameservers.is_empty() {
        line.push_str("no nameserver");
    }
    let servers: Vec<String> = d.nameservers.iter().map(|n| n.to_string()).collect();
    line.push_str(&servers.join(", "));
    if !d.search.is_empty() {
        let _ = write!(line, " (search {})", d.search.join(" "));
    }
    let _ = write!(line, " from {}", d.origin.file);
    if let Some(target) = &d.origin.target {
        let _ = write!(line, " -> {target}");
    }
    let manager = json_word(&d.origin.manager);
    if manager != "unknown" {
        let _ = write!(line, ", {manager}");
    }
    if let Some(stub) = d.origin.stub {
        let _ = write!(line, " stub {stub}");
    }
    if let Some(problem) = &d.origin.problem {
        let _ = write!(line, "; {problem}");
    }
    line
}

/// One source's verdict, e.g. `probe says: ipv4 online, ipv6 limited to site`.
fn verdict(v: &Verdict) -> String {
    let mut said: Vec<String> = Vec::new();
    for (family, level) in [("ipv4", v.ipv4), ("ipv6", v.ipv6)] {
        if let Some(level) = level {
            said.push(format!("{family} {level}"));
        }
    }
    if let Some(portal) = v.captive_portal {
        said.push(if portal { "captive portal".into() } else { "no captive portal".into() });
    }
    if let Some(metered) = v.metered {
        said.push(if metered { "metered".into() } else { "not metered".into() });
    }
    if let Some(t) = v.transport {
        said.push(format!("transport {t}"));
    }
    if let Some(note) = &v.note {
        said.push(note.clone());
    }
    if said.is_empty() {
        said.push("no opinion".into());
    }
    format!("{} says: {}", v.source, said.join(", "))
}

fn interface(i: &Interface) -> String {
    format!(
        "{}: {} ({}) {} carrier {} oper {} mtu {}{}",
        i.index,
        i.name,
        json_word(&i.kind),
        if i.up { "up" } else { "down" },
        if i.carrier { "yes" } else { "no" },
        json_word(&i.oper_state),
        i.mtu,
        i.mac.as_deref().map(|m| format!(" mac {m}")).unwrap_or_default(),
    )
}

fn address(a: &Address) -> String {
    let mut s = format!("{}/{} scope {}", a.address, a.prefix_len, json_word(&a.scope));
    for (set, word) in [
        (a.flags.tentative, "tentative"),
        (a.flags.deprecated, "deprecated"),
        (a.flags.temporary, "temporary"),
        (a.flags.dad_failed, "dad-failed"),
    ] {
        if set {
            s.push(' ');
            s.push_str(word);
        }
    }
    if let Some(valid) = a.valid_lifetime {
        let _ = write!(s, " valid {valid}s");
    }
    s
}

fn route(r: &DefaultRoute) -> String {
    let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    let table = if r.table == 254 { String::new() } else { format!(" table {}", r.table) };
    format!("{} default{via} dev {} metric {}{table}", r.family, r.interface, r.metric)
}

/// One path's status, e.g. `192.0.2.10 -> 198.51.100.1: reachable via eth0`.
pub(crate) fn path(status: &netreach::PathStatus) -> String {
    let mut ends = format!("{} -> {}", status.local, status.remote);
    if let Some(mark) = status.options.mark {
        ends += &format!(" (mark {mark})");
    }
    if let Some(uid) = status.options.uid {
        ends += &format!(" (uid {uid})");
    }
    match &status.state {
        PathState::Reachable { interface, same_subnet } => {
            let subnet = if *same_subnet { " (same subnet)" } else { "" };
            format!("{ends}: reachable via {interface}{subnet}")
        }
        PathState::Unreachable { reason, .. } => format!("{ends}: unreachable: {reason}"),
    }
}

/// What differs between two readings of a link, e.g. `carrier yes -> no, oper up -> down`.
fn link_changes(before: &Interface, after: &Interface) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let up_down = |b: bool| if b { "up" } else { "down" };
    let fields = [
        ("name", before.name.clone(), after.name.clone()),
        ("kind", json_word(&before.kind), json_word(&after.kind)),
        ("admin", up_down(before.up).into(), up_down(after.up).into()),
        ("carrier", yes_no(before.carrier).into(), yes_no(after.carrier).into()),
        ("oper", json_word(&before.oper_state), json_word(&after.oper_state)),
        ("mtu", before.mtu.to_string(), after.mtu.to_string()),
        ("mac", before.mac.clone().unwrap_or_default(), after.mac.clone().unwrap_or_default()),
    ];
    let changed: Vec<String> =
        fields.iter().filter(|(_, b, a)| b != a).map(|(what, b, a)| format!("{what} {b} -> {a}")).collect();
    changed.join(", ")
}

/// The serde name of a unit enum value (`"not_present"` -> `not_present`).
fn json_word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default().trim_matches('"').to_owned()
}

/// One `netreach watch` event: one line, or the baseline's line followed by the state's.
pub(crate) fn event(e: &Event) -> Lines {
    let time = humantime::format_rfc3339_millis(e.timestamp);
    let what = match &e.kind {
        EventKind::Baseline { state: s } => {
            let mut lines = Lines::one(format!("{time} baseline"));
            lines.append(state(s));
            return lines;
        }
        EventKind::InterfaceAdded { interface: i } => format!("interface added: {}", interface(i)),
        EventKind::InterfaceRemoved { interface: i } => format!("interface removed: {} ({})", i.name, i.index),
        EventKind::InterfaceChanged { before, after } => {
            format!("interface changed: {} ({}): {}", after.name, after.index, link_changes(before, after))
        }
        EventKind::AddressAdded { interface, address: a, .. } => format!("address added: {interface} {}", address(a)),
        EventKind::AddressRemoved { interface, address: a, .. } => {
            format!("address removed: {interface} {}", address(a))
        }
        EventKind::AddressChanged { interface, before, after, .. } => {
            format!("address changed: {interface} {} -> {}", address(before), address(after))
        }
        EventKind::DefaultRouteAdded { route: r } => format!("default route added: {}", route(r)),
        EventKind::DefaultRouteRemoved { route: r } => format!("default route removed: {}", route(r)),
        EventKind::ReachabilityChanged { family, old, new, source, reason } => {
            let why = reason.as_ref().map(|why| format!(" — {why}")).unwrap_or_default();
            format!("reachability {}: {old} -> {new} ({source}){why}", json_word(family))
        }
        EventKind::ReasonChanged { family, after, .. } => {
            let why = after.as_ref().map(|why| why.to_string()).unwrap_or_else(|| "unknown".into());
            format!("reason {family}: {why}")
        }
        EventKind::DetailsChanged { before, after } => details_change(before, after),
        EventKind::VerdictChanged { verdict: v } => verdict(v),
        EventKind::DnsChanged { after, .. } => dns(after),
        EventKind::DiagnosisChanged { family, after, .. } => match after.first_failing() {
            Some(check) => format!("diagnosis {family}: {check}"),
            None => format!("diagnosis {family}: no layer fails"),
        },
        EventKind::ProbeFinished { measurements } => {
            let each: Vec<String> = measurements
                .iter()
                .map(|m| {
                    let result = if m.success { "got through" } else { "did not get through" };
                    format!("{} {result} in {:.1} ms", m.family, m.timings.total.as_secs_f64() * 1000.0)
                })
                .collect();
            format!("probe: {}", each.join(", "))
        }
        EventKind::Resynced { reason, changes } => format!("resynced ({changes} changes): {reason}"),
        EventKind::Lagged { missed } => lagged(*missed),
        EventKind::Error { message, fatal } => {
            format!("{}: {message}", if *fatal { "fatal error" } else { "error" })
        }
        // A kind newer than this renderer: its JSON type names it (`--json` shows it all).
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(|t| t.replace('_', " ")))
            .unwrap_or_else(|| "event".into()),
    };
    Lines::one(format!("{time} {what}"))
}

/// One `netreach check --watch` event.
pub(crate) fn path_event(e: &PathEvent) -> Lines {
    let time = humantime::format_rfc3339_millis(e.timestamp);
    let what = match &e.kind {
        PathEventKind::Changed { status } => path(status),
        PathEventKind::Lagged { missed } => lagged(*missed),
    };
    Lines::one(format!("{time} {what}"))
}

fn lagged(missed: u64) -> String {
    format!("lagged: {missed} events dropped, baseline follows")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_change_lists_only_what_differs() {
        let before = Interface {
            index: 3,
            name: "eth0".into(),
            up: true,
            carrier: true,
            oper_state: netreach::OperState::Up,
            ..Default::default()
        };
        let after = Interface { carrier: false, oper_state: netreach::OperState::LowerLayerDown, ..before.clone() };
        assert_eq!(link_changes(&before, &after), "carrier yes -> no, oper up -> lower_layer_down");
    }

    /// Outside strings in every field a renderer shows: each rendered line stays one line, and
    /// what reaches the terminal holds no control, C1 or bidi character, only their escapes.
    #[test]
    fn hostile_values_stay_escaped_on_their_own_line() {
        let hostile = "e\u{1b}[31m\nreachability: online (kernel)\u{9b}2J\u{202e}";
        let iface = Interface { index: 3, name: hostile.into(), mac: Some(hostile.into()), ..Default::default() };
        let mut observed = netreach::NetworkState::default();
        observed.interfaces = vec![iface.clone()];
        observed.verdicts.push(Verdict { note: Some(hostile.into()), ..Verdict::new(netreach::Source::Probe) });
        let mut state = netreach::derive(observed);
        state.details.portal_url = Some(hostile.into());
        let baseline =
            Event { timestamp: std::time::SystemTime::UNIX_EPOCH, kind: EventKind::Baseline { state: state.into() } };
        let removed = Event { kind: EventKind::InterfaceRemoved { interface: iface }, ..baseline.clone() };
        let error = Event { kind: EventKind::Error { message: hostile.into(), fatal: true }, ..baseline.clone() };
        for e in [baseline, removed, error] {
            let lines = event(&e);
            let text = lines.escaped();
            assert_eq!(text.lines().count(), lines.len(), "{text}");
            assert!(!text.chars().any(|c| c != '\n' && crate::terminal::is_unsafe(c)), "{text}");
            assert!(text.contains("e\\x1b[31m\\nreachability: online (kernel)\\u{9b}2J\\u{202e}"), "{text}");
        }
    }
}

#[cfg(test)]
#[path = "human_multipath_tests.rs"]
mod multipath_tests;

#[cfg(test)]
mod disagreement_tests {
    use super::*;
    use netreach::{ArbitrationRule, Disagreement, Source, Subject};

    #[test]
    fn disagreements_are_shown_in_status_and_in_details_events() {
        let mut state = Snapshot::default();
        state.details.disagreements.push(Disagreement {
            about: Subject::Ipv4,
            decided_by: Source::Probe,
            overruled: Source::NetworkManager,
            rule: ArbitrationRule::ProbeGotThrough,
            note: "networkmanager says ipv4 site; probe says ipv4 online".into(),
        });
        let text = super::state(&state).escaped();
        assert!(text.contains("\n  disagreement: networkmanager says ipv4 site; probe says ipv4 online\n"), "{text}");
        let changed = |before: &Details, after: &Details| {
            let kind = EventKind::DetailsChanged { before: before.clone(), after: after.clone() };
            event(&Event { timestamp: std::time::SystemTime::UNIX_EPOCH, kind }).escaped()
        };
        let (agree, disagree) = (Details::default(), state.details.clone());
        assert!(changed(&agree, &disagree).contains("; disagreement: networkmanager says ipv4 site"));
        assert!(changed(&disagree, &agree).contains("; the sources agree"));
    }
}
