//! The Network List Manager over COM, on a thread of its own.
//!
//! The thread joins the multithreaded apartment (MTA) itself, so callers on single-threaded
//! apartments, or with no COM at all, never meet `RPC_E_CHANGED_MODE`. It creates the
//! `NetworkListManager`, advises both event sinks ([`super::sinks`]), reads the initial
//! connectivity and hands it back before the monitor exists: any failure there makes
//! construction fail with the HRESULT and its message. Then it turns sink events and refresh
//! requests into fresh [`Reading`]s for the backend. Dropping [`ComThread`] unadvises the
//! sinks, releases the manager and leaves the apartment, on every path. The session itself
//! (manager, advices, readings) is [`super::session`].

use std::marker::PhantomData;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use windows::Win32::System::Com::{CoInitializeEx, CoUninitialize, COINIT_MULTITHREADED};

use super::session::{failed, Reading, Session};
use super::sinks::{self, NlmEvent};
use super::Msg;
use crate::model::Error;
use crate::nlm;

/// Work for the COM thread.
pub(crate) enum Request {
    /// A sink reported an event.
    Event(NlmEvent),
    /// Read everything again (the adapters changed).
    Refresh,
    /// Unadvise, release and leave.
    Stop,
}

/// The COM thread; dropping it stops the thread after it released everything.
pub(crate) struct ComThread {
    requests: Sender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl ComThread {
    /// Starts the thread and waits for the initial reading (or the failure).
    pub(crate) fn start(to_backend: Sender<Msg>) -> Result<(ComThread, Reading), Error> {
        let (requests, inbox) = mpsc::channel();
        let (ready, answer) = mpsc::sync_channel(1);
        let report = requests.clone();
        let thread = std::thread::Builder::new()
            .name("netreach-com".into())
            .spawn(move || run(inbox, report, to_backend, ready))
            .map_err(|e| Error::io("starting the COM thread", e))?;
        let mut com = ComThread { requests, thread: Some(thread) };
        match answer.recv() {
            Ok(Ok(reading)) => Ok((com, reading)),
            Ok(Err(message)) => {
                com.join();
                Err(Error::io("starting the Network List Manager", std::io::Error::other(message)))
            }
            Err(_) => {
                com.join();
                Err(Error::io("starting the Network List Manager", std::io::Error::other("the COM thread died")))
            }
        }
    }

    /// Asks for a fresh reading (sent to the backend when done).
    pub(crate) fn refresh(&self) {
        let _ = self.requests.send(Request::Refresh);
    }

    fn join(&mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ComThread {
    fn drop(&mut self) {
        self.join();
    }
}

/// Membership of the multithreaded apartment, left on drop. Not `Send` (the marker): the
/// `CoUninitialize` in `drop` must run on the thread whose `CoInitializeEx` it balances.
struct Apartment(PhantomData<*const ()>);

impl Apartment {
    fn enter() -> Result<Apartment, String> {
        const ENTER: &str = "CoInitializeEx(COINIT_MULTITHREADED)";
        #[cfg(test)]
        super::session::faults::check(ENTER)?;
        // SAFETY: the reserved argument is null (None), as CoInitializeEx requires. Joining the
        // MTA changes only this thread, which `ComThread::start` spawned for COM alone, so no
        // caller's apartment is touched.
        unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) }.ok().map_err(|e| failed(ENTER, e))?;
        Ok(Apartment(PhantomData))
    }
}

impl Drop for Apartment {
    fn drop(&mut self) {
        // SAFETY: an `Apartment` exists only once CoInitializeEx succeeded (S_OK or S_FALSE, both
        // counted) on this thread, and it cannot leave the thread: this is the one balancing call.
        // `run` releases every COM reference (the session) before the apartment.
        unsafe { CoUninitialize() };
    }
}

fn run(
    inbox: Receiver<Request>,
    report: sinks::Report,
    to_backend: Sender<Msg>,
    ready: SyncSender<Result<Reading, String>>,
) {
    #[cfg(test)]
    let _alive = tests_hook::Alive::new();
    let apartment = match Apartment::enter() {
        Ok(apartment) => apartment,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let session = match Session::open(&report) {
        Ok(session) => session,
        Err(e) => return drop(ready.send(Err(e))),
    };
    let mut reading = match session.read() {
        Ok(reading) => reading,
        Err(e) => return drop(ready.send(Err(e))),
    };
    if ready.send(Ok(reading.clone())).is_err() {
        return;
    }
    for request in inbox {
        let fresh = match request {
            Request::Stop => break,
            // The machine's connectivity changed: read the rest again, the connections' portal
            // flags among them (a portal login changes connectivity, while Microsoft documents
            // PropertyChanged for authentication changes, not portals; Qt re-checks its portal
            // flag on a connectivity change too). The event's own flags stand.
            Request::Event(NlmEvent::Connectivity(connectivity)) => {
                session.read().map(|fresh| Reading { connectivity, ..fresh })
            }
            Request::Event(NlmEvent::ConnectionConnectivity(id, connectivity)) => {
                let mut fresh = reading.clone();
                match fresh.connections.iter_mut().find(|c| c.id == id) {
                    Some(known) => {
                        known.connectivity = connectivity;
                        Ok(fresh)
                    }
                    None => session.read(), // a connection we have not seen: read them all
                }
            }
            Request::Event(NlmEvent::Cost(cost)) => Ok(Reading { metered: nlm::metered(cost), ..reading.clone() }),
            Request::Event(NlmEvent::ConnectionProperties(_)) | Request::Refresh => session.read(),
        };
        let message = match fresh {
            Ok(fresh) => {
                reading = fresh;
                Msg::Nlm(reading.clone())
            }
            Err(e) => Msg::Error(format!("reading the Network List Manager: {e}")),
        };
        if to_backend.send(message).is_err() {
            break;
        }
    }
    drop(session);
    drop(apartment);
}

/// Tests reach the sinks a monitor advised through their COM interfaces, as Windows would.
#[cfg(test)]
pub(crate) mod tests_hook {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use windows::core::{IUnknown, Interface};

    /// Raw, owned references to the last advised sinks (as `IUnknown`, so a test has to
    /// `QueryInterface` for the event interface like Windows does).
    pub(crate) struct Advised {
        pub list: *mut c_void,
        pub connection: *mut c_void,
        pub cost: *mut c_void,
    }
    // SAFETY: the pointers are owned references to our own `#[implement]` sinks, not to
    // proxies: their reference counts are atomic, so AddRef/Release may run on any thread, and
    // their only state is a channel `Sender`, which is `Send` and `Sync`. (windows-rs interface
    // types are not `Send`, hence raw pointers here.)
    unsafe impl Send for Advised {}

    impl Drop for Advised {
        fn drop(&mut self) {
            for raw in [self.list, self.connection, self.cost] {
                // SAFETY: `advised` stored one owned `IUnknown` reference per pointer
                // (`into_raw`), and this drop is the only place that takes it back: released once.
                drop(unsafe { IUnknown::from_raw(raw) });
            }
        }
    }

    pub(crate) static LAST: Mutex<Option<Advised>> = Mutex::new(None);

    pub(crate) fn advised(sinks: &super::sinks::Sinks) {
        let unknown = |i: &dyn Fn() -> windows::core::Result<IUnknown>| i().expect("IUnknown").into_raw();
        let advised = Advised {
            list: unknown(&|| sinks.list.cast()),
            connection: unknown(&|| sinks.connection.cast()),
            cost: unknown(&|| sinks.cost.cast()),
        };
        // The previous monitor's entry gives its references back as it drops.
        drop(LAST.lock().unwrap().replace(advised));
    }

    /// How many COM threads are running (each counts itself from its first step to its end).
    pub(crate) static ALIVE: AtomicUsize = AtomicUsize::new(0);

    /// One running COM thread, for [`ALIVE`].
    pub(crate) struct Alive;

    impl Alive {
        pub(crate) fn new() -> Alive {
            ALIVE.fetch_add(1, Ordering::SeqCst);
            Alive
        }
    }

    impl Drop for Alive {
        fn drop(&mut self) {
            ALIVE.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
