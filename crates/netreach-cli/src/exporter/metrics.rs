//! The metrics: every namespace's state, paths and counters as Prometheus families.
//!
//! Names follow Prometheus' rules: the `netreach_` prefix, base units (`_seconds`), `_total`
//! for counters, `_info` for info metrics; `device` names an interface as node_exporter's
//! `node_network_*` do; the probe's families are named like blackbox_exporter's.

use netreach::{Family as IpFamily, Level, PathState, Snapshot, Source};

use super::registry::{lock, Counters, NamedPath, Namespace, Registry, Watched};
use super::text::{sample, Family, Format, Kind, Writer};

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
    PROBE_DURATION: "probe_duration_seconds", Gauge, "How long the last probe round of the family took (with --probe).";
    PROBE_HTTP_DURATION: "probe_http_duration_seconds", Gauge, "The last probe's time per phase: resolve, connect, processing (request to first byte).";
    PROBE_DNS: "probe_dns_lookup_time_seconds", Gauge, "The last probe's name resolution time (absent for an address URL).";
}

const FAMILIES: [(&str, usize); 3] = [("overall", 0), ("ipv4", 1), ("ipv6", 2)];
const LEVELS: [(Level, &str); 5] = [
    (Level::Unknown, "unknown"),
    (Level::Disconnected, "disconnected"),
    (Level::Local, "local"),
    (Level::Site, "site"),
    (Level::Online, "online"),
];

/// Where the sample lines of each family collect: written straight into text, with no
/// allocation per sample (200 namespaces are ~15,000 samples).
struct Collect<'a> {
    names: &'a [String],
    bodies: Vec<String>,
}

