//! A kernel-side filter on the event socket (classic BPF, as NetworkManager attaches to its
//! netlink socket): route messages that cannot change an answer are dropped in the kernel, so
//! a router's BGP churn never wakes the monitor.
//!
//! A route message is dropped only when it is proven irrelevant: not a default route
//! (`rtm_dst_len` != 0), laid out as the kernel lays out route notifications (`RTA_TABLE`
//! first, then `RTA_DST`), and its prefix contains none of the representative destinations of
//! the kernel's route decision ([`super::decision`]) nor any of the extra destinations the
//! engine asks to follow (the nameservers, whose routes the diagnosis reads). Anything else (links, addresses, rules,
//! nexthops, netconf, an unexpected layout) is passed. While path monitors exist every route
//! message is passed (their remotes may lie in any prefix), so the filter is detached then.
//!
//! Hand-written because no maintained crate builds netlink socket filters; it is a dozen
//! instructions, and the tests below run it against the kernel's own interpreter.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use super::decision::REPRESENTATIVES;

const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;

/// Offsets in a notification: `struct nlmsghdr` (16 bytes), then `struct rtmsg` (12), then
/// the attributes.
const TYPE: u32 = 4;
const FAMILY: u32 = 16;
const DST_LEN: u32 = 17;
const FIRST_ATTR: u32 = 28;
const DST_VALUE: u32 = FIRST_ATTR + 8 + 4;

/// Where a jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Accept,
    Ipv6,
    ShortIpv6,
}

enum Op {
    Plain(u16, u32),
    Jump(u16, u32, To, To),
}

/// The value classic BPF loads for a field stored in host order: loads are big-endian.
fn host16(value: u16) -> u32 {
    u32::from(u16::from_be_bytes(value.to_ne_bytes()))
}

/// Most extra destinations the program holds (each IPv4 one is four instructions, and jumps
/// reach at most 255 ahead); with more, the source keeps the filter off.
pub(super) const MAX_EXTRA: usize = 16;

