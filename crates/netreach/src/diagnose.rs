//! The layered diagnosis, derived from a state (pure; the types are in `model/diagnosis.rs`),
//! and the events that say how it changed between two states.

use std::net::IpAddr;

use crate::model::{
    Diagnosis, EventKind, Family, FamilyDiagnosis, Finding, Interface, KernelRoute, Layer, LayerCheck, LayerStatus,
    Level, NameserverAnswer, NeighbourState, Reason, Snapshot, Source,
};

/// Diagnoses each family of `state`, layer by layer, from what the state holds: nothing is
/// sent. Each layer is judged from its own evidence, so a layer above a failing one may still
/// say what it knows; [`FamilyDiagnosis::first_failing`] is where to look first.
///
/// | layer    | passed                                                  | failed                                                              | unknown |
/// |----------|---------------------------------------------------------|---------------------------------------------------------------------|---------|
/// | link     | the route's interface (without a route: any interface but loopback) is up with carrier (a multipath route some of whose members have none: passed with `Finding::PartlyNoCarrier`) | it is down, or has no carrier (`NoCarrier`, `InterfaceDown`); no interface at all | never |
/// | address  | the route's source address; without a route, a usable routable address on a ready interface | `NoSource`; without a route, none                  | never |
/// | gateway  | no next hop (point-to-point); or a probe or daemon says the family is `online` through it | `GatewayUnreachable` (the kernel's neighbour entry is `FAILED`) | a gateway the kernel has not marked unreachable but nothing verified; no route |
/// | route    | the kernel routes the internet out (whatever the layers below say of that route) | no route, a reject, an expired route, a failed lookup            | no reading yet |
/// | dns      | a nameserver the kernel routes to through a ready interface (or on this host) | none configured; no nameserver reachable by its route; the probe's names did not resolve | not followed (not Linux); routes not looked up |
/// | internet | the probe (else a daemon) got an HTTP answer over the family (a portal's counts) | it got none                                                   | nobody probed the family |
/// | portal   | the answer was the expected one                          | a captive portal answered                                          | no answer to judge |
///
/// The DNS layer is the same in both families: a nameserver of either family answers names
/// of both.
///
/// ```
/// use netreach::{derive, diagnose, Finding, Layer, LayerStatus, NetworkState};
/// let d = diagnose(&derive(NetworkState::default()));
/// let first = d.ipv4.first_failing().unwrap();
/// assert_eq!((first.layer, first.status, &first.finding), (Layer::Link, LayerStatus::Failed, &Some(Finding::NoInterface)));
/// ```
pub fn diagnose(state: &Snapshot) -> Diagnosis {
    let dns = dns_layer(state);
    Diagnosis::new(family(state, Family::Ipv4, &dns), family(state, Family::Ipv6, &dns))
}

/// One [`EventKind::DiagnosisChanged`] per family whose diagnosis differs (pure).
///
/// ```
/// use netreach::{derive, diagnose, diagnosis_events, Interface, NetworkState};
/// let before = diagnose(&derive(NetworkState::default()));
/// let mut state = NetworkState::default();
/// state.interfaces.push(Interface { index: 2, name: "eth0".into(), up: true, ..Default::default() });
/// let events = diagnosis_events(&before, &diagnose(&derive(state)));
/// assert_eq!(events.len(), 2); // the link layer of both families: eth0 has no carrier now
/// ```
pub fn diagnosis_events(before: &Diagnosis, after: &Diagnosis) -> Vec<EventKind> {
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter(|f| before.family(*f) != after.family(*f))
        .map(|f| EventKind::DiagnosisChanged {
            family: f,
            before: before.family(f).clone(),
            after: after.family(f).clone(),
        })
        .collect()
}

fn check(layer: Layer, status: LayerStatus, finding: Option<Finding>) -> LayerCheck {
    LayerCheck { layer, status, finding }
}

fn passed(layer: Layer, finding: Finding) -> LayerCheck {
    check(layer, LayerStatus::Passed, Some(finding))
}

fn failed(layer: Layer, finding: Finding) -> LayerCheck {
    check(layer, LayerStatus::Failed, Some(finding))
}

