//! The kernel's route decision for the nameservers: the observed input of the diagnosis's DNS
//! layer ([`NetworkState::nameserver_routes`]).
//!
//! The engine asks these lookups on its own thread, through the same [`RouteLookup`] the paths
//! use (on Linux one `RTM_GETROUTE` datagram for all nameservers; no packet is sent), after a
//! batch of updates from the source that holds one that can change their answers: new
//! nameservers, a link, an address, a default route, a rule, the kernel's decision for the
//! internet, or a route whose prefix contains a nameserver. Any other batch (verdicts,
//! unrelated routes) asks nothing. They are asked once the source is idle (`Kernel::busy`):
//! after the batch's own events are published, and together with the kernel's route decision
//! that the same change makes the Linux source ask (folded into that decision's change,
//! `Engine::decided`), so one change asks them once and the diagnosis's DNS layer changes in
//! one batch with the levels. Asked first, the round trip delayed every event of a relevant
//! change (`netreach-bench --compare`: default route removal p50 52 -> 88
//! µs, link down 80 -> 120 µs, under load); asked between the change and the decision, every
//! change asked them twice and published the diagnosis twice.

//! Route changes for a nameserver's prefix reach the engine even while the kernel source
//! filters route changes that cannot change the internet decision: the source is told the
//! nameservers' addresses ([`RouteLookup::watch_destinations`]) whenever they change, before
//! they are looked up, so no change between the two is lost.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::model::{DnsConfig, EventKind, NameserverAnswer, NameserverRoute, NetworkState, Snapshot, Update};
use crate::path::{in_prefix, Query, RouteLookup};

/// Whether a batch of updates holds one that can change the nameservers' routes (new
/// nameservers, or a change that can move one); `state` is the state before the batch.
pub(super) fn needed(state: &NetworkState, updates: &[Update]) -> bool {
    let mut current = addresses(state.dns.as_ref());
    let mut needed = false;
    for update in updates {
        needed |= match update {
            Update::Dns(config) => {
                let next = addresses(Some(config));
                let changed = next != current;
                current = next;
                changed
            }
            other => relevant(other, &current),
        };
    }
    needed
}

/// The routes of `state`'s nameservers asked again (after the source is told to pass route
/// changes for them): `Some` when they differ from the state's.
pub(super) fn refresh(state: &NetworkState, lookup: &mut dyn RouteLookup) -> Option<Vec<NameserverRoute>> {
    lookup.watch_destinations(&addresses(state.dns.as_ref()));
    let routes = look_up(lookup, state, state.dns.as_ref());
    (routes != state.nameserver_routes).then_some(routes)
}

/// Puts fresh routes into the state: observed input with no event of its own (the diagnosis
/// it changes is what subscribers hear about).
pub(super) fn set(state: &mut Arc<Snapshot>, routes: Vec<NameserverRoute>) -> Vec<EventKind> {
    Arc::make_mut(state).state.nameserver_routes = routes;
    Vec::new()
}

/// Whether `update` can change the kernel's answer for one of `nameservers`.
pub(super) fn relevant(update: &Update, nameservers: &[IpAddr]) -> bool {
    if nameservers.is_empty() {
        return false;
    }
    match update {
        Update::RouteChanged(prefix, len) => nameservers.iter().any(|n| in_prefix(*n, *prefix, *len)),
        Update::Verdict(_) | Update::Dns(_) | Update::Gateways(_) => false,
        _ => true,
    }
}

/// The nameservers' addresses, in the resolver's order, without repeats.
pub(super) fn addresses(dns: Option<&DnsConfig>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for n in dns.map(|d| d.nameservers.as_slice()).unwrap_or_default() {
        if !out.contains(&n.address) {
            out.push(n.address);
        }
    }
    out
}

