//! Property tests of [`refine()`] over arbitrary kernel readings and verdict combinations.

use proptest::prelude::*;

use super::*;

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
