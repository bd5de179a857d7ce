//! The pure functions that turn updates and state pairs into events.
//!
//! OS sources translate OS messages into [`Update`]s and hold no policy. [`apply`] folds one
//! update into a state and says exactly what changed (nothing, for a no-op such as an
//! address-lifetime refresh). [`diff`] compares two whole states; it reports what a resync
//! found. [`reachability_events`] compares two readings of the levels. All are plain functions
//! so they can be table-tested without I/O; the types are in the model.

use crate::model::{
    Address, DefaultRoute, EventKind, Family, Interface, NetworkState, Reachability, ReachabilityOf, Reasons, Update,
    Verdict,
};

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
                    let flushed = |r: &DefaultRoute| r.family == Family::Ipv4 && r.interface_index == index;
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
        Update::RouteChanged(..) | Update::RulesChanged(..) => {}
        Update::Decision(family, decisions) => {
            // Observed input with no event of its own: the levels and reasons derived from it
            // are what subscribers hear about.
            state.route_decisions.retain(|d| d.family() != family);
            state.route_decisions.extend(decisions);
        }
        // Observed input with no event of its own either: the levels and reasons tell.
        Update::Gateways(gateways) => state.gateways = gateways,
        Update::Verdict(verdict) => {
            let at = state.verdicts.iter().position(|v| v.source == verdict.source);
            let withdrawn = verdict == Verdict::new(verdict.source);
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
        Update::Dns(dns) => {
            if state.dns.as_ref() != Some(&dns) {
                let before = state.dns.replace(dns.clone());
                events.push(EventKind::DnsChanged { before, after: dns });
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
            events.push(EventKind::ReachabilityChanged {
                family,
                old: o,
                new: n.reachability,
                source: n.source,
                reason: None,
            });
        }
    }
    if old.overall != new.overall {
        events.push(EventKind::ReachabilityChanged {
            family: ReachabilityOf::Overall,
            old: old.overall,
            new: new.overall,
            source: new.source,
            reason: None,
        });
    }
    events
}

/// Adds the reasons to the reachability events of one change (`overall` takes the better
/// family's), and a [`EventKind::ReasonChanged`] for each family whose reason changed while its
/// level stayed.
pub(crate) fn reason_events(
    (old, new): (&Reachability, &Reachability),
    (before, after): (&Reasons, &Reasons),
    events: &mut Vec<EventKind>,
) {
    let better = if new.ipv6.reachability > new.ipv4.reachability { Family::Ipv6 } else { Family::Ipv4 };
    for event in events.iter_mut() {
        if let EventKind::ReachabilityChanged { family, reason, .. } = event {
            let of = match family {
                ReachabilityOf::Ipv4 => Family::Ipv4,
                ReachabilityOf::Ipv6 => Family::Ipv6,
                ReachabilityOf::Overall => better,
            };
            *reason = after.family(of).cloned();
        }
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let same_level = old.family(family).reachability == new.family(family).reachability;
        if same_level && before.family(family) != after.family(family) {
            events.push(EventKind::ReasonChanged {
                family,
                before: before.family(family).cloned(),
                after: after.family(family).cloned(),
            });
        }
    }
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
    if let (Some(after), true) = (&new.dns, old.dns != new.dns) {
        events.push(EventKind::DnsChanged { before: old.dns.clone(), after: after.clone() });
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
#[path = "fold_tests.rs"]
mod tests;
