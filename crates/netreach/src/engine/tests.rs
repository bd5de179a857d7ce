//! The engine's own contract, without a kernel: route lookups and refiner notifications run
//! on the new state with the state lock free, so `snapshot()` never waits for them.

use std::sync::{Arc, Mutex, Weak};

use super::{Engine, Input, Refiner, Reporter, Shared};
use crate::model::{Address, Error, Interface, InterfaceKind, NetworkState, Reachability, Update};
use crate::path::{Answer, PathRegistry, Query, Route, RouteLookup};
use crate::sys::{self, KernelConfig};

fn eth0(mtu: u32) -> Interface {
    Interface {
        index: 2,
        name: "eth0".into(),
        kind: InterfaceKind::Ethernet,
        up: true,
        carrier: true,
        mtu,
        addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
        ..Default::default()
    }
}

/// What a lookup or a notification saw: whether the state lock was free, and the MTU of eth0
/// in the state it was given (or could read).
type Seen = Arc<Mutex<Vec<(bool, Option<u32>)>>>;

fn mtu(state: &NetworkState) -> Option<u32> {
    state.interfaces.iter().find(|i| i.index == 2).map(|i| i.mtu)
}

struct Lookup {
    shared: Arc<Shared>,
    seen: Seen,
}

impl RouteLookup for Lookup {
    fn route(&mut self, _: &Query) -> Answer {
        // try_lock, not lock: a lookup made under the lock would deadlock rather than fail.
        let free = self.shared.state.try_lock().is_ok();
        self.seen.lock().unwrap().push((free, free.then(|| mtu(&self.shared.snapshot())).flatten()));
        Ok(Some(Route::out(2)))
    }
}

struct Watcher {
    shared: Weak<Shared>,
    seen: Seen,
}

impl Refiner for Watcher {
    fn state_changed(&self, state: &NetworkState, _: &Reachability) {
        let free = self.shared.upgrade().is_some_and(|s| s.state.try_lock().is_ok());
        self.seen.lock().unwrap().push((free, mtu(state)));
    }

    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// An engine over a made-up state; the real source only lends its waker.
fn engine() -> (Engine, sys::Kernel) {
    let (source, _) = sys::Kernel::open(&KernelConfig::default()).expect("the kernel source opens");
    let initial = NetworkState { interfaces: vec![eth0(1500)], ..Default::default() };
    let shared = Shared::new(crate::derive(initial), source.waker(), 16);
    (
        Engine {
            shared,
            paths: PathRegistry::default(),
            diagnosis: crate::diagnose(&crate::derive(NetworkState::default())),
            nameservers_due: false,
        },
        source,
    )
}

#[test]
fn lookups_and_refiner_notifications_run_outside_the_state_lock_on_the_new_state() {
    let (mut engine, _source) = engine();
    let (looked, notified) = (Seen::default(), Seen::default());
    let watcher = Watcher { shared: Arc::downgrade(&engine.shared), seen: notified.clone() };
    *engine.shared.refiners.lock().unwrap() = vec![Arc::new(watcher)];
    let mut lookup = Lookup { shared: engine.shared.clone(), seen: looked.clone() };
    let state = engine.shared.snapshot();
    let (local, remote) = ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap());
    let _path = engine.paths.add(&state, Query::plain(local, remote), 16, &mut lookup);
    drop(state);
    assert_eq!(looked.lock().unwrap().drain(..).count(), 1, "adding a path asks its route");

    // A change of the path's interface: the refiner hears of it, the path is judged again.
    engine.handle(Input::Updates(vec![Update::Link(eth0(1400))]), true, &mut lookup);
    assert_eq!(*notified.lock().unwrap(), [(true, Some(1400))]);
    assert_eq!(*looked.lock().unwrap(), [(true, Some(1400))]);
    // A route change (no state change) and a resync (every path) look up outside it too.
    engine.handle(Input::Updates(vec![Update::RouteChanged(remote, 32)]), true, &mut lookup);
    let fresh = NetworkState { interfaces: vec![eth0(1300)], ..Default::default() };
    engine.handle(Input::Reread { state: Box::new(fresh), resync: Some("test".into()) }, true, &mut lookup);
    assert_eq!(*looked.lock().unwrap(), [(true, Some(1400)), (true, Some(1400)), (true, Some(1300))]);
    assert_eq!(*notified.lock().unwrap(), [(true, Some(1400)), (true, Some(1300))]);
}

#[test]
fn sources_report_as_commands_until_the_monitor_is_gone() {
    let (engine, _source) = engine();
    let sink = Reporter::sink(&engine.shared);
    assert!(sink.send(Input::Fault("a fault".into())));
    let queued = engine.shared.commands.lock().unwrap().as_ref().map_or(0, Vec::len);
    assert_eq!(queued, 1);
    drop(engine);
    assert!(!sink.send(Input::Fault("too late".into())), "a sink must not keep the monitor alive");
}

/// Answers no route.
struct NoRoute;

impl RouteLookup for NoRoute {
    fn route(&mut self, _: &Query) -> Answer {
        Ok(None)
    }
}

