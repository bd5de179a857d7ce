//! A client behind a router that plays the gateway, for the gateway-liveness tests of the
//! library and of the CLI: the client's uplink `va` (192.0.2.10/24, 2001:db8::10/64, defaults
//! via 192.0.2.1 and 2001:db8::1) runs straight into the router's `vb`, and the router holds
//! 203.0.113.1 and 2001:db8:ffff::1 on its loopback with a listener each. Neighbour timers are
//! shortened inside the client namespace only, so the kernel decides within a second.

use std::net::TcpListener;

use crate::kit::TIMEOUT;
use crate::{wait_until, NetNs};

/// The two namespaces and the listeners behind the gateway (IPv4 first, then IPv6).
pub struct World {
    /// The client namespace (`tag`).
    pub client: NetNs,
    /// The router (`{tag}r`), which holds the gateway addresses while it answers.
    pub router: NetNs,
    /// Listeners on 203.0.113.1 and [2001:db8:ffff::1], behind the gateway.
    pub listeners: Vec<TcpListener>,
}

/// Shortened neighbour timers for `dev` inside `ns`: 2 solicitations 100 ms apart, reachable
/// for 200-600 ms, the first probe of a stale entry after 1 s.
pub fn fast_timers(ns: &NetNs, dev: &str) {
    for family in ["ipv4", "ipv6"] {
        for (key, value) in [
            ("retrans_time_ms", "100"),
            ("mcast_solicit", "2"),
            ("ucast_solicit", "2"),
            ("base_reachable_time_ms", "400"),
            ("delay_first_probe_time", "1"),
        ] {
            let setting = format!("net.{family}.neigh.{dev}.{key}={value}");
            let out = ns.command("sysctl").args(["-qw", &setting]).output().expect("sysctl");
            assert!(out.status.success(), "{setting}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The world (namespaces `tag` and `{tag}r`); `gateway`: whether the router answers on its
/// side from the start. Returns once the client's link-local address has finished duplicate
/// address detection: the kernel sends a re-verification's solicitations from it (and none
/// before).
pub fn world(tag: &str, gateway: bool) -> World {
    let client = NetNs::new(tag);
    let router = NetNs::new(&format!("{tag}r"));
    client.veth("va", "vb");
    client.move_link("vb", &router);
    router.ip("link set vb up");
    fast_timers(&client, "va");
    client.ip("addr add 192.0.2.10/24 dev va");
    client.ip("addr add 2001:db8::10/64 dev va nodad");
    client.ip("route add default via 192.0.2.1");
    client.ip("-6 route add default via 2001:db8::1");
    if gateway {
        answer(&router, true);
    }
    router.ip("addr add 203.0.113.1/32 dev lo");
    router.ip("addr add 2001:db8:ffff::1/128 dev lo nodad");
    let listeners = router.run_inside(|| {
        ["203.0.113.1:0", "[2001:db8:ffff::1]:0"].iter().map(|a| TcpListener::bind(a).expect("listen")).collect()
    });
    wait_until(TIMEOUT, "the client's link-local address", || {
        let text = client.ip("-6 addr show dev va scope link");
        text.contains("fe80::") && !text.contains("tentative")
    });
    World { client, router, listeners }
}

/// The router's gateway addresses on `vb`: added (it answers) or removed (it does not).
pub fn answer(router: &NetNs, yes: bool) {
    let verb = if yes { "add" } else { "del" };
    router.ip(&format!("addr {verb} 192.0.2.1/24 dev vb"));
    router.ip(&format!("addr {verb} 2001:db8::1/64 dev vb nodad"));
}
