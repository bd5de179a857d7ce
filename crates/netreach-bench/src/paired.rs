//! Two subscriber processes measured *paired*: both follow the same namespace from before the
//! first change, both see every change at the same time, and one reader thread stamps the
//! lines of both.
//!
//! Measured one after the other, the ratio of two processes' latencies moved between 1.05
//! and 2.25 from run to run on a shared two-core machine: each saw a different phase of the
//! machine's load. Paired, a slow moment hits both alike, and the reader cannot favour either:
//! it waits in one `poll()` on both pipes and gives every line that a wake-up finds the same
//! stamp, taken when `poll()` returned, before anything is read or parsed.
//!
//! The start order matters too: the kernel hands a multicast notification to the sockets of
//! a group newest subscription first, and with two identical binaries the one started second
//! was ahead by up to 13% at p50. So the caller alternates which contender starts second
//! (by rounds), and the one started first is waited for until it follows the namespace before
//! the other one starts: netreach prints its baseline; `ip monitor` prints nothing, so its
//! netlink socket is looked for in `/proc/PID/net/netlink` with groups joined. Without that
//! wait `ip` joined after netreach in both orders (it starts in a few milliseconds, netreach
//! reads the whole state first), was notified first in every round, and its line was read
//! first in 196 of 200 address changes.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::observe::{parse_ip_monitor, parse_netreach_json, Seen};
use crate::util::{percentile, Fallible, Guarded};

/// What `ip monitor` follows: the same multicast groups as netreach, so both read the same
/// stream of kernel messages. With only the measured object (`ip monitor link`), `ip` would
/// skip what the kernel sends *before* the measured message: taking a link down first
/// announces the removal of its IPv6 routes and addresses, which netreach has to read (and
/// report) before it reaches the link's own message.
const IP_MONITOR_OBJECTS: [&str; 3] = ["link", "address", "route"];

/// How long a contender started first may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One of the two processes: how to start it and how to read its lines.
pub struct Contender {
    pub label: String,
    command: Command,
    parse: fn(&str) -> Option<Seen>,
    /// How to tell that it follows the namespace (see the module docs).
    started: Started,
}

/// The sign that a contender follows the namespace.
#[derive(Clone, Copy)]
enum Started {
    /// Its first line (netreach's baseline).
    FirstLine,
    /// A netlink route socket of its process has joined multicast groups (`ip monitor`).
    Subscribed,
}

impl Contender {
    /// `ip -o monitor link address route` in `netns`.
    pub fn ip_monitor(netns: &str) -> Contender {
        let mut command = Command::new("ip");
        command.args(["-o", "-n", netns, "monitor"]).args(IP_MONITOR_OBJECTS);
        Contender { label: "`ip monitor`".into(), command, parse: parse_ip_monitor, started: Started::Subscribed }
    }

    /// `<binary> watch --json --netns <netns>`.
    pub fn netreach_watch(label: String, binary: &Path, netns: &str) -> Contender {
        let mut command = Command::new(binary);
        command.args(["watch", "--json", "--netns", netns]);
        Contender { label, command, parse: parse_netreach_json, started: Started::FirstLine }
    }
}

/// A line of one contender's output (0 or 1) and the stamp of the wake-up that completed it.
type Line = (usize, Instant, String);

/// Two running contenders and their stamped lines.
pub struct Pair {
    lines: Receiver<Line>,
    labels: [String; 2],
    parse: [fn(&str) -> Option<Seen>; 2],
    /// Killed and reaped when the pair is dropped; the reader thread then sees end of file.
    _children: [Guarded; 2],
}

impl Pair {
    /// Starts both contenders, `second` (0 or 1) after the other (see the module docs).
    pub fn start(contenders: [Contender; 2], second: usize) -> Fallible<Pair> {
        let first = 1 - second;
        let mut contenders = contenders;
        let mut children = [None, None];
        let mut pipes = [None, None];
        let mut pending = [Vec::new(), Vec::new()];
        for who in [first, second] {
            let mut child = Guarded::spawn(&mut contenders[who].command, Stdio::piped())?;
            let mut pipe = child.0.stdout.take().ok_or("a contender has no stdout")?;
            if who == first {
                let label = &contenders[who].label;
                match contenders[who].started {
                    Started::FirstLine => pending[who] = first_line(&mut pipe).map_err(|e| format!("{label}: {e}"))?,
                    Started::Subscribed => subscribed(child.0.id()).map_err(|e| format!("{label}: {e}"))?,
                }
            }
            (children[who], pipes[who]) = (Some(child), Some(pipe));
        }
        let ([Some(c0), Some(c1)], [Some(p0), Some(p1)]) = (children, pipes) else { unreachable!("both started") };
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("bench-pair-reader".into())
            .spawn(move || read_both([p0, p1], pending, tx))
            .map_err(|e| format!("starting the reader thread: {e}"))?;
        let [a, b] = contenders;
        Ok(Pair { lines: rx, labels: [a.label, b.label], parse: [a.parse, b.parse], _children: [c0, c1] })
    }

