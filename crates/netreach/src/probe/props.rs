//! Property tests: every parser of what a server or a user sends the probe (reply heads, chunk
//! sizes and bodies, `Location` values, probe URLs) takes arbitrary bytes without panicking,
//! gives a verdict from what it was given, and does work bounded by its input.

use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;

use super::classify::{judge_reply, Expect, Outcome, READ_CAP};
use super::http::{dechunk, parse_head};
use super::url::HttpUrl;

fn expect() -> impl Strategy<Value = Expect> {
    (prop_oneof![Just(200u16), Just(204), any::<u16>()], proptest::option::of(".{0,30}"))
        .prop_map(|(status, body)| Expect { status, body })
}

fn base() -> HttpUrl {
    HttpUrl::parse("http://[2001:db8::1]:8080/dir/check").unwrap()
}

/// Bytes that look like a reply often enough to reach the deep paths: a status line, header
/// lines mixing the framing headers with arbitrary values, a body of arbitrary bytes.
fn reply() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![Just(100u16), Just(101), Just(103), Just(200), Just(204), Just(302), 0u16..1000];
    let name = prop_oneof![
        Just("Content-Length"),
        Just("Transfer-Encoding"),
        Just("Location"),
        Just("X-Other"),
        Just("Bad Name"),
    ];
    let value = prop_oneof![
        Just(b"chunked".to_vec()),
        (0u64..100).prop_map(|n| n.to_string().into_bytes()),
        Just(b"5, 6".to_vec()),
        vec(any::<u8>(), 0..20),
    ];
    let chunk = prop_oneof![
        vec(any::<u8>(), 0..40),
        (0usize..20).prop_map(|n| format!("{n:x}\r\n{}\r\n", "a".repeat(n)).into_bytes()),
        Just(b"0\r\n\r\n".to_vec()),
    ];
    (status, vec((name, value), 0..6), vec(chunk, 0..4), any::<bool>()).prop_map(|(status, headers, body, interim)| {
        let mut out = Vec::new();
        if interim {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        out.extend_from_slice(format!("HTTP/1.1 {status:03} X\r\n").as_bytes());
        for (name, value) in headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        body.iter().for_each(|b| out.extend_from_slice(b));
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn heads_take_any_bytes(bytes in prop_oneof![vec(any::<u8>(), 0..600), reply()]) {
        if let Ok(Some(head)) = parse_head(&bytes) {
            prop_assert!(head.len > 0 && head.len <= bytes.len());
            prop_assert!(head.status < 100 || head.status >= 200, "an interim head is never final");
        }
    }

    #[test]
    fn chunked_bodies_take_any_bytes(bytes in vec(any::<u8>(), 0..600)) {
        if let Ok((body, _)) = dechunk(&bytes) {
            prop_assert!(body.len() <= bytes.len());
        }
    }

    /// Whatever the bytes: a verdict once the server closed or the cap is reached, and a
    /// verdict from a prefix is never revised by more bytes.
    #[test]
    fn replies_are_judged_once_and_for_good(
        expect in expect(),
        bytes in prop_oneof![vec(any::<u8>(), 0..600), reply()],
        cut in any::<prop::sample::Index>(),
    ) {
        let url = base();
        let whole = judge_reply(&expect, &url, &bytes, true);
        prop_assert!(whole.is_some(), "a closed reply is always judged");
        prop_assert!(!matches!(whole, Some(Outcome::NotProbed { .. })), "a reply is never unprobed");
        let open = judge_reply(&expect, &url, &bytes, false);
        if let Some(open) = &open {
            prop_assert_eq!(Some(open), whole.as_ref(), "the close changed a verdict already given");
        }
        let prefix = &bytes[..cut.index(bytes.len() + 1)];
        if let Some(early) = judge_reply(&expect, &url, prefix, false) {
            prop_assert_eq!(Some(early), open, "more bytes changed a verdict already given");
        }
    }

    #[test]
    fn full_buffers_are_always_judged(expect in expect(), seed in reply(), eof in any::<bool>()) {
        let bytes: Vec<u8> = seed.iter().chain(std::iter::repeat(&b'a')).take(READ_CAP).copied().collect();
        prop_assert!(judge_reply(&expect, &base(), &bytes, eof).is_some());
    }

    /// Probe URLs from users and `Location` values from servers: no panic; a parsed URL
    /// rebuilds to itself.
    #[test]
    fn urls_take_any_text(text in prop_oneof![".{0,80}", "(?s)http://.{0,40}", "[\\[\\]:/?#@0-9a-f.]{0,30}".prop_map(|s| format!("http://{s}"))]) {
        if let Ok(url) = HttpUrl::parse(&text) {
            prop_assert!(url.port != 0 && url.path.starts_with('/') && !url.host.is_empty());
            let rebuilt = HttpUrl::parse(&format!("http://{}{}", url.authority(), url.path));
            prop_assert_eq!(rebuilt.ok(), Some(url.clone()));
            let _ = url.resolve(&text);
        }
        let _ = base().resolve(&text);
    }
}

/// The worst reply for work per byte: the whole cap of back-to-back interim heads, judged
/// after every 1-byte read (as a trickling server forces). Quadratic in the cap at worst, so
/// bounded; measured to stay far under the probe's own timeouts.
#[test]
fn work_is_bounded_by_the_cap() {
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(READ_CAP / 25 + 1);
    let expect = Expect { status: 204, body: None };
    let start = Instant::now();
    for len in (0..=READ_CAP).step_by(256) {
        let _ = judge_reply(&expect, &base(), &interim[..len], false);
    }
    let chunks = b"1\r\na\r\n".repeat(READ_CAP / 6 + 1);
    let nm = Expect { status: 200, body: Some("NetworkManager is online".into()) };
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let reply: Vec<u8> = head.iter().chain(&chunks).take(READ_CAP).copied().collect();
    for len in (head.len()..=READ_CAP).step_by(256) {
        let _ = judge_reply(&nm, &base(), &reply[..len], false);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(20), "judging 2 x 256 growing buffers took {took:?}");
}
