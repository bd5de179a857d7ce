//! The connectivity probe: does the internet actually answer, or is a captive portal in the
//! way?
//!
//! The kernel can say a way out exists; only a real request says the internet answers. Like
//! Android, ChromeOS, NetworkManager and Windows, the probe sends a plain-HTTP `GET` to a known
//! endpoint, separately over IPv4 and IPv6, and compares the reply with the one expected
//! ([`Outcome`] has the table): the expected reply means `online`; a redirect, a login page or
//! a 511 means a captive portal (with the portal's URL from `Location`); a failure (refused,
//! reset, timeout, not HTTP) means `limited`, and a name that does not resolve `unresolved`
//! (which limits the family just the same; the diagnosis's DNS layer tells it apart from HTTP
//! failures through [`crate::Verdict::unresolved`]). Redirects are never followed
//! and at most 64 KiB of a reply is read; every probe ends within its total timeout.
//!
//! Use it once with [`run`] (what `netreach probe` does), or let a [`crate::Monitor`] run it
//! with [`crate::MonitorBuilder::probe`]: it then probes when reachability-relevant state
//! changes, rechecks with capped backoff while portal or limited, and its verdict refines the
//! kernel's level (source `probe`; see [`crate::refine()`]). The library never probes unless
//! asked, and [`ProbeConfig::enabled`]`(false)` turns probing off whatever else is set.
//!
//! Default endpoints ([`ProbeConfig::default`]): [`GSTATIC_204`] then [`GNOME_NMCHECK`].
//! Asking them reveals to their operators that this machine is online, from which address,
//! and when; replace them with your own or turn probing off.
//!
//! ```no_run
//! use netreach::probe::{run, Endpoint, ProbeConfig};
//! use netreach::Family;
//! let config = ProbeConfig::new().endpoints(vec![Endpoint::new("http://192.0.2.1:8080/generate_204")?]);
//! for family in run(&config, &[Family::Ipv4, Family::Ipv6], None)? {
//!     println!("{}: {} in {:?}", family.family, family.outcome, family.timings.total);
//! }
//! # Ok::<(), netreach::Error>(())
//! ```

mod classify;
mod config;
mod http;
mod io;
pub(crate) mod refiner;
mod url;

#[cfg(test)]
mod props;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

pub use classify::Outcome;
pub use config::{Endpoint, ProbeConfig, GNOME_NMCHECK, GSTATIC_204};

use crate::backend::Netns;
pub use crate::model::Timings;
use crate::model::{Error, Family, Level, Source, Verdict};

/// The probe's result for one address family.
///
/// ```no_run
/// use netreach::probe::{run, Outcome, ProbeConfig};
/// for result in run(&ProbeConfig::default(), &[netreach::Family::Ipv4], None)? {
///     if let Outcome::CaptivePortal { url } = &result.outcome {
///         println!("{}: log in at {url:?} (answered by {:?})", result.family, result.address);
///     }
/// }
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FamilyProbe {
    /// Which family.
    pub family: Family,
    /// What it concluded.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The endpoint that decided (the last one tried).
    pub endpoint: Option<String>,
    /// The address the outcome is about: the one whose reply was judged (for a portal, the
    /// address that answered with it: the portal's own host is never contacted), or the one
    /// whose failure the reason names; `None` when no address was tried (name resolution
    /// failed, no time left).
    pub address: Option<SocketAddr>,
    /// How long it took.
    pub timings: Timings,
}

impl FamilyProbe {
    fn new(family: Family, endpoint: &Endpoint, outcome: Outcome) -> Self {
        FamilyProbe {
            family,
            outcome,
            endpoint: Some(endpoint.url().to_owned()),
            address: None,
            timings: Timings::default(),
        }
    }

    fn not_probed(family: Family, reason: &str) -> Self {
        FamilyProbe {
            family,
            outcome: Outcome::NotProbed { reason: reason.into() },
            endpoint: None,
            address: None,
            timings: Timings::default(),
        }
    }
}

