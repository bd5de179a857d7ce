//! Events, and the pure functions that turn updates and state pairs into them.
//!
//! Backends translate OS messages into [`Update`]s and hold no policy. [`apply`] folds one
//! update into a state and says exactly what changed (nothing, for a no-op such as an
//! address-lifetime refresh). [`diff`] compares two whole states; it reports what a resync
//! found. Both are plain functions so they can be table-tested without I/O.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::reachability::{Level, Reachability, Source};
use crate::state::{Address, DefaultRoute, Interface, NetworkState};

/// One change reported to subscribers, stamped with the time netreach saw it.
///
/// Serialised (e.g. by `netreach watch --json`) as one flat object with a `"type"` field:
/// `{"timestamp":"2026-11-23T10:00:00.123456Z","type":"address_added",...}`.
///
/// ```
/// let e = netreach::Event::now(netreach::EventKind::Lagged { missed: 3 });
/// let json = serde_json::to_string(&e).unwrap();
/// assert!(json.starts_with(r#"{"timestamp":""#) && json.ends_with(r#""type":"lagged","missed":3}"#));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When netreach processed the change (RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: SystemTime,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// Stamps an event kind with the current time.
    ///
    /// ```
    /// let e = netreach::Event::now(netreach::EventKind::Lagged { missed: 3 });
    /// assert!(matches!(e.kind, netreach::EventKind::Lagged { missed: 3 }));
    /// ```
    pub fn now(kind: EventKind) -> Self {
        Event { timestamp: SystemTime::now(), kind }
    }
}

pub(crate) fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    // Formatted whole first: `collect_str` would hand the serializer a dozen small pieces, each
    // escaped on its own, and this runs for every event `netreach watch --json` prints.
    use std::fmt::Write;
    let mut text = String::with_capacity(32);
    let _ = write!(text, "{}", humantime::format_rfc3339_micros(*t)); // writing to a String cannot fail
    s.serialize_str(&text)
}

/// Which reachability a [`EventKind::ReachabilityChanged`] is about.
///
/// ```
/// use netreach::{FamilyReachability, Level, Reachability, ReachabilityOf, Source};
/// let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
/// let old = Reachability::from_families(k(Level::Online), k(Level::Site));
/// let new = Reachability::from_families(k(Level::Online), k(Level::Online));
/// let events = netreach::reachability_events(&old, &new);
/// // Only IPv6 changed; overall was online already.
/// assert!(matches!(events[..], [netreach::EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv6, .. }]));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReachabilityOf {
    /// The overall level (the better family).
    Overall,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

