//! The kernel level from the kernel's own route decision (issue 12, items 1-4), against the
//! real kernel in namespaces each test creates. Ground truth: `ip route get` for the same
//! destinations the library looks up (no packet is sent to them), and a real TCP connect from
//! the client namespace to a listener in a second namespace that plays "the internet"
//! (203.0.113.1 and 2001:db8:ffff::1 on its loopback, reached only through the client's
//! routes).
#![cfg(target_os = "linux")] // network namespaces

mod common;
mod world;

use std::net::IpAddr;

use common::*;
use netreach::{EventKind, Family, Level, ReachabilityOf, Reason, Reject, Transport};
use testns::NetNs;
use world::*;

#[test]
fn a_default_only_in_a_table_no_rule_selects_is_not_online_until_a_rule_does() {
    testns::skip_unless_root!();
    let w = world("dtable");
    w.client.ip("route add default via 192.0.2.1 table 100");
    w.client.ip("-6 route add default via 2001:db8::1 table 100");
    let state = fresh(&w.client);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(level(&state, family), Level::Site, "{family}");
        assert_eq!(reason(&state, family), Reason::NoRoute);
        agrees(&w.client, &state, family);
        assert!(!w.connects(family), "{family}: the kernel has no route, so no connection");
    }
    let (monitor, sub) = watch(&w.client);
    w.client.ip("rule add lookup 100 pref 100");
    w.client.ip("-6 rule add lookup 100 pref 100");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
    let state = monitor.snapshot();
    for family in [Family::Ipv4, Family::Ipv6] {
        let Reason::RoutedOut { route } = reason(&state, family) else { panic!("{:?}", state.reasons) };
        assert_eq!((route.table, route.interface.as_str()), (100, "va"));
        agrees(&w.client, &state, family);
        assert!(w.connects(family), "{family}");
    }
}

#[test]
fn an_unreachable_rule_takes_the_family_offline_and_back() {
    testns::skip_unless_root!();
    let w = world("urule");
    w.client.ip("route add default via 192.0.2.1");
    w.client.ip("-6 route add default via 2001:db8::1");
    let (monitor, sub) = watch(&w.client);
    assert_eq!(monitor.snapshot().reachability.overall, Level::Online);
    w.client.ip("rule add unreachable pref 50");
    let (e, _) = expect(&sub, "ipv4 site", |k| {
        matches!(k, EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv4, new: Level::Site, .. })
    });
    let EventKind::ReachabilityChanged { reason, .. } = e.kind else { unreachable!() };
    assert_eq!(reason, Some(Reason::NoRoute), "the event carries the reason");
    assert!(!w.connects(Family::Ipv4));
    w.client.ip("-6 rule add unreachable pref 50");
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Site);
    assert!(!w.connects(Family::Ipv6));
    let state = monitor.snapshot();
    agrees(&w.client, &state, Family::Ipv4);
    agrees(&w.client, &state, Family::Ipv6);
    w.client.ip("rule del pref 50");
    w.client.ip("-6 rule del pref 50");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
    assert!(w.connects(Family::Ipv4) && w.connects(Family::Ipv6));
}

#[test]
fn reject_routes_in_front_of_a_default_reject_and_behind_it_do_not() {
    testns::skip_unless_root!();
    let w = world("reject");
    w.client.ip("route add default via 192.0.2.1 metric 10");
    w.client.ip("-6 route add default via 2001:db8::1 metric 10");
    let (monitor, sub) = watch(&w.client);
    // Behind the real default: the kernel never gets to them.
    w.client.ip("route add prohibit default metric 100");
    w.client.ip("-6 route add unreachable default metric 100");
    let state = fresh(&w.client);
    assert_eq!((level(&state, Family::Ipv4), level(&state, Family::Ipv6)), (Level::Online, Level::Online));
    assert!(w.connects(Family::Ipv4) && w.connects(Family::Ipv6));
    // In front (a VPN kill switch): rejected, with the kind.
    for (family, add, reject) in [
        (Family::Ipv4, "route add blackhole default metric 1", Reject::Blackhole),
        (Family::Ipv6, "-6 route add prohibit default metric 1", Reject::Prohibit),
    ] {
        w.client.ip(add);
        let of = if family == Family::Ipv4 { ReachabilityOf::Ipv4 } else { ReachabilityOf::Ipv6 };
        expect_level(&sub, of, Level::Site);
        let state = monitor.snapshot();
        assert_eq!(reason(&state, family), Reason::Rejected { reject }, "{family}");
        agrees(&w.client, &state, family);
        assert!(!w.connects(family), "{family}");
    }
    // The OpenVPN-style half of the space rejected: not online either (160.0.0.1 is in it).
    w.client.ip("route del blackhole default metric 1");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    w.client.ip("route add unreachable 128.0.0.0/1");
    let (e, _) = expect(&sub, "ipv4 rejected", |k| {
        matches!(k, EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv4, .. })
    });
    let EventKind::ReachabilityChanged { reason, new, .. } = e.kind else { unreachable!() };
    assert_eq!((new, reason), (Level::Site, Some(Reason::Rejected { reject: Reject::Unreachable })));
}

