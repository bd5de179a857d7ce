//! The Network List Manager's event sinks: COM objects made with `#[implement]`.
//!
//! A sink holds only a channel sender to the COM thread ([`super::com`]), never a pointer to
//! the monitor: COM may keep a sink (and call it) after the monitor is gone, and then the
//! send fails quietly. (Qt's sink kept a raw pointer to its monitor: a use-after-free.)

use std::sync::mpsc::Sender;

use windows::core::{implement, Result, GUID};
use windows::Win32::Networking::NetworkListManager::{
    INetworkConnectionEvents, INetworkConnectionEvents_Impl, INetworkCostManagerEvents, INetworkCostManagerEvents_Impl,
    INetworkListManagerEvents, INetworkListManagerEvents_Impl, NLM_CONNECTION_PROPERTY_CHANGE, NLM_CONNECTIVITY,
    NLM_SOCKADDR,
};

/// What a sink tells the COM thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NlmEvent {
    /// The machine's connectivity (`NLM_CONNECTIVITY` flags).
    Connectivity(u32),
    /// One connection's connectivity.
    ConnectionConnectivity(GUID, u32),
    /// The machine-wide connection cost (`NLM_CONNECTION_COST_*` flags).
    Cost(u32),
    /// One connection's properties changed (e.g. its internet-connectivity property, which
    /// carries the captive-portal flag): read them again.
    ConnectionProperties(GUID),
}

/// The request a sink sends: the COM thread handles it.
pub(crate) type Report = Sender<super::com::Request>;

/// `INetworkListManagerEvents`: the machine's connectivity.
#[implement(INetworkListManagerEvents)]
pub(crate) struct ListSink(pub(crate) Report);

impl INetworkListManagerEvents_Impl for ListSink_Impl {
    fn ConnectivityChanged(&self, connectivity: NLM_CONNECTIVITY) -> Result<()> {
        let _ = self.0.send(super::com::Request::Event(NlmEvent::Connectivity(connectivity.0 as u32)));
        Ok(())
    }
}

/// `INetworkConnectionEvents`: every connection's connectivity and properties.
#[implement(INetworkConnectionEvents)]
pub(crate) struct ConnectionSink(pub(crate) Report);

impl INetworkConnectionEvents_Impl for ConnectionSink_Impl {
    fn NetworkConnectionConnectivityChanged(&self, id: &GUID, connectivity: NLM_CONNECTIVITY) -> Result<()> {
        let event = NlmEvent::ConnectionConnectivity(*id, connectivity.0 as u32);
        let _ = self.0.send(super::com::Request::Event(event));
        Ok(())
    }

    fn NetworkConnectionPropertyChanged(&self, id: &GUID, _: NLM_CONNECTION_PROPERTY_CHANGE) -> Result<()> {
        let _ = self.0.send(super::com::Request::Event(NlmEvent::ConnectionProperties(*id)));
        Ok(())
    }
}

/// `INetworkCostManagerEvents`: the machine's connection cost (metered or not).
#[implement(INetworkCostManagerEvents)]
pub(crate) struct CostSink(pub(crate) Report);

impl INetworkCostManagerEvents_Impl for CostSink_Impl {
    fn CostChanged(&self, cost: u32, destination: *const NLM_SOCKADDR) -> Result<()> {
        // A cost for one destination only is not the machine's: netreach reports the latter.
        if destination.is_null() {
            let _ = self.0.send(super::com::Request::Event(NlmEvent::Cost(cost)));
        }
        Ok(())
    }

    fn DataPlanStatusChanged(&self, _: *const NLM_SOCKADDR) -> Result<()> {
        // Usage and limits of the data plan are not part of netreach's state: `metered` follows
        // the cost, which Windows reports separately (above).
        Ok(())
    }
}

/// The three sinks, as the interfaces they are advised under.
pub(crate) struct Sinks {
    pub list: INetworkListManagerEvents,
    pub connection: INetworkConnectionEvents,
    pub cost: INetworkCostManagerEvents,
}

impl Sinks {
    pub(crate) fn new(report: &Report) -> Sinks {
        Sinks {
            list: ListSink(report.clone()).into(),
            connection: ConnectionSink(report.clone()).into(),
            cost: CostSink(report.clone()).into(),
        }
    }
}
