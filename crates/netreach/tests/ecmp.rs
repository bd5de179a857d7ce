//! Multipath (ECMP) defaults whose members lose and regain carrier, against the real kernel
//! in namespaces each test creates (the world of `decision.rs`). The kernel hashes each flow
//! onto a member, also onto one whose link lost carrier unless `ignore_routes_with_linkdown`
//! is set (inside the test namespace only), with a hash seed of its own per namespace: the
//! answer must not depend on which member the representative destinations hash to. Ground
//! truth: `ip route get` (plain and `fibmatch`), `ip link`, and real TCP connects to many
//! destinations, which the kernel spreads over the members.
#![cfg(target_os = "linux")] // network namespaces

mod common;
mod world;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::Duration;

use common::*;
use netreach::{Family, Level, Monitor, Reason, Snapshot};
use socket2::{Domain, Socket, Type};
use testns::NetNs;
use world::*;

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
            // One far end without carrier, the other with: whichever member the destinations
            // hash to, the reason names the dead one (both near ends up: no member is dead).
            let (va, wa) = (lower_up(&w.client, "va"), lower_up(&w.client, "wa"));
            if va != wa && carrier(&w.client, "va") && carrier(&w.client, "wa") {
                let dark = if va { "wa" } else { "va" };
                let why = reason(&state, family);
                let named =
                    matches!(&why, Reason::PartlyNoCarrier { without_carrier, .. } if without_carrier == &[dark]);
                assert!(named, "{family} after `{step}`: {why:?}");
            }
            if level(&state, family) == Level::Online {
                // The kernel hashes each flow onto a member, also onto one whose link lost
                // carrier (unless linkdown routes are ignored), with a seed of its own per
                // namespace: the connection opens exactly when the kernel sends this flow
                // through a link with carrier.
                dad_done(&w.client);
                dad_done(&w.inet);
                let listener = w.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap();
                let (dev, back, open) = connect_from_the_kernels_source(&w.client, listener);
                let expected = lower_up(&w.client, &dev) && lower_up(&w.client, &back);
                assert_eq!(open, expected, "{family} after `{step}` out through {dev}, back through {back}");
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

/// How many destinations of each family the connects spread over: with two members, the
/// chance that all hash onto one is 2^-15.
const SPREAD: u8 = 16;

/// `SPREAD` addresses per family on the internet's loopback (203.0.113.1-16,
/// 2001:db8:ffff::1-16) and one dual-stack listener for all of them.
fn spread(w: &World) -> (Vec<IpAddr>, TcpListener) {
    let mut targets = Vec::new();
    for n in 2..=SPREAD {
        w.inet.ip(&format!("addr add 203.0.113.{n}/32 dev lo"));
        w.inet.ip(&format!("addr add 2001:db8:ffff::{n:x}/128 dev lo nodad"));
    }
    for n in 1..=SPREAD {
        targets.push(IpAddr::from([203, 0, 113, n]));
        targets.push(IpAddr::from([0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, u16::from(n)]));
    }
    let listener = w.inet.run_inside(|| TcpListener::bind("[::]:0").expect("listen"));
    (targets, listener)
}

/// A TCP connect to `to` from the source the kernel chooses for it (`ip route get`), bound
/// before connecting: the device the kernel sends it through (`ip route get ... from ...
/// ipproto tcp`), the device that owns the source (the answer comes back through it: the
/// internet routes each client subnet over its own link), and whether it opened. Why so: the
/// multipath hash includes the source (an unbound connect may pick another source than `ip
/// route get` shows) and, for IPv6, the protocol, so a plain `ip route get` may name another
/// member than the connection's.
fn connect_from_the_kernels_source(ns: &NetNs, to: SocketAddr) -> (String, String, bool) {
    let get = |args: String| -> serde_json::Value {
        let out = ns.try_ip(&format!("-j route get {args}")).expect("ip route get");
        serde_json::from_str::<serde_json::Value>(&out).expect("ip -j")[0].clone()
    };
    let source: IpAddr = get(to.ip().to_string())["prefsrc"].as_str().expect("a source").parse().unwrap();
    let dev = get(format!("{} from {source} ipproto tcp", to.ip()))["dev"].as_str().expect("a device").to_owned();
    let owner = ns.try_ip(&format!("-j addr show to {source}")).expect("ip addr show");
    let back = serde_json::from_str::<serde_json::Value>(&owner).expect("ip -j")[0]["ifname"]
        .as_str()
        .expect("the source's device")
        .to_owned();
    let open = ns.run_inside(|| {
        let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).expect("socket");
        socket.bind(&SocketAddr::new(source, 0).into()).expect("bind");
        socket.connect_timeout(&to.into(), Duration::from_millis(400)).is_ok()
    });
    (dev, back, open)
}