    /// Discards everything reported so far (stragglers of earlier changes).
    pub fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// Returns once neither printed anything for `quiet` (or after `timeout` of constant output).
    pub fn settle(&self, quiet: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.lines.recv_timeout(quiet).is_ok() {}
    }

    /// Waits at most `timeout` until both contenders reported `expected`; returns when each
    /// did. Other lines are skipped.
    pub fn wait_for(&self, expected: &Seen, timeout: Duration) -> Fallible<[Instant; 2]> {
        let deadline = Instant::now() + timeout;
        let mut seen: [Option<Instant>; 2] = [None, None];
        loop {
            if let [Some(a), Some(b)] = seen {
                return Ok([a, b]);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((who, at, line)) => {
                    if seen[who].is_none() && (self.parse[who])(&line).as_ref() == Some(expected) {
                        seen[who] = Some(at);
                    }
                }
                Err(e) => {
                    let missing: Vec<&str> =
                        (0..2).filter(|&i| seen[i].is_none()).map(|i| self.labels[i].as_str()).collect();
                    let why = match e {
                        RecvTimeoutError::Timeout => format!("within {timeout:?}"),
                        RecvTimeoutError::Disconnected => "before its output ended".into(),
                    };
                    return Err(format!("{} did not report {expected:?} {why}", missing.join(" and ")));
                }
            }
        }
    }
}

/// Reads until a first line has come (at most [`START_TIMEOUT`]); returns what was read after
/// it, for the reader.
fn first_line(pipe: &mut ChildStdout) -> Fallible<Vec<u8>> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(format!("printed no line within {START_TIMEOUT:?}")),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        match pipe.read(&mut buffer) {
            Ok(0) => return Err("exited before printing a line".into()),
            Ok(n) => {
                if let Some(end) = buffer[..n].iter().position(|&b| b == b'\n') {
                    return Ok(buffer[end + 1..n].to_vec());
                }
            }
            Err(e) => return Err(format!("reading its output: {e}")),
        }
    }
}

