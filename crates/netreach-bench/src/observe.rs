//! Observers: the in-process subscribers whose latency is measured, and what every subscriber
//! reports, as a [`Seen`].
//!
//! - the library: a [`netreach::Monitor`] callback stamps the event on the engine thread;
//! - the library's blocking [`netreach::Subscription`] on a thread of its own: the time it adds
//!   to the callback is the hand-over between threads.
//!
//! The processes (`ip monitor`, `netreach watch --json`) are measured in pairs
//! ([`crate::paired`]); their lines are parsed here.

use std::net::IpAddr;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use netreach::{EventKind, Interface, Monitor};
use serde_json::Value;

use crate::util::Fallible;

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

/// Which in-process subscriber an [`Observer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscriber {
    Library,
    LibrarySubscription,
}

impl Subscriber {
    pub const ALL: [Subscriber; 2] = [Subscriber::Library, Subscriber::LibrarySubscription];

    pub fn label(self) -> &'static str {
        match self {
            Subscriber::Library => "netreach library (callback)",
            Subscriber::LibrarySubscription => "netreach library (`Subscription::recv` thread)",
        }
    }
}

/// A running in-process subscriber and the stamped changes it reports.
pub struct Observer {
    seen: Receiver<(Instant, Seen)>,
    /// Keeps the subscriber alive; dropping it stops the monitor.
    _monitor: Monitor,
    name: &'static str,
}

impl Observer {
    /// Starts `subscriber` on namespace `netns`.
    pub fn start(subscriber: Subscriber, netns: &str) -> Fallible<Observer> {
        let (tx, rx) = channel();
        let monitor = match subscriber {
            Subscriber::Library => library(netns, tx)?,
            Subscriber::LibrarySubscription => library_subscription(netns, tx)?,
        };
        Ok(Observer { seen: rx, _monitor: monitor, name: subscriber.label() })
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
                Ok((at, seen)) if seen == *expected => return Ok(at),
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

fn library(netns: &str, tx: Sender<(Instant, Seen)>) -> Fallible<Monitor> {
    let monitor = Monitor::builder().netns(netns).build().map_err(|e| format!("starting the monitor: {e}"))?;
    monitor.on_event(move |event| {
        // Stamp first: the callback's own matching is not netreach's latency.
        let at = Instant::now();
        if let Some(seen) = seen_of_event(&event.kind) {
            let _ = tx.send((at, seen));
        }
    });
    Ok(monitor)
}

/// Receives on a thread of its own, which ends when the monitor is dropped (the
/// subscription then closes).
fn library_subscription(netns: &str, tx: Sender<(Instant, Seen)>) -> Fallible<Monitor> {
    let monitor = Monitor::builder().netns(netns).build().map_err(|e| format!("starting the monitor: {e}"))?;
    let events = monitor.subscribe();
    std::thread::Builder::new()
        .name("bench-subscriber".into())
        .spawn(move || {
            while let Some(event) = events.recv() {
                let at = Instant::now();
                if let Some(seen) = seen_of_event(&event.kind) {
                    let _ = tx.send((at, seen));
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

/// Parses one line of `ip -o monitor`, e.g.
/// `3: va0    inet 203.0.113.5/32 scope global va0\ ...`,
/// `Deleted default via 192.0.2.254 dev vr0 proto static`,
/// `3: vl0@vl1: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN ...`.
pub fn parse_ip_monitor(line: &str) -> Option<Seen> {
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
pub fn parse_netreach_json(line: &str) -> Option<Seen> {
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
