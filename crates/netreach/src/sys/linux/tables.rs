//! The default routes of every routing table the kernel can consult, read without reading the
//! tables (a router's main table may hold a million routes; `default_routes` needs a handful).
//!
//! Which tables: those the policy rules of the family name (`ip rule`: the default rules name
//! `local`, `main` and `default`; wg-quick's 51820, tailscale's 52 ...), and the tables of the
//! VRF devices when an `l3mdev` rule sends lookups to them. A default in a table nothing
//! refers to can never be used by the kernel; see [`Tables`] for how it is kept out.
//!
//! How, per table (measured with 1,048,576 IPv4 routes in `main`, see README "Routing table at
//! scale"): a dump filtered by table and type (`NETLINK_GET_STRICT_CHK`; the kernel rejects a
//! prefix-length filter on dumps), read only as far as needed, then abandoned by closing its
//! socket (a socket with a dump in progress refuses another request):
//! - IPv4: the kernel walks a table's trie in key order, and every route whose key is
//!   `0.0.0.0` (the defaults among them) lives in the first leaf; the dump is read until a
//!   route with another key arrives. First datagram: 0.3 ms, against 750 ms for the whole
//!   table.
//! - IPv4 `local`: skipped. While no custom rule was ever added, the kernel keeps `local` and
//!   `main` in one trie, and a dump of `local` walks all of `main` before its first datagram
//!   (48 ms with a million routes); the kernel fills `local` itself with local and broadcast
//!   routes, and a unicast default put there is left out of `default_routes` (also when it
//!   changes, see `Kernel::follow`): the kernel's decision still reports it.
//! - IPv6: the kernel's fib6 walk visits a node after its children, so `::/0` comes last, and
//!   no dump filter selects defaults: each listed table is read whole, its other routes
//!   skipped by their header without being decoded ([`Routes::Defaults`]). This is the
//!   remaining bound of start-up, and the kernel sets it. With 200,000 IPv6 routes in `main`
//!   (README "Routing table at scale"): `status --json` takes about 11x as long as without
//!   them, nearly all of it in the kernel (building 200,000 messages; netreach's own share was
//!   cut from 21 to 2 ms of CPU); the same walk filtered to send no route at all still costs
//!   the kernel 30 to 90 ms, more than all of `status` without the table, so no dump however
//!   filtered reaches 1.5x. Evaluated and left:
//!   - Dump filters (`RTA_OIF`, protocol, type) select by what defaults share with the bulk: a
//!     router's BGP routes leave through the link its default does (filtered by that link the
//!     dump sends them all; by another link it costs the walk alone), often with the same
//!     protocol as a static default.
//!   - The route decision's `RTM_F_FIB_MATCH` lookups (`decision.rs`: table, metric, gateway,
//!     expiry, in tens of microseconds) answer with one route each: of the first table the
//!     rules reach, the best of a link when asked with `RTA_OIF`. IPv6 lookups take no table
//!     (`RTA_TABLE`: EINVAL under strict checking, ignored without), so a second default on a
//!     link, a default in a table an earlier rule shadows (tests/scale.rs), or one behind a
//!     rule with a selector cannot be found, while `default_routes` (shown by `status`, the
//!     exporter's metrics, `wait --interface` and `--ignore`, the probe's re-probe trigger)
//!     and the `no carrier` reason's fallback (a default through another link) need every
//!     one. A list completed in the background would make the first snapshot, and `status`
//!     which prints it, differ from the kernel's. The levels, the gateways followed and the
//!     expiry timer already come from the lookups, never from this list.
//!
//!   When a link comes back up, the IPv6 dumps are filtered by that link in the kernel
//!   (`RTA_OIF`), which then sends only its routes.
//!
//! Without strict checking (Linux before 4.20) the kernel ignores the filters, so every table
//! is read whole, once, as before.

use std::collections::BTreeSet;
use std::io;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::decode::Routes;
use super::frame::{attributes, fixed, messages, u32_of};
pub(crate) use super::listed::Tables;
use super::netlink::{Requester, Sockets};
use super::rule_message::rule_table;
use crate::model::{Family, Update};

/// `IFLA_VRF_TABLE`, `IFLA_INFO_DATA` (linux/if_link.h).
const IFLA_VRF_TABLE: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;

