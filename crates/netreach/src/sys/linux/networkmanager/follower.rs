//! The NetworkManager thread: follows NM on one bus connection after another, and hands
//! its verdicts to the monitor (see the parent module for the rules).

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_lite::future::{self, FutureExt};
use futures_lite::StreamExt;
use zbus::Connection;

use super::client::{self, Link, Model, CALL_TIMEOUT, NM_NAME};
use super::{close, mapping, ticking};
use crate::model::{Source, Verdict};
use crate::sys::{Input, InputSink};

const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// Signals queued for this source before zbus drops the oldest: far more than NM emits in a
/// burst (a few per change).
const SIGNAL_QUEUE: usize = 1024;

/// What woke the thread up.
enum Woke {
    Signal(Option<zbus::Result<zbus::Message>>),
    Owner(Option<zbus::fdo::NameOwnerChanged>),
    Check(Result<mpsc::SyncSender<()>, async_channel::RecvError>),
    Settled,
    /// NM owns its name but has not answered yet: ask again.
    Reread,
}

/// Why following NM on one connection ended.
enum End {
    Stop,
    BusLost(String),
}

/// The thread's state across connections.
pub(super) struct Follower {
    address: String,
    sink: Arc<dyn InputSink>,
    settle: Option<Duration>,
    /// The last verdict handed to the sink.
    sent: Option<Verdict>,
    /// A verdict waiting out the settle window, and when it is due.
    pending: Option<(Verdict, Instant)>,
    /// NM refused `CheckConnectivity` once: do not ask again.
    denied: bool,
    /// NM owns its name but its last call went unanswered (reported once until it answers).
    silent: Option<String>,
}

impl Follower {
    pub(super) fn new(address: String, sink: Arc<dyn InputSink>, settle: Option<Duration>) -> Follower {
        Follower { address, sink, settle, sent: None, pending: None, denied: false, silent: None }
    }

    /// Reports a fault this source recovers from (a non-fatal error event).
    fn fault(&self, message: String) {
        self.sink.send(Input::Fault(message));
    }