#[test]
fn gateway_entries_alone_rederive_and_dns_changes_are_events() {
    use crate::model::{DefaultRoute, DnsConfig, EventKind, Family, GatewayNeighbour, Level, NeighbourState, Reason};
    let (mut engine, _source) = engine();
    let events = engine.shared.subscribe();
    let route = DefaultRoute {
        family: Family::Ipv4,
        gateway: Some("192.0.2.1".parse().unwrap()),
        interface: "eth0".into(),
        interface_index: 2,
        metric: 0,
        table: 254,
    };
    let reading = |state| NetworkState {
        interfaces: vec![eth0(1500)],
        default_routes: vec![route.clone()],
        gateways: vec![GatewayNeighbour {
            address: route.gateway.unwrap(),
            interface_index: 2,
            state,
            unanswered_since: None,
        }],
        ..Default::default()
    };
    let ipv4 =
        |e: &Engine| (e.shared.snapshot().reachability.ipv4.reachability, e.shared.snapshot().reasons.ipv4.clone());
    let mut lookup = NoRoute;
    engine.handle(Input::Reread { state: Box::new(reading(NeighbourState::Stale)), resync: None }, true, &mut lookup);
    assert_eq!(ipv4(&engine), (Level::Online, Some(Reason::DefaultRoute)));
    // Only the entry changes (no event of its own): the levels are derived again.
    engine.handle(Input::Reread { state: Box::new(reading(NeighbourState::Failed)), resync: None }, true, &mut lookup);
    let (level, reason) = ipv4(&engine);
    assert_eq!(level, Level::Site);
    assert!(
        matches!(&reason, Some(Reason::GatewayUnreachable { route, .. }) if route.interface == "eth0"),
        "{reason:?}"
    );
    let published: Vec<EventKind> = std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.kind).collect();
    let lowered = published.iter().any(|e| {
        matches!(
            e,
            EventKind::ReachabilityChanged { new: Level::Site, reason: Some(Reason::GatewayUnreachable { .. }), .. }
        )
    });
    assert!(lowered, "{published:?}");
    // A fresh reading with other servers (and the gateway answering again): both applied,
    // with the dns_changed the diff gives.
    let mut fresh = reading(NeighbourState::Reachable);
    fresh.dns = Some(DnsConfig::default());
    engine.handle(Input::Reread { state: Box::new(fresh), resync: None }, true, &mut lookup);
    assert_eq!(ipv4(&engine), (Level::Online, Some(Reason::DefaultRoute)));
    let published: Vec<EventKind> = std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.kind).collect();
    assert!(published.iter().any(|e| matches!(e, EventKind::DnsChanged { .. })), "{published:?}");
}

/// Counts the route lookups asked; answers no route.
#[derive(Default)]
struct CountedNoRoute {
    asked: usize,
}

impl RouteLookup for CountedNoRoute {
    fn route(&mut self, _: &Query) -> Answer {
        self.asked += 1;
        Ok(None)
    }
}

#[test]
fn a_decision_closing_a_change_brings_the_nameservers_routes_into_the_same_change() {
    use crate::model::{
        DnsConfig, EventKind, Family, KernelRoute, Nameserver, NameserverAnswer, NameserverRoute, RouteAnswer,
        RouteDecision,
    };
    let (mut engine, _source) = engine();
    let server = "192.0.2.53".parse().unwrap();
    let out = |destination: &str| RouteDecision {
        destination: destination.parse().unwrap(),
        answer: RouteAnswer::Out {
            route: KernelRoute {
                prefix: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                table: 254,
                interface_index: 2,
                interface: "eth0".into(),
                gateway: Some("192.0.2.1".parse().unwrap()),
                source: Some("192.0.2.10".parse().unwrap()),
                nexthops: Vec::new(),
            },
        },
    };
    let before = NetworkState {
        interfaces: vec![eth0(1500)],
        route_decisions: vec![out("64.0.0.1"), out("160.0.0.1")],
        dns: Some(DnsConfig {
            nameservers: vec![Nameserver { address: server, interface: None }],
            ..Default::default()
        }),
        nameserver_routes: vec![NameserverRoute {
            nameserver: server,
            answer: NameserverAnswer::Out { interface_index: 2, interface: "eth0".into() },
        }],
        ..Default::default()
    };
    let mut lookup = CountedNoRoute::default();
    // A re-read asks the nameservers' routes itself: the state is set without it.
    let set = |engine: &mut Engine| {
        engine.change_deriving(true, |state| {
            Arc::make_mut(state).state = before.clone();
            Vec::new()
        });
        engine.nameservers_due = true; // as the change that made the decision due leaves it
    };
    let gone = |d: &str| RouteDecision { destination: d.parse().unwrap(), answer: RouteAnswer::NoRoute };
    let decision = || Update::Decision(Family::Ipv4, vec![gone("64.0.0.1"), gone("160.0.0.1")]);

    // The default route went, and the kernel's decision follows with more of the change still
    // at hand: the routes wait.
    set(&mut engine);
    engine.handle(Input::Updates(vec![decision()]), false, &mut lookup);
    assert_eq!(lookup.asked, 0, "asked only once the change is whole");
    assert!(engine.nameservers_due);

    // The decision (with its gateway entries) closes the change: one question, one change.
    set(&mut engine);
    let events = engine.shared.subscribe();
    let _baseline = events.try_recv();
    engine.handle(Input::Updates(vec![decision(), Update::Gateways(Vec::new())]), true, &mut lookup);
    assert_eq!(lookup.asked, 1, "the nameserver is asked once");
    assert!(!engine.nameservers_due);
    let state = engine.shared.snapshot();
    assert_eq!(state.nameserver_routes[0].answer, NameserverAnswer::NoRoute);
    let published: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    let ipv4_diagnoses =
        published.iter().filter(|e| matches!(e.kind, EventKind::DiagnosisChanged { family: Family::Ipv4, .. })).count();
    assert_eq!(ipv4_diagnoses, 1, "the DNS layer changes with the rest: {published:?}");
    assert!(published.iter().all(|e| e.timestamp == published[0].timestamp), "one change, one timestamp");
}
