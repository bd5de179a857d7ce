//! The changer: makes kernel changes over its own rtnetlink socket inside the namespace and
//! stamps each one right before it is sent.
//!
//! Using a socket rather than spawning `ip` keeps process start-up out of the figures: the
//! kernel handles the request synchronously inside `send()`, so the notification is queued to
//! every listener before `send()` returns, and t0 marks the earliest moment a listener could
//! possibly know.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::util::{in_namespace, Fallible};

/// How long the kernel may take to acknowledge a request before the measurement fails.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// An rtnetlink socket bound to one namespace, making one acknowledged change at a time.
pub struct Changer {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl Changer {
    /// Opens the socket inside the namespace at `path`.
    pub fn open(path: &Path) -> Fallible<Changer> {
        let socket = in_namespace(path, || {
            let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
            socket.bind_auto().map_err(|e| format!("binding the netlink socket: {e}"))?;
            Ok(socket)
        })?;
        let timeout = TimeVal::milliseconds(ACK_TIMEOUT.as_millis() as i64);
        setsockopt(&socket, ReceiveTimeout, &timeout).map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
        Ok(Changer { socket, sequence: 0, buffer: Vec::with_capacity(16 * 1024) })
    }

    /// Adds `address`/32 to the interface with `index`; returns when the request was sent.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr) -> Fallible<Instant> {
        let message = RouteNetlinkMessage::NewAddress(address_message(index, address));
        self.request(message, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Removes `address`/32 from the interface with `index`.
    pub fn remove_address(&mut self, index: u32, address: Ipv4Addr) -> Fallible<Instant> {
        self.request(RouteNetlinkMessage::DelAddress(address_message(index, address)), 0)
    }

    /// Adds the IPv4 default route via `gateway` out of the interface with `index`.
    pub fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> Fallible<Instant> {
        let message = RouteNetlinkMessage::NewRoute(default_route_message(index, gateway));
        self.request(message, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Removes that default route again.
    pub fn remove_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> Fallible<Instant> {
        self.request(RouteNetlinkMessage::DelRoute(default_route_message(index, gateway)), 0)
    }

    /// Sets or clears `IFF_UP` on the interface with `index` (`ip link set X up|down`).
    pub fn set_link_up(&mut self, index: u32, up: bool) -> Fallible<Instant> {
        let mut link = LinkMessage::default();
        link.header.index = index;
        link.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        link.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(link), 0)
    }

    /// Sends one request with `NLM_F_ACK` and waits for the kernel's answer. Returns t0, taken
    /// after serialising and right before `send()`.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> Fallible<Instant> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        message.finalize();
        let mut bytes = vec![0; message.buffer_len()];
        message.serialize(&mut bytes);

        let t0 = Instant::now();
        self.socket.send(&bytes, 0).map_err(|e| format!("sending a netlink request: {e}"))?;
        self.wait_ack()?;
        Ok(t0)
    }

    /// Reads until the acknowledgement of the current request; a NACK is an error.
    fn wait_ack(&mut self) -> Fallible<()> {
        loop {
            self.buffer.clear();
            self.socket.recv(&mut self.buffer, 0).map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock => format!("the kernel did not acknowledge within {ACK_TIMEOUT:?}"),
                _ => format!("receiving a netlink ack: {e}"),
            })?;
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buffer)
                .map_err(|e| format!("undecodable netlink reply: {e}"))?;
            if reply.header.sequence_number != self.sequence {
                continue; // a late answer to an earlier request
            }
            return match reply.payload {
                NetlinkPayload::Error(e) if e.code.is_none() => Ok(()),
                NetlinkPayload::Error(e) => Err(format!("the kernel refused the change: {}", e.to_io())),
                other => Err(format!("unexpected netlink reply {other:?}")),
            };
        }
    }
}

fn address_message(index: u32, address: Ipv4Addr) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = 32;
    message.header.scope = AddressScope::Universe;
    message.header.index = index;
    message.attributes =
        vec![AddressAttribute::Local(IpAddr::V4(address)), AddressAttribute::Address(IpAddr::V4(address))];
    message
}

fn default_route_message(index: u32, gateway: Ipv4Addr) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = 0;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Static;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway)), RouteAttribute::Oif(index)];
    message
}