/// Probes `families` now, from inside `netns` when given (the caller's threads stay where they
/// are), and returns one result per family, in order. Takes at most the endpoints' total
/// timeouts (families run in parallel). Fails only for bad settings or a namespace that cannot
/// be entered; network failures are results (`limited`).
///
/// ```no_run
/// use netreach::probe::{run, Endpoint, ProbeConfig};
/// use netreach::{Family, Netns};
/// // Probe a server inside the namespace `blue` (needs CAP_SYS_ADMIN to enter it).
/// let config = ProbeConfig::new().endpoints(vec![Endpoint::new("http://192.0.2.1/generate_204")?]);
/// let results = run(&config, &[Family::Ipv4], Some(&Netns::Name("blue".into())))?;
/// println!("{}", netreach::probe::verdict(&results).ipv4.unwrap_or_default());
/// # Ok::<(), netreach::Error>(())
/// ```
pub fn run(config: &ProbeConfig, families: &[Family], netns: Option<&Netns>) -> Result<Vec<FamilyProbe>, Error> {
    config.validate()?;
    if !config.enabled {
        return Ok(families.iter().map(|&f| FamilyProbe::not_probed(f, "probing is disabled")).collect());
    }
    let cancel = io::Cancel::default();
    match netns {
        None => Ok(io::round(config, families, &cancel)),
        Some(netns) => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    crate::sys::enter_netns(netns)?;
                    Ok(io::round(config, families, &cancel))
                })
                .join()
                .unwrap_or_else(|_| Err(Error::io("probe thread", std::io::Error::other("panicked"))))
        }),
    }
}

/// Resolves `host` through the system resolver (getaddrinfo, as programs do: /etc/hosts,
/// then the nameservers), from inside `netns` when given, within `timeout`: the addresses and
/// how long it took, or the resolver's error in words (`Ok(Err(..))`). `Err` only for a
/// namespace that cannot be entered. An address literal is returned as it is, at once.
///
/// ```
/// use std::time::Duration;
/// let (addresses, _) = netreach::probe::resolve("192.0.2.1", Duration::from_secs(1), None)?.unwrap();
/// assert_eq!(addresses, ["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]);
/// # Ok::<(), netreach::Error>(())
/// ```
pub fn resolve(
    host: &str,
    timeout: Duration,
    netns: Option<&Netns>,
) -> Result<Result<(Vec<std::net::IpAddr>, Duration), String>, Error> {
    if let Ok(ip) = host.parse() {
        return Ok(Ok((vec![ip], Duration::ZERO)));
    }
    let lookup = || {
        let cancel = io::Cancel::default();
        io::resolve_name(host.to_owned(), 0, timeout, &cancel).map(|(addrs, took)| {
            let mut ips: Vec<std::net::IpAddr> = Vec::new();
            for a in addrs {
                if !ips.contains(&a.ip()) {
                    ips.push(a.ip());
                }
            }
            (ips, took)
        })
    };
    match netns {
        None => Ok(lookup()),
        Some(netns) => std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    crate::sys::enter_netns(netns)?;
                    Ok(lookup())
                })
                .join()
                .unwrap_or_else(|_| Err(Error::io("resolver thread", std::io::Error::other("panicked"))))
        }),
    }
}