impl Requester {
    /// The tables the rules of both families refer to (and VRF tables behind `l3mdev` rules).
    pub(crate) fn tables(&mut self) -> io::Result<Tables> {
        let mut tables = Tables::default();
        let mut l3mdev = false;
        for (family, set) in [(AddressFamily::Inet, &mut tables.ipv4), (AddressFamily::Inet6, &mut tables.ipv6)] {
            let mut request = RuleMessage::default();
            request.header.family = family;
            let rules = self.dump_raw(RouteNetlinkMessage::GetRule(request), |payload| {
                let rule = rule_table(payload)?;
                l3mdev |= rule.l3mdev;
                set.extend(rule.table);
                Ok(())
            });
            match rules {
                // A kernel built without policy routing (or without IPv6, then nothing is
                // dumped from these): only `main` and `local` are consulted.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)) => {
                    set.extend([libc::RT_TABLE_MAIN as u32, libc::RT_TABLE_LOCAL as u32]);
                }
                other => other?,
            }
        }
        if l3mdev {
            let mut request = LinkMessage::default();
            request.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Vrf)]));
            let mut vrf = BTreeSet::new();
            self.dump_raw(RouteNetlinkMessage::GetLink(request), |payload| {
                vrf.extend(vrf_table(payload)?);
                Ok(())
            })?;
            tables.ipv4.extend(&vrf);
            tables.ipv6.extend(&vrf);
        }
        tables.l3mdev = l3mdev;
        Ok(tables)
    }

    /// Sends a dump request and hands each reply's payload to `each`; stops at the end.
    fn dump_raw(
        &mut self,
        request: RouteNetlinkMessage,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> io::Result<()> {
        let mut bytes = Vec::new();
        self.append(request, NLM_F_REQUEST | NLM_F_DUMP, &mut bytes);
        self.socket.send(&bytes, 0)?;
        loop {
            self.buffer.clear();
            self.socket.recv(&mut self.buffer, 0)?;
            for message in messages(&self.buffer) {
                let message = message.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                match message.kind {
                    k if k == libc::NLMSG_DONE as u16 => return Ok(()),
                    k if k == libc::NLMSG_ERROR as u16 => {
                        let code = i32::from_ne_bytes(
                            fixed::<4>(message.payload, "error code")
                                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                        );
                        return if code == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-code)) };
                    }
                    _ => each(message.payload).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                }
            }
        }
    }
}

impl Sockets {
    /// Reads the tables again, then the default routes in each (appended to `updates`);
    /// `false` when a dump was flagged interrupted.
    pub(crate) fn read_defaults(&mut self, updates: &mut Vec<Update>) -> io::Result<bool> {
        self.tables = self.requests.tables()?;
        let tables = self.tables.clone();
        self.defaults_in(&tables, None, updates)
    }

    /// The default routes in the listed tables of `tables`; with `through`, those of IPv6
    /// through that interface only (the kernel filters a dump it must read whole; IPv4's are
    /// all read, being few, and the caller picks).
    pub(crate) fn defaults_in(
        &mut self,
        tables: &Tables,
        through: Option<u32>,
        updates: &mut Vec<Update>,
    ) -> io::Result<bool> {
        let ipv4: Vec<u32> = tables.ipv4.iter().copied().filter(|t| tables.lists(Family::Ipv4, *t)).collect();
        // Each IPv4 dump is abandoned on a socket of its own, opened inside the namespace (one
        // helper thread for all of them when that is not this thread's).
        let open = || (0..ipv4.len()).map(|_| Requester::open()).collect::<io::Result<Vec<_>>>();
        let fresh = match &self.namespace {
            None => open()?,
            Some(namespace) => namespace.run_inside(open).map_err(|e| io::Error::other(e.to_string()))?,
        };
        let mut consistent = true;
        for (table, requester) in ipv4.into_iter().zip(fresh) {
            consistent &= table_defaults(requester, Family::Ipv4, table, None, updates, &mut self.undecodable)?;
        }
        // IPv6 dumps are read to their end: the request socket serves again afterwards.
        for &table in &tables.ipv6 {
            let requester = &mut self.requests;
            consistent &= table_defaults(requester, Family::Ipv6, table, through, updates, &mut self.undecodable)?;
        }
        Ok(consistent)
    }

    /// After a rule (or, with `l3mdev` rules, a link) changed: reads the tables again, and
    /// returns the defaults of tables now listed as added and of tables no longer listed as
    /// removed. Default routes of unlisted tables are dropped from events
    /// ([`Tables::keeps`]), so `default_routes` stays what a fresh reading would list.
    pub(crate) fn retable(&mut self) -> io::Result<Vec<Update>> {
        let fresh = self.requests.tables()?;
        let only = |a: &Tables, b: &Tables| Tables {
            ipv4: a.ipv4.difference(&b.ipv4).copied().collect(),
            ipv6: a.ipv6.difference(&b.ipv6).copied().collect(),
            l3mdev: false,
        };
        let (added, removed) = (only(&fresh, &self.tables), only(&self.tables, &fresh));
        self.tables = fresh;
        let mut updates = Vec::new();
        self.defaults_in(&added, None, &mut updates)?;
        let mut gone = Vec::new();
        self.defaults_in(&removed, None, &mut gone)?;
        updates.extend(gone.into_iter().filter_map(|u| match u {
            Update::RouteAdded(r) => Some(Update::RouteRemoved(r)),
            _ => None,
        }));
        Ok(updates)
    }
}

