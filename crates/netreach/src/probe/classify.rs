//! What an HTTP reply means for connectivity (pure: bytes in, verdict out; no I/O); the table
//! is on [`Outcome`].

use super::http::{dechunk, parse_head, Framing, Head};
use super::url::HttpUrl;

/// Most bytes read from one reply, head and body together.
pub(crate) const READ_CAP: usize = 64 * 1024;

/// What a probe concluded about one address family. `Display` quotes the portal's URL and
/// reasons verbatim, not escaped for a terminal: a portal chooses its `Location` (see
/// [the crate documentation](crate#strings-from-outside-are-kept-exact)).
///
/// | reply                                                   | outcome                          |
/// |---------------------------------------------------------|----------------------------------|
/// | the expected status (and body, when one is expected)    | `online`                         |
/// | any redirect (3xx)                                      | `captive_portal`, URL = Location |
/// | 511 Network Authentication Required (RFC 6585)          | `captive_portal`, URL = Location |
/// | another 2xx, or the expected status with another body   | `captive_portal` (a login page)  |
/// | any other status (4xx, 5xx), `101 Switching Protocols`  | `limited`                        |
/// | not HTTP, a head reaching the 64 KiB read cap           | `limited`                        |
/// | ambiguous framing (RFC 9112 6.3), a broken chunk        | `limited`                        |
/// | the expected body cut by the read cap before compared   | `limited`                        |
///
/// Interim replies (`100 Continue`, `103 Early Hints`, any 1xx but 101) before the final one
/// are skipped (RFC 9110 15.2). A `Location` counts only on a redirect or a 511.
///
/// A body is expected when the endpoint names one: it must start with the expected text
/// (leading whitespace ignored), as NetworkManager checks; an empty expected text means an
/// empty body. Redirects are never followed: the redirect itself is the evidence.
///
/// ```
/// use netreach::probe::Outcome;
/// let o = Outcome::CaptivePortal { url: Some("http://192.0.2.1/login".into()) };
/// assert_eq!(o.to_string(), "captive portal (http://192.0.2.1/login)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint gave the expected reply: the internet answers.
    Online,
    /// Something in the way answered instead: a redirect, a login page, 511.
    CaptivePortal {
        /// Where the portal sent us (`Location`), when it said.
        url: Option<String>,
    },
    /// No usable answer: refused, reset, timed out, not HTTP.
    Limited {
        /// Why, in words.
        reason: String,
    },
    /// The endpoint's name did not resolve (failed or timed out): nothing was sent over HTTP.
    /// Limits the family like [`Outcome::Limited`], but names the resolver as the cause.
    Unresolved {
        /// The resolver's error, in words.
        reason: String,
    },
    /// This family was not probed (no address of it for the endpoint, or asked not to).
    NotProbed {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Online => f.write_str("online"),
            Outcome::CaptivePortal { url: Some(url) } => write!(f, "captive portal ({url})"),
            Outcome::CaptivePortal { url: None } => f.write_str("captive portal"),
            Outcome::Limited { reason } => write!(f, "limited: {reason}"),
            Outcome::Unresolved { reason } => write!(f, "limited: {reason}"),
            Outcome::NotProbed { reason } => write!(f, "not probed: {reason}"),
        }
    }
}

pub(crate) fn limited(reason: impl Into<String>) -> Outcome {
    Outcome::Limited { reason: reason.into() }
}

/// What a reply must look like to count as online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    pub(crate) status: u16,
    /// `None`: any body.
    pub(crate) body: Option<String>,
}

