//! The kernel-only derivation of reachability and its reasons: the kernel's own route
//! decision, interfaces and addresses in, a level and a [`Reason`] per family out
//! ([`derive_kernel_reachability`] has the table). Pure; the types are in the model.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{
    Fallback, Family, FamilyReachability, Interface, InterfaceKind, KernelRoute, Level, NetworkState, Nexthop,
    Reachability, Reason, Reasons, RouteAnswer, RouteDecision, Source,
};

/// Derives reachability from kernel state alone (source `kernel`), by this table.
///
/// Computed per address family; no packet is sent. The first row that matches wins.
///
/// | level          | condition (for family F)                                                                                   |
/// |----------------|------------------------------------------------------------------------------------------------------------|
/// | `online`       | the kernel's route decision for every representative destination of F's internet leads out through a *ready* interface, with a *usable*, routable source address (the one the kernel chose, on any interface), through a gateway (if any) whose neighbour entry is not `failed` |
/// | `site`         | a *counting* ready interface owns a usable, routable (not link-local) F address, but the decision does not lead out |
/// | `local`        | a counting ready interface owns only link-local usable F addresses (169.254/16, fe80::/10)                  |
/// | `disconnected` | none of the above                                                                                            |
/// | `unknown`      | never from the kernel: reserved for sources that cannot tell (before a first reading)                      |
///
/// The route decision ([`NetworkState::route_decisions`]) is the kernel's answer to route
/// lookups (`ip route get`) for a few destinations of the global unicast internet: rules,
/// reject routes, nexthop objects, multipath, linkdown handling and every table are the
/// kernel's own. Where the OS has no such lookups (Windows, or a state built by hand, with
/// `route_decisions` empty), the `online` row is read from default routes instead: a unicast
/// default route of F leaves through a ready interface that owns a usable, non-link-local F
/// address; the OS's neighbour entry of that route's gateway marked failed
/// ([`NetworkState::gateways`]) lowers it to `site` ([`Reason::GatewayUnreachable`]).
///
/// Terms and the judgment calls behind them:
/// - *ready*: administratively up, carrier present, operational state `up` or `unknown`
///   ([`Interface::is_ready`]). `unknown` counts because tun and many virtual drivers never
///   report an operational state; carrier is what tells. The kernel keeps routing through a
///   link without carrier (unless `ignore_routes_with_linkdown` is set): such a decision is
///   not `online` ([`Reason::NoCarrier`]). A multipath (ECMP) route is judged by all the
///   members the kernel uses (the matched entry's, with its `linkdown`/`dead` flags), not by
///   the one a destination happens to hash to: some without carrier while one is ready is
///   `online` with [`Reason::PartlyNoCarrier`] (flows hashed onto them time out); all without
///   carrier is [`Reason::NoCarrier`]; the route named is a member chosen without regard to
///   the hash (the first with carrier whose gateway answers).
/// - *usable*: not tentative (DAD still running) and not DAD-failed. Deprecated addresses stay
///   usable: the kernel still picks them when nothing better exists.
/// - Loopback interfaces and loopback/host-scope addresses never count for the lower rows;
///   a routable source the kernel borrows from `lo` (an unnumbered uplink) does count.
/// - *counting*: any interface except bridges, tun/tap, VPN and other virtual links
///   ([`crate::InterfaceKind::is_host_internal`]) that the way out does not leave through. A
///   laptop with docker0 or virbr0 and no network is `disconnected`, not `site`. Veths count:
///   inside a container or network namespace the veth *is* the uplink.
/// - `online` from the kernel means "a way out exists", unverified: a probe or a daemon
///   (later sources) confirms it or downgrades it.
/// - Overall is the better of the two families, with that family's source.
///
/// ```
/// use netreach::{derive_kernel_reachability, Address, Interface, InterfaceKind, Level, NetworkState};
/// let mut state = NetworkState::default();
/// state.interfaces.push(Interface {
///     index: 2, name: "eth0".into(), kind: InterfaceKind::Ethernet, up: true, carrier: true,
///     addresses: vec![Address::new("192.0.2.10".parse().unwrap(), 24)],
///     ..Default::default()
/// });
/// // A routable address but no default route: site.
/// assert_eq!(derive_kernel_reachability(&state).ipv4.reachability, Level::Site);
/// ```
#[must_use]
pub fn derive_kernel_reachability(state: &NetworkState) -> Reachability {
    kernel_reading(state).0
}

