//! NetworkManager's property values -> a [`Verdict`] (pure; table-tested below).
//!
//! # Semantics
//! | NM value (`NM_CONNECTIVITY`) | netreach level | `captive_portal` |
//! |------------------------------|--------------|------------------|
//! | `full` (4)                   | `online`     | `false`          |
//! | `portal` (2)                 | `site`       | `true`           |
//! | `limited` (3)                | `site`       | `false`          |
//! | `none` (1)                   | `disconnected` | `false`        |
//! | `unknown` (0)                | no opinion   | no opinion       |
//!
//! Per family: NM checks IPv4 and IPv6 separately on each device (`Ip4Connectivity`,
//! `Ip6Connectivity`, NM >= 1.16). A family's level is the best value among the devices of
//! the primary connection; with no primary connection (or a device list not read yet) both
//! families take NM's global `Connectivity`. The global value also says "portal" when any
//! family's does. A portal with no family at `site` (the global value still saying portal
//! while a device already says full) caps the `online` families at `site`: a portal means
//! `site` for the family behind it.
//!
//! NM's `State` saying no connection is up (asleep, disconnected, disconnecting, connecting)
//! makes both families `disconnected` at once: NM announces that before it clears its
//! connectivity values and primary connection, and before the kernel loses the addresses.
//!
//! When NM's connectivity check is disabled or not configured, NM only guesses (`full` for
//! any activated device with a default route), so the verdict gives no levels and no portal
//! opinion, and a note says why: the probe (if configured) or the kernel decides. Metering
//! (`NM_METERED`: yes / guess-yes -> metered, no / guess-no -> not, unknown -> no opinion)
//! and the primary connection's type are passed on either way.

use crate::model::{Level, Source, Transport, Verdict};

/// What NetworkManager says, as read from its D-Bus properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// `Connectivity` (`NM_CONNECTIVITY`).
    pub connectivity: u32,
    /// `State` (`NM_STATE`), only used to explain.
    pub state: u32,
    /// `Metered` (`NM_METERED`).
    pub metered: u32,
    /// `PrimaryConnectionType`, e.g. `802-11-wireless`; empty without a primary connection.
    pub primary_type: String,
    /// `ConnectivityCheckEnabled`.
    pub check_enabled: bool,
    /// `ConnectivityCheckAvailable` (false when no check URI is configured).
    pub check_available: bool,
    /// (`Ip4Connectivity`, `Ip6Connectivity`) of each device of the primary connection.
    pub devices: Vec<(u32, u32)>,
}

/// A family's level from an `NM_CONNECTIVITY` value.
fn level(connectivity: u32) -> Option<Level> {
    match connectivity {
        1 => Some(Level::Disconnected),
        2 | 3 => Some(Level::Site),
        4 => Some(Level::Online),
        _ => None, // unknown (0), or a value newer than this code
    }
}

/// Transport of an NM connection type (`NMSettingConnection:type`).
pub(crate) fn transport(connection_type: &str) -> Option<Transport> {
    Some(match connection_type {
        "" => return None,
        "802-11-wireless" | "wifi-p2p" | "olpc-mesh" => Transport::Wifi,
        "802-3-ethernet" | "pppoe" | "bridge" | "bond" | "team" | "vlan" | "veth" => Transport::Ethernet,
        "gsm" | "cdma" | "wimax" => Transport::Cellular,
        "bluetooth" => Transport::Bluetooth,
        "vpn" | "wireguard" | "tun" | "ip-tunnel" => Transport::Vpn,
        _ => Transport::Other,
    })
}

fn metered(value: u32) -> Option<bool> {
    match value {
        1 | 3 => Some(true),
        2 | 4 => Some(false),
        _ => None,
    }
}

/// Human name of an `NM_STATE` value.
fn state_name(state: u32) -> &'static str {
    match state {
        10 => "asleep",
        20 => "disconnected",
        30 => "disconnecting",
        40 => "connecting",
        50 => "connected (local only)",
        60 => "connected (site only)",
        70 => "connected (global)",
        _ => "unknown",
    }
}

/// The verdict NetworkManager's reading amounts to (see the module docs for the table).
pub(crate) fn verdict(r: &Reading) -> Verdict {
    let mut v = Verdict {
        metered: metered(r.metered),
        transport: transport(&r.primary_type),
        ..Verdict::new(Source::NetworkManager)
    };
    if !(r.check_enabled && r.check_available) {
        let why = if r.check_available { "disabled" } else { "not configured" };
        v.note = Some(format!("NetworkManager's connectivity check is {why}; its state: {}", state_name(r.state)));
        return v;
    }
    // NM's values are ordered none < portal < limited < full only by number, and "portal" is
    // not better than "limited" for reaching the internet; the best device wins by level, and
    // a portal anywhere is reported as one.
    let family = |pick: fn(&(u32, u32)) -> u32| -> (Option<Level>, bool) {
        if r.devices.is_empty() {
            return (level(r.connectivity), r.connectivity == 2);
        }
        let best = r.devices.iter().map(pick).filter_map(level).max();
        (best, r.devices.iter().map(pick).any(|c| c == 2))
    };
    if no_connection(r.state) {
        // NM's own word that nothing is connected comes first (State changes before the
        // connectivity values and the primary connection are cleared, and before the kernel
        // loses the addresses): it is final, whatever the older values still say.
        v.ipv4 = Some(Level::Disconnected);
        v.ipv6 = Some(Level::Disconnected);
        v.captive_portal = Some(false);
        return v;
    }
    let ((v4, portal4), (v6, portal6)) = (family(|d| d.0), family(|d| d.1));
    let portal = r.connectivity == 2 || portal4 || portal6;
    v.ipv4 = v4;
    v.ipv6 = v6;
    // A portal means `site` for the family behind it. NM updates a device's value and the
    // global one in separate signals, so for a moment the global value may still say portal
    // while the device already says full: with no family at `site`, the portal's family is
    // not known, and every `online` one is capped rather than passed on with a portal.
    if portal && v4 != Some(Level::Site) && v6 != Some(Level::Site) {
        for family in [&mut v.ipv4, &mut v.ipv6] {
            if *family == Some(Level::Online) {
                *family = Some(Level::Site);
            }
        }
    }
    v.captive_portal = if portal {
        Some(true)
    } else if r.connectivity == 0 {
        None
    } else {
        Some(false)
    };
    v
}

