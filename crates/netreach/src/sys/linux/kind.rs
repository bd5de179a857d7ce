//! Interface kind from what the kernel says about a link, plus sysfs hints for hardware.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use netlink_packet_route::link::{InfoKind, LinkLayerType};

use crate::model::InterfaceKind;

/// What sysfs adds for links the kernel's link info does not name (hardware drivers register
/// no `rtnl_link_ops`, so Wi-Fi, WWAN and Bluetooth PAN all look like plain Ethernet).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SysfsHints {
    /// `DEVTYPE=` from `/sys/class/net/NAME/uevent` (`wlan`, `wwan`, `bluetooth`, ...).
    pub devtype: Option<String>,
    /// `/sys/class/net/NAME/wireless` or `phy80211` exists.
    pub wireless: bool,
}

/// Reads the hints for `name`, but only if sysfs shows the same link (`ifindex` matches):
/// sysfs shows the namespace of whoever mounted it, which may not be the one monitored.
/// `name` is the kernel's bytes: a name that is not UTF-8 has a directory of that exact name.
pub(crate) fn sysfs_hints(name: &[u8], index: u32) -> Option<SysfsHints> {
    if name.is_empty() || name.contains(&b'/') || name.starts_with(b".") {
        return None;
    }
    let dir = Path::new("/sys/class/net").join(std::ffi::OsStr::from_bytes(name));
    let ifindex = std::fs::read_to_string(dir.join("ifindex")).ok()?;
    if ifindex.trim().parse::<u32>().ok()? != index {
        return None;
    }
    let devtype = std::fs::read_to_string(dir.join("uevent"))
        .ok()
        .and_then(|u| u.lines().find_map(|l| l.strip_prefix("DEVTYPE=").map(str::to_owned)));
    let wireless = dir.join("wireless").exists() || dir.join("phy80211").exists();
    Some(SysfsHints { devtype, wireless })
}

/// Classifies a link. `info_kind` is the `IFLA_INFO_KIND` the kernel reports for software
/// links; `hints` only matter when it is absent.
pub(crate) fn classify(
    link_type: LinkLayerType,
    info_kind: Option<&InfoKind>,
    hints: Option<&SysfsHints>,
) -> InterfaceKind {
    if link_type == LinkLayerType::Loopback {
        return InterfaceKind::Loopback;
    }
    if let Some(kind) = info_kind {
        return match kind {
            InfoKind::Veth => InterfaceKind::Veth,
            InfoKind::Bridge => InterfaceKind::Bridge,
            InfoKind::Tun => InterfaceKind::Tun,
            InfoKind::Wireguard | InfoKind::Xfrm | InfoKind::Vti | InfoKind::Vti6 => InterfaceKind::Vpn,
            InfoKind::Vlan
            | InfoKind::Bond
            | InfoKind::Team
            | InfoKind::MacVlan
            | InfoKind::MacVtap
            | InfoKind::IpVlan
            | InfoKind::IpVtap => InterfaceKind::Ethernet,
            InfoKind::Wwan | InfoKind::RmNet => InterfaceKind::Cellular,
            InfoKind::VirtWifi => InterfaceKind::Wifi,
            InfoKind::Other(name) if name == "ppp" => InterfaceKind::Ppp,
            _ => InterfaceKind::Virtual,
        };
    }
    let devtype = hints.and_then(|h| h.devtype.as_deref());
    match devtype {
        Some("wlan") => return InterfaceKind::Wifi,
        Some("wwan") => return InterfaceKind::Cellular,
        Some("bluetooth") => return InterfaceKind::Bluetooth,
        _ => {}
    }
    if hints.is_some_and(|h| h.wireless) {
        return InterfaceKind::Wifi;
    }
    match link_type {
        LinkLayerType::Ether => InterfaceKind::Ethernet,
        LinkLayerType::Ieee80211 | LinkLayerType::Ieee80211Radiotap | LinkLayerType::Ieee80211Prism => {
            InterfaceKind::Wifi
        }
        LinkLayerType::Ppp => InterfaceKind::Ppp,
        // Raw-IP links with no kind: WWAN modems (qmi_wwan, mhi) register this way.
        LinkLayerType::None if devtype.is_some() => InterfaceKind::Cellular,
        _ => InterfaceKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let hint = |devtype: Option<&str>, wireless| SysfsHints { devtype: devtype.map(str::to_owned), wireless };
        let cases: Vec<(LinkLayerType, Option<InfoKind>, Option<SysfsHints>, InterfaceKind)> = vec![
            (LinkLayerType::Loopback, None, None, InterfaceKind::Loopback),
            (LinkLayerType::Ether, Some(InfoKind::Veth), None, InterfaceKind::Veth),
            (LinkLayerType::Ether, Some(InfoKind::Bridge), None, InterfaceKind::Bridge),
            (LinkLayerType::None, Some(InfoKind::Tun), None, InterfaceKind::Tun),
            (LinkLayerType::Ether, Some(InfoKind::Tun), None, InterfaceKind::Tun),
            (LinkLayerType::None, Some(InfoKind::Wireguard), None, InterfaceKind::Vpn),
            (LinkLayerType::Ether, Some(InfoKind::Vlan), None, InterfaceKind::Ethernet),
            (LinkLayerType::Ether, Some(InfoKind::Dummy), None, InterfaceKind::Virtual),
            (LinkLayerType::Ether, Some(InfoKind::Vxlan), None, InterfaceKind::Virtual),
            (LinkLayerType::None, Some(InfoKind::Wwan), None, InterfaceKind::Cellular),
            (LinkLayerType::Ether, None, None, InterfaceKind::Ethernet),
            (LinkLayerType::Ether, None, Some(hint(Some("wlan"), true)), InterfaceKind::Wifi),
            (LinkLayerType::Ether, None, Some(hint(None, true)), InterfaceKind::Wifi),
            (LinkLayerType::Ether, None, Some(hint(Some("bluetooth"), false)), InterfaceKind::Bluetooth),
            (LinkLayerType::None, None, Some(hint(Some("wwan"), false)), InterfaceKind::Cellular),
            (LinkLayerType::Ppp, None, None, InterfaceKind::Ppp),
            (LinkLayerType::None, None, None, InterfaceKind::Other),
        ];
        for (link_type, kind, hints, want) in cases {
            assert_eq!(classify(link_type, kind.as_ref(), hints.as_ref()), want, "{link_type:?} {kind:?} {hints:?}");
        }
    }
}
