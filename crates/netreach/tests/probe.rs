//! The connectivity probe against scripted servers in namespaces the tests create: every bad
//! server behaviour gets its verdict within its time bound, families are judged separately,
//! and the monitor probes on relevant changes, rechecks portals, and stops promptly.
#![cfg(target_os = "linux")] // network namespaces

mod common;

use std::time::{Duration, Instant};

use common::{expect, EVENT_TIMEOUT};
use netreach::probe::{run, Endpoint, Outcome, ProbeConfig};
use netreach::{EventKind, Family, Level, Monitor, Netns, Source};
use testns::http::{client_server, Reply, Server, SERVER_V4, SERVER_V6};
use testns::wait_until;

/// The idle test counts the wake-ups of "the" netreach-probe thread of this process: while it
/// measures, no other test here may run a monitor with a probe (their threads have the same
/// name). Those take this lock shared, the idle test exclusively.
static PROBE_THREADS: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn probe_threads_shared() -> std::sync::RwLockReadGuard<'static, ()> {
    PROBE_THREADS.read().unwrap_or_else(|p| p.into_inner())
}

/// Each probe's bound in these tests; short so the slow cases stay quick.
const BOUND: Duration = Duration::from_secs(1);
/// Scheduling slack on a loaded machine, on top of a bound.
const SLACK: Duration = Duration::from_millis(750);

fn config(endpoints: Vec<Endpoint>) -> ProbeConfig {
    ProbeConfig::new().endpoints(endpoints).total_timeout(BOUND).connect_timeout(BOUND).dns_timeout(BOUND)
}

const OK_204: &str = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";

fn limited(o: &Outcome, why: &str) -> bool {
    matches!(o, Outcome::Limited { reason } if reason.contains(why))
}

#[test]
fn every_server_behaviour_gets_its_verdict_in_time() {
    testns::skip_unless_root!();
    let (client, server) = client_server("pv");
    let nm = |e: Endpoint| e.expect_status(200).expect_body("NetworkManager is online");
    let flood = |head: &str, filler: String| Reply::Flood {
        head: head.as_bytes().to_vec(),
        filler: filler.into_bytes(),
        limit: 10 << 20,
    };
    type Check = fn(&Outcome) -> bool;
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Reply, fn(Endpoint) -> Endpoint, Check)> = vec![
        ("expected reply", Reply::text(OK_204), |e| e, |o| *o == Outcome::Online),
        (
            "expected body",
            Reply::text("HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nNetworkManager is online\n"),
            nm,
            |o| *o == Outcome::Online,
        ),
        ("wrong body", Reply::text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), nm, |o| {
            *o == Outcome::CaptivePortal { url: None }
        }),
        (
            "302 with Location",
            Reply::text("HTTP/1.1 302 Found\r\nLocation: http://portal.test/login\r\nContent-Length: 0\r\n\r\n"),
            |e| e,
            |o| *o == Outcome::CaptivePortal { url: Some("http://portal.test/login".into()) },
        ),
        (
            "307",
            Reply::text("HTTP/1.1 307 Temporary Redirect\r\nLocation: /portal\r\nContent-Length: 0\r\n\r\n"),
            |e| e,
            |o| matches!(o, Outcome::CaptivePortal { url: Some(u) } if u.ends_with("/portal")),
        ),
        (
            "200 login page",
            Reply::text("HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n<form>login</form>\r\n"),
            |e| e,
            |o| *o == Outcome::CaptivePortal { url: None },
        ),
        ("accepts and never answers", Reply::Silent, |e| e, |o| limited(o, "in time")),
        (
            "1 byte per second",
            Reply::Trickle(OK_204.as_bytes().to_vec(), Duration::from_secs(1)),
            |e| e,
            |o| limited(o, "in time"),
        ),
        ("endless body", flood("HTTP/1.1 200 OK\r\n\r\n<html>", "<p>welcome</p>".repeat(64)), nm, |o| {
            *o == Outcome::CaptivePortal { url: None }
        }),
        (
            "10 MB of headers",
            flood("HTTP/1.1 200 OK\r\n", format!("X-Pad: {}\r\n", "a".repeat(1000))),
            |e| e,
            |o| limited(o, "larger than 64 KiB"),
        ),
        (
            "garbage",
            Reply::Bytes(b"\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n".to_vec()),
            |e| e,
            |o| limited(o, "not HTTP"),
        ),
        (
            "reset mid-reply",
            Reply::Reset(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nNetworkMan".to_vec()),
            nm,
            |o| limited(o, "reset") || limited(o, "ended before"),
        ),
    ];
    let servers: Vec<Server> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, reply, _, _))| Server::start(&server, &format!("{SERVER_V4}:{}", 8000 + i), reply.clone()))
        .collect();
    let ns = Netns::Name(client.name().into());
    // All cases at once: the slow ones overlap, and each is timed on its own.
    std::thread::scope(|scope| {
        for ((name, _, endpoint, check), srv) in cases.iter().zip(&servers) {
            let name = *name;
            let ns = &ns;
            scope.spawn(move || {
                let config = config(vec![endpoint(Endpoint::new(&srv.url("/check")).unwrap())]);
                let start = Instant::now();
                let results = run(&config, &[Family::Ipv4], Some(ns)).expect("probe runs");
                let elapsed = start.elapsed();
                assert_eq!(results.len(), 1);
                let r = &results[0];
                assert!(check(&r.outcome), "{name}: got {r:?}");
                assert!(elapsed < BOUND + SLACK, "{name}: took {elapsed:?}");
                assert!(r.timings.total <= BOUND + SLACK, "{name}: timings {:?}", r.timings);
                assert_eq!(srv.requests(), 1, "{name}: exactly one request (redirects are never followed)");
            });
        }
    });
    // Nothing listens: refused at once.
    let refused = config(vec![Endpoint::new(&format!("http://{SERVER_V4}:7999/")).unwrap()]);
    let r = &run(&refused, &[Family::Ipv4], Some(&ns)).unwrap()[0];
    assert!(limited(&r.outcome, "refused"), "{r:?}");
    assert!(r.timings.total < BOUND, "{r:?}");
}