/// For every target of `family`: whether a TCP connect opens, and whether the links it leaves
/// and comes back through have carrier ([`connect_from_the_kernels_source`]). They must agree
/// target by target; returns how many opened and how many did not.
fn connects_where_the_kernel_sends(w: &World, targets: &[IpAddr], port: u16, family: Family) -> (usize, usize) {
    dad_done(&w.client);
    dad_done(&w.inet);
    let (mut opened, mut timed_out) = (0, 0);
    for target in targets.iter().filter(|t| t.is_ipv4() == (family == Family::Ipv4)) {
        let (dev, back, open) = connect_from_the_kernels_source(&w.client, SocketAddr::new(*target, port));
        let expected = lower_up(&w.client, &dev) && lower_up(&w.client, &back);
        assert_eq!(open, expected, "{target} out through {dev}, back through {back}");
        if open {
            opened += 1;
        } else {
            timed_out += 1;
        }
    }
    (opened, timed_out)
}

/// After `step`: waits until the live monitor equals a fresh reading and both families' live
/// reasons satisfy `want`; returns the live snapshot.
fn settle(w: &World, monitor: &Monitor, step: &str, want: impl Fn(Family, &Reason) -> bool) -> Snapshot {
    let mut last = None;
    let settled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        testns::wait_until(EVENT_TIMEOUT, &format!("the expected reasons after `{step}`"), || {
            let (live, now) = (monitor.snapshot(), fresh(&w.client));
            let same = live.reachability == now.reachability && live.reasons == now.reasons;
            let wanted = [Family::Ipv4, Family::Ipv6].into_iter().all(|f| want(f, &reason(&live, f)));
            last = Some((live.reasons.clone(), now.reasons.clone()));
            same && wanted
        })
    }));
    assert!(settled.is_ok(), "live vs fresh after `{step}`: {last:#?}");
    (*monitor.snapshot()).clone()
}

/// After a far end came back: the connects through it while it was gone left its gateway's
/// neighbour entry `failed`, which stays so until traffic or `check()` makes the kernel
/// resolve it again (README, gateway liveness). Re-verified once DAD is done (an IPv6
/// gateway is not asked before).
fn reverify(w: &World, monitor: &Monitor) {
    dad_done(&w.client);
    dad_done(&w.inet);
    monitor.check().expect("check");
}

fn partly(dark: &'static str, lit: &'static str) -> impl Fn(Family, &Reason) -> bool {
    move |_, why| {
        matches!(why, Reason::PartlyNoCarrier { route, without_carrier }
            if without_carrier == &[dark] && route.interface == lit)
    }
}

fn routed_out(_: Family, why: &Reason) -> bool {
    matches!(why, Reason::RoutedOut { .. })
}