/// Asks the kernel where each nameserver of `dns` is routed, as a query from an unbound
/// socket would be (a link-local server on the link its configuration names).
pub(super) fn look_up(
    lookup: &mut dyn RouteLookup,
    state: &NetworkState,
    dns: Option<&DnsConfig>,
) -> Vec<NameserverRoute> {
    let Some(dns) = dns else { return Vec::new() };
    let mut asked: Vec<(IpAddr, Query)> = Vec::new();
    for n in &dns.nameservers {
        if asked.iter().any(|(a, _)| *a == n.address) {
            continue;
        }
        let local = match n.address {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let scope = n.interface.as_deref().and_then(|name| state.interface_by_name(name)).map(|i| i.index);
        asked.push((n.address, Query { local, remote: n.address, scope, mark: None, uid: None }));
    }
    if asked.is_empty() {
        return Vec::new();
    }
    let queries: Vec<Query> = asked.iter().map(|(_, q)| *q).collect();
    let answers = lookup.routes(&queries);
    asked
        .into_iter()
        .zip(answers)
        .map(|((nameserver, _), answer)| {
            let answer = match answer {
                Ok(Some(route)) if route.local => NameserverAnswer::Local,
                Ok(Some(route)) => NameserverAnswer::Out {
                    interface_index: route.interface,
                    interface: state.interface(route.interface).map(|i| i.name.clone()).unwrap_or_default(),
                },
                Ok(None) => NameserverAnswer::NoRoute,
                Err(e) => NameserverAnswer::Failed { error: e.to_string() },
            };
            NameserverRoute { nameserver, answer }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DnsConfig, Family, Nameserver};
    use crate::path::{Answer, Route};

    /// Answers like a host with 192.0.2.0/24 on link 2 and nothing else; counts the questions.
    #[derive(Default)]
    struct OneLink {
        asked: Vec<Query>,
    }

    impl RouteLookup for OneLink {
        fn route(&mut self, query: &Query) -> Answer {
            self.asked.push(*query);
            match query.remote {
                IpAddr::V4(a) if a.octets()[..3] == [192, 0, 2] => Ok(Some(Route::out(2))),
                IpAddr::V4(a) if a.is_loopback() => Ok(Some(Route { interface: 1, local: true })),
                IpAddr::V6(_) => Err(std::io::Error::other("lookup failed")),
                _ => Ok(None),
            }
        }
    }

    fn config(servers: &[&str]) -> DnsConfig {
        let nameservers = servers.iter().map(|s| Nameserver { address: s.parse().unwrap(), interface: None }).collect();
        DnsConfig { nameservers, ..DnsConfig::default() }
    }

    #[test]
    fn each_nameserver_is_asked_once_and_answered_in_order() {
        let dns = config(&["192.0.2.53", "198.51.100.53", "127.0.0.1", "192.0.2.53", "2001:db8::53"]);
        let mut lookup = OneLink::default();
        let routes = look_up(&mut lookup, &NetworkState::default(), Some(&dns));
        assert_eq!(lookup.asked.len(), 4, "the repeated server is asked once");
        assert!(lookup.asked.iter().all(|q| q.local.is_unspecified() && q.scope.is_none()));
        let answers: Vec<&NameserverAnswer> = routes.iter().map(|r| &r.answer).collect();
        assert_eq!(answers[0], &NameserverAnswer::Out { interface_index: 2, interface: String::new() });
        assert_eq!(answers[1], &NameserverAnswer::NoRoute);
        assert_eq!(answers[2], &NameserverAnswer::Local);
        assert!(matches!(answers[3], NameserverAnswer::Failed { error } if error == "lookup failed"));
        assert!(look_up(&mut lookup, &NetworkState::default(), None).is_empty());
    }

    #[test]
    fn a_batch_is_asked_about_once_and_only_when_it_can_move_a_nameserver() {
        let verdict = || Update::Verdict(crate::Verdict::new(crate::Source::Probe));
        let mut state = NetworkState { dns: Some(config(&["192.0.2.53"])), ..NetworkState::default() };
        assert!(needed(&state, &[Update::LinkRemoved(3), verdict(), Update::RulesChanged(Family::Ipv4)]));
        assert!(!needed(&state, &[verdict(), verdict()]));
        assert!(needed(&state, &[Update::Dns(config(&["198.51.100.53"]))]), "new nameservers");
        assert!(!needed(&state, &[Update::Dns(config(&["192.0.2.53"]))]), "the same ones again");
        let mut lookup = OneLink::default();
        let routes = refresh(&state, &mut lookup).expect("new answers");
        assert_eq!(lookup.asked.len(), 1, "one question for the batch");
        state.nameserver_routes = routes;
        assert!(refresh(&state, &mut lookup).is_none(), "the same answers are no change");
    }

    #[test]
    fn only_updates_that_can_move_a_nameserver_are_relevant() {
        let servers: Vec<IpAddr> = vec!["192.0.2.53".parse().unwrap()];
        let route = |p: &str, len| Update::RouteChanged(p.parse().unwrap(), len);
        assert!(relevant(&route("192.0.2.0", 24), &servers));
        assert!(relevant(&route("192.0.0.0", 16), &servers));
        assert!(!relevant(&route("198.51.100.0", 24), &servers));
        assert!(!relevant(&route("2001:db8::", 32), &servers));
        assert!(relevant(&Update::RulesChanged(Family::Ipv4), &servers));
        assert!(relevant(&Update::LinkRemoved(2), &servers));
        assert!(!relevant(&Update::Verdict(crate::Verdict::new(crate::Source::Probe)), &servers));
        assert!(!relevant(&Update::LinkRemoved(2), &[]), "no nameserver: nothing to ask");
    }
}