fn family(state: &Snapshot, family: Family, dns: &LayerCheck) -> FamilyDiagnosis {
    let reason = state.reasons.family(family);
    let route = reason.and_then(Reason::route);
    let (internet, answered) = internet_layer(state, family);
    let layers = vec![
        link_layer(state, reason, route),
        address_layer(state, family, reason, route),
        gateway_layer(state, family, reason, route),
        route_layer(reason, route),
        dns.clone(),
        internet,
        portal_layer(state, answered),
    ];
    FamilyDiagnosis { family, layers }
}

/// Interfaces that can carry traffic out: all but loopback.
fn outward(state: &Snapshot) -> impl Iterator<Item = &Interface> {
    state.interfaces.iter().filter(|i| i.kind != crate::InterfaceKind::Loopback)
}

fn link_layer(state: &Snapshot, reason: Option<&Reason>, route: Option<&KernelRoute>) -> LayerCheck {
    let name = |r: &KernelRoute| r.interface.clone();
    match (reason, route) {
        (Some(Reason::InterfaceDown { route }), _) => failed(Layer::Link, Finding::LinkDown { interface: name(route) }),
        (Some(Reason::NoCarrier { route, .. }), _) => {
            failed(Layer::Link, Finding::NoCarrier { interface: name(route) })
        }
        // Works, degraded: passed, with the members that time out named.
        (Some(Reason::PartlyNoCarrier { route, without_carrier }), _) => passed(
            Layer::Link,
            Finding::PartlyNoCarrier { interface: name(route), without_carrier: without_carrier.clone() },
        ),
        (_, Some(route)) => passed(Layer::Link, Finding::LinkReady { interface: name(route) }),
        // No route to judge by: any ready interface passes; else the first one says why not.
        (_, None) => match outward(state).find(|i| i.is_ready()) {
            Some(ready) => passed(Layer::Link, Finding::LinkReady { interface: ready.name.clone() }),
            None => match outward(state).next() {
                None => failed(Layer::Link, Finding::NoInterface),
                Some(i) if !i.up => failed(Layer::Link, Finding::LinkDown { interface: i.name.clone() }),
                Some(i) => failed(Layer::Link, Finding::NoCarrier { interface: i.name.clone() }),
            },
        },
    }
}

/// A usable, routable (not link-local, not loopback) address of `family` on `interface`.
fn routable(interface: &Interface, family: Family) -> Option<IpAddr> {
    let usable = |a: &&crate::Address| a.family() == family && a.is_usable() && !a.is_link_local() && !a.is_loopback();
    interface.addresses.iter().find(usable).map(|a| a.address)
}

fn address_layer(state: &Snapshot, family: Family, reason: Option<&Reason>, route: Option<&KernelRoute>) -> LayerCheck {
    if let Some(Reason::NoSource { route }) = reason {
        return failed(Layer::Address, Finding::NoAddress { interface: Some(route.interface.clone()) });
    }
    if let Some(route) = route {
        let own = || state.interface(route.interface_index).and_then(|i| routable(i, family));
        if let Some(address) = route.source.or_else(own) {
            return passed(Layer::Address, Finding::SourceAddress { interface: route.interface.clone(), address });
        }
    }
    let ready = outward(state).filter(|i| i.is_ready());
    match ready.filter_map(|i| routable(i, family).map(|a| (i, a))).next() {
        Some((i, address)) => passed(Layer::Address, Finding::SourceAddress { interface: i.name.clone(), address }),
        None => failed(Layer::Address, Finding::NoAddress { interface: route.map(|r| r.interface.clone()) }),
    }
}

fn gateway_layer(state: &Snapshot, family: Family, reason: Option<&Reason>, route: Option<&KernelRoute>) -> LayerCheck {
    if let Some(Reason::GatewayUnreachable { route, .. }) = reason {
        let finding = Finding::GatewayUnreachable { gateway: route.gateway, interface: route.interface.clone() };
        return failed(Layer::Gateway, finding);
    }
    let Some(route) = route else { return check(Layer::Gateway, LayerStatus::Unknown, None) };
    let interface = route.interface.clone();
    let Some(gateway) = route.gateway else { return passed(Layer::Gateway, Finding::NoGateway { interface }) };
    // Traffic that got through went through the gateway: a source above the kernel saying
    // `online` for this family is the evidence that it forwards.
    let through = state.verdicts.iter().any(|v| v.level(family) == Some(Level::Online));
    // Or the kernel heard from it lately: its neighbour entry is reachable.
    let answers = state.gateways.iter().any(|g| {
        g.address == gateway && g.interface_index == route.interface_index && g.state == NeighbourState::Reachable
    });
    if through {
        passed(Layer::Gateway, Finding::GatewayForwards { gateway, interface })
    } else if answers {
        passed(Layer::Gateway, Finding::GatewayAnswers { gateway, interface })
    } else {
        check(Layer::Gateway, LayerStatus::Unknown, Some(Finding::GatewayNotVerified { gateway, interface }))
    }
}

