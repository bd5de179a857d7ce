//! The metrics: every namespace's state, paths and counters as Prometheus families.
//!
//! Names follow Prometheus' rules: the `netreach_` prefix, base units (`_seconds`), `_total`
//! for counters, `_info` for info metrics; `device` names an interface as node_exporter's
//! `node_network_*` do; the probe's families are named like blackbox_exporter's.

use netreach::{Family as IpFamily, Level, NetworkState, PathState, Source};

use super::registry::{lock, Counters, NamedPath, Namespace, Registry, Watched};
use super::text::{Family, Format, Kind, Sample, Writer};

macro_rules! families {
    ($($id:ident: $name:literal, $kind:ident, $help:literal;)*) => {
        $(const $id: Family = Family { name: $name, kind: Kind::$kind, help: $help };)*
        /// Every family, in the order they are written.
        pub(crate) const ALL: &[Family] = &[$($id),*];
    };
}

families! {
    BUILD: "netreach_build", Info, "The exporter's version.";
    UP: "netreach_up", Gauge, "1 while the namespace's monitor runs, 0 when it could not start or stopped.";
    MONITOR_ERROR: "netreach_monitor_error", Info, "Why a namespace's monitor could not start or stopped.";
    ONLINE: "netreach_online", Gauge, "1 when the family (ipv4, ipv6, overall) is online, else 0.";
    LEVEL: "netreach_reachability", StateSet, "The reachability level of each family.";
    SOURCE: "netreach_source", Info, "Who decided each family's level (kernel, probe, networkmanager).";
    CHANGES: "netreach_reachability_changes", Counter, "Reachability level changes of each family since the exporter started.";
    LAST_CHANGE: "netreach_reachability_last_change_timestamp_seconds", Gauge, "When each family's level last changed (the exporter's start until it does).";
    PORTAL: "netreach_captive_portal", Gauge, "1 behind a captive portal, 0 when known not to be; absent when unknown.";
    METERED: "netreach_metered", Gauge, "1 on a metered connection, 0 when known not to be; absent when unknown.";
    TRANSPORT: "netreach_transport", Info, "The transport of the primary connection (unknown when not known).";
    ROUTE: "netreach_default_route", Info, "Each default route: family, device, gateway, metric, table.";
    IF_UP: "netreach_interface_up", Gauge, "1 when the interface is administratively up.";
    IF_CARRIER: "netreach_interface_carrier", Gauge, "1 when the interface has carrier.";
    IF_INFO: "netreach_interface", Info, "Each interface's kind and operational state.";
    PATH: "netreach_path_reachable", Gauge, "1 when the configured path works, 0 when not; reason says why not.";
    RESYNCS: "netreach_resyncs", Counter, "Full re-reads of the kernel's state (after netlink overruns or socket failures).";
    ERRORS: "netreach_source_errors", Counter, "Errors reported by the monitor's sources.";
    LAGGED: "netreach_lagged_events", Counter, "Events the exporter's subscriber missed because it fell behind.";
    EVENTS: "netreach_events", Counter, "Events received from the monitor.";
    PROBE_SUCCESS: "probe_success", Gauge, "Whether the connectivity probe found the family online (with --probe).";
}

const FAMILIES: [(&str, usize); 3] = [("overall", 0), ("ipv4", 1), ("ipv6", 2)];
const LEVELS: [Level; 5] = [Level::Unknown, Level::Disconnected, Level::Local, Level::Site, Level::Online];

/// Where samples of each family collect while the namespaces are walked.
struct Collect {
    samples: Vec<Vec<Sample>>,
}

