//! What a socket carries into the kernel's route decision besides its addresses: its mark and
//! its owner, read back from the socket itself.

use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, sockopt};

use crate::model::PathOptions;

/// The socket's mark (`SO_MARK`; 0, the default, is no mark) and owner. The owner is the
/// socket inode's uid, which is the kernel's own `sk_uid` (set from the creator's fsuid,
/// followed by `fchown`), the uid `uidrange` rules match.
pub(crate) fn socket_options(socket: &impl AsFd) -> std::io::Result<PathOptions> {
    let mark = getsockopt(socket, sockopt::Mark)?;
    let uid = nix::sys::stat::fstat(socket.as_fd())?.st_uid;
    Ok(PathOptions { mark: (mark != 0).then_some(mark), uid: Some(uid) })
}
