//! The family line of a multipath route with a member without carrier.

use netreach::{KernelRoute, Nexthop, Reason};

/// A multipath route with a member without carrier: one line that says so, its interface
/// names escaped like every other value, and the diagnosis notes it though nothing fails.
#[test]
fn a_member_without_carrier_is_explained_on_the_family_line_escaped() {
    let hostile = "w\u{1b}[31m\nb";
    let hop = |index, interface: &str, linkdown| Nexthop {
        interface_index: index,
        interface: interface.into(),
        gateway: None,
        linkdown,
        dead: false,
    };
    let route = KernelRoute {
        prefix: "0.0.0.0".parse().unwrap(),
        prefix_len: 0,
        table: 254,
        interface_index: 2,
        interface: "wa".into(),
        gateway: None,
        source: None,
        nexthops: vec![hop(2, "wa", false), hop(3, hostile, true)],
    };
    let mut state = netreach::Snapshot::default();
    state.reasons.ipv4 = Some(Reason::PartlyNoCarrier { route, without_carrier: vec![hostile.into()] });
    let lines = super::state(&state);
    let text = lines.escaped();
    assert_eq!(text.lines().count(), lines.len(), "{text}");
    assert!(!text.chars().any(|c| c != '\n' && crate::terminal::is_unsafe(c)), "{text}");
    let escaped = "w\\x1b[31m\\nb";
    assert!(
        text.contains(&format!(
            " — the kernel spreads flows over wa and {escaped}; {escaped} has no carrier, so some connections \
             will time out (set net.ipv4.conf.{escaped}.ignore_routes_with_linkdown=1 to fail over)\n"
        )),
        "{text}"
    );
    let note =
        format!("    link passed: wa is up with carrier, but the kernel also sends some flows through {escaped}");
    assert!(text.contains(&note), "{text}");
}
