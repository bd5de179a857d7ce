//! One Network List Manager session on the COM thread: the manager, its advised sinks, and
//! readings of connectivity, cost and connections ([`Reading`]).
//!
//! Every step that can fail names its call in the error. Test builds can make any step fail
//! ([`faults`]) to prove that what was done before it is undone.

use windows::core::{w, IUnknown, Interface, GUID, PCWSTR};
use windows::Win32::Networking::NetworkListManager::{
    INetworkConnection, INetworkConnectionEvents, INetworkCostManager, INetworkCostManagerEvents, INetworkListManager,
    INetworkListManagerEvents, NetworkListManager,
};
use windows::Win32::System::Com::StructuredStorage::IPropertyBag;
use windows::Win32::System::Com::{
    CoCreateInstance, IConnectionPoint, IConnectionPointContainer, IErrorLog, CLSCTX_ALL,
};
use windows::Win32::System::Variant::{VariantClear, VARIANT, VT_UI4};

use super::sinks;
use crate::nlm::{self, Portal};

/// A COM failure, naming the call, the HRESULT and its message.
pub(crate) fn failed(call: &str, e: windows::core::Error) -> String {
    let code = e.code().0 as u32;
    match e.message() {
        message if message.is_empty() => format!("{call} failed: HRESULT {code:#010x}"),
        message => format!("{call} failed: HRESULT {code:#010x}: {message}"),
    }
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
    /// Its captive-portal flags per family.
    pub portal: Portal,
}

/// What NLM says, as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The machine's `NLM_CONNECTIVITY` flags.
    pub connectivity: u32,
    /// From `INetworkCostManager::GetCost`; `None` when unknown.
    pub metered: Option<bool>,
    pub connections: Vec<Connection>,
    /// Why something is unknown (the verdict's note), e.g. no cost manager.
    pub note: Option<String>,
}

impl Reading {
    /// The portal flags of all connections: a portal on any is in the way.
    pub(crate) fn portal(&self) -> Portal {
        self.connections.iter().map(|c| c.portal).fold(Portal::default(), Portal::merge)
    }
}

const ADVISE_LIST: &str = "IConnectionPoint::Advise(INetworkListManagerEvents)";
const ADVISE_CONNECTION: &str = "IConnectionPoint::Advise(INetworkConnectionEvents)";
const ADVISE_COST: &str = "IConnectionPoint::Advise(INetworkCostManagerEvents)";

/// A sink advised on a connection point; unadvised on drop.
struct Advice {
    point: IConnectionPoint,
    cookie: u32,
}