/// Why each family's kernel level is what it is ([`Reason`]), from the same inputs as
/// [`derive_kernel_reachability`].
///
/// ```
/// use netreach::{derive_reasons, NetworkState, Reason};
/// // No route lookups (a state built by hand): the reason comes from default routes alone.
/// assert_eq!(derive_reasons(&NetworkState::default()).ipv4, Some(Reason::NoDefaultRoute));
/// ```
#[must_use]
pub fn derive_reasons(state: &NetworkState) -> Reasons {
    kernel_reading(state).1
}

/// Levels and reasons of both families.
pub(crate) fn kernel_reading(state: &NetworkState) -> (Reachability, Reasons) {
    let (v4, r4) = family_reading(state, Family::Ipv4);
    let (v6, r6) = family_reading(state, Family::Ipv6);
    let family = |reachability| FamilyReachability { reachability, source: Source::Kernel };
    (Reachability::from_families(family(v4), family(v6)), Reasons { ipv4: Some(r4), ipv6: Some(r6) })
}

/// With the kernel's route decision (Linux): `online` when every representative destination
/// leads out ([`judge_answer`]), else the first problem is the reason and the lower rows of
/// the table give the level. Without it (an OS without route lookups, a state built by hand):
/// the table's `online` row, from default routes.
fn family_reading(state: &NetworkState, family: Family) -> (Level, Reason) {
    let decisions: Vec<&RouteDecision> = state.route_decisions.iter().filter(|d| d.family() == family).collect();
    if decisions.is_empty() {
        let routes_out = |iface: &Interface| {
            state.default_routes.iter().any(|r| r.family == family && r.interface_index == iface.index)
        };
        let level = family_level(state, family, routes_out, true);
        if level == Level::Online {
            if let Some(reason) = failed_gateway(state, family) {
                return (Level::Site, reason);
            }
        }
        let reason = if level == Level::Online { Reason::DefaultRoute } else { Reason::NoDefaultRoute };
        return (level, reason);
    }
    let mut first_problem = None;
    let mut first_out = None;
    for decision in &decisions {
        match judge_answer(state, family, &decision.answer) {
            // Any destination whose route is partly without carrier says so: it is the one
            // worth telling (some connections time out), whichever comes first.
            out @ Reason::PartlyNoCarrier { .. } => {
                if !matches!(first_out, Some(Reason::PartlyNoCarrier { .. })) {
                    first_out = Some(out);
                }
            }
            out @ Reason::RoutedOut { .. } => drop(first_out.get_or_insert(out)),
            problem => drop(first_problem.get_or_insert(problem)),
        }
    }
    match (first_problem, first_out) {
        (None, Some(out)) => (Level::Online, out),
        (problem, _) => {
            // The lower rows: an interface the kernel's decision leaves through counts even if
            // it is of a host-internal kind (a VPN whose peer is gone).
            let leaves = |iface: &Interface| {
                decisions
                    .iter()
                    .any(|d| matches!(&d.answer, RouteAnswer::Out { route } if route.interface_index == iface.index))
            };
            (family_level(state, family, leaves, false), problem.unwrap_or(Reason::NoRoute))
        }
    }
}

/// From default routes alone (Windows): the way out is the family's first default route (the
/// lowest metric, as the state sorts them) through a ready interface owning a usable,
/// routable address of the family; when the OS marked its gateway's neighbour entry failed
/// ([`NetworkState::gateways`]), that route. Any other entry, or none (never resolved: no
/// evidence), leaves the level alone.
fn failed_gateway(state: &NetworkState, family: Family) -> Option<Reason> {
    let qualifies = |index| {
        state.interface(index).is_some_and(|i| {
            i.is_ready()
                && i.addresses
                    .iter()
                    .any(|a| a.family() == family && a.is_usable() && !a.is_link_local() && !a.address.is_loopback())
        })
    };
    let way_out = state.default_routes.iter().find(|r| r.family == family && qualifies(r.interface_index))?;
    let gateway = way_out.gateway?;
    let failed = state
        .gateways
        .iter()
        .find(|n| n.address == gateway && n.interface_index == way_out.interface_index && n.is_unreachable())?;
    let prefix = match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let route = KernelRoute {
        prefix,
        prefix_len: 0,
        table: way_out.table,
        interface_index: way_out.interface_index,
        interface: way_out.interface.clone(),
        gateway: Some(gateway),
        source: None,
        nexthops: Vec::new(),
    };
    Some(Reason::GatewayUnreachable { route, since: failed.unanswered_since })
}

