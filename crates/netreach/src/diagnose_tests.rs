//! The diagnosis table: one state per situation, the layers it must give.

use super::*;
use crate::model::{
    Address, DnsConfig, Interface, InterfaceKind, Nameserver, NameserverRoute, NetworkState, OperState, Reject, Verdict,
};
use crate::refine::judge;

const ETH: u32 = 2;

fn eth0(up: bool, carrier: bool, addresses: &[&str]) -> Interface {
    Interface {
        index: ETH,
        name: "eth0".into(),
        kind: InterfaceKind::Ethernet,
        up,
        carrier,
        oper_state: if carrier { OperState::Up } else { OperState::LowerLayerDown },
        addresses: addresses.iter().map(|a| Address::new(a.parse().unwrap(), 24)).collect(),
        ..Default::default()
    }
}

fn route(gateway: Option<&str>) -> KernelRoute {
    KernelRoute {
        prefix: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        table: 254,
        interface_index: ETH,
        interface: "eth0".into(),
        gateway: gateway.map(|g| g.parse().unwrap()),
        source: Some("192.0.2.10".parse().unwrap()),
        nexthops: Vec::new(),
    }
}

/// A state with eth0 and the given IPv4 reason, derived fields as the engine derives them
/// except the reasons, which are the table's.
fn state(interface: Interface, reason: Option<Reason>) -> Snapshot {
    let mut s = crate::derive(NetworkState { interfaces: vec![interface], ..Default::default() });
    s.reasons.ipv4 = reason;
    s
}

/// Routed out via 192.0.2.1, whose neighbour entry is `gateway`.
fn state_with_gateway(gateway: crate::model::GatewayNeighbour) -> Snapshot {
    let routed = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    edit(routed, |s| s.gateways = vec![gateway])
}

/// `s` with its observed state edited, the derived values (the table's reasons) kept.
fn edit(mut s: Snapshot, f: impl FnOnce(&mut NetworkState)) -> Snapshot {
    f(&mut s.state);
    s
}

fn dns(servers: &[&str]) -> DnsConfig {
    let mut d = DnsConfig::default();
    d.origin.file = "/etc/resolv.conf".into();
    d.nameservers = servers.iter().map(|s| Nameserver { address: s.parse().unwrap(), interface: None }).collect();
    d
}

fn ns_route(server: &str, answer: NameserverAnswer) -> NameserverRoute {
    NameserverRoute { nameserver: server.parse().unwrap(), answer }
}

fn out() -> NameserverAnswer {
    NameserverAnswer::Out { interface_index: ETH, interface: "eth0".into() }
}

fn layer(state: &Snapshot, layer: Layer) -> LayerCheck {
    diagnose(state).ipv4.layer(layer).cloned().unwrap()
}

fn first(state: &Snapshot) -> Option<(Layer, Finding)> {
    diagnose(state).ipv4.first_failing().map(|c| (c.layer, c.finding.clone().unwrap()))
}

