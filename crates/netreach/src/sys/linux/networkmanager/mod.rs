//! NetworkManager as a source above the kernel: its connectivity check, metering and primary
//! connection type, read over D-Bus and followed through `PropertiesChanged` signals.
//!
//! One thread per monitor drives the D-Bus connection (zbus without its own executor thread)
//! and waits, with no timer while NM is present and answering, for whichever comes first: a
//! signal from NM, NM's name changing owner (it left or came back), a request from
//! [`NetworkManager::check`], the end of a settle window, or the monitor dropping this source
//! (see [`follower`]).
//!
//! - Every D-Bus call is bounded ([`client::CALL_TIMEOUT`], 2 s): a stopped NM or dbus-daemon
//!   never makes building, `check()` or the thread hang.
//! - NM leaving the bus withdraws its verdict at once; it is read afresh when NM returns.
//! - NM owning its name but not answering (stopped, wedged) withdraws its verdict, is reported
//!   once as a non-fatal error, and is asked again until it answers (one bounded read at a
//!   time, i.e. one call every 2 s while it stays silent).
//! - The bus connection ending (the dbus-daemon stopped) or the bus not answering withdraws
//!   the verdict, is reported as a non-fatal error, and the thread reconnects with a capped
//!   backoff (50 ms doubling to 2 s): wake-ups only while the system bus is gone, which in
//!   practice is during a system shutdown or a test.
//! - `check()` pings NM, calls its `CheckConnectivity`, then re-reads every property and hands
//!   the fresh verdict over (bypassing any settle window). When NM (or the bus policy)
//!   refuses, that is reported once and later checks leave the decision to the probe.

mod client;
mod follower;
mod mapping;

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_lite::future::FutureExt;
use zbus::Connection;

use self::client::{Link, CALL_TIMEOUT, NM_NAME};
use self::follower::Follower;
use crate::backend::BackendKind;
use crate::model::Error;
use crate::sys::{InputSink, NetworkManagerConfig};

/// The system bus when neither the builder nor `DBUS_SYSTEM_BUS_ADDRESS` names another.
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// How long building a monitor waits for NM's first reading: the bus set-up and the reading
/// are each bounded by [`CALL_TIMEOUT`], so this is only a last resort.
const FIRST_READING_WAIT: Duration = Duration::from_secs(5);
/// The longest [`NetworkManager::check`] waits for the thread: one `CheckConnectivity` (30 s at most)
/// plus a few bounded reads. The thread answers well before unless NM is pathological.
const CHECK_WAIT: Duration = Duration::from_secs(40);