impl Collect {
    fn add(&mut self, family: &Family, labels: Vec<(&'static str, String)>, value: f64) {
        let i = ALL.iter().position(|f| f.name == family.name).unwrap_or(0);
        self.samples[i].push(Sample { labels, value });
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The whole exposition, in `format`.
pub(crate) fn render(registry: &Registry, format: Format) -> String {
    let mut c = Collect { samples: ALL.iter().map(|_| Vec::new()).collect() };
    c.add(&BUILD, vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
    for namespace in lock(&registry.namespaces).values() {
        namespace_samples(&mut c, namespace, registry.probe);
    }
    let size: usize = c.samples.iter().map(|s| s.len()).sum();
    let mut writer = Writer::new(format, 4096 + size * 96);
    for (family, samples) in ALL.iter().zip(&c.samples) {
        writer.family_with(family, samples);
    }
    writer.finish()
}

fn namespace_samples(c: &mut Collect, namespace: &Namespace, probe: bool) {
    let ns = || ("netns", namespace.label.clone());
    let (monitor, paths, counters) = match &namespace.watched {
        Watched::Failed(error) => {
            c.add(&UP, vec![ns()], 0.0);
            c.add(&MONITOR_ERROR, vec![ns(), ("error", error.clone())], 1.0);
            return;
        }
        Watched::Running { monitor, paths, counters } => (monitor, paths, counters),
    };
    {
        let counters = lock(counters);
        match &counters.stopped {
            Some(error) => {
                c.add(&UP, vec![ns()], 0.0);
                c.add(&MONITOR_ERROR, vec![ns(), ("error", error.clone())], 1.0);
            }
            None => c.add(&UP, vec![ns()], 1.0),
        }
        counter_samples(c, &counters, &ns);
    }
    state_samples(c, &monitor.snapshot(), &ns, probe);
    for path in paths {
        path_sample(c, path, &ns);
    }
}

fn counter_samples(c: &mut Collect, counters: &Counters, ns: &dyn Fn() -> (&'static str, String)) {
    for (family, i) in FAMILIES {
        c.add(&CHANGES, vec![ns(), ("family", family.into())], counters.changes[i] as f64);
        c.add(&LAST_CHANGE, vec![ns(), ("family", family.into())], counters.last_change[i]);
    }
    c.add(&RESYNCS, vec![ns()], counters.resyncs as f64);
    c.add(&ERRORS, vec![ns()], counters.errors as f64);
    c.add(&LAGGED, vec![ns()], counters.lagged as f64);
    c.add(&EVENTS, vec![ns()], counters.events as f64);
}

fn state_samples(c: &mut Collect, state: &NetworkState, ns: &dyn Fn() -> (&'static str, String), probe: bool) {
    let r = &state.reachability;
    let families = [
        ("overall", r.overall, r.source),
        ("ipv4", r.ipv4.reachability, r.ipv4.source),
        ("ipv6", r.ipv6.reachability, r.ipv6.source),
    ];
    for (family, level, source) in families {
        let fam = || ("family", family.to_owned());
        c.add(&ONLINE, vec![ns(), fam()], flag(level == Level::Online));
        for l in LEVELS {
            c.add(&LEVEL, vec![ns(), fam(), ("netreach_reachability", l.to_string())], flag(l == level));
        }
        c.add(&SOURCE, vec![ns(), fam(), ("source", source.to_string())], 1.0);
    }
    let d = &state.details;
    if let Some(portal) = d.captive_portal {
        c.add(&PORTAL, vec![ns()], flag(portal));
    }
    if let Some(metered) = d.metered {
        c.add(&METERED, vec![ns()], flag(metered));
    }
    let transport = d.transport.map_or_else(|| "unknown".to_owned(), |t| t.to_string());
    c.add(&TRANSPORT, vec![ns(), ("transport", transport)], 1.0);
    for route in &state.default_routes {
        let labels = vec![
            ns(),
            ("family", route.family.to_string()),
            ("device", route.interface.clone()),
            ("gateway", route.gateway.map(|g| g.to_string()).unwrap_or_default()),
            ("metric", route.metric.to_string()),
            ("table", route.table.to_string()),
        ];
        c.add(&ROUTE, labels, 1.0);
    }
    for interface in &state.interfaces {
        let device = || ("device", interface.name.clone());
        c.add(&IF_UP, vec![ns(), device()], flag(interface.up));
        c.add(&IF_CARRIER, vec![ns(), device()], flag(interface.carrier));
        let kind = serde_json::to_value(interface.kind).ok().and_then(|v| v.as_str().map(str::to_owned));
        let oper = serde_json::to_value(interface.oper_state).ok().and_then(|v| v.as_str().map(str::to_owned));
        let labels = vec![ns(), device(), ("kind", kind.unwrap_or_default()), ("operstate", oper.unwrap_or_default())];
        c.add(&IF_INFO, labels, 1.0);
    }
    if probe {
        if let Some(verdict) = state.verdicts.iter().find(|v| v.source == Source::Probe) {
            for family in [IpFamily::Ipv4, IpFamily::Ipv6] {
                if let Some(level) = verdict.level(family) {
                    c.add(&PROBE_SUCCESS, vec![ns(), ("family", family.to_string())], flag(level == Level::Online));
                }
            }
        }
    }
}

fn path_sample(c: &mut Collect, path: &NamedPath, ns: &dyn Fn() -> (&'static str, String)) {
    let status = path.monitor.status();
    let (reachable, reason) = match &status.state {
        PathState::Reachable { .. } => (true, String::new()),
        PathState::Unreachable { reason, .. } => {
            // The reason's name as in JSON (`no_route`, `no_carrier`...): a stable label value.
            let name = serde_json::to_value(reason).ok().and_then(|v| v["reason"].as_str().map(str::to_owned));
            (false, name.unwrap_or_default())
        }
    };
    let labels = vec![
        ns(),
        ("path", path.name.clone()),
        ("local", path.local.to_string()),
        ("remote", path.remote.to_string()),
        ("device", status.interface().unwrap_or_default().to_owned()),
        ("reason", reason),
    ];
    c.add(&PATH, labels, flag(reachable));
}