/// What happened. Interface events carry the link without its addresses; every address
/// appears in its own address event. New kinds may be added (`#[non_exhaustive]`): match the
/// ones you need and ignore the rest.
///
/// ```no_run
/// use netreach::{EventKind, Monitor};
/// let monitor = Monitor::new()?;
/// for event in monitor.subscribe().iter() {
///     match event.kind {
///         EventKind::Baseline { state } => println!("now {}", state.reachability.overall),
///         EventKind::ReachabilityChanged { family, new, .. } => println!("{family:?}: {new}"),
///         EventKind::Error { message, fatal: true } => return Err(message.into()),
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The whole current state: the first thing every subscriber receives, and again after a
    /// [`EventKind::Lagged`].
    Baseline {
        /// The state.
        state: Arc<NetworkState>,
    },
    /// A new interface appeared.
    InterfaceAdded {
        /// The interface (without addresses).
        interface: Interface,
    },
    /// An interface disappeared (its addresses were reported removed just before).
    InterfaceRemoved {
        /// The interface as last seen (without addresses).
        interface: Interface,
    },
    /// Link properties changed: up/down, carrier, operational state, name, MTU, MAC, kind.
    InterfaceChanged {
        /// Before (without addresses).
        before: Interface,
        /// After (without addresses).
        after: Interface,
    },
    /// An address was added.
    AddressAdded {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// The address.
        address: Address,
    },
    /// An address was removed.
    AddressRemoved {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// The address as last seen.
        address: Address,
    },
    /// An address's flags or scope changed (e.g. duplicate address detection finished).
    AddressChanged {
        /// Interface name.
        interface: String,
        /// Interface index.
        index: u32,
        /// Before.
        before: Address,
        /// After.
        after: Address,
    },
    /// A default route appeared.
    DefaultRouteAdded {
        /// The route.
        route: DefaultRoute,
    },
    /// A default route disappeared (deleted, or flushed because its link went down).
    DefaultRouteRemoved {
        /// The route as last seen.
        route: DefaultRoute,
    },
    /// A reachability level changed.
    ReachabilityChanged {
        /// Overall, IPv4 or IPv6.
        family: ReachabilityOf,
        /// The previous level.
        old: Level,
        /// The new level.
        new: Level,
        /// Who decided the new level.
        source: Source,
    },
    /// Transport, metering or captive portal changed.
    DetailsChanged {
        /// Before.
        before: crate::verdict::Details,
        /// After.
        after: crate::verdict::Details,
    },
    /// A source above the kernel (probe, NetworkManager, Windows) gave a new verdict; the
    /// reachability and details events it causes follow.
    VerdictChanged {
        /// The new verdict (all fields `None` when the source withdrew, e.g. its daemon left).
        verdict: crate::verdict::Verdict,
    },
    /// The monitor re-read the whole state (after a netlink overrun or a socket failure);
    /// the events just before this one are exactly what the re-read found changed.
    Resynced {
        /// Why.
        reason: String,
        /// How many change events the resync produced.
        changes: usize,
    },
    /// This subscriber fell behind and `missed` events were dropped; a fresh
    /// [`EventKind::Baseline`] follows.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
    /// Something went wrong. When `fatal` is false the monitor is recovering by itself; when
    /// true the monitor has stopped and the subscription ends after this event.
    Error {
        /// What went wrong, in words.
        message: String,
        /// Whether the monitor stopped.
        fatal: bool,
    },
}

/// A change reported by a backend, before policy. Backends produce these; [`apply`] folds them.
///
/// ```
/// use netreach::{apply, DefaultRoute, EventKind, Family, NetworkState, Update};
/// let mut state = NetworkState::default();
/// let gateway = Some("192.0.2.1".parse().unwrap());
/// let route =
///     DefaultRoute { family: Family::Ipv4, gateway, interface: String::new(), interface_index: 2, metric: 0, table: 254 };
/// let events = apply(&mut state, Update::RouteAdded(route));
/// assert!(matches!(events[..], [EventKind::DefaultRouteAdded { .. }]));
/// assert_eq!(state.default_routes.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// A link was created or changed (addresses are ignored).
    Link(Interface),
    /// A link was deleted.
    LinkRemoved(u32),
    /// An address was added or re-announced on the interface with this index.
    AddressAdded(u32, Address),
    /// An address was removed from the interface with this index.
    AddressRemoved(u32, Address),
    /// A default route was added.
    RouteAdded(DefaultRoute),
    /// A default route replaced whatever route had the same family, table and metric
    /// (`ip route replace`: the kernel sends no deletion for the route it replaced).
    RouteReplaced(DefaultRoute),
    /// A default route was removed.
    RouteRemoved(DefaultRoute),
    /// Some other route (destination, prefix length) was added, changed or removed. Not kept
    /// in the state; it tells path monitors which kernel route lookups to repeat.
    RouteChanged(std::net::IpAddr, u8),
    /// A source above the kernel gave its verdict, replacing its previous one. A verdict with
    /// no opinion at all withdraws the source.
    Verdict(crate::verdict::Verdict),
}