#[test]
fn nexthop_objects_replace_delete_and_groups_are_followed() {
    testns::skip_unless_root!();
    let w = world("nhobj");
    w.client.ip("nexthop add id 1 via 192.0.2.1 dev va");
    w.client.ip("nexthop add id 2 via 198.51.100.1 dev wa");
    w.client.ip("route add default nhid 1");
    let (monitor, sub) = watch(&w.client);
    assert_eq!(via(&reason(&monitor.snapshot(), Family::Ipv4)), Some("va"));
    // Replacing the nexthop moves the route to wa with no route message at all.
    w.client.ip("nexthop replace id 1 via 198.51.100.1 dev wa");
    let (e, _) = expect(&sub, "reason via wa", |k| matches!(k, EventKind::ReasonChanged { .. }));
    let EventKind::ReasonChanged { after: Some(after), .. } = e.kind else { panic!("{e:?}") };
    assert_eq!(via(&after), Some("wa"));
    agrees(&w.client, &monitor.snapshot(), Family::Ipv4);
    assert!(w.connects(Family::Ipv4));
    // Deleting it removes the route silently: the live state must follow.
    w.client.ip("nexthop del id 1");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    assert_eq!(reason(&monitor.snapshot(), Family::Ipv4), Reason::NoRoute);
    assert!(!w.connects(Family::Ipv4));
    // A group: losing one member keeps it online through the other; losing both does not.
    w.client.ip("nexthop add id 3 via 192.0.2.1 dev va");
    w.client.ip("nexthop add id 10 group 2/3");
    w.client.ip("route add default nhid 10");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    w.client.ip("nexthop del id 3");
    let state = fresh(&w.client);
    assert_eq!((level(&state, Family::Ipv4), via(&reason(&state, Family::Ipv4))), (Level::Online, Some("wa")));
    w.client.ip("nexthop del id 2");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    let live = monitor.snapshot();
    let now = fresh(&w.client);
    assert_eq!((&live.reachability, &live.reasons), (&now.reachability, &now.reasons), "live equals fresh");
}

#[test]
fn the_better_default_losing_carrier_is_site_until_linkdown_routes_are_ignored() {
    testns::skip_unless_root!();
    let w = world("lnkdn");
    w.client.ip("route add default via 192.0.2.1 dev va metric 100");
    w.client.ip("route add default via 198.51.100.1 dev wa metric 200");
    w.client.ip("-6 route add default via 2001:db8::1 dev va metric 100");
    w.client.ip("-6 route add default via 2001:db8:2::1 dev wa metric 200");
    let (monitor, sub) = watch(&w.client);
    w.inet.ip("link set vb down"); // the far end: va loses carrier, its routes stay
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Site);
    let state = monitor.snapshot();
    for family in [Family::Ipv4, Family::Ipv6] {
        let why = reason(&state, family);
        let Reason::NoCarrier { route, fallback: Some(fallback) } = &why else { panic!("{family}: {why:?}") };
        assert_eq!((route.interface.as_str(), fallback.interface.as_str(), fallback.metric), ("va", "wa", 200));
        let text = why.to_string();
        let knob = format!("net.{family}.conf.va.ignore_routes_with_linkdown=1");
        assert!(text.contains("which has no carrier") && text.contains(&knob), "{text}");
        agrees(&w.client, &state, family);
    }
    assert!(!w.connects(Family::Ipv4), "the kernel keeps using the dead link");
    for family in ["ipv4", "ipv6"] {
        let out = w
            .client
            .command("sysctl")
            .args(["-qw", &format!("net.{family}.conf.va.ignore_routes_with_linkdown=1")])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    testns::wait_until(EVENT_TIMEOUT, "ipv6 online through wa", || {
        level(&monitor.snapshot(), Family::Ipv6) == Level::Online
    });
    let state = monitor.snapshot();
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(via(&reason(&state, family)), Some("wa"), "{family}");
        agrees(&w.client, &state, family);
        assert!(w.connects(family), "{family}");
    }
}

