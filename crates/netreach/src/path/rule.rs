//! The rule (pure): validation at the door, prefix maths, and the reasons table that turns
//! the state plus the kernel's route answer into a path's status. See [`crate::PathMonitor`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::lookup::{Query, Route, RouteLookup};
use crate::model::{Address, Error, Interface, NetworkState, PathOptions, PathState, PathStatus, Unreachable};

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address it carries.
pub(crate) fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Checks a (local, remote) pair at the door; returns them normalised.
///
/// ```
/// use netreach::validate_path;
/// let (l, r) = validate_path("::ffff:192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap()).unwrap();
/// assert_eq!(l.to_string(), "192.0.2.10");
/// assert!(validate_path("192.0.2.10".parse().unwrap(), "127.0.0.1".parse().unwrap()).is_err());
/// ```
pub fn validate_path(local: IpAddr, remote: IpAddr) -> Result<(IpAddr, IpAddr), Error> {
    let (local, remote) = (normalise(local), normalise(remote));
    let bad = |msg: String| Err(Error::invalid_input(msg));
    if local.is_unspecified() {
        return bad(format!(
            "local address {local} is unspecified: pass the address the connection is bound to (a connected socket's local address)"
        ));
    }
    if remote.is_unspecified() {
        return bad(format!("remote address {remote} is unspecified"));
    }
    if remote.is_loopback() {
        return bad(format!(
            "remote address {remote} is loopback: traffic to it never leaves this machine, so its path is not monitored (it is always reachable)"
        ));
    }
    if local.is_loopback() {
        return bad(format!("local address {local} is loopback: a connection from it cannot reach {remote}"));
    }
    if local.is_ipv4() != remote.is_ipv4() {
        return bad(format!(
            "local address {local} and remote address {remote} are of different families; a connection's ends share one"
        ));
    }
    if remote.is_multicast() || local.is_multicast() {
        return bad(format!("{remote} or {local} is a multicast address: only unicast paths are monitored"));
    }
    if remote == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return bad(format!("remote address {remote} is the broadcast address: only unicast paths are monitored"));
    }
    Ok((local, remote))
}

/// The first and last address of `network/prefix_len`.
pub(crate) fn prefix_bounds(network: IpAddr, prefix_len: u8) -> (IpAddr, IpAddr) {
    match network {
        IpAddr::V4(n) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len.min(32))).unwrap_or(0);
            let low = u32::from(n) & mask;
            (IpAddr::V4(low.into()), IpAddr::V4((low | !mask).into()))
        }
        IpAddr::V6(n) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128))).unwrap_or(0);
            let low = u128::from(n) & mask;
            (IpAddr::V6(low.into()), IpAddr::V6((low | !mask).into()))
        }
    }
}

/// True when `ip` lies in `network/prefix_len` (never across families).
pub(crate) fn in_prefix(ip: IpAddr, network: IpAddr, prefix_len: u8) -> bool {
    let (low, high) = prefix_bounds(network, prefix_len);
    ip.is_ipv4() == network.is_ipv4() && low <= ip && ip <= high
}

/// The subnet broadcast address of an IPv4 address, when the subnet has one (/30 and wider).
fn ipv4_broadcast(address: &Address) -> Option<IpAddr> {
    match address.address {
        IpAddr::V4(a) if address.prefix_len <= 30 => {
            let host = u32::MAX >> address.prefix_len;
            Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) | host)))
        }
        _ => None,
    }
}

/// True for IPv6 link-local unicast addresses (fe80::/10): the same address is a different
/// host on every link, so such a path needs its link (a scope id).
pub(crate) fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// The interface owning `local` and the address entry, if any. A link-local address is looked
/// for only on its link `scope`, when known: two links may both carry it.
fn owner(state: &NetworkState, local: IpAddr, scope: Option<u32>) -> Option<(&Interface, &Address)> {
    let on_link = |i: &&Interface| scope.is_none() || !is_link_local(local) || scope == Some(i.index);
    state
        .interfaces
        .iter()
        .filter(on_link)
        .find_map(|i| i.addresses.iter().find(|a| a.address == local).map(|a| (i, a)))
}

