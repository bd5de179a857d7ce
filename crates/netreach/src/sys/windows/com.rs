//! The Network List Manager over COM, on a thread of its own.
//!
//! The thread joins the multithreaded apartment (MTA) itself, so callers on single-threaded
//! apartments, or with no COM at all, never meet `RPC_E_CHANGED_MODE`. It creates the
//! `NetworkListManager`, advises both event sinks ([`super::sinks`]), reads the initial
//! connectivity and hands it back before the monitor exists: any failure there makes
//! construction fail with the HRESULT and its message. Then it turns sink events and refresh
//! requests into fresh [`Reading`]s for the backend. Dropping [`ComThread`] unadvises both
//! sinks, releases the manager and leaves the apartment, on every path.

use std::marker::PhantomData;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use windows::core::{w, IUnknown, Interface, GUID, PCWSTR};
use windows::Win32::Networking::NetworkListManager::{
    INetworkConnection, INetworkConnectionEvents, INetworkCostManager, INetworkCostManagerEvents, INetworkListManager,
    INetworkListManagerEvents, NetworkListManager,
};
use windows::Win32::System::Com::StructuredStorage::IPropertyBag;
use windows::Win32::System::Com::{
    CoCreateInstance, CoInitializeEx, CoUninitialize, IConnectionPoint, IConnectionPointContainer, IErrorLog,
    CLSCTX_ALL, COINIT_MULTITHREADED,
};
use windows::Win32::System::Variant::{VariantClear, VARIANT, VT_UI4};

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

/// One network connection as NLM sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Connection {
    /// Its connection id (what `INetworkConnectionEvents` name).
    pub id: GUID,
    /// The GUID of the interface it runs over.
    pub adapter: GUID,
    /// Its `NLM_CONNECTIVITY` flags.
    pub connectivity: u32,
    /// Whether its internet-connectivity property reports a captive portal; `None` where
    /// Windows offers no such property.
    pub portal: Option<bool>,
}

/// What NLM says, as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The machine's `NLM_CONNECTIVITY` flags.
    pub connectivity: u32,
    /// From `INetworkCostManager::GetCost`; `None` when unknown.
    pub metered: Option<bool>,
    pub connections: Vec<Connection>,
}

impl Reading {
    /// A portal on any connection is in the way; `None` when no connection can tell.
    pub(crate) fn portal(&self) -> Option<bool> {
        self.connections.iter().filter_map(|c| c.portal).reduce(|a, b| a || b)
    }
}

/// A COM failure, naming the call, the HRESULT and its message.
pub(crate) fn failed(call: &str, e: windows::core::Error) -> String {
    let code = e.code().0 as u32;
    match e.message() {
        message if message.is_empty() => format!("{call} failed: HRESULT {code:#010x}"),
        message => format!("{call} failed: HRESULT {code:#010x}: {message}"),
    }
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
        // SAFETY: the reserved argument is null (None), as CoInitializeEx requires. Joining the
        // MTA changes only this thread, which `ComThread::start` spawned for COM alone, so no
        // caller's apartment is touched.
        unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) }
            .ok()
            .map_err(|e| failed("CoInitializeEx(COINIT_MULTITHREADED)", e))?;
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

/// A sink advised on a connection point; unadvised on drop.
struct Advice {
    point: IConnectionPoint,
    cookie: u32,
}

impl Advice {
    fn new<I: Interface>(manager: &INetworkListManager, sink: &I) -> Result<Advice, String> {
        let name = std::any::type_name::<I>().rsplit("::").next().unwrap_or_default();
        let container: IConnectionPointContainer =
            manager.cast().map_err(|e| failed("QueryInterface(IConnectionPointContainer)", e))?;
        // SAFETY: `container` is a reference we own, used on the MTA thread that created the
        // manager; the IID is a static GUID, only read during the call. The connection point
        // comes back as an owned reference (released when the `Advice` drops).
        let point = unsafe { container.FindConnectionPoint(&I::IID) }
            .map_err(|e| failed(&format!("FindConnectionPoint({name})"), e))?;
        let unknown: IUnknown = sink.cast().map_err(|e| failed("cast", e))?;
        // SAFETY: `point` is an owned, live connection point on this thread; `unknown` is a live
        // reference to our own sink, borrowed for the call: Advise takes its own reference
        // (AddRef) for as long as the advice lasts, and Unadvise gives it back.
        let cookie =
            unsafe { point.Advise(&unknown) }.map_err(|e| failed(&format!("IConnectionPoint::Advise({name})"), e))?;
        Ok(Advice { point, cookie })
    }
}

impl Drop for Advice {
    fn drop(&mut self) {
        // Fails only if COM already dropped the advice; nothing is left to release then.
        // SAFETY: `point` is the live connection point this `Advice` holds a reference to, on the
        // COM thread (a `Session` holds non-`Send` interfaces, so it never leaves it); `cookie`
        // is what its Advise returned, unadvised once, here.
        let _ = unsafe { self.point.Unadvise(self.cookie) };
    }
}

/// The manager and its three advised sinks. Field order is drop order: the advices go first.
struct Session {
    _advices: [Advice; 3],
    manager: INetworkListManager,
}

impl Session {
    fn open(report: &sinks::Report) -> Result<Session, String> {
        // SAFETY: called on the COM thread after `Apartment::enter`; the CLSID is a static GUID,
        // there is no outer object (None: no aggregation), and the result is an owned reference
        // (released when the session drops, before the apartment).
        let manager: INetworkListManager = unsafe { CoCreateInstance(&NetworkListManager, None, CLSCTX_ALL) }
            .map_err(|e| failed("CoCreateInstance(NetworkListManager)", e))?;
        let sinks = sinks::Sinks::new(report);
        #[cfg(test)]
        tests_hook::advised(&sinks);
        // If a later advice fails, the earlier ones are unadvised as they drop here.
        let list = Advice::new::<INetworkListManagerEvents>(&manager, &sinks.list)?;
        let connection = Advice::new::<INetworkConnectionEvents>(&manager, &sinks.connection)?;
        let cost = Advice::new::<INetworkCostManagerEvents>(&manager, &sinks.cost)?;
        Ok(Session { _advices: [list, connection, cost], manager })
    }

