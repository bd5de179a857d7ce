//! The status's JSON, byte for byte, and its accessors.

use super::*;

fn status(state: PathState) -> String {
    let status = PathStatus { local: "192.0.2.10".parse().unwrap(), remote: "198.51.100.1".parse().unwrap(), state };
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
        assert_no_duplicate_keys(&got);
    }
}

/// Fails when a JSON object (at any depth) has a key twice; serde_json's `Value` would
/// silently keep the last one, so the keys are counted while parsing.
fn assert_no_duplicate_keys(json: &str) {
    struct Unique;
    impl<'de> serde::de::Visitor<'de> for Unique {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
                }
                map.next_value_seed(UniqueSeed)?;
            }
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(UniqueSeed)?.is_some() {}
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    struct UniqueSeed;
    impl<'de> serde::de::DeserializeSeed<'de> for UniqueSeed {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(Unique)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    serde::de::DeserializeSeed::deserialize(UniqueSeed, &mut de).unwrap_or_else(|e| panic!("{e}: {json}"));
}

#[test]
fn duplicate_keys_are_caught() {
    let caught = std::panic::catch_unwind(|| assert_no_duplicate_keys(r#"{"a":{"b":1,"b":2}}"#));
    assert!(caught.is_err(), "the checker itself must see a nested duplicate");
}

#[test]
fn event_json_is_unchanged() {
    let status = PathStatus {
        local: "192.0.2.10".parse().unwrap(),
        remote: "198.51.100.1".parse().unwrap(),
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
    let up = PathStatus { local, remote, state: PathState::Reachable { interface: "eth0".into(), same_subnet: true } };
    assert!(up.is_reachable() && up.same_subnet());
    assert_eq!((up.reason(), up.interface()), (None, Some("eth0")));
    let reason = Unreachable::LocalAddressGone;
    let gone =
        PathStatus { local, remote, state: PathState::Unreachable { reason, interface: None, same_subnet: false } };
    assert!(!gone.is_reachable());
    assert_eq!((gone.reason(), gone.interface()), (Some(&Unreachable::LocalAddressGone), None));
}
