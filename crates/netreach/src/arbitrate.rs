//! Arbitration: which evidence wins when the kernel, the probe and the system's daemons
//! (NetworkManager, Windows' Network List Manager) say different things, and every
//! disagreement named. [`crate::refine()`] runs it; the table below is the whole policy, in
//! precedence order (a row beats every row under it), and [`arbitrate`] reads it row by row.
//!
//! | # | rule | evidence | beats | why |
//! |---|---|---|---|---|
//! | 1 | `kernel_caps` | the kernel's level of a family | every verdict above it | the kernel is read continuously; a verdict is a reading taken at some moment (a probe said `online` before the cable was pulled) |
//! | 2 | `probe_got_through` | the probe's `online` for a family: it got the expected answer over that family and saw no portal | a daemon's lower level for that family (`limited`, `portal`, `none`) and every source's portal | direct evidence beats inference: a blocked check host or a proxy makes a daemon say "no internet" while the internet works |
//! | 3 | `portal_stands` | a captive portal seen by any source | another source's `online` or "no portal" | a portal means `site`, never `online`, until a probe gets through (row 2) |
//! | 4 | `rank` | the highest-ranked source with an opinion: `networkmanager` = `windows` > `probe` | lower-ranked sources | a failed probe may be its endpoint's fault; the system's own check knows its proxies and settings |
//!
//! Every verdict that the outcome sets aside becomes a [`Disagreement`] in
//! [`Details::disagreements`], naming who said what and the rule; it changes with the
//! verdicts, so a `details_changed` event carries it. A portal opinion while the kernel sees no
//! way out (`local` or worse) is moot, not a disagreement: no portal is reported then.

use crate::model::{
    ArbitrationRule, Details, Disagreement, Family, FamilyReachability, Level, Reachability, Source, Subject,
    Transport, Verdict,
};

/// The table's rows, in precedence order: the order [`arbitrate`] consults them.
pub(crate) const RULES: [ArbitrationRule; 4] = [
    ArbitrationRule::KernelCaps,
    ArbitrationRule::ProbeGotThrough,
    ArbitrationRule::PortalStands,
    ArbitrationRule::Rank,
];

/// Rank of a source for row 4: higher decides.
fn rank(source: Source) -> u8 {
    match source {
        Source::Kernel => 0,
        Source::Probe => 1,
        Source::NetworkManager | Source::Windows => 2,
    }
}

/// Why `rule` let `winner` stand over `loser`, in words.
fn reason(rule: ArbitrationRule, winner: Source, loser: Source) -> String {
    match rule {
        ArbitrationRule::KernelCaps => "the kernel, read continuously, caps every verdict".into(),
        ArbitrationRule::ProbeGotThrough => "a probe that got through is direct evidence".into(),
        ArbitrationRule::PortalStands => "a portal stays a portal until a probe gets through".into(),
        ArbitrationRule::Rank => format!("{winner} outranks {loser}"),
    }
}

/// One family's outcome and the row that settled it.
#[derive(Clone, Copy)]
struct Decided {
    family: FamilyReachability,
    rule: ArbitrationRule,
}

/// The verdicts, ranked, and what the probe says (rows 2 and 3 need it).
struct Evidence<'a> {
    kernel: &'a Reachability,
    ranked: Vec<&'a Verdict>,
    probe: Option<&'a Verdict>,
}

impl Evidence<'_> {
    /// Row 2 for one family: the probe got its expected answer over it, with no portal.
    fn probe_through(&self, f: Family) -> bool {
        self.probe.is_some_and(|p| p.level(f) == Some(Level::Online) && p.captive_portal != Some(true))
    }

    /// Row 2 for the portal: the probe got through over some family.
    fn probe_through_any(&self) -> bool {
        self.probe_through(Family::Ipv4) || self.probe_through(Family::Ipv6)
    }

    /// One family's outcome before the portal (row 3): the first of rows 2 and 4 with an
    /// opinion proposes, row 1 caps it.
    fn family(&self, f: Family) -> Decided {
        let base = self.kernel.family(f);
        let mut proposal = None;
        for rule in RULES {
            proposal = proposal.or(match rule {
                ArbitrationRule::ProbeGotThrough if self.probe_through(f) => Some((Source::Probe, Level::Online, rule)),
                ArbitrationRule::Rank => self.ranked.iter().find_map(|v| v.level(f).map(|l| (v.source, l, rule))),
                _ => None,
            });
        }
        match proposal {
            Some((source, level, rule)) if level <= base.reachability => {
                Decided { family: FamilyReachability { reachability: level, source }, rule }
            }
            Some(_) => Decided { family: base, rule: ArbitrationRule::KernelCaps },
            None => Decided { family: base, rule: ArbitrationRule::Rank },
        }
    }
}