/// The program, in the kernel's format: it passes route changes for the representative
/// destinations and for `extra`.
pub(super) fn program(extra: &[IpAddr]) -> Vec<libc::sock_filter> {
    let destinations: Vec<IpAddr> = REPRESENTATIVES.iter().chain(extra).copied().collect();
    use libc::{
        BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_JEQ, BPF_JGT, BPF_JMP, BPF_K, BPF_LD, BPF_MISC, BPF_NEG,
        BPF_RET, BPF_RSH, BPF_TAX, BPF_W, BPF_X, BPF_XOR,
    };
    let load = |size: u32, at: u32| Op::Plain((BPF_LD | size | BPF_ABS) as u16, at);
    let equal = |k: u32, yes: To, no: To| Op::Jump((BPF_JMP | BPF_JEQ | BPF_K) as u16, k, yes, no);
    let alu = |op: u32, k: u32| Op::Plain((BPF_ALU | op) as u16, k);
    let ret = |k: u32| Op::Plain((BPF_RET | BPF_K) as u16, k);
    // X = width - dst_len: a prefix contains D when (DST ^ D) >> X == 0.
    let shift =
        || [load(BPF_B, DST_LEN), alu(BPF_NEG, 0), alu(BPF_ADD | BPF_K, 32), Op::Plain((BPF_MISC | BPF_TAX) as u16, 0)];
    let v6_first = || {
        destinations.iter().filter_map(|d| match *d {
            IpAddr::V6(d) => Some((u128::from(d) >> 96) as u32),
            IpAddr::V4(_) => None,
        })
    };
    let mut ops = vec![
        // RTM_NEWROUTE (24) or RTM_DELROUTE (25), which differ in their lowest bit; else accept.
        load(BPF_H, TYPE),
        alu(BPF_XOR | BPF_K, host16(libc::RTM_NEWROUTE)),
        alu(BPF_AND | BPF_K, !host16(1)),
        equal(0, To::Next, To::Accept),
        // Default routes always matter.
        load(BPF_B, DST_LEN),
        equal(0, To::Accept, To::Next),
        // RTA_TABLE (8 bytes) first, then RTA_DST: else accept.
        load(BPF_H, FIRST_ATTR),
        equal(host16(8), To::Next, To::Accept),
        load(BPF_H, FIRST_ATTR + 2),
        equal(host16(libc::RTA_TABLE), To::Next, To::Accept),
        load(BPF_H, FIRST_ATTR + 8 + 2),
        equal(host16(libc::RTA_DST), To::Next, To::Accept),
        load(BPF_B, FAMILY),
        equal(libc::AF_INET as u32, To::Next, To::Ipv6),
    ];
    ops.extend(shift());
    for destination in &destinations {
        if let IpAddr::V4(d) = *destination {
            ops.extend([load(BPF_W, DST_VALUE), alu(BPF_XOR | BPF_K, u32::from(d)), alu(BPF_RSH | BPF_X, 0)]);
            ops.push(equal(0, To::Accept, To::Next));
        }
    }
    ops.push(ret(DROP));
    // IPv6: the first 32 bits decide. A longer prefix whose first 32 bits are a destination's
    // is passed (the monitor looks closer).
    let ipv6_at = ops.len();
    ops.extend([load(BPF_B, FAMILY), equal(libc::AF_INET6 as u32, To::Next, To::Accept), load(BPF_B, DST_LEN)]);
    ops.push(Op::Jump((BPF_JMP | BPF_JGT | BPF_K) as u16, 32, To::Next, To::ShortIpv6));
    for first in v6_first() {
        ops.extend([load(BPF_W, DST_VALUE), equal(first, To::Accept, To::Next)]);
    }
    ops.push(ret(DROP));
    let short_at = ops.len();
    ops.extend(shift());
    for first in v6_first() {
        ops.extend([load(BPF_W, DST_VALUE), alu(BPF_XOR | BPF_K, first), alu(BPF_RSH | BPF_X, 0)]);
        ops.push(equal(0, To::Accept, To::Next));
    }
    ops.push(ret(DROP));
    let accept_at = ops.len();
    ops.push(ret(ACCEPT));

    let offset = |from: usize, to: To| -> u8 {
        let target = match to {
            To::Next => from + 1,
            To::Accept => accept_at,
            To::Ipv6 => ipv6_at,
            To::ShortIpv6 => short_at,
        };
        // Forward jumps only, in a program of a few dozen instructions.
        u8::try_from(target - from - 1).expect("a short forward jump")
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| match *op {
            Op::Plain(code, k) => libc::sock_filter { code, jt: 0, jf: 0, k },
            Op::Jump(code, k, yes, no) => libc::sock_filter { code, jt: offset(i, yes), jf: offset(i, no), k },
        })
        .collect()
}