/// Folds one update into `state` and returns what changed, in order; no-ops return nothing.
/// Reachability is not touched: see [`reachability_events`].
///
/// Kernel rules mirrored here (the kernel changes these silently, without a message):
/// - A link going administratively down flushes the routes through it.
/// - A deleted link takes its addresses and routes with it.
/// - An interface losing its last IPv4 address loses its IPv4 routes (`fib_disable_ip`).
///
/// ```
/// use netreach::{apply, Address, EventKind, Interface, NetworkState, Update};
/// let mut state = NetworkState::default();
/// apply(&mut state, Update::Link(Interface { index: 2, name: "eth0".into(), ..Default::default() }));
/// let a = Address::new("192.0.2.10".parse().unwrap(), 24);
/// assert_eq!(apply(&mut state, Update::AddressAdded(2, a.clone())).len(), 1);
/// // The same address announced again (a lifetime refresh) is not a change.
/// assert!(apply(&mut state, Update::AddressAdded(2, a)).is_empty());
/// ```
pub fn apply(state: &mut NetworkState, update: Update) -> Vec<EventKind> {
    let mut events = Vec::new();
    match update {
        Update::Link(mut link) => {
            link.addresses.clear();
            match state.position(link.index) {
                Ok(i) => {
                    let current = &mut state.interfaces[i];
                    if current.same_link(&link) {
                        return events;
                    }
                    let before = current.link_only();
                    link.addresses = std::mem::take(&mut current.addresses);
                    *current = link;
                    let after = current.link_only();
                    let (went_down, renamed) = (before.up && !after.up, before.raw_name() != after.raw_name());
                    events.push(EventKind::InterfaceChanged { before, after });
                    if renamed {
                        rename_routes(state, i);
                    }
                    if went_down {
                        let index = state.interfaces[i].index;
                        remove_routes(state, |r| r.interface_index == index, &mut events);
                    }
                }
                Err(i) => {
                    events.push(EventKind::InterfaceAdded { interface: link.clone() });
                    state.interfaces.insert(i, link);
                    rename_routes(state, i);
                }
            }
        }
        Update::LinkRemoved(index) => {
            if let Ok(i) = state.position(index) {
                let gone = state.interfaces.remove(i);
                for address in &gone.addresses {
                    events.push(address_event(&gone, address, AddressChange::Removed));
                }
                remove_routes(state, |r| r.interface_index == index, &mut events);
                events.push(EventKind::InterfaceRemoved { interface: gone.link_only() });
            }
        }
        Update::AddressAdded(index, address) => {
            let Ok(i) = state.position(index) else { return events };
            let iface = &mut state.interfaces[i];
            match iface.addresses.binary_search_by(|a| a.key().cmp(&address.key())) {
                Ok(j) => {
                    let before = &iface.addresses[j];
                    if before.same_properties(&address) {
                        // Lifetime refresh: keep the fresher lifetimes, report nothing.
                        iface.addresses[j] = address;
                    } else {
                        let before = std::mem::replace(&mut iface.addresses[j], address.clone());
                        events.push(EventKind::AddressChanged {
                            interface: iface.name.clone(),
                            index,
                            before,
                            after: address,
                        });
                    }
                }
                Err(j) => {
                    events.push(address_event(iface, &address, AddressChange::Added));
                    iface.addresses.insert(j, address);
                }
            }
        }
        Update::AddressRemoved(index, address) => {
            let Ok(i) = state.position(index) else { return events };
            let iface = &mut state.interfaces[i];
            if let Ok(j) = iface.addresses.binary_search_by(|a| a.key().cmp(&address.key())) {
                let gone = iface.addresses.remove(j);
                events.push(address_event(iface, &gone, AddressChange::Removed));
                if gone.address.is_ipv4() && !iface.addresses.iter().any(|a| a.address.is_ipv4()) {
                    let flushed = |r: &DefaultRoute| r.family == crate::Family::Ipv4 && r.interface_index == index;
                    remove_routes(state, flushed, &mut events);
                }
            }
        }
        Update::RouteReplaced(route) => {
            let replaced = |r: &DefaultRoute| {
                r.family == route.family && r.table == route.table && r.metric == route.metric && !r.same_route(&route)
            };
            remove_routes(state, replaced, &mut events);
            events.extend(apply(state, Update::RouteAdded(route)));
        }
        Update::RouteAdded(mut route) => {
            route.interface = state.interface(route.interface_index).map(|i| i.name.clone()).unwrap_or_default();
            if !state.default_routes.iter().any(|r| r.same_route(&route)) {
                events.push(EventKind::DefaultRouteAdded { route: route.clone() });
                state.default_routes.push(route);
                sort_routes(&mut state.default_routes);
            }
        }
        Update::RouteRemoved(route) => {
            remove_routes(state, |r| r.same_route(&route), &mut events);
        }
        Update::RouteChanged(..) => {}
        Update::Verdict(verdict) => {
            let at = state.verdicts.iter().position(|v| v.source == verdict.source);
            let withdrawn = verdict == crate::verdict::Verdict::new(verdict.source);
            let same = match at {
                Some(i) => state.verdicts[i] == verdict,
                None => withdrawn,
            };
            if !same {
                match (at, withdrawn) {
                    (Some(i), true) => drop(state.verdicts.remove(i)),
                    (Some(i), false) => state.verdicts[i] = verdict.clone(),
                    (None, _) => state.verdicts.push(verdict.clone()),
                }
                events.push(EventKind::VerdictChanged { verdict });
            }
        }
    }
    events
}

