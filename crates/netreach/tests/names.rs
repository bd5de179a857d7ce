//! Interface names and address labels that are not UTF-8 (Linux allows any bytes but '/',
//! whitespace and NUL): such links and addresses are kept, in dumps and in live events.
#![cfg(target_os = "linux")] // network namespaces

mod common;

use common::*;
use netreach::{EventKind, Level, Monitor, ReachabilityOf};
use testns::NetNs;

const NAME: &[u8] = b"w\xff";
const SHOWN: &str = "w\\xff";

/// Link `w\xff` (peer `wb`, both up) with 192.0.2.10/24 labelled `w\xff:\xe9`, 2001:db8::10/64,
/// and default routes through it.
fn configure(ns: &NetNs) {
    ns.ip_bytes(&[b"link", b"add", NAME, b"type", b"veth", b"peer", b"name", b"wb"]);
    ns.ip_bytes(&[b"link", b"set", NAME, b"up"]);
    ns.ip_bytes(&[b"link", b"set", b"wb", b"up"]);
    ns.ip_bytes(&[b"addr", b"add", b"192.0.2.10/24", b"dev", NAME, b"label", b"w\xff:\xe9"]);
    ns.ip_bytes(&[b"addr", b"add", b"2001:db8::10/64", b"dev", NAME, b"nodad"]);
    ns.ip_bytes(&[b"route", b"add", b"default", b"via", b"192.0.2.1", b"dev", NAME]);
}

fn has_name(k: &EventKind) -> bool {
    matches!(k, EventKind::InterfaceAdded { interface } if interface.raw_name() == NAME)
}

#[test]
fn links_and_labels_that_are_not_utf8_are_kept_in_dumps_and_events() {
    testns::skip_unless_root!();
    let ns = NetNs::new("names");
    let (watching, sub) = watch(&ns);
    configure(&ns);

    // Live events: the link, its labelled address, reachability through it.
    let (e, _) = expect(&sub, "w\\xff added", has_name);
    let EventKind::InterfaceAdded { interface } = e.kind else { unreachable!() };
    assert_eq!((interface.name.as_str(), interface.name_bytes.as_deref()), (SHOWN, Some(NAME)));
    let (e, _) = expect(
        &sub,
        "labelled address added",
        |k| matches!(k, EventKind::AddressAdded { address, .. } if address.address.to_string() == "192.0.2.10"),
    );
    let EventKind::AddressAdded { interface, .. } = e.kind else { unreachable!() };
    assert_eq!(interface, SHOWN);
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);

    // A fresh dump: nothing dropped, the dump does not fail.
    let monitor = Monitor::builder().netns(ns.name()).build().expect("a dump with a non-UTF-8 name");
    let state = monitor.snapshot();
    let link = state.interface_by_name(SHOWN).expect("w\\xff listed");
    assert_eq!((link.raw_name(), link.index), (NAME, ns_index(&ns)));
    let addresses: Vec<String> = link.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect();
    assert!(addresses.contains(&"192.0.2.10/24".into()) && addresses.contains(&"2001:db8::10/64".into()));
    assert_eq!(state.reachability.ipv4.reachability, Level::Online);
    let route = &state.default_routes[0];
    assert_eq!((route.interface.as_str(), route.interface_index), (SHOWN, link.index));

    // Deletion is a live event too (RTM_DELLINK carries the name).
    ns.ip_bytes(&[b"link", b"del", NAME]);
    expect(
        &sub,
        "w\\xff removed",
        |k| matches!(k, EventKind::InterfaceRemoved { interface } if interface.raw_name() == NAME),
    );
    let state = watching.snapshot();
    assert!(state.interface_by_name(SHOWN).is_none() && state.default_routes.is_empty(), "{state:?}");
    assert_eq!(state.reachability.ipv4.reachability, Level::Disconnected);
}

/// The index of the link named [`NAME`], from the kernel (`ip -j` escapes the name).
fn ns_index(ns: &NetNs) -> u32 {
    let links = ns.ip_json("link show type veth");
    let link = links.as_array().unwrap().iter().find(|l| l["ifname"] != "wb").expect("w\\xff in ip -j");
    link["ifindex"].as_u64().unwrap() as u32
}