#[test]
fn the_first_failing_layer_of_each_situation() {
    let healthy =
        || state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    type Row = (&'static str, Snapshot, Option<(Layer, Finding)>);
    let table: Vec<Row> = vec![
        ("nothing at all", Snapshot::default(), Some((Layer::Link, Finding::NoInterface))),
        (
            "no carrier under the route",
            state(
                eth0(true, false, &["192.0.2.10"]),
                Some(Reason::NoCarrier { route: route(Some("192.0.2.1")), fallback: None }),
            ),
            Some((Layer::Link, Finding::NoCarrier { interface: "eth0".into() })),
        ),
        (
            "down, its routes flushed",
            state(eth0(false, false, &[]), Some(Reason::NoRoute)),
            Some((Layer::Link, Finding::LinkDown { interface: "eth0".into() })),
        ),
        (
            "up without an address",
            state(eth0(true, true, &[]), Some(Reason::NoRoute)),
            Some((Layer::Address, Finding::NoAddress { interface: None })),
        ),
        (
            "no source for the route",
            state(eth0(true, true, &[]), Some(Reason::NoSource { route: route(Some("192.0.2.1")) })),
            Some((Layer::Address, Finding::NoAddress { interface: Some("eth0".into()) })),
        ),
        (
            "a dead gateway",
            state(
                eth0(true, true, &["192.0.2.10"]),
                Some(Reason::GatewayUnreachable { route: route(Some("192.0.2.1")), since: None }),
            ),
            Some((
                Layer::Gateway,
                Finding::GatewayUnreachable { gateway: Some("192.0.2.1".parse().unwrap()), interface: "eth0".into() },
            )),
        ),
        (
            "no route",
            state(eth0(true, true, &["192.0.2.10"]), Some(Reason::NoRoute)),
            Some((Layer::Route, Finding::Kernel { reason: Reason::NoRoute })),
        ),
        (
            "a reject route",
            state(eth0(true, true, &["192.0.2.10"]), Some(Reason::Rejected { reject: Reject::Prohibit })),
            Some((Layer::Route, Finding::Kernel { reason: Reason::Rejected { reject: Reject::Prohibit } })),
        ),
        ("routed out, nothing more known", healthy(), None),
        (
            "no nameserver",
            edit(healthy(), |s| s.dns = Some(dns(&[]))),
            Some((Layer::Dns, Finding::NoNameserver { file: "/etc/resolv.conf".into(), problem: None })),
        ),
        (
            "a nameserver no route reaches",
            edit(healthy(), |s| {
                s.dns = Some(dns(&["198.51.100.53"]));
                s.nameserver_routes = vec![ns_route("198.51.100.53", NameserverAnswer::NoRoute)];
            }),
            Some((Layer::Dns, Finding::NameserversUnreachable { nameservers: vec!["198.51.100.53".parse().unwrap()] })),
        ),
    ];
    for (what, state, want) in table {
        assert_eq!(first(&state), want, "{what}");
        let d = diagnose(&state);
        let order: Vec<Layer> = d.ipv4.layers.iter().map(|l| l.layer).collect();
        assert_eq!(order, Layer::ALL, "{what}: every layer, in order");
    }
}

#[test]
fn gateway_is_unknown_until_traffic_got_through() {
    let mut s = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    assert_eq!(layer(&s, Layer::Gateway).status, LayerStatus::Unknown);
    s.state.verdicts.push(Verdict { ipv4: Some(Level::Online), ..Verdict::new(Source::Probe) });
    let gateway = layer(&s, Layer::Gateway);
    assert_eq!(gateway.status, LayerStatus::Passed);
    assert!(matches!(gateway.finding, Some(Finding::GatewayForwards { .. })));
    // The kernel's own evidence: the gateway's neighbour entry is reachable.
    let heard = |state| {
        let gateway = crate::model::GatewayNeighbour {
            address: "192.0.2.1".parse().unwrap(),
            interface_index: ETH,
            state,
            unanswered_since: None,
        };
        let s = state_with_gateway(gateway);
        layer(&s, Layer::Gateway)
    };
    let answers = heard(crate::model::NeighbourState::Reachable);
    assert_eq!((answers.status, answers.finding.is_some()), (LayerStatus::Passed, true));
    assert!(matches!(answers.finding, Some(Finding::GatewayAnswers { .. })));
    assert_eq!(heard(crate::model::NeighbourState::Stale).status, LayerStatus::Unknown, "stale is no evidence");
    let direct = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(None) }));
    assert_eq!(layer(&direct, Layer::Gateway).finding, Some(Finding::NoGateway { interface: "eth0".into() }));
    assert_eq!(layer(&Snapshot::default(), Layer::Gateway).status, LayerStatus::Unknown);
}