#[test]
fn redirect_loop_is_reported_not_followed() {
    testns::skip_unless_root!();
    let (client, server) = client_server("pl");
    let to_self = format!("HTTP/1.1 302 Found\r\nLocation: http://{SERVER_V4}:8080/check\r\nContent-Length: 0\r\n\r\n");
    let srv = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(&to_self));
    let r = &run(
        &config(vec![Endpoint::new(&srv.url("/check")).unwrap()]),
        &[Family::Ipv4],
        Some(&Netns::Name(client.name().into())),
    )
    .unwrap()[0];
    assert_eq!(r.outcome, Outcome::CaptivePortal { url: Some(srv.url("/check")) });
    assert_eq!(srv.requests(), 1);
}

/// Endpoints for both families on one server namespace: IPv4 at port 8080, IPv6 at 8086.
fn dual(v4: &Server, v6: &Server) -> Vec<Endpoint> {
    vec![Endpoint::new(&v4.url("/generate_204")).unwrap(), Endpoint::new(&v6.url("/generate_204")).unwrap()]
}

#[test]
fn families_are_judged_separately() {
    testns::skip_unless_root!();
    let (client, server) = client_server("pf");
    let ns = Netns::Name(client.name().into());
    let broken = Reply::text("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
    for (v4_reply, v6_reply, v4_ok) in
        [(Reply::text(OK_204), broken.clone(), true), (broken, Reply::text(OK_204), false)]
    {
        let v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), v4_reply);
        let v6 = Server::start(&server, &format!("[{SERVER_V6}]:8086"), v6_reply);
        let results = run(&config(dual(&v4, &v6)), &[Family::Ipv4, Family::Ipv6], Some(&ns)).unwrap();
        let (r4, r6) = (&results[0], &results[1]);
        assert_eq!((r4.family, r6.family), (Family::Ipv4, Family::Ipv6));
        assert_eq!(r4.address.map(|a| a.is_ipv4()), Some(true), "{r4:?}");
        assert_eq!(r6.address.map(|a| a.is_ipv6()), Some(true), "{r6:?}");
        let (good, bad) = if v4_ok { (r4, r6) } else { (r6, r4) };
        assert_eq!(good.outcome, Outcome::Online, "{good:?}");
        assert!(limited(&bad.outcome, "503"), "{bad:?}");
        assert!(good.timings.connect.is_some() && good.timings.first_byte.is_some(), "{good:?}");
    }
    // An IPv6 family with no endpoint of its own is not probed rather than judged.
    let only_v4 = config(vec![Endpoint::new(&format!("http://{SERVER_V4}:1/")).unwrap()]);
    let r6 = &run(&only_v4, &[Family::Ipv6], Some(&ns)).unwrap()[0];
    assert!(matches!(&r6.outcome, Outcome::NotProbed { reason } if reason.contains("ipv6")), "{r6:?}");
}