/// One answer of the kernel: [`Reason::RoutedOut`] when it leads out through a ready interface
/// with a usable source (or [`Reason::PartlyNoCarrier`] for a multipath route some of whose
/// used members have no carrier), else the reason it does not.
fn judge_answer(state: &NetworkState, family: Family, answer: &RouteAnswer) -> Reason {
    let name_of = |index: u32| state.interface(index).map(|i| i.name.clone()).unwrap_or_default();
    let named = |route: &KernelRoute| {
        let mut route = route.clone();
        route.interface = name_of(route.interface_index);
        for hop in &mut route.nexthops {
            hop.interface = name_of(hop.interface_index);
        }
        route
    };
    let route = match answer {
        RouteAnswer::Out { route } => named(route),
        RouteAnswer::NoRoute => return Reason::NoRoute,
        RouteAnswer::Rejected { reject } => return Reason::Rejected { reject: *reject },
        RouteAnswer::Expired { route } => return Reason::Expired { route: named(route) },
        RouteAnswer::Failed { error } => return Reason::LookupFailed { error: error.clone() },
    };
    let (route, without_carrier, moved) = split_multipath(state, route);
    judge_route(state, family, route, !moved, |route| match without_carrier {
        Some(without_carrier) => Reason::PartlyNoCarrier { route, without_carrier },
        None => Reason::RoutedOut { route },
    })
}

/// A multipath route is judged by every member the kernel uses (the kernel's own flags say
/// which: `dead` ones are skipped), never by the one a lookup hashed to (the hash seed differs
/// per namespace, and IPv6 may rotate among members whose neighbours are not reachable).
/// Members without carrier (flagged `linkdown`, or not ready in the state: IPv4 may flag
/// late) are named; the route is moved onto the first member with carrier (in the decoder's
/// order, by interface index) whose gateway the kernel has not marked failed, else the first
/// with carrier, else the first used one (then [`Reason::NoCarrier`]); its `source` is `None`
/// (the kernel chooses one per member; the one it chose for the lookup is checked here). The
/// names are `Some` when some members have carrier and some have not. One member (or none),
/// or a source that is not usable: the route as it is, unmoved (the flag says whether moved).
fn split_multipath(state: &NetworkState, route: KernelRoute) -> (KernelRoute, Option<Vec<String>>, bool) {
    let ready = |hop: &Nexthop| !hop.linkdown && state.interface(hop.interface_index).is_some_and(Interface::is_ready);
    let failed = |hop: &Nexthop| {
        state
            .gateways
            .iter()
            .any(|n| Some(n.address) == hop.gateway && n.interface_index == hop.interface_index && n.is_unreachable())
    };
    // IPv4 recomputes which members its hash may pick only on link events, not when
    // `ignore_routes_with_linkdown` is switched on while a member is already without carrier:
    // the reply then flags that member dead, yet flows still go there. When the kernel's own
    // answer is such a member, its flags are stale: members dead for want of carrier count.
    let chosen_dead = route.nexthops.iter().any(|h| {
        h.dead && h.interface_index == route.interface_index && (route.gateway.is_none() || h.gateway == route.gateway)
    });
    // (An interface that is down is skipped for good: IPv4 rebalances on that.)
    let up = |h: &Nexthop| state.interface(h.interface_index).is_some_and(|i| i.up);
    let used: Vec<&Nexthop> =
        route.nexthops.iter().filter(|h| h.used() || (chosen_dead && h.linkdown && up(h))).collect();
    if used.len() < 2 || !usable_source(state, &route) {
        return (route, None, false);
    }
    let mut dark: Vec<String> = Vec::new();
    for hop in used.iter().filter(|h| !ready(h)) {
        if !dark.contains(&hop.interface) {
            dark.push(hop.interface.clone());
        }
    }
    let lit: Vec<&Nexthop> = used.iter().copied().filter(|h| ready(h)).collect();
    let onto = lit.iter().find(|h| !failed(h)).or(lit.first()).unwrap_or(&used[0]);
    let (interface_index, interface, gateway) = (onto.interface_index, onto.interface.clone(), onto.gateway);
    let partly = (!lit.is_empty() && !dark.is_empty()).then_some(dark);
    (KernelRoute { interface_index, interface, gateway, source: None, ..route }, partly, true)
}

