//! Observers: the subscribers whose latency is measured. Each turns what it sees into a
//! [`Seen`] stamped with the moment it saw it, so one waiting routine serves them all.
//!
//! - the library: a [`netreach::Monitor`] callback stamps the event on the engine thread;
//! - the library's blocking [`netreach::Subscription`] on a thread of its own (what
//!   `netreach watch` uses): the time it adds to the callback is the hand-over between threads;
//! - `ip monitor` and `netreach watch --json`: a reader thread stamps each stdout line as soon
//!   as it is read, and only then parses it.

use std::any::Any;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::process::{ChildStdout, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use netreach::{EventKind, Interface, Monitor};
use serde_json::Value;

use crate::util::{Fallible, Guarded};

/// A change as any observer reports it. Interfaces are named rather than indexed because
/// `ip monitor` prints route lines with names only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    AddressAdded(IpAddr),
    AddressRemoved(IpAddr),
    DefaultRouteAdded(String),
    DefaultRouteRemoved(String),
    LinkDown(String),
    /// Administratively up, carrier and operationally up: the link has settled after `up`.
    LinkReady(String),
}

/// Which subscriber an [`Observer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscriber {
    Library,
    LibrarySubscription,
    IpMonitor,
    NetreachWatch,
}

impl Subscriber {
    pub const ALL: [Subscriber; 4] =
        [Subscriber::Library, Subscriber::LibrarySubscription, Subscriber::IpMonitor, Subscriber::NetreachWatch];

    pub fn label(self) -> &'static str {
        match self {
            Subscriber::Library => "netreach library (callback)",
            Subscriber::LibrarySubscription => "netreach library (`Subscription::recv` thread)",
            Subscriber::IpMonitor => "`ip monitor`",
            Subscriber::NetreachWatch => "`netreach watch --json`",
        }
    }
}

/// What a subscriber reported, stamped when it arrived.
enum Report {
    /// A library subscriber's change, already decoded.
    Seen(Seen),
    /// A line of a process's output, decoded only by the waiting thread: decoding on the
    /// reader thread would delay the stamping of the next line (netreach prints several lines
    /// per change, and JSON takes longer to decode than `ip monitor`'s words).
    Line(String, fn(&str) -> Option<Seen>),
}

impl Report {
    fn seen(&self) -> Option<Seen> {
        match self {
            Report::Seen(seen) => Some(seen.clone()),
            Report::Line(line, parse) => parse(line),
        }
    }
}

/// A running subscriber and the stamped changes it reports.
pub struct Observer {
    seen: Receiver<(Instant, Report)>,
    /// What keeps the subscriber alive: the [`Monitor`], or the [`Guarded`] child process.
    /// Dropping it stops the monitor or kills the child.
    _source: Box<dyn Any>,
    name: &'static str,
}

impl Observer {
    /// Starts `subscriber` on namespace `netns`. `ip_objects` are the objects `ip monitor`
    /// follows (e.g. `["link", "address", "route"]`).
    pub fn start(subscriber: Subscriber, netns: &str, ip_objects: &[&str], netreach_bin: &Path) -> Fallible<Observer> {
        let (tx, rx) = channel();
        let source: Box<dyn Any> = match subscriber {
            Subscriber::Library => Box::new(library(netns, tx)?),
            Subscriber::LibrarySubscription => Box::new(library_subscription(netns, tx)?),
            Subscriber::IpMonitor => {
                let mut command = Command::new("ip");
                command.args(["-o", "-n", netns, "monitor"]).args(ip_objects);
                Box::new(process(&mut command, tx, parse_ip_monitor)?)
            }
            Subscriber::NetreachWatch => {
                let mut command = Command::new(netreach_bin);
                command.args(["watch", "--json", "--netns", netns]);
                Box::new(process(&mut command, tx, parse_netreach_json)?)
            }
        };
        Ok(Observer { seen: rx, _source: source, name: subscriber.label() })
    }

    /// Discards everything reported so far (stragglers of earlier changes).
    pub fn drain(&self) {
        while self.seen.try_recv().is_ok() {}
    }