#[test]
fn every_round_publishes_what_it_measured_before_its_verdict() {
    testns::skip_unless_root!();
    let _shared = probe_threads_shared();
    let (client, server) = client_server("pf");
    let v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let v6 = Server::start(
        &server,
        &format!("[{SERVER_V6}]:8086"),
        Reply::text("HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n"),
    );
    let monitor = Monitor::builder().netns(client.name()).probe(config(dual(&v4, &v6))).build().unwrap();
    let sub = monitor.subscribe();
    monitor.check().unwrap();
    let (event, before) =
        expect(&sub, "a probe round's measurements", |k| matches!(k, EventKind::ProbeFinished { .. }));
    assert!(
        !before.iter().any(|k| matches!(k, EventKind::VerdictChanged { .. })),
        "measurements before the verdict: {before:?}"
    );
    let EventKind::ProbeFinished { measurements } = event.kind else { unreachable!() };
    let of =
        |f: Family| measurements.iter().find(|m| m.family == f).unwrap_or_else(|| panic!("{f:?} in {measurements:?}"));
    let (m4, m6) = (of(Family::Ipv4), of(Family::Ipv6));
    assert!(m4.success && !m6.success, "{measurements:?}");
    for m in [m4, m6] {
        let connect = m.timings.connect.expect("connected");
        let first_byte = m.timings.first_byte.expect("a reply");
        assert!(
            m.timings.total >= connect && m.timings.total >= first_byte && m.timings.dns.is_none(),
            "address URLs: {m:?}"
        );
        assert_eq!(m.endpoint.as_deref().map(|e| e.starts_with("http://")), Some(true), "{m:?}");
    }
    // The verdict follows the measurements.
    expect(&sub, "the verdict", |k| matches!(k, EventKind::VerdictChanged { .. }));
}

#[test]
fn monitor_refines_levels_with_the_probe_and_rechecks_a_portal() {
    testns::skip_unless_root!();
    let _shared = probe_threads_shared();
    let (client, server) = client_server("pm");
    let portal = "HTTP/1.1 302 Found\r\nLocation: http://portal.test/\r\nContent-Length: 0\r\n\r\n";
    let v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(portal));
    let v6 = Server::start(&server, &format!("[{SERVER_V6}]:8086"), Reply::text(OK_204));
    let probe = config(dual(&v4, &v6)).recheck_backoff(Duration::from_millis(100), Duration::from_millis(400));
    let monitor = Monitor::builder().netns(client.name()).probe(probe).build().unwrap();
    let sub = monitor.subscribe();
    let state = monitor.check().unwrap();
    assert_eq!((state.reachability.ipv4.reachability, state.reachability.ipv4.source), (Level::Site, Source::Probe));
    assert_eq!((state.reachability.ipv6.reachability, state.reachability.ipv6.source), (Level::Online, Source::Probe));
    assert_eq!(state.details.captive_portal, Some(true));
    assert_eq!(state.details.portal_url.as_deref(), Some("http://portal.test/"));
    // The portal lets us through: a recheck (no kernel change) finds IPv4 online.
    drop(v4);
    let _v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    expect(
        &sub,
        "probe verdict ipv4 online",
        |k| matches!(k, EventKind::VerdictChanged { verdict } if verdict.ipv4 == Some(Level::Online)),
    );
    let state = monitor.snapshot();
    assert_eq!((state.reachability.ipv4.reachability, state.details.captive_portal), (Level::Online, Some(false)));
    assert_eq!(state.details.portal_url, None);
}

