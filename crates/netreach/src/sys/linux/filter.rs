//! A kernel-side filter on the event socket (classic BPF, as NetworkManager attaches to its
//! netlink socket): route messages that cannot change an answer are dropped in the kernel, so
//! a router's BGP churn never wakes the monitor.
//!
//! A route message is dropped only when it is proven irrelevant: not a default route
//! (`rtm_dst_len` != 0), laid out as the kernel lays out route notifications (`RTA_TABLE`
//! first, then `RTA_DST`), and its prefix contains none of the representative destinations of
//! the kernel's route decision ([`super::decision`]) nor the remote of a watched path. Anything
//! else (links, addresses, rules, nexthops, netconf, an unexpected layout) is passed. The
//! program is written again whenever the set of path remotes changes; above [`MAX_REMOTES`]
//! remotes it is detached and every route message passes.
//!
//! Hand-written because no maintained crate builds netlink socket filters; it is a few dozen
//! instructions, and the tests below run it against the kernel's own interpreter.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use super::decision::REPRESENTATIVES;

const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;

/// At most this many distinct path remotes are written into the program; with more, the filter
/// is detached and every route message passes. An IPv6 address costs 49 instructions, so 64 of
/// them stay under the kernel's limit of 4,096 (`BPF_MAXINSNS`) and its socket option memory
/// (`net.core.optmem_max`); should the kernel still refuse a program, it is detached too.
pub(super) const MAX_REMOTES: usize = 64;

/// Offsets in a notification: `struct nlmsghdr` (16 bytes), then `struct rtmsg` (12), then
/// the attributes.
const TYPE: u32 = 4;
const FAMILY: u32 = 16;
const DST_LEN: u32 = 17;
const FIRST_ATTR: u32 = 28;
const DST_VALUE: u32 = FIRST_ATTR + 8 + 4;

/// The value classic BPF loads for a field stored in host order: loads are big-endian.
fn host16(value: u16) -> u32 {
    u32::from(u16::from_be_bytes(value.to_ne_bytes()))
}

/// A program being written. Conditional jumps only go a few instructions forward (their
/// offsets are 8 bits); far targets are reached with `BPF_JA`, whose offset is 32 bits.
#[derive(Default)]
struct Program {
    code: Vec<libc::sock_filter>,
}

impl Program {
    fn op(&mut self, code: u32, k: u32) {
        self.code.push(libc::sock_filter { code: code as u16, jt: 0, jf: 0, k });
    }

    fn jump(&mut self, code: u32, k: u32, jt: u8, jf: u8) {
        self.code.push(libc::sock_filter { code: (libc::BPF_JMP | code | libc::BPF_K) as u16, jt, jf, k });
    }

    fn load(&mut self, size: u32, at: u32) {
        self.op(libc::BPF_LD | size | libc::BPF_ABS, at);
    }

    /// Accepts when A == `k`, else goes on.
    fn accept_if(&mut self, k: u32) {
        self.jump(libc::BPF_JEQ, k, 0, 1);
        self.op(libc::BPF_RET | libc::BPF_K, ACCEPT);
    }

    /// Goes on when A == `k`, else accepts.
    fn accept_unless(&mut self, k: u32) {
        self.jump(libc::BPF_JEQ, k, 1, 0);
        self.op(libc::BPF_RET | libc::BPF_K, ACCEPT);
    }

    /// Accepts when the route's IPv4 prefix holds `address` (X = 32 - prefix length).
    fn ipv4(&mut self, address: Ipv4Addr) {
        self.load(libc::BPF_W, DST_VALUE);
        self.op(libc::BPF_ALU | libc::BPF_XOR | libc::BPF_K, u32::from(address));
        self.op(libc::BPF_ALU | libc::BPF_RSH | libc::BPF_X, 0);
        self.accept_if(0);
    }

