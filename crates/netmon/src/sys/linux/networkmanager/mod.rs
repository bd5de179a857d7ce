//! NetworkManager as a source above the kernel: its connectivity check, metering and primary
//! connection type, read over D-Bus and followed through `PropertiesChanged` signals.
//!
//! One thread per monitor drives the D-Bus connection (zbus without its own executor thread)
//! and waits, with no timer while NM is present, for whichever comes first: a signal from NM,
//! NM's name changing owner (it left or came back), a request from [`Refiner::check`], the
//! end of a settle window, or the monitor dropping this source.
//!
//! - NM leaving the bus withdraws its verdict at once; it is read afresh when NM returns.
//! - The bus connection ending (the dbus-daemon stopped) withdraws the verdict, is reported as
//!   a non-fatal error, and the thread reconnects with a capped backoff (50 ms doubling to
//!   2 s): a wake-up every 2 s only while the system bus is gone, which in practice is during
//!   a system shutdown or a test. Connecting is a cheap failing `connect()` meanwhile.
//! - `check()` calls NM's `CheckConnectivity`, then re-reads every property and hands the
//!   fresh verdict over (bypassing any settle window). When NM (or the bus policy) refuses,
//!   that is reported once and later checks leave the decision to the probe.

mod client;
mod mapping;

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt};
use futures_lite::StreamExt;
use zbus::Connection;

use self::client::{Model, NM_NAME};
use crate::backend::BackendKind;
use crate::error::Error;
use crate::monitor::{MonitorBuilder, Refiner, VerdictSink};
use crate::reachability::{Reachability, Source};
use crate::state::NetworkState;
use crate::verdict::Verdict;

/// The system bus when neither the builder nor `DBUS_SYSTEM_BUS_ADDRESS` names another.
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How long building a monitor waits for NM's first reading.
const FIRST_READING_WAIT: Duration = Duration::from_secs(5);
/// Signals queued for this source before zbus drops the oldest: far more than NM emits in a
/// burst (a few per change).
const SIGNAL_QUEUE: usize = 1024;

