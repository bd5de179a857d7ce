//! One route message (`RTM_NEWROUTE`, `RTM_DELROUTE`, a lookup's reply), decoded by hand for
//! the reasons given in `decode.rs`: the fields netreach reads, every length checked (pure;
//! tested through `decode_tests.rs`).

use std::net::IpAddr;

use super::frame::{align, attributes, fixed, ip, u32_of};
use crate::model::{DefaultRoute, Family};

/// What netreach reads from a route message.
#[derive(Debug, Default)]
pub(super) struct Route {
    pub family: Option<Family>,
    pub destination_len: u8,
    pub destination: Option<IpAddr>,
    pub unicast: bool,
    /// `RTN_LOCAL`: delivered on this host.
    pub local: bool,
    pub cloned: bool,
    pub table: u32,
    pub gateway: Option<IpAddr>,
    /// `RTA_OIF`: the interface of a single-path route.
    pub oif: Option<u32>,
    pub metric: u32,
    /// `RTA_MULTIPATH`: (interface, gateway) of each next hop.
    pub hops: Option<Vec<(u32, Option<IpAddr>)>>,
}

impl Route {
    pub(super) fn decode(payload: &[u8]) -> Result<Route, String> {
        let h = fixed::<12>(payload, "route header")?;
        let mut route = Route {
            family: match i32::from(h[0]) {
                libc::AF_INET => Some(Family::Ipv4),
                libc::AF_INET6 => Some(Family::Ipv6),
                _ => None,
            },
            destination_len: h[1],
            table: u32::from(h[4]),
            unicast: h[7] == libc::RTN_UNICAST,
            local: h[7] == libc::RTN_LOCAL,
            cloned: u32::from_ne_bytes([h[8], h[9], h[10], h[11]]) & libc::RTM_F_CLONED != 0,
            ..Default::default()
        };
        for attribute in attributes(&payload[12..]) {
            let (kind, value) = attribute?;
            match kind {
                libc::RTA_DST => route.destination = ip(value),
                libc::RTA_GATEWAY => route.gateway = ip(value),
                libc::RTA_OIF => route.oif = Some(u32_of(value, "RTA_OIF")?),
                libc::RTA_PRIORITY => route.metric = u32_of(value, "RTA_PRIORITY")?,
                libc::RTA_TABLE => route.table = u32_of(value, "RTA_TABLE")?,
                libc::RTA_MULTIPATH => route.hops = Some(next_hops(value)?),
                _ => {}
            }
        }
        Ok(route)
    }

    /// The default routes this message describes: one per next hop, none when it is not a
    /// unicast default route (or is a cache clone).
    pub(super) fn defaults(&self) -> impl Iterator<Item = DefaultRoute> + '_ {
        let family = self.family.filter(|_| self.destination_len == 0 && self.unicast && !self.cloned);
        let base = family.map(|family| DefaultRoute {
            family,
            gateway: self.gateway,
            interface: String::new(),
            interface_index: self.oif.unwrap_or(0),
            metric: self.metric,
            table: self.table,
        });
        let hops: Vec<DefaultRoute> = match (&base, &self.hops) {
            (Some(base), Some(hops)) => hops
                .iter()
                .map(|&(interface_index, gateway)| DefaultRoute { gateway, interface_index, ..base.clone() })
                .collect(),
            (Some(base), None) => vec![base.clone()],
            (None, _) => Vec::new(),
        };
        hops.into_iter()
    }
}

/// `RTA_MULTIPATH`: a list of `struct rtnexthop` (length, flags, hops, interface index), each
/// followed by its own attributes.
fn next_hops(mut bytes: &[u8]) -> Result<Vec<(u32, Option<IpAddr>)>, String> {
    let mut hops = Vec::new();
    while !bytes.is_empty() {
        let h = fixed::<8>(bytes, "next hop")?;
        let len = usize::from(u16::from_ne_bytes([h[0], h[1]]));
        if len < 8 || len > bytes.len() {
            return Err(format!("next hop of {len} bytes in the {} bytes left", bytes.len()));
        }
        let mut gateway = None;
        for attribute in attributes(&bytes[8..len]) {
            let (kind, value) = attribute?;
            if kind == libc::RTA_GATEWAY {
                gateway = ip(value);
            }
        }
        hops.push((u32::from_ne_bytes([h[4], h[5], h[6], h[7]]), gateway));
        bytes = bytes.get(align(len)..).unwrap_or_default();
    }
    Ok(hops)
}
