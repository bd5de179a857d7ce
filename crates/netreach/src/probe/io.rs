//! The probe's network side: resolve, connect, one GET, a bounded read.
//!
//! The request is written by hand rather than with an HTTP client crate: the probe needs
//! exactly one `GET` with `Connection: close`, must never follow redirects, must stop reading
//! at 64 KiB and at a deadline whatever the server does, and must be cancellable from another
//! thread (the monitor's Drop). General clients (ureq, reqwest, hyper) follow redirects, pool
//! connections or impose a runtime; turning all that off costs more than these lines.
//! Parsing the reply is left to `httparse` (see `super::classify`).
//!
//! Every step is bounded: name resolution by the DNS timeout (getaddrinfo cannot be
//! interrupted, so it runs on a helper thread that is abandoned at the deadline and ends when
//! the system resolver gives up on its own), connect by the connect timeout, and everything by
//! the endpoint's total timeout. Sockets are created by the calling thread, so they live in
//! its network namespace.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::classify::{judge_reply, limited, Outcome, READ_CAP};
use super::{Endpoint, FamilyProbe, ProbeConfig, Timings};
use crate::model::Family;
/// How often a wait for the resolver looks at the cancel flag (only while a probe runs).
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// Addresses of one family tried per endpoint before giving up on it.
const MAX_ADDRESSES: usize = 3;
/// Stands in for a bound so large that `Instant + bound` overflows: never reached either.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `from + bound`, saturating: a `Duration` too large to add (e.g. `Duration::MAX` as a
/// timeout) means "no bound" and must not panic. Falls back to `from` only where even a
/// century cannot be added to an `Instant`, which no supported clock does.
pub(crate) fn later(from: Instant, bound: Duration) -> Instant {
    from.checked_add(bound).or_else(|| from.checked_add(FAR)).unwrap_or(from)
}

/// Lets another thread end a running probe at once: in-flight sockets are shut down (which
/// wakes a blocked connect or read) and waits for the resolver stop.
#[derive(Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    sockets: Mutex<Vec<(u64, Socket)>>,
    next: AtomicU64,
}

impl Cancel {
    pub(crate) fn cancel(&self) {
        let sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        self.cancelled.store(true, Ordering::SeqCst);
        for (_, socket) in sockets.iter() {
            let _ = socket.shutdown(std::net::Shutdown::Both); // not connected yet is fine
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Registers `socket` (a duplicate of its descriptor) until the guard drops.
    fn register(&self, socket: &Socket) -> std::io::Result<Registered<'_>> {
        let copy = socket.try_clone()?;
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_cancelled() {
            return Err(std::io::Error::other("cancelled"));
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        sockets.push((id, copy));
        Ok(Registered { cancel: self, id })
    }
}

struct Registered<'a> {
    cancel: &'a Cancel,
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.cancel.sockets.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.id);
    }
}

/// Addresses of an endpoint and how long resolving took (`None` for an address literal).
type Resolution = Result<(Vec<SocketAddr>, Option<Duration>), String>;

/// Probes `families` (in parallel, each on its own thread of the caller's namespace) against
/// the configured endpoints; each endpoint is resolved once for all families.
pub(crate) fn round(config: &ProbeConfig, families: &[Family], cancel: &Cancel) -> Vec<FamilyProbe> {
    let resolved: Vec<OnceLock<Resolution>> = config.endpoints.iter().map(|_| OnceLock::new()).collect();
    std::thread::scope(|scope| {
        let threads: Vec<_> = families
            .iter()
            .map(|&family| {
                let resolved = &resolved;
                scope.spawn(move || probe_family(config, family, resolved, cancel))
            })
            .collect();
        threads
            .into_iter()
            .zip(families)
            .map(|(t, &family)| {
                t.join().unwrap_or_else(|_| FamilyProbe::not_probed(family, "internal error: the probe panicked"))
            })
            .collect()
    })
}

/// One family: endpoints in order until one answers online or portal.
fn probe_family(
    config: &ProbeConfig,
    family: Family,
    resolved: &[OnceLock<Resolution>],
    cancel: &Cancel,
) -> FamilyProbe {
    let mut last: Option<FamilyProbe> = None;
    for (endpoint, resolution) in config.endpoints.iter().zip(resolved) {
        let start = Instant::now();
        let deadline = later(start, config.total_timeout);
        let resolution =
            resolution.get_or_init(|| resolve(endpoint, config.dns_timeout.min(config.total_timeout), cancel));
        let (addrs, dns) = match resolution {
            Ok((addrs, dns)) => (addrs, *dns),
            Err(reason) => {
                let unresolved = Outcome::Unresolved { reason: reason.clone() };
                let mut p = FamilyProbe::new(family, endpoint, unresolved);
                p.timings.total = start.elapsed();
                last = Some(p);
                continue;
            }
        };
        let addrs: Vec<SocketAddr> =
            addrs.iter().copied().filter(|a| Family::of(&a.ip()) == family).take(MAX_ADDRESSES).collect();
        if addrs.is_empty() {
            continue; // this endpoint says nothing about this family
        }
        let mut p = FamilyProbe::new(family, endpoint, Outcome::Online);
        p.timings.dns = dns;
        p.outcome = fetch(endpoint, &addrs, deadline, config.connect_timeout, cancel, &mut p);
        p.timings.total = start.elapsed() + dns.unwrap_or_default();
        if !matches!(p.outcome, Outcome::Limited { .. }) || cancel.is_cancelled() {
            return p;
        }
        last = Some(p);
    }
    last.unwrap_or_else(|| FamilyProbe::not_probed(family, &format!("no endpoint has an {family} address")))
}

