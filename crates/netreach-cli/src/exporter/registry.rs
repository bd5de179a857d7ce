//! What the exporter watches: one entry per network namespace (its monitor, its path
//! monitors, the counters its events keep) and the one signal that says "something changed".
//!
//! Counters and timestamps are kept current by each monitor's event callback; the state
//! itself is the monitor's own snapshot (an `Arc`, taken at scrape time without waiting for
//! anything). A scrape therefore only reads and formats. Callbacks lock only their own
//! namespace's counters and the change signal, never the registry: the registry may drop a
//! monitor (which joins its thread) while holding nothing a callback waits for.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::SystemTime;

use netreach::{EventKind, Monitor, PathMonitor, ReachabilityOf};

/// Locks, taking the data even if a holder panicked: every field is valid on its own.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a namespace's events have counted. Index 0 overall, 1 IPv4, 2 IPv6.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) changes: [u64; 3],
    /// Seconds since the epoch of the last change (the monitor's start until one happens).
    pub(crate) last_change: [f64; 3],
    pub(crate) resyncs: u64,
    pub(crate) errors: u64,
    pub(crate) lagged: u64,
    pub(crate) events: u64,
    /// Status changes of the namespace's path monitors.
    pub(crate) path_changes: u64,
    /// Set when the monitor stopped (its fatal error).
    pub(crate) stopped: Option<String>,
    /// The last probe round's measurement of each family (with --probe).
    pub(crate) probes: Vec<netreach::ProbeMeasurement>,
}

impl Counters {
    /// Moves whenever anything this namespace exports may have changed: every change of its
    /// state comes with an event, every change of a path with a path event.
    pub(crate) fn version(&self) -> (u64, u64) {
        (self.events, self.path_changes)
    }
}

pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn slot(family: ReachabilityOf) -> usize {
    match family {
        ReachabilityOf::Overall => 0,
        ReachabilityOf::Ipv4 => 1,
        ReachabilityOf::Ipv6 => 2,
    }
}

impl Counters {
    fn started(at: SystemTime) -> Counters {
        let t = epoch_seconds(at);
        Counters { last_change: [t; 3], ..Counters::default() }
    }

    /// Counts one event.
    pub(crate) fn count(&mut self, event: &netreach::Event) {
        self.events += 1;
        match &event.kind {
            EventKind::ReachabilityChanged { family, .. } => {
                self.changes[slot(*family)] += 1;
                self.last_change[slot(*family)] = epoch_seconds(event.timestamp);
            }
            EventKind::Resynced { .. } => self.resyncs += 1,
            EventKind::ProbeFinished { measurements } => {
                for m in measurements {
                    self.probes.retain(|p| p.family != m.family);
                    self.probes.push(m.clone());
                }
            }
            EventKind::Lagged { missed } => self.lagged += missed,
            EventKind::Error { message, fatal } => {
                self.errors += 1;
                if *fatal {
                    self.stopped = Some(message.clone());
                }
            }
            _ => {}
        }
    }
}

/// "Something changed": a generation number that every event bumps, for the threads that act
/// on changes (the textfile writer, systemd's STATUS=). They sleep until it moves: no timer.
#[derive(Default)]
pub(crate) struct Changes {
    generation: Mutex<u64>,
    moved: Condvar,
}

impl Changes {
    pub(crate) fn bump(&self) {
        *lock(&self.generation) += 1;
        self.moved.notify_all();
    }