/// The checks of a route that leads out: its interface, its source (when `source`: not for a
/// route [`split_multipath`] moved onto another member, which checked it), its gateway; the
/// first that fails is the reason, else `out(route)`.
fn judge_route(
    state: &NetworkState,
    family: Family,
    route: KernelRoute,
    source: bool,
    out: impl FnOnce(KernelRoute) -> Reason,
) -> Reason {
    match state.interface(route.interface_index) {
        None => return Reason::InterfaceDown { route },
        Some(iface) if !iface.up => return Reason::InterfaceDown { route },
        Some(iface) if !iface.is_ready() => {
            let fallback = fallback(state, family, iface.index);
            return Reason::NoCarrier { route, fallback };
        }
        Some(_) => {}
    }
    if source && !usable_source(state, &route) {
        return Reason::NoSource { route };
    }
    // The gateway's neighbour entry: a failed one (or one being retried after failing) means
    // nothing gets past the first hop. Any other state, or no entry (never resolved: no
    // evidence), leaves the decision alone.
    let gateway = route.gateway.and_then(|address| {
        state.gateways.iter().find(|n| n.address == address && n.interface_index == route.interface_index)
    });
    match gateway.filter(|n| n.is_unreachable()) {
        Some(gateway) => Reason::GatewayUnreachable { since: gateway.unanswered_since, route },
        None => out(route),
    }
}

/// The source the kernel chose may live on any interface (an address on `lo` with an
/// unnumbered uplink, a delegated prefix on a LAN bridge): what matters is that it is usable
/// and routable.
fn usable_source(state: &NetworkState, route: &KernelRoute) -> bool {
    route.source.is_some_and(|source| {
        state
            .interfaces
            .iter()
            .flat_map(|i| &i.addresses)
            .any(|a| a.address == source && a.is_usable() && !a.is_link_local() && !a.address.is_loopback())
    })
}

/// The best default route of `family` through another, ready interface: where the traffic
/// would go if the kernel skipped routes through links without carrier.
fn fallback(state: &NetworkState, family: Family, skipped: u32) -> Option<Fallback> {
    state
        .default_routes
        .iter()
        .filter(|r| r.family == family && r.interface_index != skipped)
        .filter_map(|r| state.interface(r.interface_index).filter(|i| i.is_ready()).map(|i| (r.metric, &i.name)))
        .min()
        .map(|(metric, name)| Fallback { interface: name.clone(), metric })
}

/// The table's rows; `leaves(iface)` says whether the way out goes through `iface` (it then
/// counts whatever its kind), and `online` whether that row may match at all.
fn family_level(state: &NetworkState, family: Family, leaves: impl Fn(&Interface) -> bool, online: bool) -> Level {
    let mut level = Level::Disconnected;
    for iface in &state.interfaces {
        if iface.kind == InterfaceKind::Loopback || !iface.is_ready() {
            continue;
        }
        let routes_out = leaves(iface);
        if iface.kind.is_host_internal() && !routes_out {
            continue;
        }
        let mut usable = iface.addresses.iter().filter(|a| a.family() == family && a.is_usable() && !a.is_loopback());
        let best = usable.try_fold(Level::Disconnected, |best, a| {
            if a.is_link_local() {
                Ok(best.max(Level::Local))
            } else if routes_out && online {
                Err(Level::Online) // stop: nothing beats online
            } else {
                Ok(best.max(Level::Site))
            }
        });
        match best {
            Err(online) => return online,
            Ok(l) => level = level.max(l),
        }
    }
    level
}

#[cfg(test)]
#[path = "reachability_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "reason_tests.rs"]
mod reason_tests;

#[cfg(test)]
#[path = "gateway_route_tests.rs"]
mod gateway_route_tests;

#[cfg(test)]
#[path = "multipath_tests.rs"]
mod multipath_tests;