#[test]
fn an_address_on_lo_with_an_unnumbered_uplink_is_online() {
    testns::skip_unless_root!();
    let w = world("unnum");
    w.client.ip("addr flush dev va");
    w.client.ip("addr add 203.0.113.5/32 dev lo");
    w.client.ip("route add default via 192.0.2.1 dev va onlink");
    w.inet.ip("route add 203.0.113.5/32 dev vb");
    let state = fresh(&w.client);
    let Reason::RoutedOut { route } = reason(&state, Family::Ipv4) else { panic!("{:?}", state.reasons) };
    assert_eq!(route.source, Some("203.0.113.5".parse::<IpAddr>().unwrap()), "the source lives on lo");
    assert_eq!(level(&state, Family::Ipv4), Level::Online);
    agrees(&w.client, &state, Family::Ipv4);
    assert!(w.connects(Family::Ipv4));
}

#[test]
fn a_delegated_prefix_on_a_lan_bridge_with_a_link_local_wan_is_online() {
    testns::skip_unless_root!();
    let w = world("cpe");
    w.client.ip("addr flush dev va");
    w.client.ip("addr flush dev wa");
    w.client.ip("addr add fe80::2/64 dev va nodad");
    w.inet.ip("addr add fe80::1/64 dev vb nodad");
    w.client.ip("link add br0 type bridge");
    w.client.ip("link add lan0 type veth peer name lan1");
    w.client.ip("link set lan0 master br0");
    for link in ["br0", "lan0", "lan1"] {
        w.client.ip(&format!("link set {link} up"));
    }
    w.client.ip("addr add 2001:db8:1::1/64 dev br0 nodad");
    w.client.ip("-6 route add default via fe80::1 dev va");
    w.inet.ip("-6 route add 2001:db8:1::/64 via fe80::2 dev vb");
    let state = fresh(&w.client);
    let Reason::RoutedOut { route } = reason(&state, Family::Ipv6) else { panic!("{:?}", state.reasons) };
    assert_eq!(route.source, Some("2001:db8:1::1".parse::<IpAddr>().unwrap()), "the source lives on br0");
    assert_eq!((level(&state, Family::Ipv6), route.interface.as_str()), (Level::Online, "va"));
    agrees(&w.client, &state, Family::Ipv6);
    assert!(w.connects(Family::Ipv6));
}

#[test]
fn a_default_whose_lifetime_runs_out_is_expired_at_once() {
    testns::skip_unless_root!();
    let w = world("expiry");
    let (monitor, sub) = watch(&w.client);
    w.client.ip("-6 route add default via 2001:db8::1 dev va expires 2");
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
    let (e, _) = expect(&sub, "ipv6 expired", |k| {
        matches!(k, EventKind::ReachabilityChanged { family: ReachabilityOf::Ipv6, new: Level::Site, .. })
    });
    let EventKind::ReachabilityChanged { reason: Some(Reason::Expired { route }), .. } = e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(route.interface, "va");
    // The kernel's garbage collection has not removed it yet; its lookups already skip it.
    assert!(w.client.ip("-6 route show default").contains("2001:db8::1"), "still in the table");
    assert!(route_get(&w.client, V6[0]).is_err());
    assert!(!w.connects(Family::Ipv6));
    assert_eq!(level(&monitor.snapshot(), Family::Ipv6), Level::Site);
}

