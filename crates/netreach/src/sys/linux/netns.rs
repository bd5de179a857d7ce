//! Network namespaces: open one by name or path, create sockets inside it without moving
//! the calling process (or any of its threads but a short-lived helper) into it, and notice
//! when its name is deleted ([`NamespaceWatch`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::backend::Netns;
use crate::model::{Error, ErrorKind};

/// `NS_GET_NSTYPE` from `<linux/nsfs.h>`: `_IO(0xb7, 0x3)`. libc does not export it.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Where `ip netns add NAME` puts its namespaces.
const NETNS_RUN_DIR: &str = "/run/netns";

/// An open network namespace other than the caller's.
#[derive(Debug)]
pub(crate) struct Namespace {
    file: File,
    path: PathBuf,
}

impl Namespace {
    /// Opens `/run/netns/NAME` (what `ip netns add NAME` creates).
    pub(crate) fn by_name(name: &str) -> Result<Self, Error> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
            return Err(Error::namespace(
                name,
                "a namespace name must be a plain file name (no '/', not empty); \
                 pass a path such as /proc/PID/ns/net to use a path",
            ));
        }
        let path = Path::new(NETNS_RUN_DIR).join(name);
        if !path.exists() {
            let reason = format!("no network namespace named '{name}' (see `ip netns list`)");
            return Err(Error::namespace(path, reason).with_kind(ErrorKind::NotFound));
        }
        Self::by_path(&path)
    }

    /// Opens a namespace file such as `/proc/PID/ns/net` or `/run/netns/NAME`, without ever
    /// blocking: the path is first opened with `O_PATH`, which opens nothing behind it (a FIFO
    /// would block a plain open until a writer comes; a device would see an open), and only a
    /// file of nsfs, the namespace file system, is opened for real and asked its kind.
    pub(crate) fn by_path(path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::namespace(path, reason);
        let failed = |what: &str, e: std::io::Error| Error::namespace_io(path, what, e);
        let handle =
            open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(|e| failed("cannot open", e.into()))?;
        let what = fstat(&handle).map_err(|e| fail(format!("cannot stat: {}", e.desc())).with_kind(ErrorKind::Io))?;
        let on_nsfs = fstatfs(&handle).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC);
        if !on_nsfs || SFlag::from_bits_truncate(what.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            let kind = file_kind(what.st_mode);
            return Err(fail(format!("{kind}, not a namespace file (expected /run/netns/NAME or /proc/PID/ns/net)")));
        }
        // An nsfs file: opening it has no side effect and cannot block. Reopening the O_PATH
        // handle (rather than the path again) keeps the very file that was checked.
        let reopen = format!("/proc/self/fd/{}", handle.as_raw_fd());
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(reopen)
            .map_err(|e| failed("cannot open", e))?;
        // SAFETY: ioctl on a file descriptor we own; NS_GET_NSTYPE takes no argument.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind < 0 {
            return Err(fail("not a namespace file (expected /run/netns/NAME or /proc/PID/ns/net)".into()));
        }
        if kind != libc::CLONE_NEWNET {
            return Err(fail(format!("a namespace, but {}, not a network namespace", namespace_kind(kind))));
        }
        Ok(Namespace { file, path: path.to_owned() })
    }

    /// Opens the namespace a [`Netns`] names.
    pub(crate) fn open(netns: &Netns) -> Result<Self, Error> {
        match netns {
            Netns::Name(name) => Self::by_name(name),
            Netns::Path(path) => Self::by_path(path),
        }
    }

    /// Moves the calling thread (only it) into the namespace; threads and sockets it creates
    /// afterwards live there too.
    pub(crate) fn enter(&self) -> Result<(), Error> {
        setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|errno| match errno {
            nix::errno::Errno::EPERM => {
                Error::namespace(&self.path, "entering a network namespace needs CAP_SYS_ADMIN (run as root)")
                    .with_kind(ErrorKind::PermissionDenied)
            }
            other => Error::namespace(&self.path, format!("cannot enter: {}", other.desc())).with_kind(ErrorKind::Io),
        })
    }

    /// A second handle on the same namespace (for sockets opened there later).
    pub(crate) fn try_clone(&self) -> Result<Self, Error> {
        let file = self.file.try_clone().map_err(|e| Error::io("duplicating a namespace handle", e))?;
        Ok(Namespace { file, path: self.path.clone() })
    }

    /// The path it was opened from.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `make` on a helper thread that has entered the namespace and returns its result.
    /// Sockets keep the namespace they were created in, so what `make` opens stays bound to it
    /// after the helper exits; the caller's threads never change namespace.
    pub(crate) fn run_inside<T: Send>(&self, make: impl FnOnce() -> std::io::Result<T> + Send) -> Result<T, Error> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    self.enter()?;
                    make().map_err(|e| Error::io("opening netlink sockets inside the namespace", e))
                })
                .join()
                .unwrap_or_else(|_| Err(Error::io("namespace helper thread", std::io::Error::other("panicked"))))
        })
    }
}

/// What a file that is not a namespace file is, for the error: "a FIFO", "a directory"...
fn file_kind(mode: libc::mode_t) -> &'static str {
    match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
        SFlag::S_IFIFO => "a FIFO (named pipe)",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFREG => "a regular file",
        _ => "a special file",
    }
}

/// The kind of namespace `NS_GET_NSTYPE` answered, e.g. "a uts namespace".
fn namespace_kind(kind: libc::c_int) -> String {
    let name = match kind {
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUSER => "user",
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWTIME => "time",
        other => return format!("a namespace of kind {other:#x}"),
    };
    format!("a {name} namespace")
}

/// Tells when a namespace file under a directory such as /run/netns is deleted (`ip netns
/// del`). The namespace itself lives on while the monitor's sockets hold it, but nothing can
/// enter or name it any more: the source reports that as fatal, and the monitor releases it.
pub(super) struct NamespaceWatch {
    pub(super) inotify: Inotify,
    name: std::ffi::OsString,
}

impl NamespaceWatch {
    /// `None` for paths that cannot be watched this way: /proc/PID/ns/net ends with its process,
    /// and inotify sees nothing in /proc.
    pub(super) fn new(namespace: &Namespace) -> Result<Option<Self>, Error> {
        let path = namespace.path();
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return Ok(None) };
        if path.starts_with("/proc") {
            return Ok(None);
        }
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| Error::io("creating an inotify instance", e.into()))?;
        inotify
            .add_watch(dir, AddWatchFlags::IN_DELETE | AddWatchFlags::IN_MOVED_FROM)
            .map_err(|e| Error::io(format!("watching {} for namespace deletion", dir.display()), e.into()))?;
        Ok(Some(NamespaceWatch { inotify, name: name.to_owned() }))
    }

    pub(super) fn deleted(&self) -> bool {
        let events = self.inotify.read_events().unwrap_or_default();
        events.iter().any(|e| e.name.as_deref() == Some(self.name.as_os_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named() {
        assert_eq!(file_kind(libc::S_IFIFO | 0o644), "a FIFO (named pipe)");
        assert_eq!(file_kind(libc::S_IFCHR), "a character device");
        assert_eq!(namespace_kind(libc::CLONE_NEWUTS), "a uts namespace");
        assert_eq!(namespace_kind(0x4), "a namespace of kind 0x4");
    }
}