    fn read(&self) -> Result<Reading, String> {
        // SAFETY: `manager` is a live reference the session owns, on the MTA thread that created
        // it; the call only returns a value.
        let connectivity = unsafe { self.manager.GetConnectivity() }
            .map_err(|e| failed("INetworkListManager::GetConnectivity", e))?
            .0 as u32;
        Ok(Reading { connectivity, metered: self.metered(), connections: self.connections()? })
    }

    /// The machine-wide cost; `None` where the cost manager is missing or cannot tell.
    fn metered(&self) -> Option<bool> {
        let costs: INetworkCostManager = self.manager.cast().ok()?;
        let mut cost = 0u32;
        // SAFETY: `costs` is an owned reference (from QueryInterface) on this thread; `cost` is a
        // live u32 for the out-parameter; a null destination asks for the machine-wide cost,
        // which the API allows.
        unsafe { costs.GetCost(&mut cost, std::ptr::null()) }.ok()?;
        nlm::metered(cost)
    }

    fn connections(&self) -> Result<Vec<Connection>, String> {
        // SAFETY: `manager` is a live reference the session owns, on its MTA thread; the
        // enumerator comes back as an owned reference.
        let list = unsafe { self.manager.GetNetworkConnections() }
            .map_err(|e| failed("INetworkListManager::GetNetworkConnections", e))?;
        let mut connections = Vec::new();
        loop {
            let mut slot = [None];
            let mut fetched = 0u32;
            // SAFETY: `list` is an owned enumerator on this thread. windows-rs passes the slice's
            // length (1) as the count, so Next writes at most one owned reference into `slot`
            // (released when it drops) and the count into `fetched`, both live locals.
            unsafe { list.Next(&mut slot, Some(&mut fetched)) }
                .map_err(|e| failed("IEnumNetworkConnections::Next", e))?;
            let (1, Some(connection)) = (fetched, slot[0].take()) else { break };
            connections.push(describe(&connection)?);
        }
        Ok(connections)
    }
}

/// One connection's ids and flags. `connection` is a live reference owned by the caller, on
/// the COM thread; each getter only returns a value (a GUID or flags), so each call below is
/// sound for that one reason.
fn describe(connection: &INetworkConnection) -> Result<Connection, String> {
    // SAFETY: see above: a live reference on its thread, a plain value returned.
    let id = unsafe { connection.GetConnectionId() }.map_err(|e| failed("INetworkConnection::GetConnectionId", e))?;
    // SAFETY: as above.
    let adapter = unsafe { connection.GetAdapterId() }.map_err(|e| failed("INetworkConnection::GetAdapterId", e))?;
    // SAFETY: as above.
    let connectivity =
        unsafe { connection.GetConnectivity() }.map_err(|e| failed("INetworkConnection::GetConnectivity", e))?.0 as u32;
    Ok(Connection { id, adapter, connectivity, portal: portal(connection) })
}

/// The captive-portal flag of a connection's `NA_InternetConnectivityV4/V6` properties (its
/// property bag, Windows 10 and later); `None` where neither is offered.
fn portal(connection: &INetworkConnection) -> Option<bool> {
    let bag: IPropertyBag = connection.cast().ok()?;
    let flags = [w!("NA_InternetConnectivityV4"), w!("NA_InternetConnectivityV6")].map(|name| read_u32(&bag, name));
    flags.into_iter().flatten().map(nlm::captive_portal).reduce(|a, b| a || b)
}

/// A `VT_UI4` property of `bag`; `None` when it is missing or of another type.
fn read_u32(bag: &IPropertyBag, name: PCWSTR) -> Option<u32> {
    let mut value = VARIANT::default();
    // SAFETY: `bag` is an owned reference (from QueryInterface) on the COM thread; `name` is a
    // static NUL-terminated string (`w!`); `value` is a live, initialised (VT_EMPTY) VARIANT the
    // call may fill; no error log (None) is allowed.
    unsafe { bag.Read(name, &mut value, None::<&IErrorLog>) }.ok()?;
    let number = (value.vt() == VT_UI4).then(|| {
        // SAFETY: `value` is initialised (default, then filled by Read), and the tagged member
        // is integers and a union: valid for any initialised bytes.
        let tagged = unsafe { &value.Anonymous.Anonymous };
        // SAFETY: the tag is VT_UI4, so `ulVal` is the member Read wrote (and a u32 is valid
        // for any bits).
        unsafe { tagged.Anonymous.ulVal }
    });
    // SAFETY: `value` is a live, initialised VARIANT we own (whatever Read put in it is ours);
    // clearing frees that once and leaves VT_EMPTY, so VARIANT's own Drop (VariantClear again)
    // finds nothing left to free.
    let _ = unsafe { VariantClear(&mut value) };
    number
}

fn run(
    inbox: Receiver<Request>,
    report: sinks::Report,
    to_backend: Sender<Msg>,
    ready: SyncSender<Result<Reading, String>>,
) {
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
            Request::Event(NlmEvent::Connectivity(connectivity)) => {
                Ok(Reading { connectivity, metered: session.metered(), ..reading.clone() })
            }
            Request::Event(NlmEvent::Cost(cost)) => Ok(Reading { metered: nlm::metered(cost), ..reading.clone() }),
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
}