/// Resolves the endpoint's host within `timeout` (at once for an address literal).
fn resolve(endpoint: &Endpoint, timeout: Duration, cancel: &Cancel) -> Resolution {
    let (host, port) = (endpoint.target.host.clone(), endpoint.target.port);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], None));
    }
    resolve_name(host, port, timeout, cancel).map(|(addrs, took)| (addrs, Some(took)))
}

/// Resolves a name through the system resolver within `timeout`, on a helper thread (see the
/// module's documentation); the error says why in words.
pub(crate) fn resolve_name(
    host: String,
    port: u16,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<(Vec<SocketAddr>, Duration), String> {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let worker = host.clone();
    // Inherits the caller's network namespace, so queries leave from there.
    let spawned = std::thread::Builder::new()
        .name("netreach-resolve".into())
        .spawn(move || drop(tx.send((worker.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()))));
    if let Err(e) = spawned {
        return Err(format!("cannot start name resolution: {e}"));
    }
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!("name resolution of {host} timed out after {}", humantime::format_duration(timeout)));
        }
        if cancel.is_cancelled() {
            return Err("cancelled".into());
        }
        match rx.recv_timeout(left.min(CANCEL_POLL)) {
            Ok(Ok(addrs)) => return Ok((addrs, start.elapsed())),
            Ok(Err(e)) => return Err(format!("name resolution of {host} failed ({e})")),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("name resolution of {host} failed")),
        }
    }
}

/// Connects to the first address that answers and judges its reply. `probe.address` is left
/// at the address the outcome is about: the one that answered, or the one whose failure is
/// the reason (an address never tried because time ran out is not named).
fn fetch(
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
    deadline: Instant,
    connect_timeout: Duration,
    cancel: &Cancel,
    probe: &mut FamilyProbe,
) -> Outcome {
    let mut failure = limited("no time left to connect");
    for &addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        probe.address = Some(addr);
        let start = Instant::now();
        let socket = match Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)) {
            Ok(socket) => socket,
            Err(e) => return limited(format!("cannot open a socket for {addr}: {e}")),
        };
        let Ok(_registered) = cancel.register(&socket) else { return limited("cancelled") };
        let budget = connect_timeout.min(left);
        match socket.connect_timeout(&addr.into(), budget) {
            Ok(()) => {
                probe.timings.connect = Some(start.elapsed());
                return exchange(endpoint, socket.into(), deadline, cancel, &mut probe.timings);
            }
            Err(_) if cancel.is_cancelled() => return limited("cancelled"),
            Err(e) => {
                failure = limited(connect_error(addr, &e));
                // An attempt that had the rest of the total and timed out used up the time;
                // the wait it ends (`poll`, in whole milliseconds) may leave a sliver, which
                // is no budget to give the next address.
                if budget == left && is_timeout(&e) {
                    break;
                }
            }
        }
    }
    failure
}

fn connect_error(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection to {addr} refused"),
        _ if is_timeout(e) => format!("connecting to {addr} timed out"),
        _ => format!("cannot connect to {addr} ({e})"),
    }
}

/// Whether a connect failed because its time ran out.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
}

/// Sends the GET and reads at most [`READ_CAP`] bytes of the reply until it can be judged.
fn exchange(
    endpoint: &Endpoint,
    mut stream: TcpStream,
    deadline: Instant,
    cancel: &Cancel,
    t: &mut Timings,
) -> Outcome {
    let url = &endpoint.target;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netreach/{}\r\nAccept: */*\r\nCache-Control: no-cache\r\n\
         Connection: close\r\n\r\n",
        url.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    let timed_out = || limited("no complete reply in time");
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return timed_out();
    }
    let sent = Instant::now();
    let _ = stream.set_nodelay(true);
    if let Err(e) = stream.set_write_timeout(Some(left)).and_then(|()| stream.write_all(request.as_bytes())) {
        return io_failure(&e, cancel, "sending the request");
    }
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let mut eof = false;
    loop {
        // The buffer never passes the cap, so a full buffer is always judged here.
        if let Some(outcome) = judge_reply(&endpoint.expect, url, &buf, eof) {
            return outcome;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return timed_out();
        }
        let read = stream.set_read_timeout(Some(left)).and_then(|()| stream.read(&mut chunk));
        match read {
            Ok(0) => eof = true,
            Ok(n) => {
                t.first_byte.get_or_insert_with(|| sent.elapsed());
                let room = READ_CAP - buf.len();
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return timed_out()
            }
            Err(e) => return io_failure(&e, cancel, "reading the reply"),
        }
    }
}

fn io_failure(e: &std::io::Error, cancel: &Cancel, doing: &str) -> Outcome {
    if cancel.is_cancelled() {
        return limited("cancelled");
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => limited(format!("the connection was reset while {doing}")),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => limited("no complete reply in time"),
        _ => limited(format!("{doing}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate_instead_of_panicking() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) >= now + FAR / 2, "Duration::MAX is a bound never reached");
        assert_eq!(later(now, Duration::from_secs(3)), now + Duration::from_secs(3));
        assert_eq!(later(now, Duration::ZERO), now);
    }
}