/// Compares reachability before and after a change: one event per family that changed, then
/// overall.
///
/// ```
/// use netreach::{reachability_events, FamilyReachability, Level, Reachability, Source};
/// let v4 = |l| FamilyReachability { reachability: l, source: Source::Kernel };
/// let old = Reachability::from_families(v4(Level::Site), v4(Level::Local));
/// let new = Reachability::from_families(v4(Level::Online), v4(Level::Local));
/// assert_eq!(reachability_events(&old, &new).len(), 2); // ipv4 and overall
/// ```
#[must_use]
pub fn reachability_events(old: &Reachability, new: &Reachability) -> Vec<EventKind> {
    let mut events = Vec::new();
    for (family, o, n) in [
        (ReachabilityOf::Ipv4, old.ipv4.reachability, new.ipv4),
        (ReachabilityOf::Ipv6, old.ipv6.reachability, new.ipv6),
    ] {
        if o != n.reachability {
            events.push(EventKind::ReachabilityChanged { family, old: o, new: n.reachability, source: n.source });
        }
    }
    if old.overall != new.overall {
        events.push(EventKind::ReachabilityChanged {
            family: ReachabilityOf::Overall,
            old: old.overall,
            new: new.overall,
            source: new.source,
        });
    }
    events
}

/// Everything that differs between two whole states, as the events that would turn `old` into
/// `new` (reachability excluded: see [`reachability_events`]). A resync reports this.
///
/// ```
/// use netreach::{diff, Interface, NetworkState};
/// let old = NetworkState::default();
/// let mut new = NetworkState::default();
/// new.interfaces.push(Interface { index: 1, name: "lo".into(), ..Default::default() });
/// assert_eq!(diff(&old, &new).len(), 1);
/// assert!(diff(&new, &new).is_empty());
/// ```
#[must_use]
pub fn diff(old: &NetworkState, new: &NetworkState) -> Vec<EventKind> {
    let mut events = Vec::new();
    let (mut o, mut n) = (old.interfaces.iter().peekable(), new.interfaces.iter().peekable());
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(a), Some(b)) if a.index == b.index => {
                if !a.same_link(b) {
                    events.push(EventKind::InterfaceChanged { before: a.link_only(), after: b.link_only() });
                }
                diff_addresses(a, b, &mut events);
                o.next();
                n.next();
            }
            (Some(a), b) if b.is_none_or(|b| a.index < b.index) => {
                for address in &a.addresses {
                    events.push(address_event(a, address, AddressChange::Removed));
                }
                events.push(EventKind::InterfaceRemoved { interface: a.link_only() });
                o.next();
            }
            (_, Some(b)) => {
                events.push(EventKind::InterfaceAdded { interface: b.link_only() });
                for address in &b.addresses {
                    events.push(address_event(b, address, AddressChange::Added));
                }
                n.next();
            }
            (Some(_), None) => unreachable!("handled by the removal arm"),
        }
    }
    for route in &old.default_routes {
        if !new.default_routes.iter().any(|r| r.same_route(route)) {
            events.push(EventKind::DefaultRouteRemoved { route: route.clone() });
        }
    }
    for route in &new.default_routes {
        if !old.default_routes.iter().any(|r| r.same_route(route)) {
            events.push(EventKind::DefaultRouteAdded { route: route.clone() });
        }
    }
    events
}