    /// Accepts when the route's IPv6 prefix holds `address`: word by word, the bits the prefix
    /// covers. 49 instructions, every jump inside them.
    fn ipv6(&mut self, address: Ipv6Addr) {
        use libc::{BPF_ADD, BPF_ALU, BPF_B, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_K, BPF_MISC, BPF_NEG, BPF_RSH, BPF_TAX};
        use libc::{BPF_RET, BPF_W, BPF_X, BPF_XOR};
        let start = self.code.len();
        let words = address.octets();
        // Jumps to `match` and `next` are patched once their places are known.
        let mut to_match = Vec::new();
        let mut to_next = Vec::new();
        for i in 0..4u32 {
            let word = u32::from_be_bytes([
                words[4 * i as usize],
                words[4 * i as usize + 1],
                words[4 * i as usize + 2],
                words[4 * i as usize + 3],
            ]);
            let at = DST_VALUE + 4 * i;
            let end = 32 * (i + 1);
            self.load(BPF_B, DST_LEN);
            // Prefix length <= 32 i: every bit it covers matched.
            to_match.push((self.code.len(), false));
            self.jump(BPF_JGT, 32 * i, 0, 0);
            // Covers the whole word: compare it (7 instructions ahead).
            self.jump(BPF_JGE, end, 7, 0);
            // Part of the word: X = 32 (i + 1) - length; compare the covered bits.
            self.op(BPF_ALU | BPF_NEG, 0);
            self.op(BPF_ALU | BPF_ADD | BPF_K, end);
            self.op(BPF_MISC | BPF_TAX, 0);
            self.load(BPF_W, at);
            self.op(BPF_ALU | BPF_XOR | BPF_K, word);
            self.op(BPF_ALU | BPF_RSH | BPF_X, 0);
            // Equal: match; else: next.
            to_match.push((self.code.len(), true));
            to_next.push(self.code.len());
            self.jump(BPF_JEQ, 0, 0, 0);
            self.load(BPF_W, at);
            to_next.push(self.code.len());
            self.jump(BPF_JEQ, word, 0, 0); // equal: on to the next word
        }
        let match_at = self.code.len();
        self.op(BPF_RET | BPF_K, ACCEPT);
        let next_at = self.code.len();
        let offset = |from: usize, to: usize| u8::try_from(to - from - 1).expect("a jump inside one address's check");
        for (from, on_true) in to_match {
            if on_true {
                self.code[from].jt = offset(from, match_at);
            } else {
                // `jgt 32 i`: true goes on, false (length <= 32 i) matches.
                self.code[from].jf = offset(from, match_at);
            }
        }
        for from in to_next {
            self.code[from].jf = offset(from, next_at);
        }
        debug_assert_eq!(self.code.len() - start, IPV6_CHECK);
    }
}

/// Instructions per IPv6 address (see [`Program::ipv6`]).
const IPV6_CHECK: usize = 49;

/// The program, in the kernel's format: route messages pass when their prefix holds a
/// representative destination or one of `remotes`.
pub(super) fn program(remotes: &[IpAddr]) -> Vec<libc::sock_filter> {
    use libc::{BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_JA, BPF_JMP, BPF_K, BPF_MISC, BPF_NEG, BPF_RET};
    use libc::{BPF_TAX, BPF_XOR};
    let watched: Vec<IpAddr> = REPRESENTATIVES.iter().chain(remotes).copied().collect();
    let mut p = Program::default();
    // RTM_NEWROUTE (24) or RTM_DELROUTE (25), which differ in their lowest bit; else accept.
    p.load(BPF_H, TYPE);
    p.op(BPF_ALU | BPF_XOR | BPF_K, host16(libc::RTM_NEWROUTE));
    p.op(BPF_ALU | BPF_AND | BPF_K, !host16(1));
    p.accept_unless(0);
    // Default routes always matter.
    p.load(BPF_B, DST_LEN);
    p.accept_if(0);
    // RTA_TABLE (8 bytes) first, then RTA_DST: else accept.
    p.load(BPF_H, FIRST_ATTR);
    p.accept_unless(host16(8));
    p.load(BPF_H, FIRST_ATTR + 2);
    p.accept_unless(host16(libc::RTA_TABLE));
    p.load(BPF_H, FIRST_ATTR + 8 + 2);
    p.accept_unless(host16(libc::RTA_DST));
    // IPv4 here; IPv6 after the IPv4 part (a far jump); anything else passes.
    p.load(BPF_B, FAMILY);
    p.jump(libc::BPF_JEQ, libc::AF_INET as u32, 3, 0);
    p.jump(libc::BPF_JEQ, libc::AF_INET6 as u32, 0, 1);
    let far = p.code.len();
    p.op(BPF_JMP | BPF_JA, 0); // patched below
    p.op(BPF_RET | BPF_K, ACCEPT);
    // IPv4: X = 32 - prefix length; a prefix holds D when (DST ^ D) >> X == 0.
    p.load(BPF_B, DST_LEN);
    p.op(BPF_ALU | BPF_NEG, 0);
    p.op(BPF_ALU | BPF_ADD | BPF_K, 32);
    p.op(BPF_MISC | BPF_TAX, 0);
    for address in &watched {
        if let IpAddr::V4(a) = address {
            p.ipv4(*a);
        }
    }
    p.op(BPF_RET | BPF_K, DROP);
    p.code[far].k = (p.code.len() - far - 1) as u32;
    for address in &watched {
        if let IpAddr::V6(a) = address {
            p.ipv6(*a);
        }
    }
    p.op(BPF_RET | BPF_K, DROP);
    p.code
}

