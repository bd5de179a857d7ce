//! The test kit: what every namespace test starts with and keeps needing, in one place.
//!
//! - [`skip_unless_root!`](crate::skip_unless_root) opens a test: it skips (or, under
//!   `NETREACH_REQUIRE_ROOT=1`, fails) without root, naming the test by its function, so a
//!   renamed test can never report under its old name;
//! - [`NetNs::ip_bytes`](crate::NetNs::ip_bytes) runs `ip` with arguments that are not UTF-8;
//! - bounded waits: [`until`] for any receiver with a timeout, [`wait_exit`] for a child
//!   process, [`Lines`] for a child's output read line by line.
//!
//! ```no_run
//! #[test]
//! fn link_down_is_seen() {
//!     testns::skip_unless_root!();
//!     let ns = testns::NetNs::new("down");
//!     // ...
//! }
//! ```

use std::fmt::{Debug, Display};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Runs `program ARGS` inside `ns` and a private mount namespace whose /etc/resolv.conf,
/// /etc/hosts and /etc/nsswitch.conf are `resolv`, `hosts` and "hosts: files dns" (bind
/// mounts there: the host's own files are never touched); returns its output and how long it
/// ran.
pub fn with_resolver(ns: &crate::NetNs, program: &str, resolv: &str, hosts: &str, args: &[&str]) -> (Output, Duration) {
    let dir = std::env::temp_dir().join(format!("netreach-resolver-{}-{}", std::process::id(), ns.name()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [("resolv.conf", resolv), ("hosts", hosts), ("nsswitch.conf", "hosts: files dns\n")] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let script = r#"set -e
mount --bind "$1/resolv.conf" /etc/resolv.conf
mount --bind "$1/hosts" /etc/hosts
if [ -e /etc/nsswitch.conf ]; then mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf; fi
bin="$2"; shift 2
exec "$bin" "$@""#;
    let mut command = ns.command("unshare");
    command.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"]);
    command.arg(&dir).arg(program).args(args).stdin(Stdio::null());
    let start = Instant::now();
    let out = command.output().expect("run the program in the resolver sandbox");
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    (out, elapsed)
}

/// Generous bound for one change to reach what a test watches: a loaded CI machine can stall,
/// and a correct run never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Returns from the calling test unless it may run: skips without root (prints why), or fails
/// under `NETREACH_REQUIRE_ROOT=1` (see [`require_root`](crate::require_root)). With
/// `networkmanager`, NetworkManager, dbus-daemon and python3-gi must be installed too (see
/// [`require_networkmanager`](crate::nm::require_networkmanager)). The test is named by its
/// function.
///
/// ```
/// fn needs_a_namespace() {
///     testns::skip_unless_root!();
///     let _ns = testns::NetNs::new("doc");
/// }
/// # needs_a_namespace();
/// ```
#[macro_export]
macro_rules! skip_unless_root {
    () => {
        if !$crate::require_root($crate::kit::test_name({
            fn here() {}
            ::std::any::type_name_of_val(&here)
        })) {
            return;
        }
    };
    (networkmanager) => {
        let test = $crate::kit::test_name({
            fn here() {}
            ::std::any::type_name_of_val(&here)
        });
        if !$crate::require_root(test) || !$crate::nm::require_networkmanager(test) {
            return;
        }
    };
}

/// The test's function name from the type name of a function nested in it
/// (`kernel::link_down_is_seen::here` -> `link_down_is_seen`); used by
/// [`skip_unless_root!`](crate::skip_unless_root).
#[doc(hidden)]
pub fn test_name(nested: &'static str) -> &'static str {
    let function = nested.rsplit_once("::").map_or(nested, |(outer, _)| outer);
    function.rsplit_once("::").map_or(function, |(_, name)| name)
}

/// Receives with `recv` (a `recv_timeout`) until an item satisfies `want`; returns it and the
/// items before it. Panics naming `what`, with everything seen, if it does not come within
/// `timeout` or the sender goes away.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// for n in [1, 2, 3] {
///     tx.send(n).unwrap();
/// }
/// let (found, before) = testns::kit::until(testns::kit::TIMEOUT, "an even number", |t| rx.recv_timeout(t), |n| n % 2 == 0);
/// assert_eq!((found, before), (2, vec![1]));
/// ```
pub fn until<T: Debug, E: Display>(
    timeout: Duration,
    what: &str,
    mut recv: impl FnMut(Duration) -> Result<T, E>,
    want: impl Fn(&T) -> bool,
) -> (T, Vec<T>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match recv(deadline.saturating_duration_since(Instant::now())) {
            Ok(item) if want(&item) => return (item, seen),
            Ok(item) => seen.push(item),
            Err(e) => panic!("waiting for {what}: {e}; saw {seen:#?}"),
        }
    }
}

/// Waits for `child` to exit; kills it and panics if it takes longer than `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("query the child's status") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {timeout:?}");
        }
        // No event announces a child's exit to a test without a SIGCHLD handler: poll.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child process whose stdout is read line by line (as bytes, newline kept) on a thread of
/// its own, so that every read can be bounded; killed and reaped when dropped.
pub struct Lines {
    lines: mpsc::Receiver<Vec<u8>>,
    child: Child,
}

impl Lines {
    /// Spawns `command` with stdin closed and stdout piped (other settings, such as stderr, are
    /// the caller's).
    pub fn spawn(command: &mut Command) -> Lines {
        let mut child =
            command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{command:?}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut line = Vec::new();
            match stdout.read_until(b'\n', &mut line) {
                Ok(n) if n > 0 && tx.send(line).is_ok() => {}
                _ => return,
            }
        });
        Lines { lines, child }
    }

    /// The next line, waiting at most `timeout`; an error when none came in time or the output
    /// ended.
    pub fn next(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.lines.recv_timeout(timeout)
    }

    /// The process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `json`, panicking on an object (at any depth) that has a key twice: serde_json's