#[test]
fn dns_layer_reads_the_nameservers_routes_and_the_probe() {
    let base = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    let with = |servers: &[&str], routes: Vec<NameserverRoute>| {
        edit(base.clone(), |s| {
            s.dns = Some(dns(servers));
            s.nameserver_routes = routes;
        })
    };
    let status = |s: &Snapshot| layer(s, Layer::Dns).status;
    assert_eq!(layer(&base, Layer::Dns).finding, Some(Finding::DnsNotFollowed));
    assert_eq!(status(&base), LayerStatus::Unknown);
    assert_eq!(layer(&with(&["192.0.2.53"], vec![]), Layer::Dns).finding, Some(Finding::NameserversNotLookedUp));
    // One of two reachable is enough; the first reachable one is named.
    let two = with(
        &["198.51.100.53", "192.0.2.53"],
        vec![ns_route("198.51.100.53", NameserverAnswer::NoRoute), ns_route("192.0.2.53", out())],
    );
    let found = Finding::NameserverRouted { nameserver: "192.0.2.53".parse().unwrap(), interface: "eth0".into() };
    assert_eq!(layer(&two, Layer::Dns).finding, Some(found));
    // A route through an interface that is not ready does not reach it.
    let mut dead = two.clone();
    dead.state.interfaces[0].carrier = false;
    assert_eq!(status(&dead), LayerStatus::Failed);
    // A resolver on this host is reached.
    let local = with(&["127.0.0.1"], vec![ns_route("127.0.0.1", NameserverAnswer::Local)]);
    assert_eq!(status(&local), LayerStatus::Passed);
    // Routes of nameservers no longer configured count for nothing.
    let stale = with(&["198.51.100.53"], vec![ns_route("192.0.2.53", out())]);
    assert_eq!(status(&stale), LayerStatus::Unknown);
    // The probe's names not resolving fail the layer; its HTTP failures do not.
    let mut unresolved = two.clone();
    let failure = "name resolution of x.test failed (no such name)";
    unresolved.state.verdicts.push(Verdict {
        ipv4: Some(Level::Site),
        note: Some(format!("ipv4: {failure}")),
        unresolved: Some(failure.into()),
        ..Verdict::new(Source::Probe)
    });
    assert_eq!(layer(&unresolved, Layer::Dns).finding, Some(Finding::NamesUnresolved { error: failure.into() }));
    let mut refused = two;
    refused.state.verdicts.push(Verdict {
        ipv4: Some(Level::Site),
        note: Some("refused".into()),
        ..Verdict::new(Source::Probe)
    });
    assert_eq!(status(&refused), LayerStatus::Passed);
    assert_eq!(first(&refused).map(|(l, _)| l), Some(Layer::Internet));
    // The same in both families.
    let d = diagnose(&unresolved);
    assert_eq!(d.ipv4.layer(Layer::Dns), d.ipv6.layer(Layer::Dns));
}

#[test]
fn internet_and_portal_layers() {
    let base = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    assert_eq!(layer(&base, Layer::Internet).finding, Some(Finding::NotProbed));
    assert_eq!(layer(&base, Layer::Portal).status, LayerStatus::Unknown);
    let mut online = base.clone();
    online.state.verdicts.push(Verdict {
        ipv4: Some(Level::Online),
        captive_portal: Some(false),
        ..Verdict::new(Source::Probe)
    });
    (_, online.reachability, online.details, _) = judge(&online.state);
    assert_eq!(layer(&online, Layer::Internet).status, LayerStatus::Passed);
    assert_eq!(layer(&online, Layer::Portal).finding, Some(Finding::NoPortal));
    assert_eq!(diagnose(&online).ipv4.first_failing(), None);
    let mut portal = base.clone();
    let url = Some("http://192.0.2.1/login".to_owned());
    portal.state.verdicts.push(Verdict {
        ipv4: Some(Level::Site),
        captive_portal: Some(true),
        portal_url: url.clone(),
        ..Verdict::new(Source::Probe)
    });
    (_, portal.reachability, portal.details, _) = judge(&portal.state);
    assert_eq!(layer(&portal, Layer::Internet).status, LayerStatus::Passed, "the portal answered");
    assert_eq!(first(&portal), Some((Layer::Portal, Finding::Portal { url })));
    // Without a probe a daemon's own check counts.
    let mut nm = base;
    nm.state.verdicts.push(Verdict { ipv4: Some(Level::Site), ..Verdict::new(Source::NetworkManager) });
    assert_eq!(first(&nm), Some((Layer::Internet, Finding::NoAnswer { source: Source::NetworkManager, note: None })));
}

