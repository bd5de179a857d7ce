//! The layered diagnosis as people read it: a short view per family with the first failing
//! layer marked, the sentence that says what to do about it, and the JSON `status` prints
//! (the state with a `diagnosis` object). Values are interpolated raw: the [`Lines`] built
//! here reach a terminal only escaped (see [`crate::terminal`]).

use netreach::{Diagnosis, Family, FamilyDiagnosis, Finding, LayerCheck, LayerStatus, Reason, Reject, Snapshot};
use serde::Serialize;

use crate::terminal::Lines;

/// The state as `status --json` prints it, and `watch --json` in its baseline: every field of
/// the state, then `diagnosis` (derived from it, so not a field of the library's state).
#[derive(Serialize)]
pub(crate) struct WithDiagnosis<'a> {
    #[serde(flatten)]
    pub(crate) state: &'a Snapshot,
    pub(crate) diagnosis: Diagnosis,
}

impl<'a> WithDiagnosis<'a> {
    pub(crate) fn of(state: &'a Snapshot) -> Self {
        WithDiagnosis { state, diagnosis: netreach::diagnose(state) }
    }
}

/// One family in a line, e.g. `ipv4: link passed, address passed, >> route FAILED <<, ...`,
/// then the first failing layer's finding on the next line.
pub(crate) fn view(diagnosis: &Diagnosis) -> Lines {
    let mut lines = Lines::one("diagnosis (>> marks the first failing layer):".into());
    for family in [diagnosis.family(Family::Ipv4), diagnosis.family(Family::Ipv6)] {
        lines.append(family_view(family));
    }
    lines
}

fn family_view(d: &FamilyDiagnosis) -> Lines {
    let first = d.first_failing().map(|c| c.layer);
    let words: Vec<String> = d
        .layers
        .iter()
        .map(|c| match c.status {
            LayerStatus::Failed if Some(c.layer) == first => format!(">> {} FAILED <<", c.layer),
            status => format!("{} {status}", c.layer),
        })
        .collect();
    let mut lines = Lines::one(format!("  {}: {}", d.family, words.join(", ")));
    if let Some(check) = d.first_failing() {
        lines.push(format!("    {check}"));
    }
    // Passed but degraded (some multipath members without carrier): worth a line too.
    for check in d.layers.iter().filter(|c| matches!(c.finding, Some(Finding::PartlyNoCarrier { .. }))) {
        lines.push(format!("    {check}"));
    }
    lines
}

/// The first failing layer in words, e.g. `ipv4 route failed: the kernel has no route to the
/// internet`; `None` when a family has no failing layer.
pub(crate) fn first_failing(diagnosis: &Diagnosis) -> Option<String> {
    diagnosis.first_failing().map(|(family, check)| format!("{family} {check}"))
}

/// One sentence a person can act on, for the first failing layer of `family`.
pub(crate) fn advice(family: Family, check: &LayerCheck) -> String {
    let Some(finding) = &check.finding else {
        return format!("the {} layer of {family} failed", check.layer);
    };
    match finding {
        Finding::NoInterface => {
            "there is no network interface but loopback: connect a network adapter or load its driver".into()
        }
        Finding::LinkDown { interface } => {
            format!("{interface} is down: bring it up (ip link set {interface} up) or start its connection")
        }
        Finding::NoCarrier { interface } => {
            format!("{interface} has no carrier: check the cable (or that Wi-Fi is associated) and the switch port")
        }
        Finding::NoAddress { interface: Some(i) } => {
            format!("{i} has no usable {family} address: check DHCP (IPv6: router advertisements) on {i}")
        }
        Finding::NoAddress { interface: None } => {
            format!("no interface has a usable {family} address: check DHCP or the address configuration")
        }
        Finding::GatewayUnreachable { gateway, interface } => {
            let gateway = gateway.map(|g| g.to_string()).unwrap_or_else(|| "the gateway".into());
            format!("gateway {gateway} does not answer on {interface}: the router is down or unreachable")
        }
        Finding::Kernel { reason } => route_advice(family, reason),
        Finding::NoNameserver { file, .. } => {
            format!(
                "no nameserver is configured in {file}: configure one (or check the DHCP client or systemd-resolved)"
            )
        }
        Finding::NameserversUnreachable { nameservers } => {
            let list: Vec<String> = nameservers.iter().map(|n| n.to_string()).collect();
            format!(
                "no route reaches nameserver {}: add a route to it or configure a nameserver the routes reach",
                list.join(", ")
            )
        }
        Finding::NamesUnresolved { error } => {
            format!("names do not resolve ({error}): the nameserver does not answer; try another nameserver")
        }
        Finding::NoAnswer { note, .. } => {
            let note = note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
            format!(
                "the internet does not answer over {family}{note}: a firewall, a proxy or an outage upstream blocks it"
            )
        }
        Finding::Portal { url: Some(url) } => format!("a captive portal intercepts traffic: log in at {url}"),
        Finding::Portal { url: None } => "a captive portal intercepts traffic: open a web page to log in".into(),
        other => format!("{family} {}: {other}", check.layer),
    }
}

fn route_advice(family: Family, reason: &Reason) -> String {
    match reason {
        Reason::NoRoute | Reason::NoDefaultRoute => {
            format!("there is no {family} route to the internet: check DHCP (IPv6: router advertisements) or add a default route")
        }
        Reason::Rejected { reject } => {
            let what = match reject {
                Reject::Unreachable => "an unreachable",
                Reject::Prohibit => "a prohibit",
                Reject::Blackhole => "a blackhole",
            };
            format!("{what} route or rule refuses {family} traffic to the internet: check `ip rule` and `ip route` (a VPN kill switch?)")
        }
        Reason::Expired { route } => {
            format!("the route {} on {} expired: the router stopped advertising it", route.prefix(), route.interface)
        }
        other => format!("{family}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failing_layer_is_marked_and_explained() {
        let state = netreach::derive(netreach::NetworkState::default());
        let text = view(&netreach::diagnose(&state)).escaped();
        assert!(text.contains("  ipv4: >> link FAILED <<, address failed, gateway unknown, route failed"), "{text}");
        assert!(text.contains("\n    link failed: there is no network interface but loopback\n"), "{text}");
        let json = serde_json::to_value(WithDiagnosis::of(&state)).unwrap();
        assert_eq!(json["diagnosis"]["ipv4"]["layers"][0]["finding"]["code"], "no_interface", "{json}");
        assert_eq!(json["reachability"], "disconnected", "the snapshot's own fields stay where they were");
    }

    #[test]
    fn hostile_names_stay_on_their_line() {
        let hostile = "e\u{1b}[31m\nroute passed";
        let check = LayerCheck {
            layer: netreach::Layer::Link,
            status: LayerStatus::Failed,
            finding: Some(Finding::NoCarrier { interface: hostile.into() }),
        };
        let text = Lines::one(advice(Family::Ipv4, &check)).escaped();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("e\\x1b[31m\\nroute passed has no carrier: check the cable"), "{text}");
    }
}