#[test]
fn probes_follow_relevant_changes_only_and_stop_below_site() {
    testns::skip_unless_root!();
    let _shared = probe_threads_shared();
    let (client, server) = client_server("pr");
    let v4 = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let v6 = Server::start(&server, &format!("[{SERVER_V6}]:8086"), Reply::text(OK_204));
    let monitor = Monitor::builder().netns(client.name()).probe(config(dual(&v4, &v6))).build().unwrap();
    let sub = monitor.subscribe();
    expect(
        &sub,
        "first verdict",
        |k| matches!(k, EventKind::VerdictChanged { verdict } if verdict.ipv4 == Some(Level::Online) && verdict.ipv6 == Some(Level::Online)),
    );
    let before = (v4.requests(), v6.requests());
    // The link goes down: both families drop below site, so the verdict is withdrawn without
    // a request.
    client.ip("link set va down");
    expect(
        &sub,
        "verdict withdrawn",
        |k| matches!(k, EventKind::VerdictChanged { verdict } if verdict.ipv4.is_none() && verdict.ipv6.is_none()),
    );
    assert_eq!((v4.requests(), v6.requests()), before, "no probe below site");
    // A burst of relevant changes (route metric flips) is coalesced.
    client.ip("link set va up");
    client.ip(&format!("addr add {}/64 dev va nodad", testns::http::CLIENT_V6)); // flushed on down
    client.ip(&format!("route add default via {SERVER_V4}"));
    client.ip(&format!("route add default via {SERVER_V6}"));
    expect(
        &sub,
        "verdict back",
        |k| matches!(k, EventKind::VerdictChanged { verdict } if verdict.ipv4 == Some(Level::Online)),
    );
    let settled = v4.requests();
    let burst: String = (1..=20).map(|m| format!("route add default via {SERVER_V4} metric {m}\n")).collect();
    client.ip_batch(&burst);
    monitor.check().unwrap(); // one more probe, and everything before it is done... or scheduled
    wait_until(EVENT_TIMEOUT, "the burst's probe", || v4.requests() > settled);
    let probes = v4.requests() - settled;
    assert!(probes <= 4, "20 route changes caused {probes} probes (check included)");
}

#[test]
fn drop_cancels_a_probe_in_flight_and_idle_costs_nothing() {
    testns::skip_unless_root!();
    let _alone = PROBE_THREADS.write().unwrap_or_else(|p| p.into_inner());
    let (client, server) = client_server("pd");
    let silent = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::Silent);
    let slow = ProbeConfig::new()
        .endpoints(vec![Endpoint::new(&silent.url("/")).unwrap()])
        .total_timeout(Duration::from_secs(30));
    let monitor = Monitor::builder().netns(client.name()).probe(slow).build().unwrap();
    wait_until(EVENT_TIMEOUT, "the probe's request", || silent.requests() == 1);
    let start = Instant::now();
    drop(monitor);
    assert!(start.elapsed() < Duration::from_millis(500), "drop took {:?}", start.elapsed());

    // Settled on online with no interval: the probe thread sleeps with no timer.
    let ok = Server::start(&server, &format!("{SERVER_V4}:8081"), Reply::text(OK_204));
    let monitor = Monitor::builder()
        .netns(client.name())
        .probe(config(vec![Endpoint::new(&ok.url("/")).unwrap()]))
        .build()
        .unwrap();
    let events = monitor.subscribe();
    monitor.check().unwrap();
    // Counted once the thread sleeps (on a loaded machine it may still be on its way there
    // when check() returns): its last voluntary switch is then in the count.
    let switches = || testns::thread::usage("netreach-probe", EVENT_TIMEOUT).wakeups;
    // A window counts only if the monitor's state did not change during it: a kernel change
    // (the link-local address finishing duplicate address detection, say) is a reason to wake.
    // Up to three windows, so a change in one cannot fail the test; the first quiet one must
    // see no wake-up.
    let mut quiet_windows = Vec::new();
    for _ in 0..3 {
        let before = switches();
        while events.try_recv().is_ok() {}
        std::thread::sleep(Duration::from_millis(500)); // the measurement window, not a synchronisation
        let woke = switches() - before;
        if events.try_recv().is_err() {
            quiet_windows.push(woke);
            break;
        }
    }
    assert!(!quiet_windows.is_empty(), "the state changed during every measurement window");
    assert_eq!(quiet_windows, [0], "the idle probe thread woke up while nothing changed");
}