/// The table of a VRF device (`IFLA_LINKINFO` / `IFLA_INFO_DATA` / `IFLA_VRF_TABLE`).
fn vrf_table(payload: &[u8]) -> Result<Option<u32>, String> {
    for attribute in attributes(payload.get(16..).unwrap_or_default()) {
        let (kind, value) = attribute?;
        if kind != libc::IFLA_LINKINFO {
            continue;
        }
        for info in attributes(value) {
            let (kind, value) = info?;
            if kind == IFLA_INFO_DATA {
                for data in attributes(value) {
                    let (kind, value) = data?;
                    if kind == IFLA_VRF_TABLE {
                        return u32_of(value, "IFLA_VRF_TABLE").map(Some);
                    }
                }
            }
        }
    }
    Ok(None)
}

/// The default routes of one table (see the module's documentation), and whether the dump was
/// consistent (not flagged interrupted by a concurrent change).
fn table_defaults<R: std::borrow::BorrowMut<Requester>>(
    mut requester: R,
    family: Family,
    table: u32,
    through: Option<u32>,
    updates: &mut Vec<Update>,
    undecodable: &mut Vec<String>,
) -> io::Result<bool> {
    // An IPv4 dump gets a socket of its own: it is closed (the dump abandoned) on return.
    let requester = requester.borrow_mut();
    let strict = requester.socket.set_netlink_get_strict_chk(true).is_ok();
    let mut request = RouteMessage::default();
    request.header.address_family = if family == Family::Ipv4 { AddressFamily::Inet } else { AddressFamily::Inet6 };
    request.header.kind = RouteType::Unicast;
    request.header.table = u8::try_from(table).unwrap_or(libc::RT_TABLE_COMPAT);
    request.attributes.push(RouteAttribute::Table(table));
    request.attributes.extend(through.map(RouteAttribute::Oif));
    let mut bytes = Vec::new();
    requester.append(RouteNetlinkMessage::GetRoute(request), NLM_F_REQUEST | NLM_F_DUMP, &mut bytes);
    requester.socket.send(&bytes, 0)?;
    // IPv4 reads the other routes' keys to know when it is past the first leaf; IPv6 needs
    // only the defaults among the routes it is sent.
    let routes = if family == Family::Ipv4 { Routes::All } else { Routes::Defaults };
    let mut consistent = true;
    loop {
        let mut parsed = Vec::new();
        let done = match requester.dump_datagram(false, routes, &mut parsed, &mut consistent, undecodable) {
            Ok(done) => done,
            // A table that does not exist (yet), or a family the kernel lacks: no defaults.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EAFNOSUPPORT)) => return Ok(true),
            Err(e) => return Err(e),
        };
        // Past the first leaf of an IPv4 trie: no default can follow (see above). Without
        // strict checking the dump holds every table, so it is read to its end.
        let past = strict
            && family == Family::Ipv4
            && parsed.iter().any(|u| matches!(u, Update::RouteChanged(d, _) if !d.is_unspecified()));
        let wanted = |u: &Update| match u {
            Update::RouteAdded(r) => strict || r.table == table,
            _ => false,
        };
        updates.extend(parsed.into_iter().filter(wanted));
        if done || past {
            return Ok(consistent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VRF link message (this kernel has no VRF module, so a fixture): struct ifinfomsg,
    /// then IFLA_LINKINFO { IFLA_INFO_KIND "vrf", IFLA_INFO_DATA { IFLA_VRF_TABLE 10 } }.
    #[test]
    fn a_vrf_link_names_its_table() {
        let mut message = vec![0u8; 16];
        let data = [8u8, 0, IFLA_VRF_TABLE as u8, 0, 10, 0, 0, 0];
        let mut info = vec![8, 0, 1, 0, b'v', b'r', b'f', 0]; // IFLA_INFO_KIND
        info.extend([12, 0, IFLA_INFO_DATA as u8, 0]);
        info.extend(data);
        message.extend([(info.len() + 4) as u8, 0, libc::IFLA_LINKINFO as u8, 0]);
        message.extend(&info);
        assert_eq!(vrf_table(&message), Ok(Some(10)));
        assert_eq!(vrf_table(&message[..16]), Ok(None));
        assert!(vrf_table(&message[..message.len() - 2]).is_err(), "truncated: an error, not a panic");
    }
}
