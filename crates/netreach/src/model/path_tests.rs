//! The status's JSON, byte for byte, and its accessors.

use super::*;

fn status(state: PathState) -> String {
    let status = PathStatus {
        local: "192.0.2.10".parse().unwrap(),
        remote: "198.51.100.1".parse().unwrap(),
        options: Default::default(),
        state,
    };
    serde_json::to_string(&status).unwrap()
}

fn unreachable(reason: Unreachable, same_subnet: bool) -> String {
    let interface = (reason != Unreachable::LocalAddressGone).then(|| Arc::from("eth0"));
    status(PathState::Unreachable { reason, interface, same_subnet })
}

/// The JSON of every shape, byte for byte as printed before the status became an enum.
/// Only the reasons naming the interface differ: they printed `"interface"` twice.
#[test]
fn json_is_unchanged() {
    let ends = r#"{"local":"192.0.2.10","remote":"198.51.100.1","#;
    let eth0 = || Arc::<str>::from("eth0");
    let cases = [
        (
            status(PathState::Reachable { interface: eth0(), same_subnet: false }),
            r#""reachable":true,"interface":"eth0","same_subnet":false}"#,
        ),
        (
            status(PathState::Reachable { interface: eth0(), same_subnet: true }),
            r#""reachable":true,"interface":"eth0","same_subnet":true}"#,
        ),
        (
            unreachable(Unreachable::LocalAddressGone, false),
            r#""reachable":false,"reason":"local_address_gone","interface":null,"same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::LocalAddressDadFailed, false),
            r#""reachable":false,"reason":"local_address_dad_failed","interface":"eth0","same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::LocalAddressTentative, true),
            r#""reachable":false,"reason":"local_address_tentative","interface":"eth0","same_subnet":true}"#,
        ),
        (
            unreachable(Unreachable::InterfaceDown { interface: eth0() }, false),
            r#""reachable":false,"reason":"interface_down","interface":"eth0","same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::NoCarrier { interface: eth0() }, false),
            r#""reachable":false,"reason":"no_carrier","interface":"eth0","same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::NoRoute, false),
            r#""reachable":false,"reason":"no_route","interface":"eth0","same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::RouteViaOtherInterface { expected: eth0(), actual: "wlan0".into() }, false),
            r#""reachable":false,"reason":"route_via_other_interface","expected":"eth0","actual":"wlan0","interface":"eth0","same_subnet":false}"#,
        ),
        (
            unreachable(Unreachable::NoConnectivity { interface: eth0() }, true),
            r#""reachable":false,"reason":"no_connectivity","interface":"eth0","same_subnet":true}"#,
        ),
        (
            unreachable(Unreachable::LookupFailed { message: "boom \"x\"".into() }, false),
            r#""reachable":false,"reason":"lookup_failed","message":"boom \"x\"","interface":"eth0","same_subnet":false}"#,
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, format!("{ends}{want}"));
        #[cfg(target_os = "linux")] // testns, where the checker lives, is a Linux-only dev-dependency
        testns::kit::assert_json_keys_unique(&got);
    }
}

#[test]
fn mark_and_uid_are_shown_when_set() {
    let mut status = PathStatus {
        local: "192.0.2.10".parse().unwrap(),
        remote: "198.51.100.1".parse().unwrap(),
        options: PathOptions::new().mark(7).uid(1000),
        state: PathState::Unreachable {
            reason: Unreachable::NoCarrier { interface: "eth0".into() },
            interface: Some("eth0".into()),
            same_subnet: false,
        },
    };
    let got = serde_json::to_string(&status).unwrap();
    assert_eq!(
        got,
        r#"{"local":"192.0.2.10","remote":"198.51.100.1","mark":7,"uid":1000,"reachable":false,"reason":"no_carrier","interface":"eth0","same_subnet":false}"#
    );
    #[cfg(target_os = "linux")]
    testns::kit::assert_json_keys_unique(&got);
    status.options = PathOptions::new().uid(0);
    assert!(serde_json::to_string(&status).unwrap().contains(r#""remote":"198.51.100.1","uid":0,"reachable""#));
}

#[test]
fn event_json_is_unchanged() {
    let status = PathStatus {
        local: "192.0.2.10".parse().unwrap(),
        remote: "198.51.100.1".parse().unwrap(),
        options: Default::default(),
        state: PathState::Reachable { interface: "eth0".into(), same_subnet: false },
    };
    let at = |kind| PathEvent { timestamp: std::time::UNIX_EPOCH, kind };
    assert_eq!(
        serde_json::to_string(&at(PathEventKind::Changed { status })).unwrap(),
        r#"{"timestamp":"1970-01-01T00:00:00.000000Z","type":"path_changed","status":{"local":"192.0.2.10","remote":"198.51.100.1","reachable":true,"interface":"eth0","same_subnet":false}}"#
    );
    assert_eq!(
        serde_json::to_string(&at(PathEventKind::Lagged { missed: 3 })).unwrap(),
        r#"{"timestamp":"1970-01-01T00:00:00.000000Z","type":"lagged","missed":3}"#
    );
}

#[test]
fn accessors_follow_the_state() {
    let (local, remote) = ("192.0.2.10".parse().unwrap(), "198.51.100.1".parse().unwrap());
    let up = PathStatus {
        local,
        remote,
        options: Default::default(),
        state: PathState::Reachable { interface: "eth0".into(), same_subnet: true },
    };
    assert!(up.is_reachable() && up.same_subnet());
    assert_eq!((up.reason(), up.interface()), (None, Some("eth0")));
    let reason = Unreachable::LocalAddressGone;
    let gone = PathStatus {
        local,
        remote,
        options: Default::default(),
        state: PathState::Unreachable { reason, interface: None, same_subnet: false },
    };
    assert!(!gone.is_reachable());
    assert_eq!((gone.reason(), gone.interface()), (Some(&Unreachable::LocalAddressGone), None));
}