/// The verdict a round of probes gives the monitor: `online` confirms a family, a portal or a
/// failure limits it to `site` (with `captive_portal` and its URL, or a note saying why), and
/// an unprobed family has no opinion. With nothing probed every field is `None`, which
/// withdraws the probe's earlier verdict.
///
/// ```
/// use netreach::probe::{verdict, FamilyProbe, Outcome, Timings};
/// use netreach::{Family, Level};
/// let v4 = FamilyProbe { family: Family::Ipv4, outcome: Outcome::Online, endpoint: None, address: None,
///                        timings: Timings::default() };
/// let v = verdict(&[v4]);
/// assert_eq!((v.ipv4, v.ipv6, v.captive_portal), (Some(Level::Online), None, Some(false)));
/// ```
#[must_use]
pub fn verdict(results: &[FamilyProbe]) -> Verdict {
    let mut v = Verdict::new(Source::Probe);
    let mut notes = Vec::new();
    for r in results {
        let level = match &r.outcome {
            Outcome::Online => Some(Level::Online),
            Outcome::CaptivePortal { .. } | Outcome::Limited { .. } | Outcome::Unresolved { .. } => Some(Level::Site),
            Outcome::NotProbed { .. } => None,
        };
        match r.family {
            Family::Ipv4 => v.ipv4 = level,
            Family::Ipv6 => v.ipv6 = level,
        }
        match &r.outcome {
            Outcome::CaptivePortal { url } => {
                v.captive_portal = Some(true);
                v.portal_url = v.portal_url.take().or_else(|| url.clone());
            }
            Outcome::Online => {
                v.captive_portal.get_or_insert(false);
            }
            Outcome::Limited { reason } => notes.push(format!("{}: {reason}", r.family)),
            Outcome::Unresolved { reason } => {
                notes.push(format!("{}: {reason}", r.family));
                v.unresolved.get_or_insert_with(|| reason.clone());
            }
            Outcome::NotProbed { .. } => {}
        }
    }
    if !notes.is_empty() {
        v.note = Some(notes.join("; "));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(family: Family, outcome: Outcome) -> FamilyProbe {
        FamilyProbe { family, outcome, endpoint: None, address: None, timings: Timings::default() }
    }

    #[test]
    fn verdicts_table() {
        use Family::*;
        let online = Outcome::Online;
        let portal = |u: Option<&str>| Outcome::CaptivePortal { url: u.map(str::to_owned) };
        let limited = |r: &str| Outcome::Limited { reason: r.into() };
        let skipped = Outcome::NotProbed { reason: "no address".into() };
        #[allow(clippy::type_complexity)]
        let table: Vec<(
            Vec<FamilyProbe>,
            (Option<Level>, Option<Level>),
            Option<bool>,
            Option<&str>,
            Option<&str>,
        )> = vec![
            (vec![], (None, None), None, None, None),
            (
                vec![result(Ipv4, online.clone()), result(Ipv6, online.clone())],
                (Some(Level::Online), Some(Level::Online)),
                Some(false),
                None,
                None,
            ),
            (
                vec![result(Ipv4, portal(Some("http://p.test/"))), result(Ipv6, online.clone())],
                (Some(Level::Site), Some(Level::Online)),
                Some(true),
                Some("http://p.test/"),
                None,
            ),
            (
                vec![result(Ipv4, online.clone()), result(Ipv6, limited("refused"))],
                (Some(Level::Online), Some(Level::Site)),
                Some(false),
                None,
                Some("ipv6: refused"),
            ),
            (
                vec![result(Ipv4, limited("a")), result(Ipv6, limited("b"))],
                (Some(Level::Site), Some(Level::Site)),
                None,
                None,
                Some("ipv4: a; ipv6: b"),
            ),
            (vec![result(Ipv4, skipped.clone()), result(Ipv6, skipped)], (None, None), None, None, None),
        ];
        for (i, (results, levels, portal, url, note)) in table.into_iter().enumerate() {
            let v = verdict(&results);
            assert_eq!((v.ipv4, v.ipv6), levels, "row {i}");
            assert_eq!(v.captive_portal, portal, "row {i}");
            assert_eq!(v.portal_url.as_deref(), url, "row {i}");
            assert_eq!(v.note.as_deref(), note, "row {i}");
            assert_eq!(v.source, Source::Probe);
            assert_eq!(v.unresolved, None, "row {i}");
        }
        // A name that did not resolve limits the family like any failure, and says so apart.
        let unresolved = Outcome::Unresolved { reason: "name resolution of x.test failed".into() };
        let v = verdict(&[result(Ipv4, unresolved), result(Ipv6, limited("refused"))]);
        assert_eq!((v.ipv4, v.ipv6), (Some(Level::Site), Some(Level::Site)));
        assert_eq!(v.unresolved.as_deref(), Some("name resolution of x.test failed"));
        assert_eq!(v.note.as_deref(), Some("ipv4: name resolution of x.test failed; ipv6: refused"));
    }

    #[test]
    fn settings_are_checked() {
        let e = Endpoint::new("http://192.0.2.1/").unwrap();
        assert!(ProbeConfig::new().endpoints(vec![]).validate().unwrap_err().to_string().contains("no endpoints"));
        let zero = ProbeConfig::new().endpoints(vec![e]).total_timeout(Duration::ZERO);
        assert!(zero.validate().unwrap_err().to_string().contains("total timeout"));
        let off = ProbeConfig::new().enabled(false);
        let results = run(&off, &[Family::Ipv4], None).unwrap();
        assert_eq!(results[0].outcome, Outcome::NotProbed { reason: "probing is disabled".into() });
    }
}