/// Attaches the filter to `socket` (`true`), passing route changes for `extra` too, or
/// removes it (`false`).
pub(super) fn set(socket: &impl AsRawFd, filtered: bool, extra: &[IpAddr]) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let rc = if filtered {
        let mut program = program(extra);
        let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_mut_ptr() };
        // SAFETY: SO_ATTACH_FILTER copies the program (`fprog` points into `program`, alive for
        // the call) into the kernel; `fd` is a socket this source owns.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        }
    } else {
        // The kernel wants an int-sized value it then ignores.
        let unused: libc::c_int = 0;
        // SAFETY: passes a pointer to a live int and its size; `fd` is a socket this source owns.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_DETACH_FILTER,
                (&unused as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // No filter attached: nothing to remove.
        if rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
            0
        } else {
            rc
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

    /// The filter on a real socket in a namespace: the kernel drops exactly the route messages
    /// no representative destination lies in.
    #[test]
    fn the_kernel_drops_only_routes_that_cannot_change_the_decision() {
        testns::skip_unless_root!();
        let ns = testns::NetNs::new("bpf");
        ns.veth("va", "vb");
        ns.ip("addr add 192.0.2.10/24 dev va");
        ns.ip("addr add 2001:db8::10/64 dev va nodad");
        let socket = ns.run_inside(|| {
            let mut socket = Socket::new(NETLINK_ROUTE).expect("socket");
            socket.bind(&SocketAddr::new(0, 0)).expect("bind");
            for group in [libc::RTNLGRP_IPV4_ROUTE, libc::RTNLGRP_IPV6_ROUTE, libc::RTNLGRP_LINK] {
                socket.add_membership(group).expect("join");
            }
            socket
        });
        super::set(&socket, true, &[]).expect("attach");
        let dropped = ["10.1.0.0/16", "192.0.2.128/25", "96.0.0.0/3", "2001:db8:1::/48", "fd00::/8"];
        let passed = ["64.0.0.0/8", "0.0.0.0/1", "160.0.0.1/32", "2000::/3", "2800::/12", "2800:0:0:1::/64"];
        for prefix in dropped.iter().chain(&passed) {
            let via = if prefix.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
            ns.ip(&format!("route add {prefix} via {via}"));
        }
        ns.ip("route add default via 192.0.2.1");
        ns.ip("link set vb mtu 1400"); // a link message: passed, and the end marker
        socket.set_non_blocking(false).expect("blocking");
        let mut seen = Vec::new();
        loop {
            let mut buffer = Vec::with_capacity(65536);
            socket.recv(&mut buffer, 0).expect("recv");
            // Route messages: family, dst_len, then RTA_TABLE and RTA_DST (as the filter expects).
            let kind = u16::from_ne_bytes([buffer[4], buffer[5]]);
            if kind == libc::RTM_NEWLINK {
                break;
            }
            let (family, len) = (buffer[16], buffer[17]);
            let dst = &buffer[40..if family == libc::AF_INET as u8 { 44 } else { 56 }];
            let dst: std::net::IpAddr = match dst.len() {
                4 => <[u8; 4]>::try_from(dst).unwrap().into(),
                _ => <[u8; 16]>::try_from(dst).unwrap().into(),
            };
            seen.push(if len == 0 { "default".to_owned() } else { format!("{dst}/{len}") });
        }
        let mut want: Vec<String> = passed.iter().map(|p| p.to_string()).collect();
        want.push("default".into());
        assert_eq!(seen, want);
        super::set(&socket, false, &[]).expect("detach");
        ns.ip("route add 10.2.0.0/16 via 192.0.2.1");
        let mut buffer = Vec::with_capacity(65536);
        socket.recv(&mut buffer, 0).expect("recv");
        assert_eq!(buffer[17], 16, "without the filter every route arrives");

        // Extra destinations (nameservers): routes containing them pass as well.
        let extra: Vec<std::net::IpAddr> =
            ["198.51.100.53", "2001:db8:53::53"].iter().map(|a| a.parse().unwrap()).collect();
        super::set(&socket, true, &extra).expect("attach with extra destinations");
        // (An IPv6 prefix sharing a destination's first 32 bits would pass too: see above.)
        for prefix in ["203.0.113.0/24", "198.51.100.0/24", "fd00:99::/48", "2001:db8:53::/48"] {
            let via = if prefix.contains(':') { "2001:db8::1" } else { "192.0.2.1" };
            ns.ip(&format!("route add {prefix} via {via}"));
        }
        ns.ip("link set vb mtu 1300");
        let mut seen = Vec::new();
        loop {
            let mut buffer = Vec::with_capacity(65536);
            socket.recv(&mut buffer, 0).expect("recv");
            if u16::from_ne_bytes([buffer[4], buffer[5]]) == libc::RTM_NEWLINK {
                break;
            }
            seen.push((buffer[16], buffer[17]));
        }
        let (v4, v6) = (libc::AF_INET as u8, libc::AF_INET6 as u8);
        assert_eq!(seen, [(v4, 24), (v6, 48)], "only the extra destinations' routes");
    }
}
