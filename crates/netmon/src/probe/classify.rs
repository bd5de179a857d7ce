//! What an HTTP reply means for connectivity (pure: bytes in, verdict out; no I/O).
//!
//! | reply                                                   | outcome                          |
//! |---------------------------------------------------------|----------------------------------|
//! | the expected status (and body, when one is expected)    | `online`                         |
//! | any redirect (3xx)                                      | `captive_portal`, URL = Location |
//! | 511 Network Authentication Required (RFC 6585)          | `captive_portal`, URL = Location |
//! | another 2xx, or the expected status with another body   | `captive_portal` (a login page)  |
//! | any other status (1xx, 4xx, 5xx)                        | `limited`                        |
//! | not HTTP, a head over the size cap, a broken chunk size | `limited`                        |
//!
//! A body is expected when the endpoint names one: it must start with the expected text
//! (leading whitespace ignored), as NetworkManager checks; an empty expected text means an
//! empty body. Redirects are never followed: the redirect itself is the evidence.

use super::url::HttpUrl;

/// What a probe concluded about one address family. `Display` quotes the portal's URL and
/// reasons verbatim, not escaped for a terminal: a portal chooses its `Location` (see
/// [the crate documentation](crate#strings-from-outside-are-kept-exact)).
///
/// ```
/// use netmon::probe::Outcome;
/// let o = Outcome::CaptivePortal { url: Some("http://192.0.2.1/login".into()) };
/// assert_eq!(o.to_string(), "captive portal (http://192.0.2.1/login)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Outcome {
    /// The endpoint gave the expected reply: the internet answers.
    Online,
    /// Something in the way answered instead: a redirect, a login page, 511.
    CaptivePortal {
        /// Where the portal sent us (`Location`), when it said.
        url: Option<String>,
    },
    /// No usable answer: name resolution failed, refused, reset, timed out, not HTTP.
    Limited {
        /// Why, in words.
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

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) framing: Framing,
    /// Bytes of the head, including the blank line.
    pub(crate) len: usize,
}

/// Header lines accepted in one response; more is not a connectivity check's reply.
const MAX_HEADERS: usize = 100;

/// Parses the start of a response: `Ok(None)` when more bytes are needed.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!("the reply has more than {MAX_HEADERS} header lines"))
        }
        Err(e) => return Err(format!("the reply is not HTTP ({e})")),
    };
    let status = response.code.unwrap_or_default();
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(length) = header("content-length") {
        Framing::Length(length.parse().map_err(|_| format!("bad Content-Length '{length}'"))?)
    } else {
        Framing::UntilClose
    };
    // A Location is shown to people: keep it printable and of sane length.
    let location = header("location").filter(|l| !l.is_empty()).map(|l| l.chars().take(2048).collect());
    Ok(Some(Head { status, location, framing, len }))
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
        200..=299 => Step::Done(Outcome::CaptivePortal { url: None }),
        s => Step::Done(limited(format!("unexpected HTTP status {s}"))),
    }
}

/// Judges the (possibly truncated at the size cap) body of a reply with the expected status.
pub(crate) fn judge_body(expect: &Expect, body: &[u8]) -> Outcome {
    let want = expect.body.as_deref().unwrap_or_default().as_bytes();
    let got = body.trim_ascii_start();
    let matches = if want.is_empty() { got.is_empty() } else { got.starts_with(want) };
    if matches {
        Outcome::Online
    } else {
        Outcome::CaptivePortal { url: None }
    }
}

/// Decodes a chunked body: `(body, complete)`; incomplete when the terminal chunk is not in
/// `raw` yet. Trailers are ignored.
pub(crate) fn dechunk(mut raw: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let mut body = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(raw) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok((body, false)),
            Err(_) => return Err("the reply has a malformed chunk size".into()),
        };
        if size == 0 {
            return Ok((body, true));
        }
        let data = &raw[start..];
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if data.len() < size {
            body.extend_from_slice(data);
            return Ok((body, false));
        }
        body.extend_from_slice(&data[..size]);
        raw = data[size..].strip_prefix(b"\r\n").unwrap_or(&data[size..]);
        if raw.is_empty() {
            return Ok((body, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> HttpUrl {
        HttpUrl::parse("http://192.0.2.1:8080/check").unwrap()
    }

    /// Runs head then (when asked) body judgment on a whole reply, as the I/O side does.
    fn judge(expect: &Expect, reply: &[u8]) -> Outcome {
        let head = match parse_head(reply) {
            Ok(Some(head)) => head,
            Ok(None) => return limited("incomplete"),
            Err(e) => return limited(e),
        };
        match judge_head(expect, &head, &url()) {
            Step::Done(outcome) => outcome,
            Step::ReadBody => {
                let raw = &reply[head.len..];
                let body = match head.framing {
                    Framing::Chunked => dechunk(raw).unwrap().0,
                    _ => raw.to_vec(),
                };
                judge_body(expect, &body)
            }
        }
    }

    #[test]
    fn replies_table() {
        let e204 = Expect { status: 204, body: None };
        let nm = Expect { status: 200, body: Some("NetworkManager is online".into()) };
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
            ("301 without Location", &e204, b"HTTP/1.1 301 Moved\r\n\r\n", Outcome::CaptivePortal { url: None }),
            (
                "redirect to itself is not followed",
                &e204,
                b"HTTP/1.1 302 Found\r\nLocation: /check\r\n\r\n",
                portal("http://192.0.2.1:8080/check"),
            ),
            ("200 login page instead of 204", &e204, b"HTTP/1.1 200 OK\r\n\r\n<form>login</form>", login.clone()),
            (
                "511",
                &e204,
                b"HTTP/1.1 511 Network Authentication Required\r\nLocation: http://portal.test/\r\n\r\n",
                portal("http://portal.test/"),
            ),
            ("404", &e204, b"HTTP/1.1 404 Not Found\r\n\r\n", limited("unexpected HTTP status 404")),
            ("503", &nm, b"HTTP/1.1 503 Busy\r\n\r\n", limited("unexpected HTTP status 503")),
        ];
        for (name, expect, reply, want) in table {
            assert_eq!(judge(expect, reply), want, "{name}");
        }
    }

    #[test]
    fn heads_that_are_not_usable() {
        assert!(parse_head(b"SSH-2.0-OpenSSH_9.2\r\n").unwrap_err().contains("not HTTP"));
        assert!(parse_head(b"\x00\x01\x02garbage").unwrap_err().contains("not HTTP"));
        let many: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-Filler: a\r\n".repeat(200), b"\r\n"].concat();
        assert!(parse_head(&many).unwrap_err().contains("header lines"));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n").unwrap_err().contains("lots"));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nX-Half: ").unwrap(), None);
    }

    #[test]
    fn framing() {
        let f = |reply: &[u8]| parse_head(reply).unwrap().unwrap().framing;
        assert_eq!(f(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), Framing::Empty);
        assert_eq!(f(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), Framing::Length(5));
        assert_eq!(f(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), Framing::Chunked);
        assert_eq!(f(b"HTTP/1.1 200 OK\r\n\r\n"), Framing::UntilClose);
    }

    #[test]
    fn chunks() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n").unwrap(), (b"abc".to_vec(), true));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd").unwrap(), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b"3\r\nab").unwrap(), (b"ab".to_vec(), false));
        assert!(dechunk(b"zz\r\n").is_err());
    }
}