fn route_layer(reason: Option<&Reason>, route: Option<&KernelRoute>) -> LayerCheck {
    match (reason, route) {
        (None, _) => check(Layer::Route, LayerStatus::Unknown, None),
        (_, Some(route)) => passed(Layer::Route, Finding::Routed { route: route.clone() }),
        (Some(reason @ Reason::DefaultRoute), None) => passed(Layer::Route, Finding::Kernel { reason: reason.clone() }),
        (Some(reason), None) => failed(Layer::Route, Finding::Kernel { reason: reason.clone() }),
    }
}

fn dns_layer(state: &Snapshot) -> LayerCheck {
    let Some(config) = &state.dns else {
        return check(Layer::Dns, LayerStatus::Unknown, Some(Finding::DnsNotFollowed));
    };
    if config.nameservers.is_empty() {
        let finding =
            Finding::NoNameserver { file: config.origin.file.clone(), problem: config.origin.problem.clone() };
        return failed(Layer::Dns, finding);
    }
    let answers: Vec<&NameserverAnswer> = config
        .nameservers
        .iter()
        .filter_map(|n| state.nameserver_routes.iter().find(|r| r.nameserver == n.address).map(|r| &r.answer))
        .collect();
    if answers.is_empty() {
        return check(Layer::Dns, LayerStatus::Unknown, Some(Finding::NameserversNotLookedUp));
    }
    let reached = state.nameserver_routes.iter().find_map(|r| {
        let interface = match &r.answer {
            NameserverAnswer::Local => "lo".to_owned(),
            // Named as the interface is now (the answer keeps the name of its lookup).
            NameserverAnswer::Out { interface_index, .. } => {
                state.interface(*interface_index).filter(|i| i.is_ready()).map(|i| i.name.clone())?
            }
            _ => return None,
        };
        config.nameservers.iter().any(|n| n.address == r.nameserver).then_some((r.nameserver, interface))
    });
    let Some((nameserver, interface)) = reached else {
        let nameservers = config.nameservers.iter().map(|n| n.address).collect();
        return failed(Layer::Dns, Finding::NameserversUnreachable { nameservers });
    };
    let probe = state.verdicts.iter().find(|v| v.source == Source::Probe);
    if let Some(error) = probe.and_then(|v| v.unresolved.clone()) {
        return failed(Layer::Dns, Finding::NamesUnresolved { error });
    }
    passed(Layer::Dns, Finding::NameserverRouted { nameserver, interface })
}

/// The internet layer, and whether an HTTP answer came back (for the portal layer). The probe's
/// verdict counts first (it is direct evidence); else a daemon's own check.
fn internet_layer(state: &Snapshot, family: Family) -> (LayerCheck, bool) {
    let probe = state.verdicts.iter().find(|v| v.source == Source::Probe && v.level(family).is_some());
    let Some(verdict) = probe.or_else(|| state.verdicts.iter().find(|v| v.level(family).is_some())) else {
        return (check(Layer::Internet, LayerStatus::Unknown, Some(Finding::NotProbed)), false);
    };
    let source = verdict.source;
    let portal = verdict.captive_portal == Some(true);
    if verdict.level(family) == Some(Level::Online) || portal {
        (passed(Layer::Internet, Finding::Answered { source }), true)
    } else {
        (failed(Layer::Internet, Finding::NoAnswer { source, note: verdict.note.clone() }), false)
    }
}

fn portal_layer(state: &Snapshot, answered: bool) -> LayerCheck {
    match (answered, state.details.captive_portal) {
        (true, Some(true)) => failed(Layer::Portal, Finding::Portal { url: state.details.portal_url.clone() }),
        (true, _) => passed(Layer::Portal, Finding::NoPortal),
        (false, _) => check(Layer::Portal, LayerStatus::Unknown, None),
    }
}

#[cfg(test)]
#[path = "diagnose_tests.rs"]
mod tests;