/// Judges a reply from its first bytes: `None` while more are needed. `buf` holds the reply
/// so far (at most [`READ_CAP`] bytes: a full buffer is all there will be); `eof` says the
/// server has closed. Interim replies are skipped and framing errors refused ([`super::http`]).
pub(crate) fn judge_reply(expect: &Expect, url: &HttpUrl, buf: &[u8], eof: bool) -> Option<Outcome> {
    let full = buf.len() >= READ_CAP;
    let cap = READ_CAP / 1024;
    let head = match parse_head(buf) {
        Err(reason) => return Some(limited(reason)),
        // A head that fills the read cap left no room for a body and is as good as cut: no
        // verdict rests on it.
        Ok(Some(head)) if head.len >= READ_CAP => {
            return Some(limited(format!("the reply's head reaches the {cap} KiB read cap")))
        }
        Ok(Some(head)) => head,
        Ok(None) if full => return Some(limited(format!("the reply's head is larger than {cap} KiB"))),
        Ok(None) if eof && buf.is_empty() => return Some(limited("the server closed the connection without a reply")),
        Ok(None) if eof => return Some(limited("the reply ended inside its head")),
        Ok(None) => return None,
    };
    if let Step::Done(outcome) = judge_head(expect, &head, url) {
        return Some(outcome);
    }
    let raw = &buf[head.len..];
    let (body, complete) = match head.framing {
        Framing::Empty => (Vec::new(), true),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            (raw[..n.min(raw.len())].to_vec(), raw.len() >= n)
        }
        Framing::Chunked => match dechunk(raw) {
            Ok(decoded) => decoded,
            Err(reason) => return Some(limited(reason)),
        },
        Framing::UntilClose => (raw.to_vec(), eof),
    };
    match (complete, full, eof) {
        (true, _, _) => Some(judge_body(expect, &body, false)),
        (false, true, _) => Some(judge_body(expect, &body, true)),
        (false, false, true) => Some(limited("the reply ended before its body was complete")),
        (false, false, false) => None,
    }
}

/// The next step after the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Done(Outcome),
    /// The verdict depends on the body.
    ReadBody,
}

/// Judges a response head (see the module table).
pub(crate) fn judge_head(expect: &Expect, head: &Head, url: &HttpUrl) -> Step {
    let portal = |head: &Head| Outcome::CaptivePortal { url: head.location.as_deref().map(|l| url.resolve(l)) };
    match head.status {
        s if s == expect.status && expect.body.is_none() => Step::Done(Outcome::Online),
        s if s == expect.status => Step::ReadBody,
        300..=399 | 511 => Step::Done(portal(head)),
        // A Location on any other status is no redirect: ignored.
        200..=299 => Step::Done(Outcome::CaptivePortal { url: None }),
        s => Step::Done(limited(format!("unexpected HTTP status {s}"))),
    }
}