/// The remotes to write into the program: distinct, and `None` when there are more than
/// [`MAX_REMOTES`] (the filter is then detached). A sized iterator is trusted to repeat at most
/// one remote (see `RouteLookup::watch_routes_to`).
pub(super) fn bounded(remotes: &mut dyn Iterator<Item = IpAddr>) -> Option<Vec<IpAddr>> {
    // Sized iterators answer at once (one more than the bound may be a duplicate: a new path
    // to a remote already watched).
    if remotes.size_hint().0 > MAX_REMOTES + 1 {
        return None;
    }
    let mut distinct = std::collections::BTreeSet::new();
    for remote in remotes {
        // A path to the internet's representative destinations needs nothing more.
        if !REPRESENTATIVES.contains(&remote) {
            distinct.insert(remote);
        }
        if distinct.len() > MAX_REMOTES {
            return None;
        }
    }
    Some(distinct.into_iter().collect())
}

/// Attaches the filter for `remotes` to `socket`, or removes it (`None`). Returns what is in
/// force afterwards: a program the kernel refuses leaves the socket unfiltered (`None`), which
/// is slower under churn and never wrong.
pub(super) fn apply(socket: &impl AsRawFd, remotes: Option<Vec<IpAddr>>) -> Option<Vec<IpAddr>> {
    if let Some(remotes) = remotes {
        if set(socket, Some(&remotes)).is_ok() {
            return Some(remotes);
        }
    }
    // Without a filter (an old kernel refusing it), irrelevant changes still arrive and are
    // found irrelevant after decoding. Removing a filter fails only when there is none.
    let _ = set(socket, None);
    None
}