/// A scope id as given (`None` or 0: none), checked: only link-local addresses take one, and
/// it must name an interface.
fn given_scope(state: &NetworkState, ip: IpAddr, scope: Option<u32>, end: &str) -> Result<Option<u32>, Error> {
    match scope.filter(|&index| index != 0) {
        None => Ok(None),
        Some(index) if !is_link_local(ip) => Err(Error::invalid_input(format!(
            "the {end} address {ip} has a scope id ({index}), but only IPv6 link-local addresses (fe80::/10) take one"
        ))),
        Some(index) if state.interface(index).is_none() => Err(Error::invalid_input(format!(
            "the scope id of the {end} address {ip} names interface index {index}, which does not exist (see `netreach status`)"
        ))),
        Some(index) => Ok(Some(index)),
    }
}

/// Checks what only the state can tell when a path is created, and settles its link: someone
/// owns the local address, the remote is not that subnet's broadcast address, and a path with
/// an IPv6 link-local end is on exactly one link: the scope id given with either end (both
/// must agree), else the only interface owning a link-local local address. Returns that
/// link's index (`None` when neither end is link-local): lookups are made on it (`RTA_OIF`).
pub(crate) fn check_against_state(
    state: &NetworkState,
    local: IpAddr,
    remote: IpAddr,
    scopes: [Option<u32>; 2],
) -> Result<Option<u32>, Error> {
    let name = |index: u32| state.interface(index).map_or_else(|| format!("#{index}"), |i| i.name.clone());
    let given = match (given_scope(state, local, scopes[0], "local")?, given_scope(state, remote, scopes[1], "remote")?) {
        (Some(l), Some(r)) if l != r => {
            return Err(Error::invalid_input(format!(
                "the local address {local}%{} and the remote address {remote}%{} are on different links; a link-local path stays on one link",
                name(l),
                name(r)
            )))
        }
        (l, r) => l.or(r),
    };
    let owners: Vec<&Interface> =
        state.interfaces.iter().filter(|i| i.addresses.iter().any(|a| a.address == local)).collect();
    let Some(first) = owners.first() else {
        return Err(Error::invalid_input(format!(
            "no interface owns the local address {local} (see `netreach status` for this machine's addresses)"
        )));
    };
    let scope = match given {
        Some(index) if is_link_local(local) && !owners.iter().any(|i| i.index == index) => {
            return Err(Error::invalid_input(format!(
                "no interface owns the local address {local} on link {} (scope id {index})",
                name(index)
            )))
        }
        None if is_link_local(local) && owners.len() > 1 => {
            let names: Vec<&str> = owners.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::invalid_input(format!(
                "the link-local address {local} is on several links ({}): give its scope id, e.g. {local}%{}",
                names.join(", "),
                first.name
            )));
        }
        None if is_link_local(local) => Some(first.index),
        None if is_link_local(remote) => {
            return Err(Error::invalid_input(format!(
                "the link-local remote address {remote} needs a scope id naming its link (e.g. {remote}%{}): it is a different host on every link",
                first.name
            )))
        }
        scope => scope,
    };
    let address = owner(state, local, scope).map(|(_, a)| a);
    if let Some(address) = address.filter(|a| ipv4_broadcast(a) == Some(remote)) {
        return Err(Error::invalid_input(format!(
            "remote address {remote} is the broadcast address of {local}/{}: only unicast paths are monitored",
            address.prefix_len
        )));
    }
    Ok(scope)
}

/// The result of evaluating one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evaluation {
    pub status: PathStatus,
    /// Index of the interface owning the local address.
    pub owner: Option<u32>,
    /// Index of the interface the kernel's route leaves through.
    pub route_interface: Option<u32>,
}

/// Interface names as shared strings, so many path statuses cost one allocation per name.
#[derive(Default)]
pub(crate) struct Names(HashMap<u32, Arc<str>>);

impl Names {
    fn of(&mut self, iface: &Interface) -> Arc<str> {
        let name = self.0.entry(iface.index).or_insert_with(|| Arc::from(iface.name.as_str()));
        if **name != *iface.name {
            *name = Arc::from(iface.name.as_str()); // renamed since cached
        }
        name.clone()
    }
}

