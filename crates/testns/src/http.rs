//! A scripted HTTP server for probe tests, listening inside a test namespace, and the
//! client/server namespace pair it runs in. Each connection gets the same [`Reply`]; the
//! bad ones (silence, trickle, floods, resets, garbage) are what the probe must survive.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::NetNs;

/// Client side address of [`client_server`] pairs.
pub const CLIENT_V4: &str = "192.0.2.10";
/// Server side (and the client's default gateway).
pub const SERVER_V4: &str = "192.0.2.1";
/// Client side IPv6 address.
pub const CLIENT_V6: &str = "2001:db8::10";
/// Server side IPv6 address (and gateway).
pub const SERVER_V6: &str = "2001:db8::1";

/// Two namespaces joined by a veth: the client (`va`: 192.0.2.10/24, 2001:db8::10/64, default
/// routes of both families via the server) and the server (`vb`: 192.0.2.1/24, 2001:db8::1/64).
/// The client is `online` for the kernel in both families.
pub fn client_server(tag: &str) -> (NetNs, NetNs) {
    let client = NetNs::new(&format!("{tag}c"));
    let server = NetNs::new(&format!("{tag}s"));
    client.ip("link add va type veth peer name vb");
    client.move_link("vb", &server);
    client.ip_batch(&format!(
        "addr add {CLIENT_V4}/24 dev va\naddr add {CLIENT_V6}/64 dev va nodad\nlink set va up\n\
         route add default via {SERVER_V4}\nroute add default via {SERVER_V6}\n"
    ));
    server.ip_batch(&format!("addr add {SERVER_V4}/24 dev vb\naddr add {SERVER_V6}/64 dev vb nodad\nlink set vb up\n"));
    // Until the kernel's link watcher has seen the carrier (it may take up to a second), the
    // link has no queue and drops what is sent: wait for both ends to be operationally up.
    for (ns, link) in [(&client, "va"), (&server, "vb")] {
        crate::wait_until(Duration::from_secs(10), &format!("{link} operationally up"), || {
            ns.ip_json(&format!("link show dev {link}"))[0]["operstate"] == "UP"
        });
    }
    (client, server)
}

/// What the server does with each connection (after reading the request head).
#[derive(Debug, Clone)]
pub enum Reply {
    /// Writes these bytes, then closes.
    Bytes(Vec<u8>),
    /// Says nothing, holding the connection open until the server is dropped.
    Silent,
    /// Writes these bytes one at a time, `interval` apart.
    Trickle(Vec<u8>, Duration),
    /// Writes `head`, then `filler` over and over up to `limit` bytes in all (or until the
    /// client leaves).
    Flood {
        /// Written first.
        head: Vec<u8>,
        /// Repeated.
        filler: Vec<u8>,
        /// Total bytes at most.
        limit: usize,
    },
    /// Writes these bytes, then resets the connection (RST instead of FIN).
    Reset(Vec<u8>),
}

impl Reply {
    /// A whole reply from its text.
    pub fn text(s: &str) -> Reply {
        Reply::Bytes(s.as_bytes().to_vec())
    }
}

/// A server in a namespace; stops (and joins its threads) when dropped.
pub struct Server {
    addr: SocketAddr,
    namespace: PathBuf,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    accept: Option<JoinHandle<()>>,
    handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Listens on `addr` (e.g. `192.0.2.1:8080`) inside `ns` and answers every request with
    /// `reply`.
    pub fn start(ns: &NetNs, addr: &str, reply: Reply) -> Server {
        Server::start_at(&ns.path(), addr, reply)
    }

    /// Like [`Server::start`], in the network namespace file `namespace` (one this crate did
    /// not make, e.g. the NetworkManager sandbox's server side).
    pub fn start_at(namespace: &Path, addr: &str, reply: Reply) -> Server {
        let addr: SocketAddr = addr.parse().expect("server address");
        let file = std::fs::File::open(namespace).expect("namespace file");
        let listener = std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a namespace file we hold open; affects only this thread.
                let rc = unsafe { crate::setns(file.as_raw_fd(), crate::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                TcpListener::bind(addr)
            })
            .join()
            .expect("namespace thread panicked")
        })
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let handlers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (stop, requests, handlers) = (stop.clone(), requests.clone(), handlers.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (stop, requests, reply) = (stop.clone(), requests.clone(), reply.clone());
                    let handler = std::thread::spawn(move || serve(conn, &reply, &stop, &requests));
                    handlers.lock().unwrap().push(handler);
                }
            })
        };
        Server { addr, namespace: namespace.to_path_buf(), stop, requests, accept: Some(accept), handlers }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own, from inside the namespace.
        let addr = self.addr;
        let file = std::fs::File::open(&self.namespace).expect("namespace file");
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a namespace file we hold open; affects only this thread.
                if unsafe { crate::setns(file.as_raw_fd(), crate::CLONE_NEWNET) } == 0 {
                    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
                }
            });
        });
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for handler in std::mem::take(&mut *self.handlers.lock().unwrap()) {
            let _ = handler.join();
        }
    }
}

fn serve(mut conn: TcpStream, reply: &Reply, stop: &AtomicBool, requests: &AtomicUsize) {
    // Read the request head (a probe's fits in one read or a few).
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    match reply {
        Reply::Bytes(bytes) => drop(conn.write_all(bytes)),
        Reply::Silent => {
            // Until the client leaves or the server stops.
            while !stop.load(Ordering::SeqCst) && !matches!(conn.read(&mut buf), Ok(0)) {}
        }
        Reply::Trickle(bytes, interval) => {
            for b in bytes {
                if stop.load(Ordering::SeqCst) || conn.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(*interval); // the pace is the scenario
            }
        }
        Reply::Flood { head, filler, limit } => {
            let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
            let mut sent = 0;
            if conn.write_all(head).is_err() {
                return;
            }
            while sent < *limit && !stop.load(Ordering::SeqCst) {
                match conn.write(filler) {
                    Ok(n) => sent += n,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        }
        Reply::Reset(bytes) => {
            let _ = conn.write_all(bytes);
            reset(&conn);
        }
    }
}

/// Closes with RST: SO_LINGER on with a zero timeout, then close.
fn reset(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        on: i32,
        seconds: i32,
    }
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger { on: 1, seconds: 0 };
    // SAFETY: `conn` owns its open socket for the call; `linger` is a live `#[repr(C)]` struct
    // linger (two ints) and the length passed is its size, so the kernel reads only it. The
    // option numbers are those of Linux's generic ABI (x86, Arm, RISC-V).
    unsafe { setsockopt(conn.as_raw_fd(), SOL_SOCKET, SO_LINGER, &linger, std::mem::size_of::<Linger>() as u32) };
}
