//! How verdicts of sources that know more than the kernel refine its levels: each such source
//! hands the engine a [`Verdict`]; [`refine()`], a pure function, has the rules, and [`derive()`]
//! applies them to a whole state.

use crate::model::{
    Details, Family, FamilyReachability, Level, NetworkState, Reachability, Reason, Reasons, Source, Transport, Verdict,
};
use crate::reachability::kernel_reading;

/// Rank of a source: higher decides.
fn rank(source: Source) -> u8 {
    match source {
        Source::Kernel => 0,
        Source::Probe => 1,
        Source::NetworkManager | Source::Windows => 2,
    }
}

/// The effective reachability and details: the kernel's reading refined by `verdicts`.
/// `kernel_transport` is what the kernel alone says carries the traffic.
///
/// A connectivity probe, NetworkManager or Windows' Network List Manager can say whether the
/// internet actually answers, whether a captive portal is in the way, whether the link is
/// metered and what transport carries it; the engine keeps the latest [`Verdict`] of every
/// source in [`NetworkState::verdicts`]. The rules:
/// - Sources rank: operating-system daemons (`networkmanager`, `windows`) above the `probe`,
///   above the `kernel`. For each field the highest-ranked source with an opinion decides.
/// - A verdict can confirm or lower a family's kernel level, never raise it: a verdict is a
///   reading taken at some moment, while the kernel is read continuously. A probe that said
///   `online` before the cable was pulled must not keep the machine online; the kernel's
///   `disconnected` wins at once, and the source says `kernel`. A verdict equal to the kernel
///   level tags the family with the verdict's source ("verified").
/// - A captive portal is reported only while the kernel still sees a way out of the machine
///   (`site` or better); a portal verdict lowers its family to `site`, as Qt does. A published
///   state with `captive_portal: true` always has a family at `site`: when the levels say
///   otherwise (a source's readings a moment apart), every `online` family is capped at `site`.
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
    let mut ranked: Vec<&Verdict> = verdicts.iter().collect();
    ranked.sort_by_key(|v| std::cmp::Reverse(rank(v.source)));
    let way_out = kernel.overall >= Level::Site;
    let portal = ranked.iter().find(|v| v.captive_portal.is_some()).filter(|_| way_out);
    let family = |f: Family| {
        let base = kernel.family(f);
        match ranked.iter().find_map(|v| v.level(f).map(|level| (v.source, level))) {
            Some((source, level)) if level <= base.reachability => FamilyReachability { reachability: level, source },
            _ => base,
        }
    };
    let (mut ipv4, mut ipv6) = (family(Family::Ipv4), family(Family::Ipv6));
    if let Some(source) = portal.filter(|v| v.captive_portal == Some(true)).map(|v| v.source) {
        // A portal means `site` for the family behind it. When no family is at `site` (a
        // source's levels and its portal flag read a moment apart, or from different
        // sources), the portal's family is not known: every `online` family is capped.
        if ipv4.reachability != Level::Site && ipv6.reachability != Level::Site {
            for f in [&mut ipv4, &mut ipv6] {
                if f.reachability == Level::Online {
                    *f = FamilyReachability { reachability: Level::Site, source };
                }
            }
        }
    }
    let reachability = Reachability::from_families(ipv4, ipv6);
    // Nor is a portal shown where no family is at `site` (a higher-ranked source lowered them
    // all): it would contradict the levels.
    let at_site = ipv4.reachability == Level::Site || ipv6.reachability == Level::Site;
    let portal = portal.filter(|v| v.captive_portal != Some(true) || at_site);
    let details = Details {
        transport: ranked.iter().find_map(|v| v.transport).or(kernel_transport),
        metered: ranked.iter().find_map(|v| v.metered),
        captive_portal: portal.and_then(|v| v.captive_portal),
        portal_url: portal.filter(|v| v.captive_portal == Some(true)).and_then(|v| v.portal_url.clone()),
    };
    (reachability, details)
}

/// The effective reachability and details of a state: the kernel derivation
/// ([`crate::derive_kernel_reachability`]) refined by the state's verdicts.
///
/// ```
/// let (r, d) = netreach::derive(&netreach::NetworkState::default());
/// assert_eq!((r.overall, d.transport), (netreach::Level::Disconnected, None));
/// ```
#[must_use]
pub fn derive(state: &NetworkState) -> (Reachability, Details) {
    let (_, reachability, details, _) = judge(state);
    (reachability, details)
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
    if let Some(Reason::RoutedOut { route }) = reasons.family(family) {
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
            // The daemon outranks the probe.
            (
                Online,
                Disconnected,
                vec![says(Probe, Some(Online), None), says(NetworkManager, Some(Site), None)],
                (Site, NetworkManager),
                (Disconnected, Kernel),
                Site,
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
        // A higher-ranked "no portal" clears a lower-ranked portal.
        let clear = Verdict { captive_portal: Some(false), ..Verdict::new(NetworkManager) };
        let portal = Verdict { captive_portal: Some(true), portal_url: Some("x".into()), ..Verdict::new(Probe) };
        let (_, d) = refine(&kernel(Online, Disconnected), None, &[portal, clear]);
        assert_eq!((d.captive_portal, d.portal_url), (Some(false), None));
    }
}