/// Hostile framing (issue 10 item 9), end to end: two conflicting `Content-Length` values are
/// not online, a `100 Continue` before the final reply is skipped, a head that reaches the
/// 64 KiB read cap is limited (not a portal).
#[test]
fn hostile_framing_gets_its_verdict() {
    testns::skip_unless_root!();
    let (client, server) = client_server("ph");
    let nm = |e: Endpoint| e.expect_status(200).expect_body("NetworkManager is online");
    let capped = {
        let start = "HTTP/1.1 200 OK\r\nX-Pad: ";
        format!("{start}{}\r\n\r\n", "a".repeat(64 * 1024 - start.len() - 4))
    };
    assert_eq!(capped.len(), 64 * 1024);
    type Check = fn(&Outcome) -> bool;
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, String, fn(Endpoint) -> Endpoint, Check)> = vec![
        (
            "conflicting Content-Length",
            "HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Length: 2\r\n\r\nNetworkManager is online".into(),
            nm,
            |o| limited(o, "conflicting Content-Length values (24 and 2"),
        ),
        ("100 Continue first", format!("HTTP/1.1 100 Continue\r\n\r\n{OK_204}"), |e| e, |o| *o == Outcome::Online),
        ("head at the read cap", capped, |e| e, |o| limited(o, "reaches the 64 KiB read cap")),
    ];
    let ns = Netns::Name(client.name().into());
    for (i, (name, reply, endpoint, check)) in cases.into_iter().enumerate() {
        let srv = Server::start(&server, &format!("{SERVER_V4}:{}", 8100 + i), Reply::text(&reply));
        let start = Instant::now();
        let r = &run(&config(vec![endpoint(Endpoint::new(&srv.url("/")).unwrap())]), &[Family::Ipv4], Some(&ns))
            .unwrap()[0];
        assert!(check(&r.outcome), "{name}: {r:?}");
        assert!(start.elapsed() < BOUND, "{name}: took {:?}", start.elapsed());
        assert_eq!(r.address.map(|a| a.to_string()), Some(format!("{SERVER_V4}:{}", 8100 + i)), "{name}");
    }
}

/// No `Duration` in a `ProbeConfig` panics (issue 10 item 5): `Duration::MAX` everywhere is a
/// bound never reached, in a one-off probe and in a monitor (its rechecks, debounce, interval).
#[test]
fn duration_max_everywhere_is_not_a_panic() {
    testns::skip_unless_root!();
    let _shared = probe_threads_shared();
    let (client, server) = client_server("px");
    let ok = Server::start(&server, &format!("{SERVER_V4}:8080"), Reply::text(OK_204));
    let max = |e: Endpoint| {
        ProbeConfig::new()
            .endpoints(vec![e])
            .total_timeout(Duration::MAX)
            .connect_timeout(Duration::MAX)
            .dns_timeout(Duration::MAX)
            .debounce(Duration::MAX)
            .recheck_backoff(Duration::MAX, Duration::MAX)
            .interval(Some(Duration::MAX))
    };
    let ns = Netns::Name(client.name().into());
    let r = &run(&max(Endpoint::new(&ok.url("/")).unwrap()), &[Family::Ipv4], Some(&ns)).unwrap()[0];
    assert_eq!(r.outcome, Outcome::Online, "{r:?}");
    // Refused: limited, so the monitor schedules a recheck `Duration::MAX` away.
    let refused = Endpoint::new(&format!("http://{SERVER_V4}:7999/")).unwrap();
    let monitor = Monitor::builder().netns(client.name()).probe(max(refused)).build().unwrap();
    let state = monitor.check().unwrap();
    assert_eq!((state.reachability.ipv4.reachability, state.reachability.ipv4.source), (Level::Site, Source::Probe));
    // A relevant change: a probe scheduled a debounce (`Duration::MAX`) away; check() is not
    // delayed by it, and the engine and probe threads live on.
    client.ip(&format!("route add default via {SERVER_V4} metric 7"));
    wait_until(EVENT_TIMEOUT, "the new route", || monitor.snapshot().default_routes.iter().any(|r| r.metric == 7));
    let start = Instant::now();
    let state = monitor.check().unwrap();
    assert!(start.elapsed() < BOUND, "check took {:?}", start.elapsed());
    assert_eq!(state.reachability.ipv4.source, Source::Probe);
    let start = Instant::now();
    drop(monitor);
    assert!(start.elapsed() < Duration::from_millis(500), "drop took {:?}", start.elapsed());
}