/// Starts the NetworkManager source the builder asks for, if any.
///
/// - `Kernel`: none.
/// - `Auto`: only for the caller's own namespace (NM speaks for the namespace it runs in) and
///   only if the system bus answers; NM itself may come and go (or stop answering) later.
///   Without a bus socket this costs one `stat`.
/// - `NetworkManager`: the bus must answer, NM must own its name and answer its first read,
///   else a clear error.
pub(crate) fn start(config: &NetworkManagerConfig, sink: Arc<dyn InputSink>) -> Result<Option<NetworkManager>, Error> {
    let explicit = match config.backend {
        BackendKind::Kernel => return Ok(None),
        BackendKind::Auto if config.other_namespace => return Ok(None),
        BackendKind::Auto => false,
        BackendKind::NetworkManager => true,
    };
    let address = config
        .system_bus_address
        .clone()
        .or_else(|| std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_string());
    if !explicit && !socket_exists(&address) {
        return Ok(None); // the common case without a system bus: no zbus set-up at all
    }
    let unusable = |what: String| Error::unavailable(format!("NetworkManager backend: {what}"));
    let link = match zbus::block_on(client::connect(&address)) {
        Ok(link) => link,
        Err(_) if !explicit => return Ok(None),
        Err(e) => return Err(unusable(format!("cannot connect to the system bus at {address}: {e}"))),
    };
    if explicit {
        let asked = async {
            let dbus = zbus::fdo::DBusProxy::new(&link.conn).await?;
            Ok(dbus.name_has_owner(client::nm_name()).await?)
        };
        let owned = zbus::block_on(ticking(&link.conn, client::bounded("the system bus", CALL_TIMEOUT, asked)));
        let problem = match owned {
            Ok(true) => None,
            Ok(false) => Some(format!("{NM_NAME} is not running (no owner on the bus at {address})")),
            Err(e) => Some(format!("asking the system bus at {address} about {NM_NAME}: {e}")),
        };
        if let Some(problem) = problem {
            zbus::block_on(close(link));
            return Err(unusable(problem));
        }
    }
    let (control, requests) = async_channel::unbounded();
    // Closed (never sent on) when the monitor drops this source: ends even a D-Bus call that
    // NM has not answered yet.
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let (ready, started) = mpsc::sync_channel(1);
    let mut source = Follower::new(address, sink, config.settle);
    let thread = std::thread::Builder::new()
        .name("netreach-nm".into())
        .spawn(move || zbus::block_on(source.run(link, requests, stopped, ready)))
        .map_err(|e| Error::io("starting the NetworkManager thread", e))?;
    let refiner = NetworkManager { control, stop, thread: Mutex::new(Some(thread)) };
    // The first reading is in the sink before the monitor is handed out, unless NM is slow to
    // answer: then it arrives as an event, and building never waits longer than this.
    match started.recv_timeout(FIRST_READING_WAIT) {
        Ok(Err(silent)) if explicit => Err(unusable(silent)), // dropping the refiner ends the thread
        _ => Ok(Some(refiner)),
    }
}

/// False only when `address` is a `unix:path=` address whose socket file does not exist:
/// checking that costs a `stat`, where a zbus connection attempt costs ~50 µs (measured),
/// which `auto` would add to every monitor on machines without a system bus.
fn socket_exists(address: &str) -> bool {
    match address.strip_prefix("unix:path=") {
        Some(rest) => std::path::Path::new(rest.split(',').next().unwrap_or(rest)).exists(),
        None => true, // another transport: let zbus try
    }
}

/// Closes a connection: shuts its socket down and runs its executor until zbus's socket
/// reader task has seen the end (bounded: a second at most). Merely dropping the connection
/// would leave that task, and with it the socket, in an executor nobody ticks.
async fn close(link: Link) {
    let executor = link.conn.executor().clone();
    link.shut_down();
    drop(link);
    let drained = async {
        while !executor.is_empty() {
            executor.tick().await;
        }
    };
    drained
        .or(async {
            async_io::Timer::after(Duration::from_secs(1)).await;
        })
        .await;
}

/// Runs `work` while ticking the connection's executor, where zbus runs its socket reader
/// (connections here have no executor thread of their own).
async fn ticking<T>(conn: &Connection, work: impl std::future::Future<Output = T>) -> T {
    let executor = conn.executor().clone();
    work.or(async move {
        loop {
            executor.tick().await;
        }
    })
    .await
}

/// Handle of the NetworkManager thread, owned by the monitor. NM watches the network itself:
/// the kernel's changes ask nothing of it.
pub(crate) struct NetworkManager {
    control: async_channel::Sender<mpsc::SyncSender<()>>,
    stop: async_channel::Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetworkManager {
    /// Asks NM to check connectivity now and waits (bounded) until the fresh verdict has been
    /// handed to the sink.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.control.send_blocking(reply).is_ok() {
            // The thread answers every request before it ends, each of its calls bounded; a
            // fresh verdict that comes later still arrives as an event.
            let _ = answer.recv_timeout(CHECK_WAIT);
        }
        Ok(())
    }
}

impl Drop for NetworkManager {
    fn drop(&mut self) {
        self.stop.close();
        self.control.close();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}
