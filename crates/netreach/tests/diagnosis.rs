//! The diagnosis from a monitor on the real kernel: `DiagnosisChanged` events, folded, equal
//! `diagnose(snapshot)` after each change, and a layer's new first failure comes with the
//! level change it causes.
#![cfg(target_os = "linux")] // network namespaces

mod common;

use std::sync::mpsc;

use netreach::{diagnose, EventKind, Family, Finding, Layer, LayerStatus, Monitor};
use testns::kit::TIMEOUT;

#[test]
fn diagnosis_changes_come_with_the_change_that_caused_them() {
    testns::skip_unless_root!();
    let ns = common::ns_with_veth("diag");
    ns.ip("addr add 192.0.2.10/24 dev va");
    ns.ip("route add default via 192.0.2.1");
    let monitor = Monitor::builder().netns(ns.name()).build().expect("monitor");
    let mut folded = diagnose(&monitor.snapshot());
    let route = folded.ipv4.layer(Layer::Route).cloned().unwrap();
    assert_eq!(route.status, LayerStatus::Passed, "{route:?}");
    assert!(matches!(&route.finding, Some(Finding::Routed { route }) if route.interface == "va"));
    assert_eq!(ns.ip_json("route get 64.0.0.1")[0]["dev"], "va", "the kernel agrees");
    let (tx, batches) = mpsc::channel();
    monitor.on_events(move |batch| drop(tx.send(batch.iter().map(|e| e.kind.clone()).collect::<Vec<_>>())));

    for (step, layer, status) in [
        ("link set vb down", Layer::Link, LayerStatus::Failed),
        ("link set vb up", Layer::Link, LayerStatus::Passed),
        ("route del default", Layer::Route, LayerStatus::Failed),
    ] {
        ns.ip(step);
        // Until the folded events say what the step did and match the monitor's state (later
        // events, such as IPv6's, may still be on their way).
        let wanted = |d: &netreach::FamilyDiagnosis| d.layer(layer).is_some_and(|c| c.status == status);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while !wanted(&folded.ipv4) || folded != diagnose(&monitor.snapshot()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let batch: Vec<EventKind> = batches.recv_timeout(left).unwrap_or_else(|e| {
                panic!("after {step}: {e}; folded {folded:#?}, now {:#?}", diagnose(&monitor.snapshot()))
            });
            for kind in &batch {
                let EventKind::DiagnosisChanged { family, before, after } = kind else { continue };
                assert_eq!(before, folded.family(*family), "before is what was folded");
                // A first failure moving to or from the link or route layer, which read what the
                // levels read, comes with the level change.
                let first = |d: &netreach::FamilyDiagnosis| d.first_failing().map(|c| c.layer);
                if *family == Family::Ipv4
                    && first(before) != first(after)
                    && [first(before), first(after)].iter().any(|l| matches!(l, Some(Layer::Link | Layer::Route)))
                {
                    assert!(batch.iter().any(|k| matches!(k, EventKind::ReachabilityChanged { .. })), "{batch:#?}");
                }
                match family {
                    Family::Ipv4 => folded.ipv4 = after.clone(),
                    Family::Ipv6 => folded.ipv6 = after.clone(),
                }
            }
        }
    }
}