fn diff_addresses(a: &Interface, b: &Interface, events: &mut Vec<EventKind>) {
    for old in &a.addresses {
        match b.addresses.binary_search_by(|x| x.key().cmp(&old.key())) {
            Err(_) => events.push(address_event(b, old, AddressChange::Removed)),
            Ok(j) if !old.same_properties(&b.addresses[j]) => events.push(EventKind::AddressChanged {
                interface: b.name.clone(),
                index: b.index,
                before: old.clone(),
                after: b.addresses[j].clone(),
            }),
            Ok(_) => {}
        }
    }
    for new in &b.addresses {
        if a.addresses.binary_search_by(|x| x.key().cmp(&new.key())).is_err() {
            events.push(address_event(b, new, AddressChange::Added));
        }
    }
}

enum AddressChange {
    Added,
    Removed,
}

fn address_event(iface: &Interface, address: &Address, change: AddressChange) -> EventKind {
    let (interface, index, address) = (iface.name.clone(), iface.index, address.clone());
    match change {
        AddressChange::Added => EventKind::AddressAdded { interface, index, address },
        AddressChange::Removed => EventKind::AddressRemoved { interface, index, address },
    }
}

fn remove_routes(state: &mut NetworkState, gone: impl Fn(&DefaultRoute) -> bool, events: &mut Vec<EventKind>) {
    state.default_routes.retain(|r| {
        let remove = gone(r);
        if remove {
            events.push(EventKind::DefaultRouteRemoved { route: r.clone() });
        }
        !remove
    });
}

/// Re-derives route interface names after the interface at `position` appeared or was renamed.
fn rename_routes(state: &mut NetworkState, position: usize) {
    let iface = &state.interfaces[position];
    for r in state.default_routes.iter_mut().filter(|r| r.interface_index == iface.index) {
        r.interface.clone_from(&iface.name);
    }
}