/// Starts the NetworkManager source the builder asks for, if any.
///
/// - `Kernel`: none.
/// - `Auto`: only for the caller's own namespace (NM speaks for the namespace it runs in) and
///   only if the system bus answers; NM itself may come and go later. Without a bus socket
///   this costs one `stat`.
/// - `NetworkManager`: the bus must answer and NM must own its name, else a clear error.
pub(crate) fn start(config: &MonitorBuilder, sink: &VerdictSink) -> Result<Option<Arc<dyn Refiner>>, Error> {
    let explicit = match config.backend {
        BackendKind::Kernel => return Ok(None),
        BackendKind::Auto if config.netns.is_some() => return Ok(None),
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
    let unusable = |what: String| Error::Unsupported(format!("NetworkManager backend: {what}"));
    let connection = match zbus::block_on(client::connect(&address)) {
        Ok(connection) => connection,
        Err(_) if !explicit => return Ok(None),
        Err(e) => return Err(unusable(format!("cannot connect to the system bus at {address}: {e}"))),
    };
    if explicit {
        let owned = zbus::block_on(ticking(&connection, async {
            let dbus = zbus::fdo::DBusProxy::new(&connection).await?;
            dbus.name_has_owner(client::nm_name()).await
        }));
        let problem = match owned {
            Ok(true) => None,
            Ok(false) => Some(format!("{NM_NAME} is not running (no owner on the bus at {address})")),
            Err(e) => Some(format!("asking the system bus at {address} about {NM_NAME}: {e}")),
        };
        if let Some(problem) = problem {
            zbus::block_on(close(connection));
            return Err(unusable(problem));
        }
    }
    let (control, requests) = async_channel::unbounded();
    // Closed (never sent on) when the monitor drops this source: ends even a D-Bus call that
    // NM never answers.
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let (ready, started) = mpsc::sync_channel(1);
    let mut source =
        Follower { address, sink: sink.clone(), settle: config.settle, sent: None, pending: None, denied: false };
    let thread = std::thread::Builder::new()
        .name("netmon-nm".into())
        .spawn(move || zbus::block_on(source.run(connection, requests, stopped, ready)))
        .map_err(|e| Error::io("starting the NetworkManager thread", e))?;
    // The first reading is in the sink before the monitor is handed out, unless NM is slow to
    // answer: then it arrives as an event, and building never waits longer than this.
    let _ = started.recv_timeout(FIRST_READING_WAIT);
    Ok(Some(Arc::new(NmRefiner { control, stop, thread: Mutex::new(Some(thread)) })))
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

/// Closes a connection and runs its executor until zbus's socket reader task has seen the end
/// (bounded: a bus that never answers the shutdown gets a second). Merely dropping the
/// connection would leave that task, and with it the socket, in an executor nobody ticks.
async fn close(conn: Connection) {
    let executor = conn.executor().clone();
    let _ = ticking(&conn, conn.clone().close()).await;
    drop(conn);
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

/// Handle of the NetworkManager thread, owned by the monitor.
pub(crate) struct NmRefiner {
    control: async_channel::Sender<mpsc::SyncSender<()>>,
    stop: async_channel::Sender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Refiner for NmRefiner {
    fn state_changed(&self, _: &NetworkState, _: &Reachability) {
        // NM watches the network itself; the kernel's changes ask nothing of it.
    }

    fn check(&self) -> Result<(), Error> {
        let (reply, answer) = mpsc::sync_channel(1);
        if self.control.send_blocking(reply).is_ok() {
            let _ = answer.recv(); // the thread answers every request before it ends
        }
        Ok(())
    }
}

impl Drop for NmRefiner {
    fn drop(&mut self) {
        self.stop.close();
        self.control.close();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

/// What woke the thread up.
enum Woke {
    Signal(Option<zbus::Result<zbus::Message>>),
    Owner(Option<zbus::fdo::NameOwnerChanged>),
    Check(Result<mpsc::SyncSender<()>, async_channel::RecvError>),
    Settled,
}

/// Why following NM on one connection ended.
enum End {
    Stop,
    BusLost(String),
}

/// The thread's state across connections.
struct Follower {
    address: String,
    sink: VerdictSink,
    settle: Option<Duration>,
    /// The last verdict handed to the sink.
    sent: Option<Verdict>,
    /// A verdict waiting out the settle window, and when it is due.
    pending: Option<(Verdict, Instant)>,
    /// NM refused `CheckConnectivity` once: do not ask again.
    denied: bool,
}

impl Follower {
    async fn run(
        &mut self,
        first: Connection,
        requests: async_channel::Receiver<mpsc::SyncSender<()>>,
        stopped: async_channel::Receiver<()>,
        ready: mpsc::SyncSender<()>,
    ) {
        let mut connection = Some(first);
        let mut ready = Some(ready);
        let mut backoff = RECONNECT_FIRST;
        loop {
            let conn = match connection.take() {
                Some(conn) => conn,
                None => match client::connect(&self.address).await {
                    Ok(conn) => {
                        backoff = RECONNECT_FIRST;
                        conn
                    }
                    Err(_) => {
                        // Answer checks while waiting: there is nobody to ask.
                        let timer = async {
                            async_io::Timer::after(backoff).await;
                            None
                        };
                        match async { Some(requests.recv().await) }.or(timer).await {
                            Some(Ok(reply)) => drop(reply.send(())),
                            Some(Err(_)) => return,
                            None => backoff = (backoff * 2).min(RECONNECT_MAX),
                        }
                        continue;
                    }
                },
            };
            let stop = async {
                let _ = stopped.recv().await;
                End::Stop
            };
            let end = ticking(&conn, self.follow(&conn, &requests, &mut ready).or(stop)).await;
            close(conn).await;
            drop(ready.take()); // a start that failed to read still lets the builder go on
            match end {
                End::Stop => return,
                End::BusLost(reason) => {
                    self.withdraw();
                    self.sink.error(format!(
                        "lost the system bus at {} ({reason}); NetworkManager's verdict is withdrawn until it returns",
                        self.address
                    ));
                }
            }
        }
    }

    /// Follows NM on one bus connection until asked to stop or the connection ends.
    async fn follow(
        &mut self,
        conn: &Connection,
        requests: &async_channel::Receiver<mpsc::SyncSender<()>>,
        ready: &mut Option<mpsc::SyncSender<()>>,
    ) -> End {
        let lost = |e: zbus::Error| End::BusLost(e.to_string());
        let setup = async {
            let dbus = zbus::fdo::DBusProxy::new(conn).await?;
            let owners = dbus.receive_name_owner_changed_with_args(&[(0, NM_NAME)]).await?;
            let rule = client::properties_rule()?;
            let signals = zbus::MessageStream::for_match_rule(rule, conn, Some(SIGNAL_QUEUE)).await?;
            let present = dbus.name_has_owner(client::nm_name()).await?;
            zbus::Result::Ok((owners, signals, present))
        };
        let (mut owners, mut signals, present) = match setup.await {
            Ok(streams) => streams,
            Err(e) => return lost(e),
        };
        let mut present = present;
        let mut model = match self.read(conn, present).await {
            Ok(m) => m,
            Err(e) => return lost(e),
        };
        self.pending = None;
        self.publish(model.as_ref(), true);
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        loop {
            let due = self.pending.as_ref().map(|(_, due)| *due);
            let settled = async {
                match due {
                    Some(due) => drop(async_io::Timer::at(due).await),
                    None => future::pending::<()>().await,
                }
                Woke::Settled
            };
            let wake = async { Woke::Signal(signals.next().await) }
                .or(async { Woke::Owner(owners.next().await) })
                .or(async { Woke::Check(requests.recv().await) })
                .or(settled)
                .await;
            match wake {
                Woke::Signal(None) | Woke::Owner(None) => return End::BusLost("the connection closed".into()),
                Woke::Signal(Some(Err(e))) => return lost(e),
                Woke::Signal(Some(Ok(message))) => {
                    let Some(m) = model.as_mut() else {
                        // NM owns its name before it exports its objects: the first read may
                        // have come too early, and its first signal says it is ready now.
                        if present {
                            model = match self.read(conn, present).await {
                                Ok(m) => m,
                                Err(e) => return lost(e),
                            };
                            self.publish(model.as_ref(), true);
                        }
                        continue;
                    };
                    match m.on_signal(conn, &message).await {
                        Ok(true) => self.publish(model.as_ref(), false),
                        Ok(false) => {}
                        Err(e @ zbus::Error::InputOutput(_)) => return lost(e),
                        Err(e) => drop(self.sink.error(format!("reading NetworkManager's properties: {e}"))),
                    }
                }
                Woke::Owner(Some(change)) => {
                    present = change.args().ok().is_some_and(|a| a.new_owner().is_some());
                    model = match self.read(conn, present).await {
                        Ok(m) => m,
                        Err(e) => return lost(e),
                    };
                    // Leaving is never a transient to settle: withdraw at once.
                    self.pending = None;
                    self.publish(model.as_ref(), true);
                }
                Woke::Check(Err(_)) => return End::Stop,
                Woke::Check(Ok(reply)) => {
                    if let Some(m) = model.as_mut() {
                        if let Some(fresh) = self.check(conn, m).await {
                            *m = fresh;
                            self.pending = None;
                            self.publish(Some(m), true);
                        }
                    }
                    let _ = reply.send(());
                }
                Woke::Settled => {
                    if let Some((verdict, _)) = self.pending.take() {
                        self.hand_over(verdict);
                    }
                }
            }
        }
    }

    /// Reads NM afresh: `None` when it is not (or no longer, or not yet) answering, which its
    /// next name change or signal corrects; `Err` only when the bus connection failed.
    async fn read(&self, conn: &Connection, present: bool) -> zbus::Result<Option<Model>> {
        if !present {
            return Ok(None); // nothing to read while NM is not on the bus
        }
        match Model::read(conn).await {
            Ok(m) => Ok(Some(m)),
            Err(e @ zbus::Error::InputOutput(_)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Runs NM's own check when it is on and allowed; the fresh reading after it, if any.
    async fn check(&mut self, conn: &Connection, model: &Model) -> Option<Model> {
        let r = &model.reading;
        if self.denied || !(r.check_enabled && r.check_available) {
            return None; // the verdict already leaves the decision to the probe
        }
        match client::check_connectivity(conn).await {
            Ok(()) => {}
            Err(e) if client::is_denied(&e) => {
                self.denied = true;
                self.sink.error(format!(
                    "NetworkManager refused CheckConnectivity ({e}); check() leaves the decision to the probe from now on"
                ));
                return None;
            }
            Err(e) => {
                self.sink.error(format!("NetworkManager's CheckConnectivity failed: {e}"));
                return None;
            }
        }
        match Model::read(conn).await {
            Ok(fresh) => Some(fresh),
            Err(e) => {
                self.sink.error(format!("reading NetworkManager's properties after a check: {e}"));
                None
            }
        }
    }

    /// Hands the verdict of `model` (or a withdrawal when NM is absent) to the sink, at once
    /// or after the settle window.
    fn publish(&mut self, model: Option<&Model>, now: bool) {
        let verdict = model.map_or_else(|| Verdict::new(Source::NetworkManager), |m| mapping::verdict(&m.reading));
        match self.settle {
            Some(window) if !now => {
                if self.sent.as_ref() == Some(&verdict) {
                    self.pending = None; // back where it was: nothing to report
                } else {
                    self.pending = Some((verdict, Instant::now() + window));
                }
            }
            _ => self.hand_over(verdict),
        }
    }

    fn hand_over(&mut self, verdict: Verdict) {
        if self.sent.as_ref() != Some(&verdict) {
            self.sink.send(verdict.clone());
            self.sent = Some(verdict);
        }
    }

    fn withdraw(&mut self) {
        self.pending = None;
        self.hand_over(Verdict::new(Source::NetworkManager));
    }
}
