//! Network namespaces: open one by name or path, and create sockets inside it without moving
//! the calling process (or any of its threads but a short-lived helper) into it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::error::Error;
use crate::monitor::Netns;

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
            return Err(Error::Namespace {
                path: name.into(),
                reason: "a namespace name must be a plain file name (no '/', not empty); \
                         pass a path such as /proc/PID/ns/net to use a path"
                    .into(),
            });
        }
        let path = Path::new(NETNS_RUN_DIR).join(name);
        if !path.exists() {
            return Err(Error::Namespace {
                path,
                reason: format!("no network namespace named '{name}' (see `ip netns list`)"),
            });
        }
        Self::by_path(&path)
    }

    /// Opens a namespace file such as `/proc/PID/ns/net` or `/run/netns/NAME`.
    pub(crate) fn by_path(path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::Namespace { path: path.to_owned(), reason };
        let file = File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        // SAFETY: ioctl on a file descriptor we own; NS_GET_NSTYPE takes no argument.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind < 0 {
            return Err(fail("not a namespace file (expected /run/netns/NAME or /proc/PID/ns/net)".into()));
        }
        if kind != libc::CLONE_NEWNET {
            return Err(fail("a namespace, but not a network namespace".into()));
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
        setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Namespace {
            path: self.path.clone(),
            reason: match errno {
                nix::errno::Errno::EPERM => "entering a network namespace needs CAP_SYS_ADMIN (run as root)".into(),
                other => format!("cannot enter: {}", other.desc()),
            },
        })
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
