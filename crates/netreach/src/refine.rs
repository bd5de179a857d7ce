//! How verdicts of sources that know more than the kernel refine its levels: each such source
//! hands the engine a [`Verdict`]; [`refine()`], a pure function, has the rules, and [`derive()`]
//! applies them to a whole state.

use crate::model::{Details, Family, Level, NetworkState, Reachability, Reason, Reasons, Snapshot, Transport, Verdict};
use crate::reachability::kernel_reading;

/// The effective reachability and details: the kernel's reading refined by `verdicts`.
/// `kernel_transport` is what the kernel alone says carries the traffic.
///
/// A connectivity probe, NetworkManager or Windows' Network List Manager can say whether the
/// internet actually answers, whether a captive portal is in the way, whether the link is
/// metered and what transport carries it; the engine keeps the latest [`Verdict`] of every
/// source in [`NetworkState::verdicts`]. The rules:
/// - Which evidence wins is a table, in `arbitrate.rs` (rows in precedence order): the
///   kernel caps every verdict; a probe that got through beats a daemon's lower level and any
///   portal; a portal seen by any source stays a portal until then; otherwise the daemons
///   (`networkmanager`, `windows`) outrank the `probe`. For each field the winning source with
///   an opinion decides.
/// - A verdict can confirm or lower a family's kernel level, never raise it: a verdict is a
///   reading taken at some moment, while the kernel is read continuously. A probe that said
///   `online` before the cable was pulled must not keep the machine online; the kernel's
///   `disconnected` wins at once, and the source says `kernel`. A verdict equal to the kernel
///   level tags the family with the verdict's source ("verified").
/// - A captive portal is reported only while the kernel still sees a way out of the machine
///   (`site` or better); a portal verdict lowers its family to `site`, as Qt does. A published
///   state with `captive_portal: true` always has a family at `site`: when the levels say
///   otherwise (a source's readings a moment apart), every `online` family is capped at `site`.
/// - Every verdict set aside is named in [`Details::disagreements`] (who said what, which rule).
///
/// ```
/// use netreach::{refine, FamilyReachability, Level, Reachability, Source, Verdict};
/// let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
/// let kernel = Reachability::from_families(k(Level::Online), k(Level::Disconnected));
/// let portal = Verdict { ipv4: Some(Level::Site), captive_portal: Some(true), ..Verdict::new(Source::Probe) };
/// let (r, details) = refine(&kernel, None, &[portal]);
/// assert_eq!((r.overall, r.source), (Level::Site, Source::Probe));
/// assert_eq!(details.captive_portal, Some(true));
/// ```
#[must_use]
pub fn refine(
    kernel: &Reachability,
    kernel_transport: Option<Transport>,
    verdicts: &[Verdict],
) -> (Reachability, Details) {
    crate::arbitrate::arbitrate(kernel, kernel_transport, verdicts)
}

/// Derives a [`Snapshot`] from an observed state: the kernel's levels and their reasons
/// ([`crate::derive_kernel_reachability`], [`crate::derive_reasons`]) refined by the state's
/// verdicts ([`refine()`]). Pure; the engine calls it after every change.
///
/// ```
/// let snapshot = netreach::derive(netreach::NetworkState::default());
/// assert_eq!((snapshot.reachability.overall, snapshot.details.transport), (netreach::Level::Disconnected, None));
/// ```
#[must_use]
pub fn derive(state: NetworkState) -> Snapshot {
    let (_, reachability, details, reasons) = judge(&state);
    Snapshot { reachability, details, state, reasons: Box::new(reasons) }
}

/// [`derive()`], also returning the kernel's own reading (what sources are told about) and
/// the reasons of its levels.
pub(crate) fn judge(state: &NetworkState) -> (Reachability, Reachability, Details, Reasons) {
    let (kernel, reasons) = kernel_reading(state);
    let (reachability, details) = refine(&kernel, kernel_transport(state, &kernel, &reasons), &state.verdicts);
    (kernel, reachability, details, reasons)
}

/// What the kernel alone says carries the traffic: the kind of the interface the kernel's
/// decision leaves through (a VPN under wg-quick-style policy routing, whatever default route
/// exists besides), else that of the lowest-metric default route of the best online family;
/// `None` when not online.
pub(crate) fn kernel_transport(state: &NetworkState, kernel: &Reachability, reasons: &Reasons) -> Option<Transport> {
    if kernel.overall != Level::Online {
        return None;
    }
    let family = if kernel.ipv4.reachability == Level::Online { Family::Ipv4 } else { Family::Ipv6 };
    if let Some(Reason::RoutedOut { route } | Reason::PartlyNoCarrier { route, .. }) = reasons.family(family) {
        return state.interface(route.interface_index).map(|i| i.kind.into());
    }
    state
        .default_routes
        .iter()
        .filter(|r| r.family == family)
        .filter_map(|r| state.interface(r.interface_index).filter(|i| i.is_ready()).map(|i| (r.metric, i.kind)))
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, kind)| kind.into())
}