/// Attaches the filter for `remotes` to `socket` (`Some`) or removes it (`None`).
pub(super) fn set(socket: &impl AsRawFd, remotes: Option<&[IpAddr]>) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let rc = if let Some(remotes) = remotes {
        let mut program = program(remotes);
        let len = u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let fprog = libc::sock_fprog { len, filter: program.as_mut_ptr() };
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
    use std::net::IpAddr;

    use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

    /// Adds `dropped` then `passed` routes in a namespace whose event socket carries the
    /// filter for `remotes`, and returns the route messages that arrived (the kernel ran the
    /// program), as "prefix/len" or "default".
    fn arrivals(tag: &str, remotes: &[IpAddr], dropped: &[&str], passed: &[&str]) -> (Vec<String>, Vec<String>) {
        let ns = testns::NetNs::new(tag);
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
        super::set(&socket, Some(remotes)).expect("attach");
        for prefix in dropped.iter().chain(passed) {
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
            let dst: IpAddr = match dst.len() {
                4 => <[u8; 4]>::try_from(dst).unwrap().into(),
                _ => <[u8; 16]>::try_from(dst).unwrap().into(),
            };
            seen.push(if len == 0 { "default".to_owned() } else { format!("{dst}/{len}") });
        }
        let mut want: Vec<String> = passed.iter().map(|p| p.to_string()).collect();
        want.push("default".into());
        super::set(&socket, None).expect("detach");
        ns.ip("route add 10.2.0.0/16 via 192.0.2.1");
        let mut buffer = Vec::with_capacity(65536);
        socket.recv(&mut buffer, 0).expect("recv");
        assert_eq!(buffer[17], 16, "without the filter every route arrives");
        (seen, want)
    }

    /// The filter on a real socket in a namespace: the kernel drops exactly the route messages
    /// no representative destination lies in.
    #[test]
    fn the_kernel_drops_only_routes_that_cannot_change_the_decision() {
        testns::skip_unless_root!();
        let dropped = ["10.1.0.0/16", "192.0.2.128/25", "96.0.0.0/3", "2001:db8:1::/48", "fd00::/8", "2800:0:0:1::/64"];
        let passed = ["64.0.0.0/8", "0.0.0.0/1", "160.0.0.1/32", "2000::/3", "2800::/12", "2800::/64", "2800::1/128"];
        let (seen, want) = arrivals("bpf", &[], &dropped, &passed);
        assert_eq!(seen, want);
    }

    /// With path remotes: routes holding a remote pass too, exactly (every bit the prefix
    /// covers, IPv6 word by word), whatever the number of remotes up to the bound.
    #[test]
    fn routes_to_path_remotes_pass_and_others_do_not() {
        testns::skip_unless_root!();
        let mut remotes: Vec<IpAddr> = vec!["203.0.113.7".parse().unwrap(), "2001:db8:5::7".parse().unwrap()];
        // Fill up to the bound with IPv6 remotes, the costliest: the last one still counts.
        for i in remotes.len()..super::MAX_REMOTES {
            remotes.push(format!("2001:db8:6::{i:x}").parse().unwrap());
        }
        let last = format!("{}/128", remotes[super::MAX_REMOTES - 1]);
        let dropped = [
            "203.0.113.8/29",
            "203.0.113.6/32",
            "2001:db8:5::8/125",
            "2001:db8:5:0:8000::/65",
            "2001:db8:5:1::/64",
            "2001:db8:7::/48",
            "10.0.0.0/8",
        ];
        let passed = [
            "203.0.113.0/24",
            "203.0.113.7/32",
            "203.0.112.0/23",
            "2001:db8:5::/64",
            "2001:db8:5::/65",
            "2001:db8:5::7/128",
            "2001:db8:5::/125",
            "2001:db8::/35",
            last.as_str(),
        ];
        let (seen, want) = arrivals("bpfr", &remotes, &dropped, &passed);
        assert_eq!(seen, want);
    }

    #[test]
    fn the_program_stays_under_the_kernels_limit_and_counts_its_remotes() {
        let remotes: Vec<IpAddr> =
            (0..super::MAX_REMOTES).map(|i| format!("2001:db8::{i:x}").parse().unwrap()).collect();
        let length = super::program(&remotes).len();
        assert!(length <= 4096, "{length} instructions");
        assert_eq!(length, super::program(&[]).len() + super::MAX_REMOTES * super::IPV6_CHECK);
        // Duplicates and representatives do not count; one remote too many detaches.
        // (Unsized: a sized iterator says how many remotes it holds, see `bounded`.)
        let mut twice = remotes.iter().chain(&remotes).copied().chain(super::REPRESENTATIVES).filter(|_| true);
        assert_eq!(super::bounded(&mut twice).map(|r| r.len()), Some(super::MAX_REMOTES));
        let mut over = remotes.iter().copied().chain(["192.0.2.99".parse().unwrap()]);
        assert_eq!(super::bounded(&mut over), None);
        // A sized iterator far over the bound is not walked.
        let mut sized = (0..100_000u32).map(|i| -> IpAddr { panic!("walked to remote {i}") });
        assert_eq!(super::bounded(&mut sized), None);
    }
}
