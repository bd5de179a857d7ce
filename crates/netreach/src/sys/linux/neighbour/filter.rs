//! The kernel-side filter of the neighbour socket (classic BPF): only messages about the
//! followed gateways pass, so a busy LAN's ARP table (thousands of entries changing) never
//! wakes the monitor; the kernel runs the filter in the context of whoever changed the entry.
//!
//! A message passes when it is an `RTM_NEWNEIGH` or `RTM_DELNEIGH` of a gateway's family, on
//! its interface, whose first attribute is `NDA_DST` (the kernel's own layout,
//! `neigh_fill_info`) holding its address. Everything else is dropped, including every
//! message while no gateway is followed. A message laid out otherwise would be dropped too:
//! the kernel has put `NDA_DST` first since neighbour messages exist, and the state is read
//! again with targeted requests whenever the gateways change or the socket overruns.
//!
//! Reprogrammed only when a followed gateway would not pass ([`wanted`]): replacing a filter
//! makes the kernel check and compile the program again (`do_jit`, a fifth of the monitor's
//! CPU while a default route came and went, measured with `perf`), so a gateway that is no
//! longer followed stays in the filter, up to [`STALE`] of them, and its messages are dropped
//! by the socket's reader. A default route that flaps, or two uplinks taking turns, then
//! reprogram nothing after the first time.
//!
//! A filter of its own, on a socket of its own, rather than more of the route filter
//! (`super::super::filter`): that one is detached while path monitors exist (they need every
//! route), this one never is; it is reprogrammed whenever the gateways change, which the
//! route filter does not care about. Hand-written for the reason given there.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

const ACCEPT: u32 = u32::MAX;
const DROP: u32 = 0;

/// Offsets: `struct nlmsghdr` (16 bytes), `struct ndmsg` (12), then the first attribute.
const TYPE: u32 = 4;
const FAMILY: u32 = 16;
const INDEX: u32 = 20;
const FIRST_ATTR_TYPE: u32 = 30;
const FIRST_ATTR_VALUE: u32 = 32;

/// The value classic BPF loads for a field stored in host order: loads are big-endian.
fn host16(value: u16) -> u32 {
    u32::from(u16::from_be_bytes(value.to_ne_bytes()))
}

fn host32(value: u32) -> u32 {
    u32::from_be_bytes(value.to_ne_bytes())
}

fn op(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

/// `if A == k` go on, else skip `skip` instructions.
fn equal_or_skip(k: u32, skip: usize) -> libc::sock_filter {
    let skip = u8::try_from(skip).expect("a gateway's block is a dozen instructions");
    libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf: skip, k }
}

/// Gateways no longer followed that the filter may still pass (see the module docs).
pub(super) const STALE: usize = 4;

/// The gateways the filter should pass when it passes `passed` and `followed` are followed:
/// `None` while it already passes every followed one and at most [`STALE`] others; else the
/// followed ones, then the most recent of the others, up to [`STALE`].
pub(super) fn wanted(passed: &[(IpAddr, u32)], followed: &[(IpAddr, u32)]) -> Option<Vec<(IpAddr, u32)>> {
    let stale = passed.iter().filter(|g| !followed.contains(g)).count();
    if followed.iter().all(|g| passed.contains(g)) && stale <= STALE {
        return None;
    }
    let kept = passed.iter().filter(|g| !followed.contains(g)).take(STALE);
    Some(followed.iter().chain(kept).copied().collect())
}

/// The program passing messages about these gateways (address, interface index) only.
pub(super) fn program(gateways: &[(IpAddr, u32)]) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_B, BPF_H, BPF_LD, BPF_RET, BPF_W};
    let load = |size: u32, at: u32| op(BPF_LD | size | BPF_ABS, at);
    let ret = |k: u32| op(BPF_RET | libc::BPF_K, k);
    let mut ops = vec![
        // RTM_NEWNEIGH (28) or RTM_DELNEIGH (29); anything else is dropped.
        load(BPF_H, TYPE),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: host16(libc::RTM_NEWNEIGH),
        },
        equal_or_skip(host16(libc::RTM_DELNEIGH), 1),
        libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JA) as u16, jt: 0, jf: 0, k: 1 },
        ret(DROP),
    ];
    for &(address, index) in gateways {
        let (family, words): (i32, Vec<u32>) = match address {
            IpAddr::V4(a) => (libc::AF_INET, vec![u32::from(a)]),
            IpAddr::V6(a) => {
                (libc::AF_INET6, a.octets().chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
        };
        // Each check skips to the next gateway's block: what is left of this one after it.
        let mut checks = vec![
            (load(BPF_B, FAMILY), family as u32),
            (load(BPF_W, INDEX), host32(index)),
            (load(BPF_H, FIRST_ATTR_TYPE), host16(libc::NDA_DST)),
        ];
        for (i, word) in words.into_iter().enumerate() {
            checks.push((load(BPF_W, FIRST_ATTR_VALUE + 4 * i as u32), word));
        }
        let block = checks.len() * 2 + 1;
        for (i, (load, k)) in checks.into_iter().enumerate() {
            ops.push(load);
            ops.push(equal_or_skip(k, block - 2 * i - 2));
        }
        ops.push(ret(ACCEPT));
    }
    ops.push(ret(DROP));
    ops
}

/// Attaches (or replaces) the filter passing messages about `gateways` only.
pub(super) fn set(socket: &impl AsRawFd, gateways: &[(IpAddr, u32)]) -> io::Result<()> {
    let mut program = program(gateways);
    let len = u16::try_from(program.len()).map_err(|_| io::Error::other("too many gateways for one filter"))?;
    let fprog = libc::sock_fprog { len, filter: program.as_mut_ptr() };
    // SAFETY: SO_ATTACH_FILTER copies the program (`fprog` points into `program`, alive for the
    // call) into the kernel, replacing any filter attached before; the socket is ours.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