/// The kernel's reading refined by `verdicts` under the table's rules, with every
/// disagreement. `kernel_transport` is what the kernel alone says carries the traffic.
pub(crate) fn arbitrate(
    kernel: &Reachability,
    kernel_transport: Option<Transport>,
    verdicts: &[Verdict],
) -> (Reachability, Details) {
    let mut ranked: Vec<&Verdict> = verdicts.iter().collect();
    ranked.sort_by_key(|v| std::cmp::Reverse(rank(v.source)));
    let probe = verdicts.iter().find(|v| v.source == Source::Probe);
    let evidence = Evidence { kernel, ranked, probe };
    let way_out = kernel.overall >= Level::Site;
    let (mut ipv4, mut ipv6) = (evidence.family(Family::Ipv4), evidence.family(Family::Ipv6));

    // The portal: row 3 unless row 2 overrules it; without a way out it is moot (row 1).
    let seen = evidence.ranked.iter().copied().find(|v| v.captive_portal == Some(true));
    let portal: Option<(&Verdict, ArbitrationRule)> = match seen {
        _ if !way_out => None,
        Some(_) if evidence.probe_through_any() => probe.map(|p| (p, ArbitrationRule::ProbeGotThrough)),
        Some(v) => Some((v, ArbitrationRule::PortalStands)),
        None => {
            evidence.ranked.iter().copied().find(|v| v.captive_portal.is_some()).map(|v| (v, ArbitrationRule::Rank))
        }
    };
    if let Some((v, ArbitrationRule::PortalStands)) = portal {
        // A portal means `site` for the family behind it. When no family is at `site` (a
        // source's levels and its portal flag read a moment apart, or from different
        // sources), the portal's family is not known: every `online` family is capped.
        if ipv4.family.reachability != Level::Site && ipv6.family.reachability != Level::Site {
            for d in [&mut ipv4, &mut ipv6] {
                if d.family.reachability == Level::Online {
                    let family = FamilyReachability { reachability: Level::Site, source: v.source };
                    *d = Decided { family, rule: ArbitrationRule::PortalStands };
                }
            }
        }
    }
    // Nor is a portal shown where no family is at `site` (a higher-ranked source lowered them
    // all below): it would contradict the levels.
    let at_site = ipv4.family.reachability == Level::Site || ipv6.family.reachability == Level::Site;
    let hidden = matches!(portal, Some((_, ArbitrationRule::PortalStands))) && !at_site;
    let captive_portal = match portal {
        Some((_, ArbitrationRule::ProbeGotThrough)) => Some(false),
        Some((v, _)) if !hidden => v.captive_portal,
        _ => None,
    };

    let mut disagreements = Vec::new();
    for (f, subject, d) in [(Family::Ipv4, Subject::Ipv4, ipv4), (Family::Ipv6, Subject::Ipv6, ipv6)] {
        let won = d.family;
        for v in verdicts.iter().filter(|v| v.source != won.source) {
            let Some(level) = v.level(f).filter(|l| *l != won.reachability) else { continue };
            let note = format!(
                "{} says {f} {level}; {} says {f} {}: {}",
                v.source,
                won.source,
                won.reachability,
                reason(d.rule, won.source, v.source)
            );
            disagreements.push(Disagreement {
                about: subject,
                decided_by: won.source,
                overruled: v.source,
                rule: d.rule,
                note,
            });
        }
    }
    if let Some((winner, rule)) = portal {
        // A hidden portal yields to the levels of the sources that lowered them (row 4).
        let (by, rule) = if hidden {
            (Reachability::from_families(ipv4.family, ipv6.family).source, ArbitrationRule::Rank)
        } else {
            (winner.source, rule)
        };
        let word = |p: Option<bool>| match p {
            Some(true) => "a captive portal",
            Some(false) => "no captive portal",
            None => "nothing about a portal",
        };
        for v in verdicts
            .iter()
            .filter(|v| v.source != by && v.captive_portal.is_some() && v.captive_portal != captive_portal)
        {
            let note = format!(
                "{} says {}; {by} says {}: {}",
                v.source,
                word(v.captive_portal),
                word(captive_portal),
                reason(rule, by, v.source)
            );
            disagreements.push(Disagreement {
                about: Subject::CaptivePortal,
                decided_by: by,
                overruled: v.source,
                rule,
                note,
            });
        }
    }

    let reachability = Reachability::from_families(ipv4.family, ipv6.family);
    let details = Details {
        transport: evidence.ranked.iter().find_map(|v| v.transport).or(kernel_transport),
        metered: evidence.ranked.iter().find_map(|v| v.metered),
        captive_portal,
        portal_url: portal.filter(|_| captive_portal == Some(true)).and_then(|(v, _)| v.portal_url.clone()),
        disagreements,
    };
    (reachability, details)
}

#[cfg(test)]
#[path = "arbitrate_tests.rs"]
mod tests;