#[test]
fn events_name_each_family_that_changed_and_fold_to_the_new_diagnosis() {
    let before = diagnose(&Snapshot::default());
    let mut s = state(eth0(true, true, &["192.0.2.10"]), Some(Reason::RoutedOut { route: route(Some("192.0.2.1")) }));
    let after = diagnose(&s);
    assert!(diagnosis_events(&after, &after).is_empty());
    let events = diagnosis_events(&before, &after);
    let mut folded = before.clone();
    for e in &events {
        let EventKind::DiagnosisChanged { family, before: b, after: a } = e else { panic!("{e:?}") };
        assert_eq!(b, before.family(*family));
        match family {
            Family::Ipv4 => folded.ipv4 = a.clone(),
            Family::Ipv6 => folded.ipv6 = a.clone(),
        }
    }
    assert_eq!(folded, after);
    // Only the family whose layers changed.
    s.reasons.ipv4 = Some(Reason::NoRoute);
    let events = diagnosis_events(&after, &diagnose(&s));
    assert!(matches!(events[..], [EventKind::DiagnosisChanged { family: Family::Ipv4, .. }]), "{events:?}");
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["after"]["layers"][3]["finding"]["reason"]["code"], "no_route", "{json}");
}

#[test]
fn the_machine_works_when_a_family_does() {
    let route = Reason::RoutedOut { route: route(Some("192.0.2.1")) };
    let mut s = state(eth0(true, true, &["192.0.2.10"]), Some(route));
    s.reasons.ipv6 = Some(Reason::NoRoute);
    // Nothing probed: IPv4 fails nowhere, so nothing is to fix (IPv6 has no address).
    assert_eq!(diagnose(&s).first_failing(), None);
    assert_eq!(diagnose(&s).ipv6.first_failing().map(|c| c.layer), Some(Layer::Address));
    // IPv4 probed and failing: IPv6's silence is no evidence that it works.
    s.state.verdicts.push(Verdict { ipv4: Some(Level::Site), ..Verdict::new(Source::Probe) });
    let d = diagnose(&s);
    assert_eq!(d.first_failing().map(|(f, c)| (f, c.layer)), Some((Family::Ipv4, Layer::Internet)));
    // IPv4 probed and answering: it works.
    s.state.verdicts[0].ipv4 = Some(Level::Online);
    assert_eq!(diagnose(&s).first_failing(), None);
}

/// A multipath route some of whose members have no carrier works, degraded: the link layer
/// passes with the members named, the address layer falls back to the member's own address
/// (the reason carries no source), and nothing fails.
#[test]
fn a_multipath_member_without_carrier_passes_with_a_finding() {
    let partly = Reason::PartlyNoCarrier {
        route: KernelRoute { source: None, ..route(Some("192.0.2.1")) },
        without_carrier: vec!["eth1".into()],
    };
    let s = state(eth0(true, true, &["192.0.2.10"]), Some(partly));
    let link = layer(&s, Layer::Link);
    let finding = Finding::PartlyNoCarrier { interface: "eth0".into(), without_carrier: vec!["eth1".into()] };
    assert_eq!((link.status, link.finding.as_ref()), (LayerStatus::Passed, Some(&finding)));
    assert_eq!(
        finding.to_string(),
        "eth0 is up with carrier, but the kernel also sends some flows through eth1, which has no carrier"
    );
    let json = serde_json::to_string(&finding).unwrap();
    assert_eq!(json, r#"{"code":"partly_no_carrier","interface":"eth0","without_carrier":["eth1"]}"#);
    let address = layer(&s, Layer::Address);
    assert_eq!(address.status, LayerStatus::Passed, "{address:?}");
    assert_eq!(layer(&s, Layer::Route).status, LayerStatus::Passed);
    assert_eq!(first(&s), None);
}