    /// Returns once nothing was reported for `quiet` (or after `timeout` of constant reports).
    pub fn settle(&self, quiet: Duration, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.seen.recv_timeout(quiet).is_ok() {}
    }

    /// Waits at most `timeout` for `expected` and returns when the observer saw it; other
    /// reports are skipped.
    pub fn wait_for(&self, expected: &Seen, timeout: Duration) -> Fallible<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok((at, report)) if report.seen().as_ref() == Some(expected) => return Ok(at),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{} did not report {expected:?} within {timeout:?}", self.name))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} stopped before reporting {expected:?}", self.name))
                }
            }
        }
    }
}

fn library(netns: &str, tx: Sender<(Instant, Report)>) -> Fallible<Monitor> {
    let monitor = Monitor::builder().netns(netns).build().map_err(|e| format!("starting the monitor: {e}"))?;
    monitor.on_event(move |event| {
        // Stamp first: the callback's own matching is not netreach's latency.
        let at = Instant::now();
        if let Some(seen) = seen_of_event(&event.kind) {
            let _ = tx.send((at, Report::Seen(seen)));
        }
    });
    Ok(monitor)
}

/// Receives on a thread of its own, which ends when the monitor is dropped (the
/// subscription then closes).
fn library_subscription(netns: &str, tx: Sender<(Instant, Report)>) -> Fallible<Monitor> {
    let monitor = Monitor::builder().netns(netns).build().map_err(|e| format!("starting the monitor: {e}"))?;
    let events = monitor.subscribe();
    std::thread::Builder::new()
        .name("bench-subscriber".into())
        .spawn(move || {
            while let Some(event) = events.recv() {
                let at = Instant::now();
                if let Some(seen) = seen_of_event(&event.kind) {
                    let _ = tx.send((at, Report::Seen(seen)));
                }
            }
        })
        .map_err(|e| format!("starting a subscriber thread: {e}"))?;
    Ok(monitor)
}

fn seen_of_event(kind: &EventKind) -> Option<Seen> {
    match kind {
        EventKind::AddressAdded { address, .. } => Some(Seen::AddressAdded(address.address)),
        EventKind::AddressRemoved { address, .. } => Some(Seen::AddressRemoved(address.address)),
        EventKind::DefaultRouteAdded { route } => Some(Seen::DefaultRouteAdded(route.interface.clone())),
        EventKind::DefaultRouteRemoved { route } => Some(Seen::DefaultRouteRemoved(route.interface.clone())),
        EventKind::InterfaceChanged { after, .. } => link_seen(after),
        _ => None,
    }
}

fn link_seen(after: &Interface) -> Option<Seen> {
    if !after.up {
        Some(Seen::LinkDown(after.name.clone()))
    } else if after.is_ready() {
        Some(Seen::LinkReady(after.name.clone()))
    } else {
        None
    }
}

/// Spawns `command` and a thread that stamps and parses each line of its stdout.
fn process(command: &mut Command, tx: Sender<(Instant, Report)>, parse: fn(&str) -> Option<Seen>) -> Fallible<Guarded> {
    let mut child = Guarded::spawn(command, Stdio::piped())?;
    let stdout = child.0.stdout.take().ok_or("child has no stdout")?;
    std::thread::Builder::new()
        .name("bench-reader".into())
        .spawn(move || read_lines(stdout, tx, parse))
        .map_err(|e| format!("starting a reader thread: {e}"))?;
    Ok(child)
}

/// Ends when the child's stdout closes (the child is killed when its observer is dropped).
fn read_lines(stdout: ChildStdout, tx: Sender<(Instant, Report)>, parse: fn(&str) -> Option<Seen>) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let at = Instant::now();
                if tx.send((at, Report::Line(line, parse))).is_err() {
                    return;
                }
            }
        }
    }
}