#[test]
fn an_ecmp_member_without_carrier_is_online_partly_and_named_whatever_the_hash() {
    testns::skip_unless_root!();
    let w = world("ecmpp");
    // The far ends keep their IPv6 addresses (the gateways) across going down and up.
    let keep = w.inet.command("sysctl").args(["-qw", "net.ipv6.conf.all.keep_addr_on_down=1"]).output();
    assert!(keep.expect("sysctl").status.success());
    let (targets, listener) = spread(&w);
    let port = listener.local_addr().unwrap().port();
    w.client.ip("route add default nexthop via 192.0.2.1 dev va nexthop via 198.51.100.1 dev wa");
    w.client.ip("-6 route add default nexthop via 2001:db8::1 dev va nexthop via 2001:db8:2::1 dev wa");
    let (monitor, _sub) = watch(&w.client);
    settle(&w, &monitor, "start", routed_out);

    // wa's far end goes: some flows still leave through wa and time out, the others get out.
    w.inet.ip("link set wb down");
    let state = settle(&w, &monitor, "link set wb down", partly("wa", "va"));
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(level(&state, family), Level::Online, "{family}");
        agrees(&w.client, &state, family);
        let text = reason(&state, family).to_string();
        let knob = format!("set net.{family}.conf.wa.ignore_routes_with_linkdown=1 to fail over");
        // The members in the kernel's order (IPv6 keeps its own).
        let over =
            ["spreads flows over va and wa; wa has no carrier", "spreads flows over wa and va; wa has no carrier"];
        assert!(over.iter().any(|o| text.contains(o)) && text.contains(&knob), "{text}");
        let (opened, timed_out) = connects_where_the_kernel_sends(&w, &targets, port, family);
        assert!(opened > 0 && timed_out > 0, "{family}: {opened} opened, {timed_out} timed out");
    }

    // Back, then the other member's far end goes, then both.
    w.inet.ip("link set wb up");
    reverify(&w, &monitor);
    settle(&w, &monitor, "link set wb up", routed_out);
    w.inet.ip("link set vb down");
    let state = settle(&w, &monitor, "link set vb down", partly("va", "wa"));
    for family in [Family::Ipv4, Family::Ipv6] {
        agrees(&w.client, &state, family);
    }
    w.inet.ip("link set wb down");
    let state = settle(&w, &monitor, "both far ends down", |_, why| matches!(why, Reason::NoCarrier { .. }));
    for family in [Family::Ipv4, Family::Ipv6] {
        assert!(level(&state, family) < Level::Online, "{family}");
        agrees(&w.client, &state, family);
        assert!(!w.connects(family), "{family}");
    }

    // wa's far end back, va's still gone; then both back.
    w.inet.ip("link set wb up");
    reverify(&w, &monitor);
    settle(&w, &monitor, "link set wb up again", partly("va", "wa"));
    w.inet.ip("link set vb up");
    reverify(&w, &monitor);
    settle(&w, &monitor, "link set vb up", routed_out);
    // The kernel told to skip va's member once it has no carrier (set before the loss: IPv4
    // applies it when a link changes), then va's far end goes: the member is dead in the
    // kernel's entry, every flow leaves through wa, plainly routed out.
    for family in ["ipv4", "ipv6"] {
        let knob = format!("net.{family}.conf.va.ignore_routes_with_linkdown=1");
        let out = w.client.command("sysctl").args(["-qw", &knob]).output().expect("sysctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    w.inet.ip("link set vb down");
    let state = settle(
        &w,
        &monitor,
        "link set vb down, linkdown routes ignored on va",
        |_, why| matches!(why, Reason::RoutedOut { route } if route.interface == "wa"),
    );
    for family in [Family::Ipv4, Family::Ipv6] {
        agrees(&w.client, &state, family);
        assert!(dark_members(&w.client, if family == Family::Ipv4 { V4[0] } else { V6[0] }).is_empty());
        let (opened, timed_out) = connects_where_the_kernel_sends(&w, &targets, port, family);
        assert_eq!((opened, timed_out), (usize::from(SPREAD), 0), "{family}");
    }
}

/// A default through a nexthop group: the reply lists the group's members (the kernel expands
/// it while `nexthop_compat_mode` is on, the default), and a member whose link loses carrier
/// is deleted by the kernel itself (nexthop objects do not outlive their carrier), so the
/// group never keeps a member without carrier: plainly routed out through the other.
#[test]
fn a_nexthop_group_drops_a_member_without_carrier_itself() {
    testns::skip_unless_root!();
    let w = world("ecmpg");
    w.client.ip("nexthop add id 1 via 192.0.2.1 dev va");
    w.client.ip("nexthop add id 2 via 198.51.100.1 dev wa");
    w.client.ip("nexthop add id 10 group 1/2");
    w.client.ip("route add default nhid 10");
    let (monitor, _sub) = watch(&w.client);
    let state = settle(&w, &monitor, "start", |family, why| match (family, why) {
        (Family::Ipv4, Reason::RoutedOut { route }) => {
            let mut members: Vec<&str> = route.nexthops.iter().map(|h| h.interface.as_str()).collect();
            members.sort();
            members == ["va", "wa"]
        }
        (Family::Ipv4, _) => false,
        _ => true,
    });
    agrees(&w.client, &state, Family::Ipv4);
    w.inet.ip("link set wb down");
    let state = settle(&w, &monitor, "link set wb down", |family, why| {
        family == Family::Ipv6 || matches!(why, Reason::RoutedOut { route } if route.interface == "va")
    });
    assert!(w.client.try_ip("nexthop show id 2").is_err(), "the kernel deleted wa's nexthop");
    agrees(&w.client, &state, Family::Ipv4);
    assert!(w.connects(Family::Ipv4));
}
