//! The rule (pure): validation at the door, prefix maths, and the reasons table that turns
//! the state plus the kernel's route answer into a path's status. See [`crate::PathMonitor`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::lookup::RouteLookup;
use crate::model::{Address, Error, Interface, NetworkState, PathState, PathStatus, Unreachable};

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

/// The interface owning `local` and the address entry, if any.
fn owner(state: &NetworkState, local: IpAddr) -> Option<(&Interface, &Address)> {
    state.interfaces.iter().find_map(|i| i.addresses.iter().find(|a| a.address == local).map(|a| (i, a)))
}

/// Checks what only the state can tell when a path is created: someone owns the local
/// address, and the remote is not that subnet's broadcast address.
pub(crate) fn check_against_state(state: &NetworkState, local: IpAddr, remote: IpAddr) -> Result<(), Error> {
    let Some((_, address)) = owner(state, local) else {
        return Err(Error::invalid_input(format!(
            "no interface owns the local address {local} (see `netreach status` for this machine's addresses)"
        )));
    };
    if ipv4_broadcast(address) == Some(remote) {
        return Err(Error::invalid_input(format!(
            "remote address {remote} is the broadcast address of {local}/{}: only unicast paths are monitored",
            address.prefix_len
        )));
    }
    Ok(())
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

/// Whether [`evaluate`] will ask for the kernel's route: the local address is owned and
/// usable and its interface is ready. Lets a reaction batch its lookups up front.
pub(crate) fn wants_route(state: &NetworkState, local: IpAddr) -> bool {
    owner(state, local).is_some_and(|(iface, a)| !a.flags.dad_failed && !a.flags.tentative && iface.is_ready())
}

/// Applies the rule (see [`crate::PathMonitor`]) to one path: the reasons, checked in order.
/// `since` is the lookup's opinion clock when the path was made.
pub(crate) fn evaluate(
    state: &NetworkState,
    local: IpAddr,
    remote: IpAddr,
    since: u64,
    lookup: &mut dyn RouteLookup,
    names: &mut Names,
) -> Evaluation {
    let evaluation = |state, owner, route_interface| Evaluation {
        status: PathStatus { local, remote, state },
        owner,
        route_interface,
    };
    let Some((iface, address)) = owner(state, local) else {
        let state =
            PathState::Unreachable { reason: Unreachable::LocalAddressGone, interface: None, same_subnet: false };
        return evaluation(state, None, None);
    };
    let name = names.of(iface);
    let same_subnet = in_prefix(remote, local, address.prefix_len);
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
    if !iface.up {
        return unreachable(Unreachable::InterfaceDown { interface: name.clone() }, None);
    }
    if !iface.is_ready() {
        return unreachable(Unreachable::NoCarrier { interface: name.clone() }, None);
    }
    match lookup.route(local, remote) {
        Err(e) => unreachable(Unreachable::LookupFailed { message: e.to_string() }, None),
        Ok(None) => unreachable(Unreachable::NoRoute, None),
        Ok(Some(out)) if out != iface.index => {
            let actual = state.interface(out).map(|i| names.of(i)).unwrap_or_else(|| Arc::from(format!("#{out}")));
            unreachable(Unreachable::RouteViaOtherInterface { expected: name.clone(), actual }, Some(out))
        }
        Ok(Some(out)) if lookup.connectivity(out, local, remote, same_subnet, since) == Some(false) => {
            unreachable(Unreachable::NoConnectivity { interface: name.clone() }, Some(out))
        }
        Ok(Some(out)) => evaluation(PathState::Reachable { interface: name.clone(), same_subnet }, own, Some(out)),
    }
}
