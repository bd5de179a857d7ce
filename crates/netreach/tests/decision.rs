//! The kernel level from the kernel's own route decision (issue 12, items 1-4), against the
//! real kernel in namespaces each test creates. Ground truth: `ip route get` for the same
//! destinations the library looks up (no packet is sent to them), and a real TCP connect from
//! the client namespace to a listener in a second namespace that plays "the internet"
//! (203.0.113.1 and 2001:db8:ffff::1 on its loopback, reached only through the client's
//! routes).
#![cfg(target_os = "linux")] // network namespaces

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use netreach::{EventKind, Family, Level, Monitor, ReachabilityOf, Reason, Reject, Snapshot, Transport};
use testns::NetNs;

/// The destinations the library looks up (`sys/linux/decision.rs`).
const V4: [&str; 2] = ["64.0.0.1", "160.0.0.1"];
const V6: [&str; 1] = ["2800::1"];

/// A client namespace with two uplinks into an "internet" namespace:
/// `va` 192.0.2.10/24 + 2001:db8::10/64 (peer `vb`: .1, ::1) and `wa` 198.51.100.10/24 +
/// 2001:db8:2::10/64 (peer `wb`: .1, ::1); listeners on the internet's loopback addresses.
struct World {
    client: NetNs,
    inet: NetNs,
    listeners: Vec<TcpListener>,
}

fn world(tag: &str) -> World {
    let client = NetNs::new(tag);
    let inet = NetNs::new(&format!("{tag}i"));
    for (a, b) in [("va", "vb"), ("wa", "wb")] {
        client.veth(a, b);
        client.move_link(b, &inet);
        inet.ip(&format!("link set {b} up"));
    }
    client.ip("addr add 192.0.2.10/24 dev va");
    client.ip("addr add 2001:db8::10/64 dev va nodad");
    client.ip("addr add 198.51.100.10/24 dev wa");
    client.ip("addr add 2001:db8:2::10/64 dev wa nodad");
    inet.ip("addr add 192.0.2.1/24 dev vb");
    inet.ip("addr add 2001:db8::1/64 dev vb nodad");
    inet.ip("addr add 198.51.100.1/24 dev wb");
    inet.ip("addr add 2001:db8:2::1/64 dev wb nodad");
    inet.ip("addr add 203.0.113.1/32 dev lo");
    inet.ip("addr add 2001:db8:ffff::1/128 dev lo nodad");
    let listeners = inet.run_inside(|| {
        ["203.0.113.1:0", "[2001:db8:ffff::1]:0"].iter().map(|a| TcpListener::bind(a).expect("listen")).collect()
    });
    World { client, inet, listeners }
}

impl World {
    /// Whether a TCP connection from the client to the internet's listener of `family` opens.
    fn connects(&self, family: Family) -> bool {
        let to: SocketAddr = self.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap();
        self.client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())
    }
}

/// `ip route get DEST` in `ns`: the device, or the kernel's error text.
fn route_get(ns: &NetNs, destination: &str) -> Result<String, String> {
    let out = ns.try_ip(&format!("-j route get {destination}"))?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v[0]["dev"].as_str().unwrap_or_default().to_owned())
}

/// The reason of a family in a fresh monitor's reading.
fn fresh(ns: &NetNs) -> Snapshot {
    (*Monitor::builder().netns(ns.name()).build().expect("monitor").snapshot()).clone()
}

fn reason(state: &Snapshot, family: Family) -> Reason {
    state.reasons.family(family).cloned().expect("a reason")
}

fn level(state: &Snapshot, family: Family) -> Level {
    state.reachability.family(family).reachability
}

/// The interface a `RoutedOut`/`NoCarrier`/... reason names.
fn via(reason: &Reason) -> Option<&str> {
    match reason {
        Reason::RoutedOut { route }
        | Reason::NoCarrier { route, .. }
        | Reason::InterfaceDown { route }
        | Reason::NoSource { route } => Some(route.interface.as_str()),
        _ => None,
    }
}