/// Which routes [`evaluate`] asks the kernel for, for paths from one local address (on one
/// link): `None`, none (the address is gone or not usable); `Some(true)`, every remote's;
/// `Some(false)`, its interface is down or has no carrier, so only for remotes that are
/// this host's own addresses ([`is_own_address`]). Lets a reaction batch its lookups up front.
pub(crate) fn route_need(state: &NetworkState, local: IpAddr, scope: Option<u32>) -> Option<bool> {
    let (iface, address) = owner(state, local, scope)?;
    (!address.flags.dad_failed && !address.flags.tentative).then(|| iface.is_ready())
}

/// True when some interface of this host has `ip`. Only the kernel says whether traffic to it
/// is delivered here (a local route); this says when asking can change the answer for a path
/// whose interface is down or has no carrier. Without it a link going down would cost one
/// lookup per path on it. Remotes inside a `local` route that are nobody's address (AnyIP,
/// `ip route add local PREFIX dev lo`) are therefore judged by their local link's state
/// while it is down.
pub(crate) fn is_own_address(state: &NetworkState, ip: IpAddr) -> bool {
    state.interfaces.iter().any(|i| i.addresses.iter().any(|a| a.address == ip))
}

/// Applies the rule (see [`crate::PathMonitor`]) to one path: the reasons, checked in order.
/// `since` is the lookup's opinion clock when the path was made.
pub(crate) fn evaluate(
    state: &NetworkState,
    query: &Query,
    since: u64,
    lookup: &mut dyn RouteLookup,
    names: &mut Names,
) -> Evaluation {
    let options = PathOptions { mark: query.mark, uid: query.uid };
    let evaluation = |state, owner, route_interface| Evaluation {
        status: PathStatus { local: query.local, remote: query.remote, options, state },
        owner,
        route_interface,
    };
    let Some((iface, address)) = owner(state, query.local, query.scope) else {
        let state =
            PathState::Unreachable { reason: Unreachable::LocalAddressGone, interface: None, same_subnet: false };
        return evaluation(state, None, None);
    };
    let name = names.of(iface);
    let same_subnet = in_prefix(query.remote, query.local, address.prefix_len);
    let own = Some(iface.index);
    let unreachable = |reason, route_interface| {
        let state = PathState::Unreachable { reason, interface: Some(name.clone()), same_subnet };
        evaluation(state, own, route_interface)
    };
    if address.flags.dad_failed {
        return unreachable(Unreachable::LocalAddressDadFailed, None);
    }
    if address.flags.tentative {
        return unreachable(Unreachable::LocalAddressTentative, None);
    }
    let ready = iface.is_ready();
    let answer = (ready || is_own_address(state, query.remote)).then(|| lookup.route(query));
    if let Some(Ok(Some(route @ Route { local: true, .. }))) = answer {
        // The kernel delivers it on this host (a local route over the loopback): the local
        // interface's own link does not carry it.
        let state = PathState::Reachable { interface: name.clone(), same_subnet };
        return evaluation(state, own, Some(route.interface));
    }
    if !iface.up {
        return unreachable(Unreachable::InterfaceDown { interface: name.clone() }, None);
    }
    let Some(answer) = answer.filter(|_| ready) else {
        return unreachable(Unreachable::NoCarrier { interface: name.clone() }, None);
    };
    match answer {
        Err(e) => unreachable(Unreachable::LookupFailed { message: e.to_string() }, None),
        Ok(None) => unreachable(Unreachable::NoRoute, None),
        Ok(Some(Route { interface: out, .. })) if out != iface.index => {
            let actual = state.interface(out).map(|i| names.of(i)).unwrap_or_else(|| Arc::from(format!("#{out}")));
            unreachable(Unreachable::RouteViaOtherInterface { expected: name.clone(), actual }, Some(out))
        }
        Ok(Some(Route { interface: out, .. }))
            if lookup.connectivity(out, query.local, query.remote, same_subnet, since) == Some(false) =>
        {
            unreachable(Unreachable::NoConnectivity { interface: name.clone() }, Some(out))
        }
        Ok(Some(Route { interface: out, .. })) => {
            evaluation(PathState::Reachable { interface: name.clone(), same_subnet }, own, Some(out))
        }
    }
}
