//! Netlink framing: messages in a datagram and attributes in a message, every length checked
//! (a length that does not fit is an error, never a panic), and the fixed-size values they
//! hold. Pure; the decoder (`decode.rs`) reads messages through it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `struct nlmsghdr`.
pub(super) const HEADER_LEN: usize = 16;
/// `NLA_TYPE_MASK`: an attribute's type without the nested and byte-order flags.
const TYPE_MASK: u16 = 0x3fff;

/// One netlink message.
pub(super) struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub sequence: u32,
    pub payload: &'a [u8],
}

/// The messages of a datagram, in order. A length that does not fit yields an error and ends
/// the datagram: nothing after it can be located.
pub(super) fn messages(mut bytes: &[u8]) -> impl Iterator<Item = Result<Message<'_>, String>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut bytes);
        let Some(header) = rest.get(..HEADER_LEN) else {
            return Some(Err(format!("truncated netlink header ({} bytes)", rest.len())));
        };
        let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return Some(Err(format!("netlink message of {len} bytes in the {} bytes left", rest.len())));
        }
        bytes = rest.get(align(len)..).unwrap_or_default();
        Some(Ok(Message {
            kind: u16::from_ne_bytes([header[4], header[5]]),
            flags: u16::from_ne_bytes([header[6], header[7]]),
            sequence: u32::from_ne_bytes([header[8], header[9], header[10], header[11]]),
            payload: &rest[HEADER_LEN..len],
        }))
    })
}

/// Netlink's 4-byte alignment of messages and attributes.
pub(super) fn align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

/// The attributes (type, value) in `bytes`; a length that does not fit yields an error and
/// ends the list.
pub(super) fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), String>> {
    std::iter::from_fn(move || {
        if bytes.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut bytes);
        let Some(header) = rest.get(..4) else {
            return Some(Err(format!("{} stray bytes after the last attribute", rest.len())));
        };
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & TYPE_MASK;
        if len < 4 || len > rest.len() {
            return Some(Err(format!("attribute {kind} of {len} bytes in the {} bytes left", rest.len())));
        }
        bytes = rest.get(align(len)..).unwrap_or_default();
        Some(Ok((kind, &rest[4..len])))
    })
}

pub(super) fn fixed<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], String> {
    value.get(..N).and_then(|v| v.try_into().ok()).ok_or_else(|| format!("{what}: {} bytes, need {N}", value.len()))
}

pub(super) fn u32_of(value: &[u8], what: &str) -> Result<u32, String> {
    fixed::<4>(value, what).map(u32::from_ne_bytes)
}

/// An IPv4 or IPv6 address by its length (other families' addresses are not netreach's).
pub(super) fn ip(value: &[u8]) -> Option<IpAddr> {
    match value.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?))),
        _ => None,
    }
}

/// Byte fixtures for the decoders' tests: messages and attributes laid out as the kernel sends
/// them.
#[cfg(test)]
pub(super) mod fixtures {
    use super::{align, HEADER_LEN};

    /// One attribute: length, type, value, padded to 4 bytes.
    pub(in crate::sys::linux) fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut bytes = ((4 + value.len()) as u16).to_ne_bytes().to_vec();
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(value);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }

    /// One message: `struct nlmsghdr` (port id 0), the payload, padded to 4 bytes.
    pub(in crate::sys::linux) fn message(kind: u16, flags: u16, sequence: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = ((HEADER_LEN + payload.len()) as u32).to_ne_bytes().to_vec();
        bytes.extend(kind.to_ne_bytes());
        bytes.extend(flags.to_ne_bytes());
        bytes.extend(sequence.to_ne_bytes());
        bytes.extend(0u32.to_ne_bytes());
        bytes.extend(payload);
        bytes.resize(align(bytes.len()), 0);
        bytes
    }
}
