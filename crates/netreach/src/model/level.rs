//! Plain data: reachability levels, the sources that decide them, and a reading of both
//! families. How the kernel's levels are derived is in `reachability.rs`
//! ([`crate::derive_kernel_reachability`] has the table).

use serde::{Deserialize, Serialize};

use super::address::Family;
use super::error::Error;

/// Qt's reachability levels, ordered from worst to best.
///
/// ```
/// use netreach::Level;
/// assert!(Level::Online > Level::Site);
/// assert_eq!(Level::Local.to_string(), "local");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not known (yet).
    #[default]
    Unknown,
    /// No usable network at all.
    Disconnected,
    /// Only link-local connectivity.
    Local,
    /// A routable address on a local network, but no way out.
    Site,
    /// A way out to the internet.
    Online,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Unknown => "unknown",
            Level::Disconnected => "disconnected",
            Level::Local => "local",
            Level::Site => "site",
            Level::Online => "online",
        })
    }
}

/// Parses the names `Display` writes; anything else is an [`crate::ErrorKind::InvalidInput`]
/// error naming the accepted values.
///
/// ```
/// assert_eq!("site".parse::<netreach::Level>().unwrap(), netreach::Level::Site);
/// let err = "fast".parse::<netreach::Level>().unwrap_err();
/// assert_eq!(err.kind(), netreach::ErrorKind::InvalidInput);
/// assert!(err.to_string().contains("expected unknown, disconnected, local, site or online"));
/// ```
impl std::str::FromStr for Level {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "unknown" => Level::Unknown,
            "disconnected" => Level::Disconnected,
            "local" => Level::Local,
            "site" => Level::Site,
            "online" => Level::Online,
            other => {
                return Err(Error::invalid_input(format!(
                    "unknown reachability level '{other}' (expected unknown, disconnected, local, site or online)"
                )))
            }
        })
    }
}

/// Which source decided a level. New sources may be added (`#[non_exhaustive]`).
///
/// ```
/// use netreach::Source;
/// assert_eq!(Source::NetworkManager.to_string(), "networkmanager");
/// assert_eq!(serde_json::to_string(&Source::Probe).unwrap(), r#""probe""#);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// Derived from kernel interfaces, addresses and routes (see [`crate::derive_kernel_reachability`]).
    #[default]
    Kernel,
    /// netreach's own HTTP connectivity probe.
    Probe,
    /// NetworkManager, over D-Bus.
    #[serde(rename = "networkmanager")]
    NetworkManager,
    /// Windows' Network List Manager.
    Windows,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Kernel => "kernel",
            Source::Probe => "probe",
            Source::NetworkManager => "networkmanager",
            Source::Windows => "windows",
        })
    }
}

/// The level of one address family and the source that decided it.
///
/// ```no_run
/// let state = netreach::Monitor::new()?.snapshot();
/// let v6 = state.reachability.family(netreach::Family::Ipv6);
/// println!("ipv6: {} (decided by {})", v6.reachability, v6.source);
/// # Ok::<(), netreach::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyReachability {
    /// The level.
    pub reachability: Level,
    /// Who decided it.
    pub source: Source,
}

/// Overall and per-family reachability.
///
/// ```
/// use netreach::{Family, FamilyReachability, Level, Reachability, Source};
/// let v4 = FamilyReachability { reachability: Level::Site, source: Source::Kernel };
/// let v6 = FamilyReachability { reachability: Level::Online, source: Source::Probe };
/// let r = Reachability::from_families(v4, v6);
/// assert_eq!((r.overall, r.source), (Level::Online, Source::Probe)); // the better family
/// assert_eq!(r.family(Family::Ipv4), v4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// The better of the two families.
    #[serde(rename = "reachability")]
    pub overall: Level,
    /// Source of the overall level (that of the better family).
    pub source: Source,
    /// IPv4.
    pub ipv4: FamilyReachability,
    /// IPv6.
    pub ipv6: FamilyReachability,
}

impl Reachability {
    /// Combines two family levels: overall is the better one, with its source.
    pub fn from_families(ipv4: FamilyReachability, ipv6: FamilyReachability) -> Self {
        let best = if ipv6.reachability > ipv4.reachability { ipv6 } else { ipv4 };
        Reachability { overall: best.reachability, source: best.source, ipv4, ipv6 }
    }

    /// The entry of one family.
    pub fn family(&self, family: Family) -> FamilyReachability {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Level::{self, *};

    #[test]
    fn level_parses_and_prints() {
        for l in [Unknown, Disconnected, Local, Site, Online] {
            assert_eq!(l.to_string().parse::<Level>().unwrap(), l);
        }
        assert!("up".parse::<Level>().unwrap_err().to_string().contains("'up'"));
    }
}