impl Collect<'_> {
    fn add(&mut self, family: &Family, labels: &[(&str, &str)], value: f64) {
        let i = ALL.iter().position(|f| f.name == family.name).unwrap_or(0);
        sample(&mut self.bodies[i], &self.names[i], labels, value);
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The whole exposition, in `format`. A namespace whose counters did not move since the last
/// scrape keeps its formatted lines: the scrape then only copies them behind the headers.
pub(crate) fn render(registry: &Registry, format: Format) -> String {
    let names: Vec<String> = ALL.iter().map(Family::sample_name).collect();
    let mut build = Collect { names: &names, bodies: vec![String::new(); ALL.len()] };
    build.add(&BUILD, &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    let mut namespaces = lock(&registry.namespaces);
    for namespace in namespaces.values_mut() {
        let version = match &namespace.watched {
            Watched::Running { counters, .. } => Some(lock(counters).version()),
            Watched::Failed(_) => None,
        };
        let fresh = matches!((&namespace.formatted, version), (Some((at, _)), Some(now)) if *at == now);
        if !fresh {
            let mut c = Collect { names: &names, bodies: vec![String::new(); ALL.len()] };
            namespace_samples(&mut c, namespace, registry.probe);
            // A namespace that failed has no counters: its two lines are formatted each time.
            namespace.formatted = Some((version.unwrap_or((u64::MAX, u64::MAX)), c.bodies));
        }
    }
    let size: usize =
        namespaces.values().filter_map(|n| n.formatted.as_ref()).flat_map(|(_, b)| b).map(String::len).sum();
    let mut writer = Writer::new(format, size + 8192);
    for (i, family) in ALL.iter().enumerate() {
        let mut body = std::mem::take(&mut build.bodies[i]);
        for namespace in namespaces.values() {
            if let Some((_, bodies)) = &namespace.formatted {
                body.push_str(&bodies[i]);
            }
        }
        writer.family(family, &body);
    }
    writer.finish()
}

fn namespace_samples(c: &mut Collect, namespace: &Namespace, probe: bool) {
    let ns = namespace.label.as_str();
    let (monitor, paths, counters) = match &namespace.watched {
        Watched::Failed(error) => {
            c.add(&UP, &[("netns", ns)], 0.0);
            c.add(&MONITOR_ERROR, &[("netns", ns), ("error", error)], 1.0);
            return;
        }
        Watched::Running { monitor, paths, counters } => (monitor, paths, counters),
    };
    {
        let counters = lock(counters);
        match &counters.stopped {
            Some(error) => {
                c.add(&UP, &[("netns", ns)], 0.0);
                c.add(&MONITOR_ERROR, &[("netns", ns), ("error", error)], 1.0);
            }
            None => c.add(&UP, &[("netns", ns)], 1.0),
        }
        counter_samples(c, &counters, ns);
    }
    state_samples(c, &monitor.snapshot(), ns, probe);
    for path in paths {
        path_sample(c, path, ns);
    }
}

fn counter_samples(c: &mut Collect, counters: &Counters, ns: &str) {
    for (family, i) in FAMILIES {
        c.add(&CHANGES, &[("netns", ns), ("family", family)], counters.changes[i] as f64);
        c.add(&LAST_CHANGE, &[("netns", ns), ("family", family)], counters.last_change[i]);
    }
    c.add(&RESYNCS, &[("netns", ns)], counters.resyncs as f64);
    c.add(&ERRORS, &[("netns", ns)], counters.errors as f64);
    c.add(&LAGGED, &[("netns", ns)], counters.lagged as f64);
    c.add(&EVENTS, &[("netns", ns)], counters.events as f64);
    for m in &counters.probes {
        let family = match m.family {
            IpFamily::Ipv4 => "ipv4",
            IpFamily::Ipv6 => "ipv6",
        };
        c.add(&PROBE_DURATION, &[("netns", ns), ("family", family)], m.timings.total.as_secs_f64());
        for (phase, took) in
            [("resolve", m.timings.dns), ("connect", m.timings.connect), ("processing", m.timings.first_byte)]
        {
            if let Some(took) = took {
                c.add(&PROBE_HTTP_DURATION, &[("netns", ns), ("family", family), ("phase", phase)], took.as_secs_f64());
            }
        }
        if let Some(dns) = m.timings.dns {
            c.add(&PROBE_DNS, &[("netns", ns), ("family", family)], dns.as_secs_f64());
        }
    }
}

/// A value's name as serde writes it (`veth`, `lower_layer_down`...): stable label values.
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn state_samples(c: &mut Collect, state: &Snapshot, ns: &str, probe: bool) {
    let r = &state.reachability;
    let families = [
        ("overall", r.overall, r.source),
        ("ipv4", r.ipv4.reachability, r.ipv4.source),
        ("ipv6", r.ipv6.reachability, r.ipv6.source),
    ];
    for (family, level, source) in families {
        c.add(&ONLINE, &[("netns", ns), ("family", family)], flag(level == Level::Online));
        for (l, name) in LEVELS {
            c.add(&LEVEL, &[("netns", ns), ("family", family), ("netreach_reachability", name)], flag(l == level));
        }
        c.add(&SOURCE, &[("netns", ns), ("family", family), ("source", &source.to_string())], 1.0);
    }
    let d = &state.details;
    if let Some(portal) = d.captive_portal {
        c.add(&PORTAL, &[("netns", ns)], flag(portal));
    }
    if let Some(metered) = d.metered {
        c.add(&METERED, &[("netns", ns)], flag(metered));
    }
    let transport = d.transport.map_or_else(|| "unknown".to_owned(), |t| t.to_string());
    c.add(&TRANSPORT, &[("netns", ns), ("transport", &transport)], 1.0);
    for route in &state.default_routes {
        let gateway = route.gateway.map(|g| g.to_string()).unwrap_or_default();
        let labels = [
            ("netns", ns),
            ("family", &route.family.to_string()),
            ("device", &route.interface),
            ("gateway", &gateway),
            ("metric", &route.metric.to_string()),
            ("table", &route.table.to_string()),
        ];
        c.add(&ROUTE, &labels, 1.0);
    }
    for interface in &state.interfaces {
        let device = interface.name.as_str();
        c.add(&IF_UP, &[("netns", ns), ("device", device)], flag(interface.up));
        c.add(&IF_CARRIER, &[("netns", ns), ("device", device)], flag(interface.carrier));
        let (kind, oper) = (serde_name(&interface.kind), serde_name(&interface.oper_state));
        c.add(&IF_INFO, &[("netns", ns), ("device", device), ("kind", &kind), ("operstate", &oper)], 1.0);
    }
    if probe {
        if let Some(verdict) = state.verdicts.iter().find(|v| v.source == Source::Probe) {
            for (family, name) in [(IpFamily::Ipv4, "ipv4"), (IpFamily::Ipv6, "ipv6")] {
                if let Some(level) = verdict.level(family) {
                    c.add(&PROBE_SUCCESS, &[("netns", ns), ("family", name)], flag(level == Level::Online));
                }
            }
        }
    }
}

fn path_sample(c: &mut Collect, path: &NamedPath, ns: &str) {
    let status = path.monitor.status();
    let (reachable, reason) = match &status.state {
        PathState::Reachable { .. } => (true, String::new()),
        // The reason's name as in JSON (`no_route`, `no_carrier`...): a stable label value.
        PathState::Unreachable { reason, .. } => (
            false,
            serde_json::to_value(reason).ok().and_then(|v| v["reason"].as_str().map(str::to_owned)).unwrap_or_default(),
        ),
    };
    let labels = [
        ("netns", ns),
        ("path", path.name.as_str()),
        ("local", &path.local.to_string()),
        ("remote", &path.remote.to_string()),
        ("device", status.interface().unwrap_or_default()),
        ("reason", &reason),
    ];
    c.add(&PATH, &labels, flag(reachable));
}