    /// Follows NM until the monitor drops this source. `ready` gets the outcome of the first
    /// reading: `Err` when NM did not answer it.
    pub(super) async fn run(
        &mut self,
        first: Link,
        requests: async_channel::Receiver<mpsc::SyncSender<()>>,
        stopped: async_channel::Receiver<()>,
        ready: mpsc::SyncSender<Result<(), String>>,
    ) {
        let mut link = Some(first);
        let mut ready = Some(ready);
        let mut backoff = RECONNECT_FIRST;
        let stop = || async {
            let _ = stopped.recv().await;
        };
        loop {
            let link = match link.take() {
                Some(link) => link,
                None => match async { Some(client::connect(&self.address).await) }
                    .or(async {
                        stop().await;
                        None
                    })
                    .await
                {
                    Some(Ok(link)) => {
                        backoff = RECONNECT_FIRST;
                        link
                    }
                    None => return,
                    Some(Err(_)) => {
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
            let end = ticking(
                &link.conn,
                self.follow(&link.conn, &requests, &mut ready).or(async {
                    stop().await;
                    End::Stop
                }),
            )
            .await;
            close(link).await;
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(())); // a start that failed to read still lets the builder go on
            }
            match end {
                End::Stop => return,
                End::BusLost(reason) => {
                    self.withdraw();
                    self.silent = None;
                    self.fault(format!(
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
        ready: &mut Option<mpsc::SyncSender<Result<(), String>>>,
    ) -> End {
        let setup = async {
            let dbus = zbus::fdo::DBusProxy::new(conn).await?;
            let owners = dbus.receive_name_owner_changed_with_args(&[(0, NM_NAME)]).await?;
            let rule = client::properties_rule()?;
            let signals = zbus::MessageStream::for_match_rule(rule, conn, Some(SIGNAL_QUEUE)).await?;
            let present = dbus.name_has_owner(client::nm_name()).await?;
            zbus::Result::Ok((owners, signals, present))
        };
        let (mut owners, mut signals, mut present) = match client::bounded("the system bus", CALL_TIMEOUT, setup).await
        {
            Ok(streams) => streams,
            Err(e) => return End::BusLost(e.to_string()),
        };
        let mut model = match self.read(conn, present).await {
            Ok(m) => m,
            Err(end) => return end,
        };
        self.pending = None;
        self.publish(model.as_ref(), true);
        if let Some(ready) = ready.take() {
            let _ = ready.send(self.silent.clone().map_or(Ok(()), Err));
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
            let unanswered = present && model.is_none() && self.silent.is_some();
            let reread = async {
                if !unanswered {
                    future::pending::<()>().await;
                }
                Woke::Reread
            };
            let wake = async { Woke::Signal(signals.next().await) }
                .or(async { Woke::Owner(owners.next().await) })
                .or(async { Woke::Check(requests.recv().await) })
                .or(settled)
                .or(reread)
                .await;
            match wake {
                Woke::Signal(None) | Woke::Owner(None) => return End::BusLost("the connection closed".into()),
                Woke::Signal(Some(Err(e))) => return End::BusLost(e.to_string()),
                Woke::Signal(Some(Ok(message))) => {
                    let Some(m) = model.as_mut() else {
                        // NM owns its name before it exports its objects: the first read may
                        // have come too early, and its first signal says it is ready now.
                        if present {
                            model = match self.read(conn, present).await {
                                Ok(m) => m,
                                Err(end) => return end,
                            };
                            self.publish(model.as_ref(), true);
                        }
                        continue;
                    };
                    match m.on_signal(conn, &message).await {
                        Ok(true) => self.publish(model.as_ref(), false),
                        Ok(false) => {}
                        Err(e) if client::timed_out(&e) => model = self.not_answering(&e),
                        Err(e @ zbus::Error::InputOutput(_)) => return End::BusLost(e.to_string()),
                        Err(e) => self.fault(format!("reading NetworkManager's properties: {e}")),
                    }
                }
                Woke::Owner(Some(change)) => {
                    present = change.args().ok().is_some_and(|a| a.new_owner().is_some());
                    model = match self.read(conn, present).await {
                        Ok(m) => m,
                        Err(end) => return end,
                    };
                    // Leaving is never a transient to settle: withdraw at once.
                    self.pending = None;
                    self.publish(model.as_ref(), true);
                }
                Woke::Reread => {
                    // Checks are answered meanwhile: there is nobody to ask while NM is silent.
                    let answering = async {
                        while let Ok(reply) = requests.recv().await {
                            let _ = reply.send(());
                        }
                        future::pending().await
                    };
                    model = match self.read(conn, present).or(answering).await {
                        Ok(m) => m,
                        Err(end) => return end,
                    };
                    if model.is_some() {
                        self.pending = None;
                        self.publish(model.as_ref(), true);
                    }
                }
                Woke::Check(Err(_)) => return End::Stop,
                Woke::Check(Ok(reply)) => {
                    if let Some(m) = model.as_mut() {
                        match self.check(conn, m).await {
                            Ok(Some(fresh)) => {
                                *m = fresh;
                                self.pending = None;
                                self.publish(Some(m), true);
                            }
                            Ok(None) => {}
                            Err(e) => model = self.not_answering(&e),
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
    /// next name change or signal, or the next re-read, corrects; `Err` only when the bus
    /// connection failed.
    async fn read(&mut self, conn: &Connection, present: bool) -> Result<Option<Model>, End> {
        if !present {
            self.silent = None;
            return Ok(None); // nothing to read while NM is not on the bus
        }
        match Model::read(conn).await {
            Ok(m) => {
                self.silent = None;
                Ok(Some(m))
            }
            Err(e) if client::timed_out(&e) => Ok(self.not_answering(&e)),
            Err(e @ zbus::Error::InputOutput(_)) => Err(End::BusLost(e.to_string())),
            Err(_) => Ok(None),
        }
    }

    /// NM owns its name but left a call unanswered: its last word may be stale, so it is
    /// withdrawn and the kernel (and probe) decide until NM answers a re-read. Reported once.
    fn not_answering(&mut self, error: &zbus::Error) -> Option<Model> {
        if self.silent.is_none() {
            let why = match error {
                zbus::Error::InputOutput(e) => e.to_string(),
                other => other.to_string(),
            };
            self.fault(format!("{why}; its verdict is withdrawn until it answers"));
            self.silent = Some(why);
        }
        self.withdraw();
        None
    }

    /// Runs NM's own check when it is on and allowed; the fresh reading after it, if any.
    /// `Err` only when NM did not answer at all.
    async fn check(&mut self, conn: &Connection, model: &Model) -> zbus::Result<Option<Model>> {
        let r = &model.reading;
        if self.denied || !(r.check_enabled && r.check_available) {
            return Ok(None); // the verdict already leaves the decision to the probe
        }
        client::ping(conn).await?;
        match client::check_connectivity(conn).await {
            Ok(()) => {}
            Err(e) if client::is_denied(&e) => {
                self.denied = true;
                self.fault(format!(
                    "NetworkManager refused CheckConnectivity ({e}); check() leaves the decision to the probe from now on"
                ));
                return Ok(None);
            }
            Err(e) => {
                self.fault(format!("NetworkManager's CheckConnectivity failed: {e}"));
                return Ok(None);
            }
        }
        match Model::read(conn).await {
            Ok(fresh) => Ok(Some(fresh)),
            Err(e) if client::timed_out(&e) => Err(e),
            Err(e) => {
                self.fault(format!("reading NetworkManager's properties after a check: {e}"));
                Ok(None)
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
            self.sink.send(Input::Verdict(verdict.clone()));
            self.sent = Some(verdict);
        }
    }

    fn withdraw(&mut self) {
        self.pending = None;
        self.hand_over(Verdict::new(Source::NetworkManager));
    }
}
