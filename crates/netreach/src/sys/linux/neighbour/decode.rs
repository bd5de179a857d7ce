//! Pure decoding of neighbour messages (`RTM_NEWNEIGH`, `RTM_DELNEIGH`, and the kernel's reply
//! to a targeted `RTM_GETNEIGH`), every length checked: bytes in, an entry or an error out,
//! never a panic. Tested with byte fixtures and arbitrary bytes (`tests.rs`). By hand, as the
//! rest of the decoder (`super::super::decode` says why).

use std::net::IpAddr;
use std::time::Duration;

use super::super::frame::{attributes, fixed, ip, Message};
use crate::model::NeighbourState;

/// `USER_HZ`: the unit of the ages in `struct nda_cacheinfo` (clock ticks).
const USER_HZ: u64 = 100;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;

/// One neighbour entry as a message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub address: IpAddr,
    pub index: u32,
    pub state: NeighbourState,
    /// How long ago the kernel last changed the entry's resolution (`ndm_updated`: the start
    /// of the resolution or probe that a `failed` entry gave up on), when it said.
    pub updated: Option<Duration>,
}

/// What a neighbour message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Said {
    /// The entry is now this (`RTM_NEWNEIGH`).
    Entry(Entry),
    /// The entry was deleted (`RTM_DELNEIGH`; its last state is not evidence of anything).
    Removed(Entry),
    /// Neither: another kind of message, an IPv4/IPv6-less entry (a bridge's FDB entry, which
    /// shares the group), or one without a destination.
    Other,
}

/// `NUD_*`: a single state in practice; the most telling bit wins if several are set.
fn state(nud: u16) -> NeighbourState {
    let order = [
        (libc::NUD_FAILED, NeighbourState::Failed),
        (libc::NUD_INCOMPLETE, NeighbourState::Incomplete),
        (libc::NUD_PROBE, NeighbourState::Probe),
        (libc::NUD_DELAY, NeighbourState::Delay),
        (libc::NUD_STALE, NeighbourState::Stale),
        (libc::NUD_REACHABLE, NeighbourState::Reachable),
        (libc::NUD_PERMANENT, NeighbourState::Permanent),
        (libc::NUD_NOARP, NeighbourState::Noarp),
    ];
    order.into_iter().find(|(bit, _)| nud & bit != 0).map_or(NeighbourState::None, |(_, s)| s)
}

/// Decodes one message of the neighbour group.
pub(super) fn said(message: &Message<'_>) -> Result<Said, String> {
    let removed = match message.kind {
        libc::RTM_NEWNEIGH => false,
        libc::RTM_DELNEIGH => true,
        _ => return Ok(Said::Other),
    };
    // struct ndmsg: family, two pad bytes, ifindex, state, flags, type.
    let h = fixed::<12>(message.payload, "neighbour header")?;
    if !matches!(i32::from(h[0]), libc::AF_INET | libc::AF_INET6) {
        return Ok(Said::Other);
    }
    let index = u32::from_ne_bytes([h[4], h[5], h[6], h[7]]);
    let nud = u16::from_ne_bytes([h[8], h[9]]);
    let (mut address, mut updated) = (None, None);
    for attribute in attributes(&message.payload[12..]) {
        let (kind, value) = attribute?;
        match kind {
            libc::NDA_DST => address = ip(value),
            // struct nda_cacheinfo: confirmed, used, updated, refcnt.
            libc::NDA_CACHEINFO => {
                let c = fixed::<12>(value, "NDA_CACHEINFO")?;
                let ticks = u32::from_ne_bytes([c[8], c[9], c[10], c[11]]);
                updated = Some(Duration::from_millis(u64::from(ticks) * 1000 / USER_HZ));
            }
            _ => {}
        }
    }
    let Some(address) = address else { return Ok(Said::Other) };
    let entry = Entry { address, index, state: state(nud), updated };
    Ok(if removed { Said::Removed(entry) } else { Said::Entry(entry) })
}

/// The kernel's reply to a targeted `RTM_GETNEIGH` (as `ip neigh get` sends it): the entry,
/// `None` when there is none (`ENOENT`), an error for anything else.
pub(super) fn get_reply(message: &Message<'_>) -> Result<Option<Entry>, String> {
    match message.kind {
        NLMSG_ERROR => match error_code(message.payload)? {
            libc::ENOENT => Ok(None),
            code => Err(format!("the kernel refused a neighbour lookup ({})", std::io::Error::from_raw_os_error(code))),
        },
        _ => match said(message)? {
            Said::Entry(entry) => Ok(Some(entry)),
            _ => Err(format!("unexpected reply to a neighbour lookup (message type {})", message.kind)),
        },
    }
}

/// The kernel's reply to a request with `NLM_F_ACK`: `Ok` for the acknowledgement.
pub(super) fn acknowledged(message: &Message<'_>) -> Result<(), String> {
    match message.kind {
        NLMSG_ERROR => match error_code(message.payload)? {
            0 => Ok(()),
            code => Err(std::io::Error::from_raw_os_error(code).to_string()),
        },
        other => Err(format!("unexpected reply to a neighbour request (message type {other})")),
    }
}

/// The positive errno of an `NLMSG_ERROR` (0: an acknowledgement).
fn error_code(payload: &[u8]) -> Result<i32, String> {
    Ok(i32::from_ne_bytes(fixed::<4>(payload, "error code")?).saturating_neg())
}