    pub(crate) fn current(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Blocks until the generation differs from `seen`; returns the new one.
    pub(crate) fn wait_past(&self, seen: u64) -> u64 {
        let guard = lock(&self.generation);
        *self.moved.wait_while(guard, |g| *g == seen).unwrap_or_else(|p| p.into_inner())
    }
}

/// A configured path monitor (`--path NAME=LOCAL,REMOTE`).
pub(crate) struct NamedPath {
    pub(crate) name: String,
    pub(crate) local: IpAddr,
    pub(crate) remote: IpAddr,
    pub(crate) monitor: PathMonitor,
}

/// One watched namespace.
pub(crate) enum Watched {
    /// Its monitor runs (or ran: see its counters' `stopped`).
    Running { monitor: Monitor, paths: Vec<NamedPath>, counters: Arc<Mutex<Counters>> },
    /// It could not be opened: why.
    Failed(String),
}

/// One namespace and where it came from.
pub(crate) struct Namespace {
    /// The `netns` label: "" for our own namespace, else the file's name (or its whole path
    /// when two directories hold the same name).
    pub(crate) label: String,
    /// The file (none for our own namespace).
    pub(crate) path: Option<PathBuf>,
    /// Device and inode of the namespace file when it was opened: a namespace deleted and
    /// made again under the same name is another namespace.
    pub(crate) identity: Option<(u64, u64)>,
    pub(crate) watched: Watched,
    /// The namespace file, held open while its monitor runs (the monitor entered it through
    /// this descriptor). Declared after `watched`: dropped after the monitor.
    pub(crate) _file: Option<std::fs::File>,
    /// This namespace's sample lines per family, as last formatted, and the counters' version
    /// they were formatted at: a scrape formats again only the namespaces that changed.
    pub(crate) formatted: Option<((u64, u64), Vec<String>)>,
}

/// Every watched namespace, by label, and the change signal.
#[derive(Default)]
pub(crate) struct Registry {
    pub(crate) namespaces: Mutex<BTreeMap<String, Namespace>>,
    pub(crate) changes: Arc<Changes>,
    /// Whether `--probe` is on (the probe's metrics are written only then).
    pub(crate) probe: bool,
}

impl Registry {
    pub(crate) fn new(probe: bool) -> Registry {
        Registry { probe, ..Registry::default() }
    }

    /// Starts counting a monitor's events; returns the counters its entry keeps.
    pub(crate) fn follow(&self, monitor: &Monitor) -> Arc<Mutex<Counters>> {
        let counters = Arc::new(Mutex::new(Counters::started(SystemTime::now())));
        let (mine, changes) = (counters.clone(), self.changes.clone());
        monitor.on_event(move |event| {
            lock(&mine).count(event);
            changes.bump();
        });
        counters
    }

    /// Adds (or replaces) a namespace; the one it replaced is returned, to be dropped by the
    /// caller outside the lock (dropping a monitor joins its thread).
    pub(crate) fn insert(&self, namespace: Namespace) -> Option<Namespace> {
        let old = lock(&self.namespaces).insert(namespace.label.clone(), namespace);
        self.changes.bump();
        old
    }

    /// Removes a namespace (its series go); returns it to be dropped outside the lock.
    pub(crate) fn remove(&self, label: &str) -> Option<Namespace> {
        let old = lock(&self.namespaces).remove(label);
        self.changes.bump();
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netreach::{Event, Level, Source};

    #[test]
    fn events_are_counted_by_kind_and_family() {
        let mut c = Counters::started(SystemTime::UNIX_EPOCH);
        let change = |family| {
            Event::now(EventKind::ReachabilityChanged {
                family,
                old: Level::Online,
                new: Level::Site,
                source: Source::Kernel,
                reason: None,
            })
        };
        c.count(&change(ReachabilityOf::Ipv6));
        c.count(&change(ReachabilityOf::Ipv6));
        c.count(&Event::now(EventKind::Lagged { missed: 5 }));
        c.count(&Event::now(EventKind::Resynced { reason: "overrun".into(), changes: 0 }));
        c.count(&Event::now(EventKind::Error { message: "gone".into(), fatal: true }));
        assert_eq!(c.changes, [0, 0, 2]);
        assert!(c.last_change[2] > 1.0e9 && c.last_change[1] == 0.0);
        assert_eq!((c.lagged, c.resyncs, c.errors, c.events), (5, 1, 1, 5));
        assert_eq!(c.stopped.as_deref(), Some("gone"));
    }

    #[test]
    fn waiting_for_a_change_returns_once_it_moved() {
        let changes = Arc::new(Changes::default());
        let seen = changes.current();
        let bumper = changes.clone();
        let t = std::thread::spawn(move || bumper.bump());
        assert_eq!(changes.wait_past(seen), seen + 1);
        t.join().unwrap();
    }
}
