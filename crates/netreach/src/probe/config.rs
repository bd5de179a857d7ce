//! Probe settings: endpoints, timeouts, rechecks, and the switch that turns probing off.

use std::time::Duration;

use super::classify::Expect;
use super::url::HttpUrl;
use crate::model::Error;

/// Google's endpoint, as Android and ChromeOS use it: `204 No Content`, empty body.
pub const GSTATIC_204: &str = "http://connectivitycheck.gstatic.com/generate_204";
/// NetworkManager's endpoint (GNOME's default): `200` with body `NetworkManager is online`.
pub const GNOME_NMCHECK: &str = "http://nmcheck.gnome.org/check_network_status.txt";

/// One URL to probe and the reply that means "online".
///
/// ```
/// use netreach::probe::Endpoint;
/// let e = Endpoint::new("http://192.0.2.1:8080/check")?.expect_status(200).expect_body("ok");
/// assert_eq!(e.url(), "http://192.0.2.1:8080/check");
/// assert!(Endpoint::new("https://example.test/").is_err()); // plain http only
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a builder method returns the changed endpoint"]
pub struct Endpoint {
    url: String,
    pub(crate) target: HttpUrl,
    pub(crate) expect: Expect,
}

impl Endpoint {
    /// An endpoint expecting `204 No Content` (any body). Fails with a clear error unless the
    /// URL is `http://HOST[:PORT][/PATH]`.
    pub fn new(url: &str) -> Result<Endpoint, Error> {
        Ok(Endpoint { url: url.to_owned(), target: HttpUrl::parse(url)?, expect: Expect { status: 204, body: None } })
    }

    /// The status that means online (default 204).
    pub fn expect_status(mut self, status: u16) -> Self {
        self.expect.status = status;
        self
    }

    /// The body must start with `body` (leading whitespace ignored; `""` means empty).
    pub fn expect_body(mut self, body: impl Into<String>) -> Self {
        self.expect.body = Some(body.into());
        self
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// What the probe does; give it to [`crate::MonitorBuilder::probe`] (the library never probes
/// unless asked) or to [`crate::probe::run`].
///
/// Defaults: endpoints [`GSTATIC_204`] (expects 204) then [`GNOME_NMCHECK`] (expects 200 and
/// `NetworkManager is online`); DNS and connect timeouts 5 s; at most 10 s per endpoint
/// whatever the server does; bursts of changes coalesced for 200 ms; rechecks while the verdict
/// is portal or limited after 1 s, doubling up to 5 min; no periodic probing.
///
/// [`ProbeConfig::enabled`]`(false)` is the privacy switch: whatever else is set, no request
/// leaves the machine.
///
/// Any `Duration` is accepted: one too large to add to the clock (up to `Duration::MAX`) is a
/// bound never reached, not a panic. Zero timeouts are refused when probing starts.
///
/// ```
/// use netreach::probe::{Endpoint, ProbeConfig};
/// use std::time::Duration;
/// let config = ProbeConfig::new()
///     .endpoints(vec![Endpoint::new("http://192.0.2.1:8080/generate_204")?])
///     .total_timeout(Duration::from_secs(3))
///     .recheck_backoff(Duration::from_secs(2), Duration::from_secs(60));
/// assert!(config.is_enabled());
/// assert!(!config.enabled(false).is_enabled());
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a builder method returns the changed config"]
pub struct ProbeConfig {
    pub(crate) enabled: bool,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) dns_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) total_timeout: Duration,
    pub(crate) debounce: Duration,
    pub(crate) recheck_first: Duration,
    pub(crate) recheck_max: Duration,
    pub(crate) interval: Option<Duration>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        let endpoint = |url| Endpoint::new(url).expect("the default endpoints are valid URLs");
        ProbeConfig {
            enabled: true,
            endpoints: vec![
                endpoint(GSTATIC_204),
                endpoint(GNOME_NMCHECK).expect_status(200).expect_body("NetworkManager is online"),
            ],
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(10),
            debounce: Duration::from_millis(200),
            recheck_first: Duration::from_secs(1),
            recheck_max: Duration::from_secs(300),
            interval: None,
        }
    }
}

impl ProbeConfig {
    /// The defaults (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// The privacy switch: `false` turns all probing off, whatever else is set.
    pub fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// Whether probing is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the endpoints. Per family, they are tried in order: the first `online` or
    /// `captive_portal` answer decides; an endpoint that fails (`limited`) passes to the next;
    /// an endpoint without an address of the family is skipped.
    pub fn endpoints(mut self, endpoints: Vec<Endpoint>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The endpoints in use.
    pub fn endpoint_list(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Bound on name resolution (default 5 s).
    pub fn dns_timeout(mut self, timeout: Duration) -> Self {
        self.dns_timeout = timeout;
        self
    }

    /// Bound on one TCP connect (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Bound on one endpoint's whole probe, resolution to verdict (default 10 s).
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = timeout;
        self
    }

    /// How long a burst of relevant changes is collected before one probe (default 200 ms).
    pub fn debounce(mut self, window: Duration) -> Self {
        self.debounce = window;
        self
    }

    /// Rechecks while portal or limited: after `first`, doubling, at most `max` apart.
    pub fn recheck_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.recheck_first = first;
        self.recheck_max = max.max(first);
        self
    }

    /// Probe every `interval` even when nothing changes (off by default: no timer at all).
    pub fn interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Checks the settings; called when probing starts.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.endpoints.is_empty() {
            return Err(Error::invalid_input("probe: no endpoints (disable probing instead)"));
        }
        let zero = [("dns", self.dns_timeout), ("connect", self.connect_timeout), ("total", self.total_timeout)];
        if let Some((name, _)) = zero.iter().find(|(_, t)| t.is_zero()) {
            return Err(Error::invalid_input(format!("probe: the {name} timeout must be above zero")));
        }
        if self.recheck_first.is_zero() || self.interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::invalid_input("probe: recheck and interval periods must be above zero"));
        }
        Ok(())
    }
}
