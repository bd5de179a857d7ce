//! Property tests of [`refine()`] over arbitrary kernel readings and verdict combinations.

use proptest::prelude::*;

use super::*;
use crate::model::{FamilyReachability, Source};

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![
        Just(Level::Unknown),
        Just(Level::Disconnected),
        Just(Level::Local),
        Just(Level::Site),
        Just(Level::Online),
    ]
}

fn verdict() -> impl Strategy<Value = Verdict> {
    let source = prop_oneof![Just(Source::Probe), Just(Source::NetworkManager), Just(Source::Windows)];
    (source, proptest::option::of(level()), proptest::option::of(level()), proptest::option::of(any::<bool>()))
        .prop_map(|(source, ipv4, ipv6, captive_portal)| Verdict { ipv4, ipv6, captive_portal, ..Verdict::new(source) })
}

proptest! {
    /// The rules every published state keeps, whatever the sources say: a portal means `site`
    /// for the family behind it (so some family is at `site`, and with both families online
    /// there is no portal), a portal only while the kernel sees a way out, and no verdict
    /// raises a family above the kernel's level.
    #[test]
    fn refined_state_keeps_the_rules(v4 in level(), v6 in level(), verdicts in proptest::collection::vec(verdict(), 0..4)) {
        let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
        let kernel = Reachability::from_families(k(v4), k(v6));
        let (r, d) = refine(&kernel, None, &verdicts);
        if d.captive_portal == Some(true) {
            let (r4, r6) = (r.ipv4.reachability, r.ipv6.reachability);
            prop_assert!(r4 == Level::Site || r6 == Level::Site, "a portal with no family at site: {r:?} from {verdicts:?}");
            prop_assert!(d.portal_url.is_none() || verdicts.iter().any(|v| v.portal_url == d.portal_url));
        }
        if d.captive_portal.is_some() {
            prop_assert!(kernel.overall >= Level::Site, "a portal opinion without a way out: {d:?}");
        }
        prop_assert!(r.ipv4.reachability <= v4 && r.ipv6.reachability <= v6, "{r:?} above the kernel");
    }
}

proptest! {
    /// The arbitration table's promises: a probe that got through decides its family wherever
    /// the kernel allows `online`; a portal seen by any source stands until then (unless a
    /// higher-ranked source lowered every family below `site`); and every verdict whose level
    /// the outcome sets aside is named in `disagreements`, with the winner's source.
    #[test]
    fn arbitration_keeps_its_table(v4 in level(), v6 in level(), verdicts in proptest::collection::vec(verdict(), 0..4)) {
        let mut verdicts = verdicts;
        let mut seen = Vec::new();
        verdicts.retain(|v| { let new = !seen.contains(&v.source); seen.push(v.source); new }); // one per source, as in a state
        let k = |l| FamilyReachability { reachability: l, source: Source::Kernel };
        let kernel = Reachability::from_families(k(v4), k(v6));
        let (r, d) = refine(&kernel, None, &verdicts);
        let probe = verdicts.iter().find(|v| v.source == Source::Probe);
        let through = |f: Family| probe.is_some_and(|p| p.level(f) == Some(Level::Online) && p.captive_portal != Some(true));
        for (f, k) in [(Family::Ipv4, v4), (Family::Ipv6, v6)] {
            let won = r.family(f);
            if through(f) && k == Level::Online {
                prop_assert_eq!((won.reachability, won.source), (Level::Online, Source::Probe), "{:?}", verdicts);
            }
            for v in verdicts.iter().filter(|v| v.source != won.source) {
                if let Some(level) = v.level(f).filter(|l| *l != won.reachability) {
                    let named = d.disagreements.iter().any(|x| x.overruled == v.source && x.decided_by == won.source && x.note.contains(&format!("{} says {f} {level}", v.source)));
                    prop_assert!(named, "{:?} says {f} {level}, outcome {won:?}, not named in {:?}", v.source, d.disagreements);
                }
            }
        }
        let portal_seen = verdicts.iter().any(|v| v.captive_portal == Some(true));
        let got_through = through(Family::Ipv4) || through(Family::Ipv6);
        let at_site = r.ipv4.reachability == Level::Site || r.ipv6.reachability == Level::Site;
        if portal_seen && !got_through && kernel.overall >= Level::Site && at_site {
            prop_assert_eq!(d.captive_portal, Some(true), "{:?}", verdicts);
        }
        if got_through && kernel.overall >= Level::Site {
            prop_assert_ne!(d.captive_portal, Some(true), "a portal after a probe got through: {:?}", verdicts);
        }
    }
}