/// Waits (at most [`START_TIMEOUT`], polling: the kernel announces no subscription) until
/// process `pid` has a netlink route socket that joined multicast groups: a line of
/// `/proc/PID/net/netlink` (the process's own namespace) with protocol 0, groups other than
/// zero, and the inode of one of its descriptors.
fn subscribed(pid: u32) -> Fallible<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map_err(|e| format!("its descriptors: {e}"))?
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|target| {
                let target = target.to_string_lossy().into_owned();
                target.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_owned)
            })
            .collect();
        let table = std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).unwrap_or_default();
        let joined = table.lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() >= 10 && f[1] == "0" && f[3].chars().any(|c| c != '0') && sockets.iter().any(|s| s == f[9])
        });
        if joined {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("joined no netlink route group within {START_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The reader: one `poll()` on both pipes; each wake-up is stamped once, then every ready pipe
/// is read and its complete lines are sent with that stamp. Ends when either pipe closes (a
/// contender that died would only produce timeouts) or the pair is dropped. `pending` holds
/// output read before (after a first line): its lines are passed on first.
fn read_both(mut pipes: [ChildStdout; 2], mut pending: [Vec<u8>; 2], tx: Sender<Line>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let start = Instant::now();
    if !(0..2).all(|who| send_lines(who, start, &mut pending[who], &tx)) {
        return;
    }
    loop {
        let ready = {
            let mut fds =
                [PollFd::new(pipes[0].as_fd(), PollFlags::POLLIN), PollFd::new(pipes[1].as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => fds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty())),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        };
        let at = Instant::now();
        for who in (0..2).filter(|&i| ready[i]) {
            let n = match pipes[who].read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending[who].extend_from_slice(&buffer[..n]);
            if !send_lines(who, at, &mut pending[who], &tx) {
                return;
            }
        }
    }
}

/// Sends the complete lines in `pending` stamped `at`; false when nobody listens any more.
fn send_lines(who: usize, at: Instant, pending: &mut Vec<u8>, tx: &Sender<Line>) -> bool {
    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = pending.drain(..=end).collect();
        if tx.send((who, at, String::from_utf8_lossy(&line).into_owned())).is_err() {
            return false;
        }
    }
    true
}

/// The samples of one change kind, measured paired: `samples[i]` holds both contenders'
/// latencies for the same change.
pub struct PairedSeries {
    pub labels: [String; 2],
    pub samples: Vec<[Duration; 2]>,
}

impl PairedSeries {
    /// The sorted latencies of contender `who`.
    pub fn sorted(&self, who: usize) -> Vec<Duration> {
        let mut side: Vec<Duration> = self.samples.iter().map(|s| s[who]).collect();
        side.sort();
        side
    }

    /// p50 and p99 of contender `who`.
    pub fn percentiles(&self, who: usize) -> (Duration, Duration) {
        let sorted = self.sorted(who);
        (percentile(&sorted, 50), percentile(&sorted, 99))
    }

    /// In how many samples the first contender's line was stamped first, both lines in the
    /// same wake-up of the reader, and the second contender's first.
    pub fn order(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        for [a, b] in &self.samples {
            counts[match a.cmp(b) {
                std::cmp::Ordering::Less => 0,
                std::cmp::Ordering::Equal => 1,
                std::cmp::Ordering::Greater => 2,
            }] += 1;
        }
        counts
    }

    /// The second contender's p50 and p99 divided by the first's.
    pub fn ratios(&self) -> (f64, f64) {
        let ((a50, a99), (b50, b99)) = (self.percentiles(0), self.percentiles(1));
        (b50.as_secs_f64() / a50.as_secs_f64(), b99.as_secs_f64() / a99.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A contender that prints `lines` and then stays alive (a closed pipe ends the reader).
    fn printing(label: &str, lines: &str, parse: fn(&str) -> Option<Seen>, started: Started) -> Contender {
        let mut command = Command::new("sh");
        command.args(["-c", &format!("printf '{lines}'; exec sleep 60")]);
        Contender { label: label.into(), command, parse, started }
    }

    #[test]
    fn waits_for_both_and_names_the_missing_one() {
        let address = Seen::AddressAdded("203.0.113.5".parse().unwrap());
        let ip = "Deleted default via 192.0.2.254 dev vr0\\n3: va0    inet 203.0.113.5/32 scope global va0\\n";
        let json = r#"{"type":"address_added","address":{"address":"203.0.113.5"}}\n"#;
        // "json" starts first and announces itself with a first line, written together with
        // the line that counts: that one still reaches the reader.
        let announced = format!("baseline\\n{json}");
        let contenders = [
            printing("ip", ip, parse_ip_monitor, Started::FirstLine),
            printing("json", &announced, parse_netreach_json, Started::FirstLine),
        ];
        let pair = Pair::start(contenders, 0).expect("start");
        let [a, b] = pair.wait_for(&address, Duration::from_secs(10)).expect("both report the address");
        assert!(a.elapsed() < Duration::from_secs(10) && b.elapsed() < Duration::from_secs(10));

        let contenders = [
            printing("ip", ip, parse_ip_monitor, Started::FirstLine),
            printing("json", "", parse_netreach_json, Started::FirstLine),
        ];
        let silent = Pair::start(contenders, 1).expect("start");
        let error = silent.wait_for(&address, Duration::from_millis(300)).expect_err("one stays silent");
        assert!(error.starts_with("json did not report"), "{error}");
    }

    /// `ip monitor` is seen following once its socket has joined (here: this namespace's
    /// link group, which needs no privilege).
    #[test]
    fn a_subscription_is_seen_in_proc() {
        let mut ip = Command::new("ip").args(["monitor", "link"]).stdout(Stdio::null()).spawn().expect("ip monitor");
        let seen = subscribed(ip.id());
        let _ = ip.kill();
        let _ = ip.wait();
        seen.expect("ip monitor joined");
    }

    #[test]
    fn ratios_and_order_of_paired_samples() {
        let us = Duration::from_micros;
        let series = PairedSeries {
            labels: ["a".into(), "b".into()],
            samples: vec![[us(10), us(20)], [us(10), us(10)], [us(30), us(15)], [us(20), us(40)]],
        };
        assert_eq!(series.order(), [2, 1, 1]);
        assert_eq!(series.percentiles(0), (us(10), us(30)));
        assert_eq!(series.percentiles(1), (us(15), us(40)));
        let (r50, r99) = series.ratios();
        assert!((r50 - 1.5).abs() < 1e-9 && (r99 - 40.0 / 30.0).abs() < 1e-9, "{r50} {r99}");
    }
}