impl Advice {
    fn new<I: Interface>(manager: &INetworkListManager, sink: &I, call: &str) -> Result<Advice, String> {
        let name = std::any::type_name::<I>().rsplit("::").next().unwrap_or_default();
        let container: IConnectionPointContainer =
            manager.cast().map_err(|e| failed("QueryInterface(IConnectionPointContainer)", e))?;
        // SAFETY: `container` is a reference we own, used on the MTA thread that created the
        // manager; the IID is a static GUID, only read during the call. The connection point
        // comes back as an owned reference (released when the `Advice` drops).
        let point = unsafe { container.FindConnectionPoint(&I::IID) }
            .map_err(|e| failed(&format!("FindConnectionPoint({name})"), e))?;
        let unknown: IUnknown = sink.cast().map_err(|e| failed("cast", e))?;
        #[cfg(test)]
        faults::check(call)?;
        // SAFETY: `point` is an owned, live connection point on this thread; `unknown` is a live
        // reference to our own sink, borrowed for the call: Advise takes its own reference
        // (AddRef) for as long as the advice lasts, and Unadvise gives it back.
        let cookie = unsafe { point.Advise(&unknown) }.map_err(|e| failed(call, e))?;
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

/// The manager and its advised sinks. Field order is drop order: the advices go first.
pub(crate) struct Session {
    _advices: Vec<Advice>,
    /// The cost manager, when Windows offers one and its events could be advised.
    costs: Option<INetworkCostManager>,
    /// Why metering is unknown for good, when `costs` is `None`.
    cost_note: Option<String>,
    manager: INetworkListManager,
}

impl Session {
    /// Creates the manager and advises the sinks. If a step fails, the earlier advices are
    /// unadvised as they drop here. Cost is optional: Microsoft lists `INetworkCostManager`
    /// and its events as unsupported on Windows Server ("Minimum supported server: None
    /// supported"), so without them metering is unknown, not a failed monitor.
    pub(crate) fn open(report: &sinks::Report) -> Result<Session, String> {
        const CREATE: &str = "CoCreateInstance(NetworkListManager)";
        #[cfg(test)]
        faults::check(CREATE)?;
        // SAFETY: called on the COM thread after `Apartment::enter`; the CLSID is a static GUID,
        // there is no outer object (None: no aggregation), and the result is an owned reference
        // (released when the session drops, before the apartment).
        let manager: INetworkListManager =
            unsafe { CoCreateInstance(&NetworkListManager, None, CLSCTX_ALL) }.map_err(|e| failed(CREATE, e))?;
        let sinks = sinks::Sinks::new(report);
        #[cfg(test)]
        super::com::tests_hook::advised(&sinks);
        let list = Advice::new::<INetworkListManagerEvents>(&manager, &sinks.list, ADVISE_LIST)?;
        let connection = Advice::new::<INetworkConnectionEvents>(&manager, &sinks.connection, ADVISE_CONNECTION)?;
        let mut advices = vec![list, connection];
        let costs = manager.cast::<INetworkCostManager>().map_err(|e| failed("QueryInterface(INetworkCostManager)", e));
        let costs = costs.and_then(|costs| {
            advices.push(Advice::new::<INetworkCostManagerEvents>(&manager, &sinks.cost, ADVISE_COST)?);
            Ok(costs)
        });
        let (costs, cost_note) = match costs {
            Ok(costs) => (Some(costs), None),
            Err(e) => (None, Some(format!("metered is unknown: Windows offers no connection cost here ({e})"))),
        };
        Ok(Session { _advices: advices, costs, cost_note, manager })
    }

    /// Everything, read now.
    pub(crate) fn read(&self) -> Result<Reading, String> {
        const CONNECTIVITY: &str = "INetworkListManager::GetConnectivity";
        #[cfg(test)]
        faults::check(CONNECTIVITY)?;
        // SAFETY: `manager` is a live reference the session owns, on the MTA thread that created
        // it; the call only returns a value.
        let connectivity = unsafe { self.manager.GetConnectivity() }.map_err(|e| failed(CONNECTIVITY, e))?.0 as u32;
        let (metered, note) = (self.metered(), self.cost_note.clone());
        Ok(Reading { connectivity, metered, connections: self.connections()?, note })
    }

    /// The machine-wide cost; `None` where the cost manager is missing or cannot tell.
    pub(crate) fn metered(&self) -> Option<bool> {
        let mut cost = 0u32;
        // SAFETY: `costs` is an owned reference (from QueryInterface) on this thread; `cost` is a
        // live u32 for the out-parameter; a null destination asks for the machine-wide cost,
        // which the API allows.
        unsafe { self.costs.as_ref()?.GetCost(&mut cost, std::ptr::null()) }.ok()?;
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

/// The captive-portal flags of a connection's `NA_InternetConnectivityV4/V6` properties (its
/// `IPropertyBag`, as `NLM_INTERNET_CONNECTIVITY`'s documentation says: "using the
/// IPropertyBag interface for an INetwork or INetworkConnection interface"); `None` for a
/// family whose property is not offered.
fn portal(connection: &INetworkConnection) -> Portal {
    #[cfg(test)]
    if let Some(portal) = *faults::PORTAL.lock().unwrap() {
        return portal;
    }
    let Ok(bag) = connection.cast::<IPropertyBag>() else { return Portal::default() };
    let flag = |name| read_u32(&bag, name).map(nlm::captive_portal);
    Portal { ipv4: flag(w!("NA_InternetConnectivityV4")), ipv6: flag(w!("NA_InternetConnectivityV6")) }
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

/// Test builds only: make one named step fail, and stand in for the portal property.
#[cfg(test)]
pub(crate) mod faults {
    use std::sync::Mutex;

    use windows::Win32::Foundation::E_FAIL;

    use crate::nlm::Portal;

    /// The call that fails next (each attempt to make it fails while set).
    pub(crate) static FAIL: Mutex<Option<&'static str>> = Mutex::new(None);

    /// The portal flags every connection reports. Wine's connections offer no property bag
    /// (its netprofm implements `INetworkConnection` and `INetworkConnectionCost` only), so
    /// no real part can report a portal here: this stands in for the property's value.
    pub(crate) static PORTAL: Mutex<Option<Portal>> = Mutex::new(None);

    /// Fails `call` with `E_FAIL` when a test asked for it.
    pub(crate) fn check(call: &str) -> Result<(), String> {
        match *FAIL.lock().unwrap() {
            Some(failing) if failing == call => Err(super::failed(call, E_FAIL.into())),
            _ => Ok(()),
        }
    }
}