/// Whether an `NM_STATE` says no connection is up: asleep (10), disconnected (20),
/// disconnecting (30) or connecting (40; NM's global state is the best of its connections, so
/// "connecting" means none is connected yet). Unknown (0) says nothing.
fn no_connection(state: u32) -> bool {
    matches!(state, 10 | 20 | 30 | 40)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn reading(connectivity: u32, devices: Vec<(u32, u32)>) -> Reading {
        Reading {
            connectivity,
            state: 70,
            metered: 0,
            primary_type: "802-3-ethernet".into(),
            check_enabled: true,
            check_available: true,
            devices,
        }
    }

    #[test]
    fn connectivity_table() {
        // (global, devices (ip4, ip6), expected ipv4, ipv6, captive_portal)
        #[allow(clippy::type_complexity)]
        let table: Vec<(u32, Vec<(u32, u32)>, Option<Level>, Option<Level>, Option<bool>)> = vec![
            (4, vec![], Some(Online), Some(Online), Some(false)),
            (2, vec![], Some(Site), Some(Site), Some(true)),
            (3, vec![], Some(Site), Some(Site), Some(false)),
            (1, vec![], Some(Disconnected), Some(Disconnected), Some(false)),
            (0, vec![], None, None, None),
            // Per family from the primary connection's device: IPv6 off there is "none".
            (4, vec![(4, 1)], Some(Online), Some(Disconnected), Some(false)),
            (2, vec![(2, 1)], Some(Site), Some(Disconnected), Some(true)),
            (3, vec![(3, 0)], Some(Site), None, Some(false)),
            // A portal on IPv6 only is still a portal; IPv4 full stays online.
            (4, vec![(4, 2)], Some(Online), Some(Site), Some(true)),
            // The global value still says portal while the device already says full (one
            // signal each): site, never online with a portal.
            (2, vec![(4, 1)], Some(Site), Some(Disconnected), Some(true)),
            // Two devices (e.g. a VPN over Wi-Fi): the best per family.
            (4, vec![(3, 1), (4, 0)], Some(Online), Some(Disconnected), Some(false)),
            // Device values not known yet (0) while the global one is: no family opinion.
            (4, vec![(0, 0)], None, None, Some(false)),
        ];
        for (i, (global, devices, v4, v6, portal)) in table.into_iter().enumerate() {
            let v = verdict(&reading(global, devices));
            assert_eq!((v.ipv4, v.ipv6, v.captive_portal), (v4, v6, portal), "row {i}");
            assert_eq!(v.source, Source::NetworkManager);
            assert_eq!(v.note, None, "row {i}");
        }
    }

    #[test]
    fn no_connection_state_is_disconnected_whatever_the_older_values_say() {
        for state in [10, 20, 30, 40] {
            // The disconnect as NM signals it: State first, the primary connection (and so the
            // device values) cleared next, the global Connectivity last.
            for devices in [vec![(4, 1)], vec![]] {
                let v = verdict(&Reading { state, ..reading(4, devices.clone()) });
                let want = (Some(Disconnected), Some(Disconnected), Some(false));
                assert_eq!((v.ipv4, v.ipv6, v.captive_portal), want, "state {state} devices {devices:?}");
            }
        }
        for state in [0, 50, 60, 70] {
            assert_eq!(verdict(&Reading { state, ..reading(4, vec![(4, 1)]) }).ipv4, Some(Online), "state {state}");
        }
    }

    #[test]
    fn check_disabled_gives_no_levels_and_says_so() {
        let r = Reading { check_enabled: false, metered: 1, ..reading(4, vec![(4, 1)]) };
        let v = verdict(&r);
        assert_eq!((v.ipv4, v.ipv6, v.captive_portal), (None, None, None));
        assert_eq!((v.metered, v.transport), (Some(true), Some(Transport::Ethernet)));
        assert!(v.note.as_deref().unwrap().contains("check is disabled"), "{v:?}");
        let r = Reading { check_available: false, ..reading(4, vec![]) };
        assert!(verdict(&r).note.unwrap().contains("not configured"));
    }

    #[test]
    fn metered_and_transport_tables() {
        for (value, expected) in [(0, None), (1, Some(true)), (2, Some(false)), (3, Some(true)), (4, Some(false))] {
            assert_eq!(verdict(&Reading { metered: value, ..reading(4, vec![]) }).metered, expected, "{value}");
        }
        for (ty, expected) in [
            ("802-11-wireless", Some(Transport::Wifi)),
            ("802-3-ethernet", Some(Transport::Ethernet)),
            ("gsm", Some(Transport::Cellular)),
            ("cdma", Some(Transport::Cellular)),
            ("bluetooth", Some(Transport::Bluetooth)),
            ("vpn", Some(Transport::Vpn)),
            ("wireguard", Some(Transport::Vpn)),
            ("infiniband", Some(Transport::Other)),
            ("", None),
        ] {
            assert_eq!(transport(ty), expected, "{ty}");
        }
    }
}
