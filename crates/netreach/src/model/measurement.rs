//! What one probe round measured: success and the time of each phase, per family.

use std::time::Duration;

use serde::{Serialize, Serializer};

use super::address::Family;

/// One family's connectivity probe, as measured (the probe's verdict is separate: it changes
/// only when the conclusion does, while every round measures anew). Published as
/// [`crate::EventKind::ProbeFinished`], for exporters of blackbox-style metrics.
///
/// ```
/// use std::time::Duration;
/// let mut timings = netreach::probe::Timings::default();
/// (timings.total, timings.connect) = (Duration::from_millis(12), Some(Duration::from_millis(3)));
/// let m = netreach::ProbeMeasurement {
///     family: netreach::Family::Ipv4,
///     success: true,
///     endpoint: Some("http://192.0.2.1/".into()),
///     timings,
/// };
/// assert!(m.success && m.timings.total > m.timings.connect.unwrap());
/// assert_eq!(serde_json::to_value(&m).unwrap()["connect_ms"], 3.0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeMeasurement {
    /// Which family.
    pub family: Family,
    /// Whether the endpoint gave the expected reply (blackbox's `probe_success`).
    pub success: bool,
    /// The endpoint that decided (the last one tried), when one was.
    pub endpoint: Option<String>,
    /// How long each phase took: the whole round for this family (name resolution included)
    /// and its steps. Flattened in JSON (`total_ms`, `dns_ms`, `connect_ms`, `first_byte_ms`).
    #[serde(flatten)]
    pub timings: Timings,
}

/// How long the steps of one probe took (milliseconds in JSON).
///
/// ```
/// let mut t = netreach::probe::Timings::default();
/// t.total = std::time::Duration::from_millis(12);
/// let json = serde_json::to_string(&t).unwrap();
/// assert_eq!(json, r#"{"dns_ms":null,"connect_ms":null,"first_byte_ms":null,"total_ms":12.0}"#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Timings {
    /// Name resolution (`None` for an address literal or when not reached).
    #[serde(rename = "dns_ms", serialize_with = "millis_opt")]
    pub dns: Option<Duration>,
    /// TCP connect.
    #[serde(rename = "connect_ms", serialize_with = "millis_opt")]
    pub connect: Option<Duration>,
    /// From sending the request to the first byte of the reply.
    #[serde(rename = "first_byte_ms", serialize_with = "millis_opt")]
    pub first_byte: Option<Duration>,
    /// The whole probe of this endpoint, resolution included.
    #[serde(rename = "total_ms", serialize_with = "millis")]
    pub total: Duration,
}

fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn millis_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}