/// Puts routes in their canonical order: family, table, metric, interface, gateway.
pub(crate) fn sort_routes(routes: &mut [DefaultRoute]) {
    routes.sort_by(|a, b| {
        (a.family, a.table, a.metric, a.interface_index, a.gateway).cmp(&(
            b.family,
            b.table,
            b.metric,
            b.interface_index,
            b.gateway,
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Family, InterfaceKind};

    fn link(index: u32, name: &str, up: bool) -> Interface {
        Interface { index, name: name.into(), kind: InterfaceKind::Ethernet, up, carrier: up, ..Default::default() }
    }

    fn addr(s: &str) -> Address {
        let (a, p) = s.split_once('/').unwrap();
        Address::new(a.parse().unwrap(), p.parse().unwrap())
    }

    fn route(index: u32, gateway: &str, metric: u32) -> DefaultRoute {
        DefaultRoute {
            family: Family::Ipv4,
            gateway: Some(gateway.parse().unwrap()),
            interface: String::new(),
            interface_index: index,
            metric,
            table: 254,
        }
    }

    fn names(events: &[EventKind]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                EventKind::InterfaceAdded { .. } => "interface_added",
                EventKind::InterfaceRemoved { .. } => "interface_removed",
                EventKind::InterfaceChanged { .. } => "interface_changed",
                EventKind::AddressAdded { .. } => "address_added",
                EventKind::AddressRemoved { .. } => "address_removed",
                EventKind::AddressChanged { .. } => "address_changed",
                EventKind::DefaultRouteAdded { .. } => "route_added",
                EventKind::DefaultRouteRemoved { .. } => "route_removed",
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn apply_table() {
        let base = || {
            let mut s = NetworkState::default();
            apply(&mut s, Update::Link(link(2, "eth0", true)));
            apply(&mut s, Update::AddressAdded(2, addr("192.0.2.10/24")));
            apply(&mut s, Update::RouteAdded(route(2, "192.0.2.1", 0)));
            s
        };
        let tentative = {
            let mut a = addr("192.0.2.10/24");
            a.flags.tentative = true;
            a
        };
        let refreshed = {
            let mut a = addr("192.0.2.10/24");
            a.valid_lifetime = Some(100);
            a
        };
        let cases: Vec<(&str, Update, Vec<&str>)> = vec![
            ("same link again", Update::Link(link(2, "eth0", true)), vec![]),
            (
                "link down flushes routes",
                Update::Link(link(2, "eth0", false)),
                vec!["interface_changed", "route_removed"],
            ),
            ("rename", Update::Link(link(2, "wan0", true)), vec!["interface_changed"]),
            ("new link", Update::Link(link(3, "eth1", true)), vec!["interface_added"]),
            ("link removed", Update::LinkRemoved(2), vec!["address_removed", "route_removed", "interface_removed"]),
            ("unknown link removed", Update::LinkRemoved(9), vec![]),
            ("lifetime refresh", Update::AddressAdded(2, refreshed), vec![]),
            ("flags change", Update::AddressAdded(2, tentative), vec!["address_changed"]),
            ("other prefix is another address", Update::AddressAdded(2, addr("192.0.2.10/25")), vec!["address_added"]),
            ("address on unknown link", Update::AddressAdded(9, addr("192.0.2.11/24")), vec![]),
            (
                "last v4 address removed",
                Update::AddressRemoved(2, addr("192.0.2.10/24")),
                vec!["address_removed", "route_removed"],
            ),
            ("unknown address removed", Update::AddressRemoved(2, addr("192.0.2.99/24")), vec![]),
            ("same route again", Update::RouteAdded(route(2, "192.0.2.1", 0)), vec![]),
            ("second route", Update::RouteAdded(route(2, "192.0.2.2", 10)), vec!["route_added"]),
            ("replace", Update::RouteReplaced(route(2, "192.0.2.254", 0)), vec!["route_removed", "route_added"]),
            ("replace other metric", Update::RouteReplaced(route(2, "192.0.2.254", 7)), vec!["route_added"]),
            ("route removed", Update::RouteRemoved(route(2, "192.0.2.1", 0)), vec!["route_removed"]),
            ("unknown route removed", Update::RouteRemoved(route(2, "192.0.2.1", 99)), vec![]),
        ];
        for (name, update, want) in cases {
            let mut state = base();
            let events = apply(&mut state, update);
            assert_eq!(names(&events), want, "case: {name}");
        }
    }

    #[test]
    fn refresh_keeps_latest_lifetimes_and_rename_follows_routes() {
        let mut s = NetworkState::default();
        apply(&mut s, Update::Link(link(2, "eth0", true)));
        apply(&mut s, Update::RouteAdded(route(2, "192.0.2.1", 0)));
        assert_eq!(s.default_routes[0].interface, "eth0");
        apply(&mut s, Update::Link(link(2, "wan0", true)));
        assert_eq!(s.default_routes[0].interface, "wan0");
        let mut a = addr("2001:db8::1/64");
        apply(&mut s, Update::AddressAdded(2, a.clone()));
        a.valid_lifetime = Some(42);
        assert!(apply(&mut s, Update::AddressAdded(2, a)).is_empty());
        assert_eq!(s.interfaces[0].addresses[0].valid_lifetime, Some(42));
    }

    /// Applies events literally, the way a subscriber mirroring the state would: no kernel
    /// rules, just what each event says.
    fn replay(state: &mut NetworkState, events: &[EventKind]) {
        for e in events.iter().cloned() {
            match e {
                EventKind::InterfaceAdded { interface } => {
                    let at = state.position(interface.index).unwrap_err();
                    state.interfaces.insert(at, interface);
                }
                EventKind::InterfaceChanged { after, .. } => {
                    let i = state.position(after.index).unwrap();
                    let addresses = std::mem::take(&mut state.interfaces[i].addresses);
                    state.interfaces[i] = Interface { addresses, ..after };
                }
                EventKind::InterfaceRemoved { interface } => {
                    let i = state.position(interface.index).unwrap();
                    assert!(state.interfaces[i].addresses.is_empty(), "addresses are removed first");
                    state.interfaces.remove(i);
                }
                EventKind::AddressAdded { index, address, .. } => {
                    let i = state.position(index).unwrap();
                    let iface = &mut state.interfaces[i];
                    let at = iface.addresses.binary_search_by_key(&address.key(), Address::key).unwrap_err();
                    iface.addresses.insert(at, address);
                }
                EventKind::AddressChanged { index, after, .. } => {
                    let i = state.position(index).unwrap();
                    let iface = &mut state.interfaces[i];
                    let at = iface.addresses.binary_search_by_key(&after.key(), Address::key).unwrap();
                    iface.addresses[at] = after;
                }
                EventKind::AddressRemoved { index, address, .. } => {
                    let i = state.position(index).unwrap();
                    let iface = &mut state.interfaces[i];
                    let at = iface.addresses.binary_search_by_key(&address.key(), Address::key).unwrap();
                    iface.addresses.remove(at);
                }
                EventKind::DefaultRouteAdded { route } => {
                    state.default_routes.push(route);
                    sort_routes(&mut state.default_routes);
                }
                EventKind::DefaultRouteRemoved { route } => {
                    let at = state.default_routes.iter().position(|r| r.same_route(&route)).unwrap();
                    state.default_routes.remove(at);
                }
                other => panic!("unexpected {other:?}"),
            }
            let names: Vec<String> = state
                .default_routes
                .iter()
                .map(|r| state.interface(r.interface_index).map(|i| i.name.clone()).unwrap_or_default())
                .collect();
            for (r, name) in state.default_routes.iter_mut().zip(names) {
                r.interface = name;
            }
        }
    }

    /// A small deterministic generator (no dependency needed for a few thousand cases).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn random_update(rng: &mut Rng) -> Update {
        let index = 1 + rng.below(4) as u32;
        let a = format!("198.51.100.{}/{}", 1 + rng.below(6), 24 + rng.below(2));
        match rng.below(7) {
            0 => Update::Link(link(index, &format!("if{}", rng.below(8)), rng.below(3) > 0)),
            1 => Update::LinkRemoved(index),
            2 | 3 => {
                let mut address = addr(&a);
                address.flags.tentative = rng.below(4) == 0;
                Update::AddressAdded(index, address)
            }
            4 => Update::AddressRemoved(index, addr(&a)),
            5 => Update::RouteAdded(route(index, &format!("198.51.100.{}", 1 + rng.below(3)), rng.below(2) as u32)),
            _ => Update::RouteRemoved(route(index, &format!("198.51.100.{}", 1 + rng.below(3)), rng.below(2) as u32)),
        }
    }

    #[test]
    fn events_from_apply_and_diff_rebuild_the_state() {
        let mut rng = Rng(7);
        for _ in 0..2000 {
            let mut state = NetworkState::default();
            for _ in 0..rng.below(12) {
                apply(&mut state, random_update(&mut rng));
            }
            let start = state.clone();
            let mut rebuilt = state.clone();
            for _ in 0..1 + rng.below(12) {
                let events = apply(&mut state, random_update(&mut rng));
                replay(&mut rebuilt, &events);
                assert_eq!(rebuilt, state, "incremental events must rebuild the state");
            }
            let mut from_diff = start.clone();
            replay(&mut from_diff, &diff(&start, &state));
            assert_eq!(from_diff, state, "diff must rebuild the state");
            assert!(diff(&state, &state).is_empty());
        }
    }
}