/// Judges the body of a reply with the expected status; `cut`: the read cap ended it early,
/// so a body that so far agrees with the expected text without containing all of it proves
/// nothing either way.
pub(crate) fn judge_body(expect: &Expect, body: &[u8], cut: bool) -> Outcome {
    let want = expect.body.as_deref().unwrap_or_default().as_bytes();
    let got = body.trim_ascii_start();
    if cut && want.starts_with(got) && (want.is_empty() || got.len() < want.len()) {
        return limited(format!(
            "the reply's body was cut at the {} KiB read cap before it could be compared",
            READ_CAP / 1024
        ));
    }
    let matches = if want.is_empty() { got.is_empty() } else { got.starts_with(want) };
    if matches {
        Outcome::Online
    } else {
        Outcome::CaptivePortal { url: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> HttpUrl {
        HttpUrl::parse("http://192.0.2.1:8080/check").unwrap()
    }

    /// A whole reply, the server having closed after it.
    fn judge(expect: &Expect, reply: &[u8]) -> Outcome {
        judge_reply(expect, &url(), reply, true).expect("a closed reply is always judged")
    }

    fn e204() -> Expect {
        Expect { status: 204, body: None }
    }

    fn nm() -> Expect {
        Expect { status: 200, body: Some("NetworkManager is online".into()) }
    }

    #[test]
    fn replies_table() {
        let (e204, nm) = (e204(), nm());
        let empty = Expect { status: 200, body: Some(String::new()) };
        let portal = |u: &str| Outcome::CaptivePortal { url: Some(u.into()) };
        let login = Outcome::CaptivePortal { url: None };
        let table: Vec<(&str, &Expect, &[u8], Outcome)> = vec![
            ("204 as expected", &e204, b"HTTP/1.1 204 No Content\r\n\r\n", Outcome::Online),
            ("HTTP/1.0 works", &e204, b"HTTP/1.0 204 No Content\r\n\r\n", Outcome::Online),
            (
                "nm body",
                &nm,
                b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nNetworkManager is online\n",
                Outcome::Online,
            ),
            (
                "nm body chunked",
                &nm,
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nNetworkM\r\n10\r\nanager is online\r\n0\r\n\r\n",
                Outcome::Online,
            ),
            ("wrong body", &nm, b"HTTP/1.1 200 OK\r\n\r\nWelcome to Hotel WiFi", login.clone()),
            ("empty expected, got some", &empty, b"HTTP/1.1 200 OK\r\n\r\n<html>", login.clone()),
            ("empty expected, got none", &empty, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Outcome::Online),
            (
                "302 with absolute Location",
                &e204,
                b"HTTP/1.1 302 Found\r\nLocation: http://portal.test/login\r\n\r\n",
                portal("http://portal.test/login"),
            ),
            (
                "307 with relative Location",
                &e204,
                b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /login\r\n\r\n",
                portal("http://192.0.2.1:8080/login"),
            ),
            ("301 without Location", &e204, b"HTTP/1.1 301 Moved\r\n\r\n", login.clone()),
            (
                "302 naming two portals",
                &e204,
                b"HTTP/1.1 302 Found\r\nLocation: http://a.test/\r\nLocation: http://b.test/\r\n\r\n",
                login.clone(),
            ),
            (
                "redirect to itself is not followed",
                &e204,
                b"HTTP/1.1 302 Found\r\nLocation: /check\r\n\r\n",
                portal("http://192.0.2.1:8080/check"),
            ),
            ("200 login page instead of 204", &e204, b"HTTP/1.1 200 OK\r\n\r\n<form>login</form>", login.clone()),
            (
                "Location on a 200 is no redirect",
                &e204,
                b"HTTP/1.1 200 OK\r\nLocation: http://x.test/\r\nContent-Length: 0\r\n\r\n",
                login.clone(),
            ),
            (
                "Location on the expected status",
                &e204,
                b"HTTP/1.1 204 No Content\r\nLocation: http://x.test/\r\n\r\n",
                Outcome::Online,
            ),
            (
                "Location on a 404",
                &e204,
                b"HTTP/1.1 404 Not Found\r\nLocation: http://x.test/\r\n\r\n",
                limited("unexpected HTTP status 404"),
            ),
            (
                "511",
                &e204,
                b"HTTP/1.1 511 Network Authentication Required\r\nLocation: http://portal.test/\r\n\r\n",
                portal("http://portal.test/"),
            ),
            ("404", &e204, b"HTTP/1.1 404 Not Found\r\n\r\n", limited("unexpected HTTP status 404")),
            ("503", &nm, b"HTTP/1.1 503 Busy\r\n\r\n", limited("unexpected HTTP status 503")),
            ("100 then 204", &e204, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", Outcome::Online),
            (
                "103 then the expected body",
                &nm,
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\nNetworkManager is online",
                Outcome::Online,
            ),
            ("100 then a portal", &e204, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /p\r\n\r\n", portal("http://192.0.2.1:8080/p")),
            ("100 and nothing after", &e204, b"HTTP/1.1 100 Continue\r\n\r\n", limited("the reply ended inside its head")),
            ("nothing", &e204, b"", limited("the server closed the connection without a reply")),
            ("body cut by the close", &nm, b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\nNetwork", limited("the reply ended before its body was complete")),
        ];
        for (name, expect, reply, want) in table {
            assert_eq!(judge(expect, reply), want, "{name}");
        }
    }

    /// RFC 9112 6.3: a reply whose length two readers could disagree on is unusable, whatever
    /// its status says; duplicates of one value are fine.
    #[test]
    fn ambiguous_framing_is_never_online() {
        let table: Vec<(&[u8], &str)> = vec![
            (
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nContent-Length: 7\r\n\r\n",
                "conflicting Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Length: 30\r\n\r\nNetworkManager is online",
                "conflicting",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nTransfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding"),
            (b"HTTP/1.1 204 No Content\r\nContent-Length: -1\r\n\r\n", "bad Content-Length '-1'"),
        ];
        for (reply, why) in table {
            for expect in [e204(), nm()] {
                let got = judge(&expect, reply);
                assert!(matches!(&got, Outcome::Limited { reason } if reason.contains(why)), "{got:?}");
            }
        }
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\nContent-Length: 24\r\n\r\nNetworkManager is online";
        assert_eq!(judge(&nm(), twice), Outcome::Online);
    }

    /// The same reply arriving in two reads, split anywhere: no verdict before its deciding
    /// byte, then the verdict of the whole.
    #[test]
    fn replies_split_across_reads() {
        let replies: Vec<(Expect, &[u8])> = vec![
            (e204(), b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
            (nm(), b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\nNetworkManager is online"),
            (nm(), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nNetworkM\r\n10\r\nanager is online\r\n0\r\n\r\n"),
            (e204(), b"HTTP/1.1 302 Found\r\nLocation: /p\r\nContent-Length: 0\r\n\r\n"),
        ];
        for (expect, reply) in replies {
            let whole = judge_reply(&expect, &url(), reply, false).expect("a whole reply is judged");
            for cut in 0..reply.len() {
                if let Some(early) = judge_reply(&expect, &url(), &reply[..cut], false) {
                    assert_eq!(early, whole, "cut at {cut} of {}", String::from_utf8_lossy(reply));
                }
            }
        }
    }

    /// The read cap: a head that reaches it is `limited`, never a portal (nor online); a body
    /// cut by it before it could be compared proves nothing.
    #[test]
    fn the_read_cap() {
        let filled = |status: &str, head_len: usize, body: &str| {
            let start = format!("HTTP/1.1 {status}\r\n");
            let pad = head_len - start.len() - "X: \r\n\r\n".len();
            let mut reply = format!("{start}X: {}\r\n\r\n{body}", "a".repeat(pad)).into_bytes();
            assert_eq!(reply.len(), head_len + body.len());
            reply.truncate(READ_CAP);
            reply
        };
        let reason = |o: Outcome| match o {
            Outcome::Limited { reason } => reason,
            other => panic!("not limited: {other:?}"),
        };
        for status in ["200 OK", "302 Found", "204 No Content"] {
            let reply = filled(status, READ_CAP, "");
            assert!(reason(judge(&e204(), &reply)).contains("reaches the 64 KiB read cap"), "{status}");
            let over = filled(status, READ_CAP + 10, "");
            assert!(reason(judge(&e204(), &over)).contains("larger than 64 KiB"), "{status}");
        }
        let floods = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(READ_CAP / 25 + 1);
        assert!(reason(judge(&e204(), &floods[..READ_CAP])).contains("larger than"));
        // The expected body, cut at the cap before it could be compared: not a login page.
        let reply = filled("200 OK", READ_CAP - 7, "NetworkManager is online");
        assert!(reason(judge_reply(&nm(), &url(), &reply, false).unwrap()).contains("cut at the 64 KiB"));
        // Cut, but already different from the expected text: a login page.
        let reply = filled("200 OK", READ_CAP - 7, "<html>login");
        assert_eq!(judge_reply(&nm(), &url(), &reply, false), Some(Outcome::CaptivePortal { url: None }));
        // Cut after the expected text: online (the body only has to start with it).
        let reply = filled("200 OK", READ_CAP - 30, "NetworkManager is online and more");
        assert_eq!(judge_reply(&nm(), &url(), &reply, false), Some(Outcome::Online));
        // A large head that still fits is judged as usual.
        assert_eq!(judge(&e204(), &filled("302 Found", READ_CAP - 1000, "")), Outcome::CaptivePortal { url: None });
    }
}