/// Parses one line of `ip -o monitor`, e.g.
/// `3: va0    inet 203.0.113.5/32 scope global va0\ ...`,
/// `Deleted default via 192.0.2.254 dev vr0 proto static`,
/// `3: vl0@vl1: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN ...`.
fn parse_ip_monitor(line: &str) -> Option<Seen> {
    let (deleted, rest) = match line.strip_prefix("Deleted ") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.first() == Some(&"default") {
        let dev = words.iter().position(|w| *w == "dev").and_then(|i| words.get(i + 1))?.to_string();
        return Some(if deleted { Seen::DefaultRouteRemoved(dev) } else { Seen::DefaultRouteAdded(dev) });
    }
    match words.get(2) {
        Some(&"inet") => {
            let address = words.get(3)?.split('/').next()?.parse().ok()?;
            Some(if deleted { Seen::AddressRemoved(address) } else { Seen::AddressAdded(address) })
        }
        Some(flags) if flags.starts_with('<') && !deleted => {
            let name = words[1].trim_end_matches(':').split('@').next()?.to_string();
            let flags: Vec<&str> = flags.trim_matches(|c| c == '<' || c == '>').split(',').collect();
            let state_up = words.windows(2).any(|w| w == ["state", "UP"]);
            if !flags.contains(&"UP") {
                Some(Seen::LinkDown(name))
            } else if flags.contains(&"LOWER_UP") && state_up {
                Some(Seen::LinkReady(name))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Parses one line of `netreach watch --json` (the baseline and other events yield `None`).
fn parse_netreach_json(line: &str) -> Option<Seen> {
    let event: Value = serde_json::from_str(line).ok()?;
    let address = || event["address"]["address"].as_str()?.parse().ok();
    let route_interface = || event["route"]["interface"].as_str().map(str::to_string);
    match event["type"].as_str()? {
        "address_added" => address().map(Seen::AddressAdded),
        "address_removed" => address().map(Seen::AddressRemoved),
        "default_route_added" => route_interface().map(Seen::DefaultRouteAdded),
        "default_route_removed" => route_interface().map(Seen::DefaultRouteRemoved),
        "interface_changed" => {
            let after: Interface = serde_json::from_value(event["after"].clone()).ok()?;
            link_seen(&after)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_monitor_lines() {
        let add = "3: va0    inet 203.0.113.5/32 scope global va0\\       valid_lft forever preferred_lft forever";
        assert_eq!(parse_ip_monitor(add), Some(Seen::AddressAdded("203.0.113.5".parse().unwrap())));
        let del = format!("Deleted {add}");
        assert_eq!(parse_ip_monitor(&del), Some(Seen::AddressRemoved("203.0.113.5".parse().unwrap())));
        let route = "Deleted default via 192.0.2.254 dev vr0 proto static ";
        assert_eq!(parse_ip_monitor(route), Some(Seen::DefaultRouteRemoved("vr0".into())));
        let down = "3: vl0@vl1: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN group default \\    link/ether";
        assert_eq!(parse_ip_monitor(down), Some(Seen::LinkDown("vl0".into())));
        let ready = "3: vl0@vl1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default";
        assert_eq!(parse_ip_monitor(ready), Some(Seen::LinkReady("vl0".into())));
        let settling = "3: vl0@vl1: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 state LOWERLAYERDOWN";
        assert_eq!(parse_ip_monitor(settling), None);
        assert_eq!(parse_ip_monitor("local 203.0.113.5 dev va0 table local proto kernel"), None);
    }

    #[test]
    fn netreach_json_lines() {
        let add = r#"{"timestamp":"x","type":"address_added","interface":"va0","index":3,
            "address":{"address":"203.0.113.5","prefix_len":32}}"#
            .replace('\n', "");
        assert_eq!(parse_netreach_json(&add), Some(Seen::AddressAdded("203.0.113.5".parse().unwrap())));
        let route = r#"{"type":"default_route_removed","route":{"interface":"vr0"}}"#;
        assert_eq!(parse_netreach_json(route), Some(Seen::DefaultRouteRemoved("vr0".into())));
        assert_eq!(parse_netreach_json(r#"{"type":"baseline","state":{}}"#), None);
    }
}