#[cfg(test)]
#[path = "refine_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FamilyReachability, Source};

    fn kernel(v4: Level, v6: Level) -> Reachability {
        let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
        Reachability::from_families(k(v4), k(v6))
    }

    fn says(source: Source, v4: Option<Level>, v6: Option<Level>) -> Verdict {
        Verdict { ipv4: v4, ipv6: v6, ..Verdict::new(source) }
    }

    use Level::*;
    use Source::*;

    #[test]
    fn levels_table() {
        // (kernel v4, kernel v6, verdicts, expected (v4, source), (v6, source), overall)
        #[allow(clippy::type_complexity)]
        let table: Vec<(Level, Level, Vec<Verdict>, (Level, Source), (Level, Source), Level)> = vec![
            // No verdicts: the kernel's word.
            (Online, Local, vec![], (Online, Kernel), (Local, Kernel), Online),
            // A probe confirms: same level, tagged probe.
            (Online, Local, vec![says(Probe, Some(Online), None)], (Online, Probe), (Local, Kernel), Online),
            // A probe finds it limited: site.
            (Online, Online, vec![says(Probe, Some(Site), Some(Online))], (Site, Probe), (Online, Probe), Online),
            // A stale online verdict never raises: the kernel's disconnected wins.
            (
                Disconnected,
                Disconnected,
                vec![says(Probe, Some(Online), None)],
                (Disconnected, Kernel),
                (Disconnected, Kernel),
                Disconnected,
            ),
            // A probe that got through beats the daemon's "limited" (arbitrate.rs, row 2).
            (
                Online,
                Disconnected,
                vec![says(Probe, Some(Online), None), says(NetworkManager, Some(Site), None)],
                (Online, Probe),
                (Disconnected, Kernel),
                Online,
            ),
            // The daemon outranks a probe that failed (row 4).
            (
                Online,
                Disconnected,
                vec![says(Probe, Some(Site), None), says(NetworkManager, Some(Online), None)],
                (Online, NetworkManager),
                (Disconnected, Kernel),
                Online,
            ),
            // A daemon without an opinion (its check disabled) leaves it to the probe.
            (
                Online,
                Disconnected,
                vec![says(NetworkManager, None, None), says(Probe, Some(Site), None)],
                (Site, Probe),
                (Disconnected, Kernel),
                Site,
            ),
            // Windows ranks like NetworkManager.
            (
                Online,
                Online,
                vec![says(Windows, Some(Local), Some(Online))],
                (Local, Windows),
                (Online, Windows),
                Online,
            ),
        ];
        for (i, (v4, v6, verdicts, e4, e6, overall)) in table.into_iter().enumerate() {
            let (r, _) = refine(&kernel(v4, v6), None, &verdicts);
            assert_eq!((r.ipv4.reachability, r.ipv4.source), e4, "row {i} ipv4");
            assert_eq!((r.ipv6.reachability, r.ipv6.source), e6, "row {i} ipv6");
            assert_eq!(r.overall, overall, "row {i} overall");
        }
    }

    #[test]
    fn details_follow_rank_and_way_out() {
        let portal = Verdict {
            captive_portal: Some(true),
            portal_url: Some("http://192.0.2.1/login".into()),
            ipv4: Some(Site),
            ..Verdict::new(Probe)
        };
        let nm = Verdict { metered: Some(true), transport: Some(Transport::Wifi), ..Verdict::new(NetworkManager) };
        let (_, d) = refine(&kernel(Online, Disconnected), Some(Transport::Ethernet), &[portal.clone(), nm.clone()]);
        assert_eq!(d.captive_portal, Some(true));
        assert_eq!(d.portal_url.as_deref(), Some("http://192.0.2.1/login"));
        assert_eq!(d.metered, Some(true));
        assert_eq!(d.transport, Some(Transport::Wifi));
        // Without a way out a portal verdict is stale: unknown.
        let (_, d) = refine(&kernel(Local, Disconnected), None, &[portal]);
        assert_eq!((d.captive_portal, d.portal_url), (None, None));
        // The kernel's transport when no source knows better.
        let (_, d) = refine(&kernel(Online, Disconnected), Some(Transport::Ethernet), &[]);
        assert_eq!((d.transport, d.metered), (Some(Transport::Ethernet), None));
        // A portal seen by any source stands against a higher-ranked "no portal".
        let clear = Verdict { captive_portal: Some(false), ..Verdict::new(NetworkManager) };
        let portal = Verdict { captive_portal: Some(true), portal_url: Some("x".into()), ..Verdict::new(Probe) };
        let (_, d) = refine(&kernel(Online, Disconnected), None, &[portal, clear]);
        assert_eq!((d.captive_portal, d.portal_url.as_deref()), (Some(true), Some("x")));
    }
}