#[test]
fn openvpn_style_split_defaults_count_only_when_both_halves_lead_out() {
    testns::skip_unless_root!();
    let w = world("split");
    let (monitor, sub) = watch(&w.client);
    w.client.ip("route add 0.0.0.0/1 via 198.51.100.1 dev wa");
    let state = fresh(&w.client);
    assert_eq!(level(&state, Family::Ipv4), Level::Site, "half the internet is not the internet");
    w.client.ip("route add 128.0.0.0/1 via 198.51.100.1 dev wa");
    w.client.ip("-6 route add 2000::/3 via 2001:db8:2::1 dev wa");
    expect_level(&sub, ReachabilityOf::Ipv4, Level::Online);
    expect_level(&sub, ReachabilityOf::Ipv6, Level::Online);
    let state = monitor.snapshot();
    let Reason::RoutedOut { route } = reason(&state, Family::Ipv4) else { panic!() };
    assert_eq!((route.prefix_len, route.interface.as_str()), (1, "wa"));
    let Reason::RoutedOut { route } = reason(&state, Family::Ipv6) else { panic!() };
    assert_eq!(route.prefix(), "2000::/3");
    agrees(&w.client, &state, Family::Ipv4);
    agrees(&w.client, &state, Family::Ipv6);
    assert!(w.connects(Family::Ipv4) && w.connects(Family::Ipv6));
}

/// A tun device held open (so it has carrier), as a VPN client holds its own.
struct Tun(#[allow(dead_code)] std::fs::File);

fn tun(ns: &NetNs, name: &str) -> Tun {
    ns.run_inside(|| {
        let file = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").expect("open tun");
        // struct ifreq: the name, then the flags (IFF_TUN | IFF_NO_PI).
        let mut request = [0u8; 40];
        request[..name.len()].copy_from_slice(name.as_bytes());
        let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as u16;
        request[16..18].copy_from_slice(&flags.to_ne_bytes());
        use std::os::fd::AsRawFd;
        // SAFETY: TUNSETIFF reads a struct ifreq (40 bytes) from a buffer we own, on a descriptor we own.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, request.as_mut_ptr()) };
        assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        Tun(file)
    })
}

#[test]
fn wg_quick_and_tailscale_style_policy_routing_is_followed_and_the_transport_is_vpn() {
    testns::skip_unless_root!();
    let w = world("wgq");
    w.client.ip("route add default via 192.0.2.1");
    let _vpn = tun(&w.client, "wg0");
    w.client.ip("link set wg0 up");
    w.client.ip("addr add 198.18.0.2/32 dev wg0");
    w.client.ip("route add default dev wg0 table 51820");
    let (monitor, sub) = watch(&w.client);
    assert_eq!(monitor.snapshot().details.transport, Some(Transport::Ethernet));
    // wg-quick: everything without the tunnel's own mark goes to its table.
    w.client.ip("rule add not fwmark 51820 table 51820 pref 32000");
    w.client.ip("rule add table main suppress_prefixlength 0 pref 31999");
    let (e, _) = expect(&sub, "transport vpn", |k| matches!(k, EventKind::DetailsChanged { .. }));
    let EventKind::DetailsChanged { after, .. } = e.kind else { unreachable!() };
    assert_eq!(after.transport, Some(Transport::Vpn));
    let state = monitor.snapshot();
    let Reason::RoutedOut { route } = reason(&state, Family::Ipv4) else { panic!("{:?}", state.reasons) };
    assert_eq!((route.interface.as_str(), route.table), ("wg0", 51820));
    agrees(&w.client, &state, Family::Ipv4);
    // Taken down: back to the uplink.
    w.client.ip("rule del pref 32000");
    w.client.ip("rule del pref 31999");
    let (e, _) = expect(&sub, "transport ethernet", |k| matches!(k, EventKind::DetailsChanged { .. }));
    let EventKind::DetailsChanged { after, .. } = e.kind else { unreachable!() };
    assert_eq!(after.transport, Some(Transport::Ethernet));
    // tailscale: table 52, selected by a plain rule.
    w.client.ip("route add default dev wg0 table 52");
    w.client.ip("rule add pref 5270 table 52");
    let (e, _) = expect(&sub, "transport vpn again", |k| matches!(k, EventKind::DetailsChanged { .. }));
    let EventKind::DetailsChanged { after, .. } = e.kind else { unreachable!() };
    assert_eq!(after.transport, Some(Transport::Vpn));
    let state = monitor.snapshot();
    assert_eq!(via(&reason(&state, Family::Ipv4)), Some("wg0"));
    agrees(&w.client, &state, Family::Ipv4);
}