/// The library agrees with `ip route get` for every representative destination of `family`:
/// online exactly when every one leads out through the interface the reason names.
fn agrees(ns: &NetNs, state: &Snapshot, family: Family) {
    let destinations: &[&str] = if family == Family::Ipv4 { &V4 } else { &V6 };
    let answers: Vec<Result<String, String>> = destinations.iter().map(|d| route_get(ns, d)).collect();
    let why = reason(state, family);
    match &why {
        Reason::RoutedOut { route } => {
            // Every destination leads out (multipath may hash them to different members); the
            // reason names the first one's.
            assert!(answers.iter().all(Result::is_ok), "{why:?} vs {answers:?}");
            assert_eq!(answers[0].as_deref(), Ok(route.interface.as_str()), "{why:?} vs {answers:?}");
        }
        Reason::NoRoute => assert!(answers.iter().any(|a| a.as_ref().is_err_and(|e| e.contains("unreachable")))),
        Reason::Rejected { .. } => assert!(answers.iter().any(Result::is_err), "{why:?} vs {answers:?}"),
        other => {
            let dev = via(other).expect("a reason naming the route");
            assert!(answers.iter().any(|a| a.as_deref() == Ok(dev)), "{why:?} vs {answers:?}");
        }
    }
    assert_eq!(level(state, family) == Level::Online, matches!(why, Reason::RoutedOut { .. }), "{why:?}");
}

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
fn ecmp_members_lost_and_restored_while_watched_match_a_fresh_reading() {
    testns::skip_unless_root!();
    let w = world("ecmp");
    w.client.ip("route add default nexthop via 192.0.2.1 dev va nexthop via 198.51.100.1 dev wa");
    w.client.ip("-6 route add default nexthop via 2001:db8::1 dev va nexthop via 2001:db8:2::1 dev wa");
    let (monitor, _sub) = watch(&w.client);
    // Members lost and restored both ways: by the interface going down (its routes and, for
    // IPv6, its addresses go with it) and by the far end losing carrier (the routes stay).
    let steps = [
        (&w.client, "link set va down"),
        (&w.client, "link set va up"),
        (&w.client, "link set wa down"),
        (&w.client, "link set wa up"),
        (&w.inet, "link set vb down"),
        (&w.inet, "link set vb up"),
        (&w.inet, "link set wb down"),
    ];
    for (ns, step) in steps {
        ns.ip(step);
        // The live monitor must come to what a fresh one reads, and both to the kernel's answer.
        let mut last = None;
        let equal = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            testns::wait_until(EVENT_TIMEOUT, &format!("live equals fresh after `{step}`"), || {
                let (live, now) = (monitor.snapshot(), fresh(&w.client));
                let same = live.reachability == now.reachability && live.reasons == now.reasons;
                last = Some((
                    live.reasons.clone(),
                    now.reasons.clone(),
                    live.route_decisions.clone(),
                    now.route_decisions.clone(),
                ));
                same
            })
        }));
        assert!(equal.is_ok(), "live vs fresh after `{step}`: {last:#?}");
        let state = monitor.snapshot();
        for family in [Family::Ipv4, Family::Ipv6] {
            agrees(&w.client, &state, family);
            if level(&state, family) == Level::Online {
                // The kernel hashes each flow onto a member, also onto one whose link lost
                // carrier (unless linkdown routes are ignored), with a seed of its own per
                // namespace: the connection opens exactly when the kernel sends this flow
                // through a link with carrier.
                let listener = w.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap().ip();
                let dev = route_get(&w.client, &listener.to_string()).expect("a route to the listener");
                let far_end = if dev == "va" { "vb" } else { "wb" };
                let expected = carrier(&w.inet, far_end);
                assert_eq!(w.connects(family), expected, "{family} after `{step}` through {dev}");
            }
        }
    }
}

/// Whether `dev` in `ns` is up with carrier (`LOWER_UP`), as the kernel says.
fn carrier(ns: &NetNs, dev: &str) -> bool {
    let out = ns.try_ip(&format!("-j link show dev {dev}")).expect("ip link show");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    v[0]["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "LOWER_UP" || f == "UP"))
        && v[0]["operstate"] != "DOWN"
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
