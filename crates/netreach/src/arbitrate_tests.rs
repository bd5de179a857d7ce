//! The arbitration table, row by row: each row's case, its outcome and the disagreement it
//! names.

use super::*;

use Level::*;
use Source::*;

fn kernel(v4: Level, v6: Level) -> Reachability {
    let k = |l| FamilyReachability { reachability: l, source: Kernel };
    Reachability::from_families(k(v4), k(v6))
}

fn says(source: Source, v4: Option<Level>, portal: Option<bool>) -> Verdict {
    Verdict { ipv4: v4, captive_portal: portal, ..Verdict::new(source) }
}

/// (about, decided_by, overruled, rule) of every disagreement.
fn named(d: &Details) -> Vec<(Subject, Source, Source, ArbitrationRule)> {
    d.disagreements.iter().map(|d| (d.about, d.decided_by, d.overruled, d.rule)).collect()
}

#[test]
fn rows_in_precedence_order() {
    #[allow(clippy::type_complexity)]
    let table: Vec<(
        &str,
        Level,
        Vec<Verdict>,
        (Level, Source),
        Option<bool>,
        Vec<(Subject, Source, Source, ArbitrationRule)>,
    )> = vec![
        (
            "1: a stale online verdict is capped by the kernel",
            Site,
            vec![says(NetworkManager, Some(Online), Some(false))],
            (Site, Kernel),
            Some(false),
            vec![(Subject::Ipv4, Kernel, NetworkManager, ArbitrationRule::KernelCaps)],
        ),
        (
            "2: NM limited, the probe got through",
            Online,
            vec![says(NetworkManager, Some(Site), Some(false)), says(Probe, Some(Online), Some(false))],
            (Online, Probe),
            Some(false),
            vec![(Subject::Ipv4, Probe, NetworkManager, ArbitrationRule::ProbeGotThrough)],
        ),
        (
            "2: NM none, the probe got through",
            Online,
            vec![says(Windows, Some(Disconnected), None), says(Probe, Some(Online), Some(false))],
            (Online, Probe),
            Some(false),
            vec![(Subject::Ipv4, Probe, Windows, ArbitrationRule::ProbeGotThrough)],
        ),
        (
            "2: NM portal, the probe got through: no portal",
            Online,
            vec![says(NetworkManager, Some(Site), Some(true)), says(Probe, Some(Online), Some(false))],
            (Online, Probe),
            Some(false),
            vec![
                (Subject::Ipv4, Probe, NetworkManager, ArbitrationRule::ProbeGotThrough),
                (Subject::CaptivePortal, Probe, NetworkManager, ArbitrationRule::ProbeGotThrough),
            ],
        ),
        (
            "3: the probe sees a portal, NM says full",
            Online,
            vec![says(NetworkManager, Some(Online), Some(false)), says(Probe, Some(Site), Some(true))],
            (Site, Probe),
            Some(true),
            vec![
                (Subject::Ipv4, Probe, NetworkManager, ArbitrationRule::PortalStands),
                (Subject::CaptivePortal, Probe, NetworkManager, ArbitrationRule::PortalStands),
            ],
        ),
        (
            "4: the probe failed, NM says full: NM outranks it",
            Online,
            vec![says(NetworkManager, Some(Online), Some(false)), says(Probe, Some(Site), None)],
            (Online, NetworkManager),
            Some(false),
            vec![(Subject::Ipv4, NetworkManager, Probe, ArbitrationRule::Rank)],
        ),
        (
            "agreement: nothing to name",
            Online,
            vec![says(Probe, Some(Online), Some(false))],
            (Online, Probe),
            Some(false),
            vec![],
        ),
        (
            "a portal without a way out is moot",
            Local,
            vec![says(NetworkManager, None, Some(true)), says(Probe, None, Some(false))],
            (Local, Kernel),
            None,
            vec![],
        ),
    ];
    for (name, k4, verdicts, (level, source), portal, want) in table {
        let (r, d) = arbitrate(&kernel(k4, Disconnected), None, &verdicts);
        assert_eq!((r.ipv4.reachability, r.ipv4.source), (level, source), "{name}");
        assert_eq!(d.captive_portal, portal, "{name}");
        assert_eq!(named(&d), want, "{name}: {:#?}", d.disagreements);
    }
}

#[test]
fn notes_name_who_said_what() {
    let verdicts = [says(NetworkManager, Some(Site), Some(false)), says(Probe, Some(Online), Some(false))];
    let (_, d) = arbitrate(&kernel(Online, Disconnected), None, &verdicts);
    assert_eq!(
        d.disagreements[0].note,
        "networkmanager says ipv4 site; probe says ipv4 online: a probe that got through is direct evidence"
    );
    let verdicts = [says(NetworkManager, Some(Online), Some(false)), says(Probe, Some(Site), None)];
    let (_, d) = arbitrate(&kernel(Online, Disconnected), None, &verdicts);
    assert_eq!(
        d.disagreements[0].note,
        "probe says ipv4 site; networkmanager says ipv4 online: networkmanager outranks probe"
    );
}

#[test]
fn a_probe_through_on_one_family_does_not_lift_the_other() {
    // The probe got through over IPv6 only; NM's IPv4 `site` stands (rank), and so does the
    // kernel's cap on IPv6.
    let nm = Verdict { ipv4: Some(Site), ipv6: Some(Site), ..Verdict::new(NetworkManager) };
    let probe = Verdict { ipv6: Some(Online), captive_portal: Some(false), ..Verdict::new(Probe) };
    let (r, d) = arbitrate(&kernel(Online, Online), None, &[nm, probe]);
    assert_eq!((r.ipv4.reachability, r.ipv4.source), (Site, NetworkManager));
    assert_eq!((r.ipv6.reachability, r.ipv6.source), (Online, Probe));
    assert_eq!(named(&d), vec![(Subject::Ipv6, Probe, NetworkManager, ArbitrationRule::ProbeGotThrough)]);
}

#[test]
fn the_doc_table_lists_the_rules_in_the_order_the_code_reads_them() {
    let source = include_str!("arbitrate.rs");
    let rows: Vec<&str> =
        source.lines().filter(|l| l.starts_with("//! | ") && l.as_bytes()[6].is_ascii_digit()).collect();
    assert_eq!(rows.len(), RULES.len());
    for (i, (row, rule)) in rows.iter().zip(RULES).enumerate() {
        assert!(row.starts_with(&format!("//! | {} | `{rule}` |", i + 1)), "row {i}: {row}");
    }
}