/// `Value` keeps the last one silently, so a duplicate would go unseen, while strict readers
/// refuse the whole document.
pub fn assert_json_keys_unique(json: &str) {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
    struct Unique;
    impl<'de> Visitor<'de> for Unique {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(A::Error::custom(format!("duplicate key {key:?}")));
                }
                map.next_value_seed(Unique)?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Unique)?.is_some() {}
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Unique {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Unique)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    Unique.deserialize(&mut de).and_then(|()| de.end()).unwrap_or_else(|e| panic!("{e}: {json}"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn duplicate_keys_are_caught_at_any_depth() {
        super::assert_json_keys_unique(r#"{"a":{"b":1,"c":[{"d":null}]}}"#);
        let caught = std::panic::catch_unwind(|| super::assert_json_keys_unique(r#"{"a":{"b":1,"b":2}}"#));
        assert!(caught.is_err(), "the checker itself must see a nested duplicate");
    }

    use super::*;

    #[test]
    fn the_test_name_is_the_enclosing_function() {
        assert_eq!(test_name("kernel::link_down_is_seen::here"), "link_down_is_seen");
        assert_eq!(test_name("a::b::c::here"), "c");
        fn here() {}
        assert_eq!(test_name(std::any::type_name_of_val(&here)), "the_test_name_is_the_enclosing_function");
    }

    #[test]
    fn lines_are_read_with_a_bound_and_wait_exit_returns_the_status() {
        let lines = Lines::spawn(Command::new("sh").args(["-c", "printf 'a\\nb'; exec sleep 60"]));
        assert_eq!(lines.next(TIMEOUT).unwrap(), b"a\n");
        // "b" has no newline yet: not a line.
        assert_eq!(lines.next(Duration::from_millis(50)), Err(RecvTimeoutError::Timeout));
        let mut done = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        assert_eq!(wait_exit(&mut done, TIMEOUT).code(), Some(3));
    }

    #[test]
    #[should_panic(expected = "waiting for four: ")]
    fn until_names_what_it_waited_for() {
        let (tx, rx) = mpsc::channel();
        tx.send(1).unwrap();
        drop(tx);
        until(TIMEOUT, "four", |t| rx.recv_timeout(t), |n| *n == 4);
    }
}
