//! The two-uplink world of the route-decision tests (`decision.rs`, `ecmp.rs`) and the
//! ground truth they compare the library with: `ip route get` (plain and `fibmatch`), `ip
//! link` and real TCP connects.
#![allow(dead_code)] // each test file uses its own subset

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use netreach::{Family, Level, Monitor, Reason, Snapshot};
use testns::NetNs;

/// The destinations the library looks up (`sys/linux/decision.rs`).
pub const V4: [&str; 2] = ["64.0.0.1", "160.0.0.1"];
pub const V6: [&str; 1] = ["2800::1"];

/// A client namespace with two uplinks into an "internet" namespace:
/// `va` 192.0.2.10/24 + 2001:db8::10/64 (peer `vb`: .1, ::1) and `wa` 198.51.100.10/24 +
/// 2001:db8:2::10/64 (peer `wb`: .1, ::1); listeners on the internet's loopback addresses.
pub struct World {
    pub client: NetNs,
    pub inet: NetNs,
    pub listeners: Vec<TcpListener>,
}

pub fn world(tag: &str) -> World {
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
    pub fn connects(&self, family: Family) -> bool {
        let to: SocketAddr = self.listeners[usize::from(family == Family::Ipv6)].local_addr().unwrap();
        self.client.run_inside(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())
    }
}

/// `ip route get DEST` in `ns`: the device, or the kernel's error text.
pub fn route_get(ns: &NetNs, destination: &str) -> Result<String, String> {
    let out = ns.try_ip(&format!("-j route get {destination}"))?;
    let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| e.to_string())?;
    Ok(v[0]["dev"].as_str().unwrap_or_default().to_owned())
}

/// The reason of a family in a fresh monitor's reading.
pub fn fresh(ns: &NetNs) -> Snapshot {
    (*Monitor::builder().netns(ns.name()).build().expect("monitor").snapshot()).clone()
}

pub fn reason(state: &Snapshot, family: Family) -> Reason {
    state.reasons.family(family).cloned().expect("a reason")
}

pub fn level(state: &Snapshot, family: Family) -> Level {
    state.reachability.family(family).reachability
}

/// The interface a `RoutedOut`/`NoCarrier`/... reason names.
pub fn via(reason: &Reason) -> Option<&str> {
    match reason {
        Reason::RoutedOut { route }
        | Reason::PartlyNoCarrier { route, .. }
        | Reason::NoCarrier { route, .. }
        | Reason::InterfaceDown { route }
        | Reason::NoSource { route } => Some(route.interface.as_str()),
        _ => None,
    }
}

/// The library agrees with `ip route get` for every representative destination of `family`:
/// online exactly when every one leads out through the interface the reason names.
pub fn agrees(ns: &NetNs, state: &Snapshot, family: Family) {
    let destinations: &[&str] = if family == Family::Ipv4 { &V4 } else { &V6 };
    let answers: Vec<Result<String, String>> = destinations.iter().map(|d| route_get(ns, d)).collect();
    let why = reason(state, family);
    match &why {
        Reason::RoutedOut { route } if route.nexthops.len() > 1 => {
            // Multipath: every destination leads out through one of the members, whichever
            // it hashed to; the reason names a member, not the one a destination hashed to.
            let member = |dev: &str| route.nexthops.iter().any(|h| h.interface == dev);
            assert!(answers.iter().all(|a| a.as_deref().is_ok_and(member)), "{why:?} vs {answers:?}");
            assert!(member(&route.interface), "{why:?}");
        }
        Reason::RoutedOut { route } => {
            // Every destination leads out; the reason names the first one's interface.
            assert!(answers.iter().all(Result::is_ok), "{why:?} vs {answers:?}");
            assert_eq!(answers[0].as_deref(), Ok(route.interface.as_str()), "{why:?} vs {answers:?}");
        }
        Reason::PartlyNoCarrier { without_carrier, .. } => {
            // Every destination leads out, and the members named are the ones the kernel's
            // matched entry still uses through a link without carrier.
            assert!(answers.iter().all(Result::is_ok), "{why:?} vs {answers:?}");
            let mut named = without_carrier.clone();
            named.sort();
            assert_eq!(named, dark_members(ns, destinations[0]), "{why:?}");
        }
        Reason::NoRoute => assert!(answers.iter().any(|a| a.as_ref().is_err_and(|e| e.contains("unreachable")))),
        Reason::Rejected { .. } => assert!(answers.iter().any(Result::is_err), "{why:?} vs {answers:?}"),
        Reason::NoCarrier { route, .. } if route.nexthops.len() > 1 => {
            // Multipath, every member without carrier: the kernel still sends each destination
            // through one of them; the reason names one, not the one a destination hashed to.
            let member = |dev: &str| route.nexthops.iter().any(|h| h.interface == dev);
            assert!(answers.iter().all(|a| a.as_deref().is_ok_and(member)), "{why:?} vs {answers:?}");
            assert!(member(&route.interface), "{why:?}");
        }
        other => {
            let dev = via(other).expect("a reason naming the route");
            assert!(answers.iter().any(|a| a.as_deref() == Ok(dev)), "{why:?} vs {answers:?}");
        }
    }
    let out = matches!(why, Reason::RoutedOut { .. } | Reason::PartlyNoCarrier { .. });
    assert_eq!(level(state, family) == Level::Online, out, "{why:?}");
}

/// The members of the route entry the kernel matches for `destination` (`ip -j route get
/// fibmatch`) that it still uses (not `dead`) although their link has no carrier (flagged
/// `linkdown`, or the device lacks `LOWER_UP`), sorted.
pub fn dark_members(ns: &NetNs, destination: &str) -> Vec<String> {
    let out = ns.try_ip(&format!("-j route get fibmatch {destination}")).expect("ip route get fibmatch");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    let flagged =
        |hop: &serde_json::Value, flag: &str| hop["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == flag));
    let mut dark: Vec<String> = v[0]["nexthops"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|hop| !flagged(hop, "dead"))
        .filter_map(|hop| hop["dev"].as_str())
        .filter(|dev| {
            !lower_up(ns, dev)
                || v[0]["nexthops"].as_array().unwrap().iter().any(|h| h["dev"] == *dev && flagged(h, "linkdown"))
        })
        .map(str::to_owned)
        .collect();
    dark.sort();
    dark.dedup();
    dark
}

/// Whether `dev` in `ns` has carrier (`LOWER_UP`), as the kernel says.
pub fn lower_up(ns: &NetNs, dev: &str) -> bool {
    let out = ns.try_ip(&format!("-j link show dev {dev}")).expect("ip link show");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j");
    v[0]["flags"].as_array().is_some_and(|f| f.iter().any(|f| f == "LOWER_UP"))
}

/// Waits until no IPv6 address in `ns` is tentative: a link brought up gets a link-local
/// address that runs DAD (about a second), and until then neighbour discovery on the link,
/// hence an IPv6 connection through it, stalls.
pub fn dad_done(ns: &NetNs) {
    testns::wait_until(Duration::from_secs(10), &format!("DAD done in {}", ns.name()), || {
        ns.try_ip("-6 addr show tentative").is_ok_and(|out| out.trim().is_empty())
    });
}
