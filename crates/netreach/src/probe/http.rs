//! HTTP/1.x reply framing for the probe (pure: bytes in, structure out; no I/O).
//!
//! A probe reply comes from whatever is on the path, so every rule of RFC 9112 section 6.3
//! that makes a reply's length ambiguous is a refusal here, with the reason in words: a reply
//! whose framing two parties could read differently is not evidence of anything. Accepted:
//! repeated identical `Content-Length` values (RFC 9110 8.6), `Transfer-Encoding: chunked`,
//! interim 1xx replies before the final one (RFC 9110 15.2; skipped). Refused: conflicting or
//! malformed `Content-Length`, `Content-Length` together with `Transfer-Encoding`, any transfer
//! coding but a single `chunked` (the probe asks for none), `101 Switching Protocols` (the
//! probe asks for no upgrade), malformed chunk sizes and chunks not followed by CRLF.

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// A parsed final response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: u16,
    /// The redirect target, when the reply names exactly one.
    pub(crate) location: Option<String>,
    pub(crate) framing: Framing,
    /// Bytes from the start of the reply to the end of this head (blank line and any interim
    /// replies before it included): the body starts here.
    pub(crate) len: usize,
}

/// Header lines accepted in one response; more is not a connectivity check's reply.
pub(crate) const MAX_HEADERS: usize = 100;
/// Characters of a header value quoted in a reason or kept as a URL.
const MAX_QUOTED: usize = 64;
const MAX_LOCATION: usize = 2048;

/// Parses the final response head at the start of `buf`, skipping interim (1xx) replies:
/// `Ok(None)` when more bytes are needed, `Err(reason)` when the reply is unusable.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut start = 0;
    loop {
        let Some(head) = parse_one(&buf[start..])? else { return Ok(None) };
        match head.status {
            101 => return Err("the server switched protocols (101) instead of answering".into()),
            // Interim: the final reply follows (each head is at least a status line long, so
            // this ends within `buf`).
            100..=199 => start += head.len,
            _ => return Ok(Some(Head { len: start + head.len, ..head })),
        }
    }
}

/// Parses one response head (interim or final) at the start of `buf`.
fn parse_one(buf: &[u8]) -> Result<Option<Head>, String> {
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
    let values = |name: &'static str| {
        response.headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    };
    if (100..200).contains(&status) {
        // An interim reply has no body and says nothing about the final one's framing.
        return Ok(Some(Head { status, location: None, framing: Framing::Empty, len }));
    }
    let length = content_length(values("content-length"))?;
    let codings = list(values("transfer-encoding"));
    if !codings.is_empty() {
        if length.is_some() {
            return Err("the reply has both Transfer-Encoding and Content-Length (RFC 9112 6.3)".into());
        }
        if !matches!(codings.as_slice(), [only] if only.eq_ignore_ascii_case("chunked")) {
            let given = quote(codings.join(", ").as_bytes());
            return Err(format!("the reply's Transfer-Encoding '{given}' is not plain chunked, the only one allowed"));
        }
    }
    let framing = if status == 204 || status == 304 {
        Framing::Empty // whatever the headers say (RFC 9112 6.3, rule 1)
    } else if !codings.is_empty() {
        Framing::Chunked
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok(Some(Head { status, location: location(values("location")), framing, len }))
}

/// The comma-separated elements of every value of a header, trimmed, empty ones dropped.
fn list<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|e| String::from_utf8_lossy(e.trim_ascii()).into_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

/// The body length `Content-Length` gives: every element of every value must be digits and
/// all must agree (RFC 9110 8.6 allows repeats of one value, RFC 9112 6.3 refuses the rest).
fn content_length<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, String> {
    let mut found: Option<u64> = None;
    for element in values.flat_map(|v| v.split(|&b| b == b',')) {
        let element = element.trim_ascii();
        let bad = || format!("bad Content-Length '{}'", quote(element));
        // Digits only: `u64::from_str` would also take a sign.
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n: u64 = std::str::from_utf8(element).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        match found {
            Some(m) if m != n => {
                return Err(format!("the reply has conflicting Content-Length values ({m} and {n}; RFC 9112 6.3)"))
            }
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// The one redirect target the reply names; none when it names several different ones (which
/// one a client follows would be a guess) or an empty one.
fn location<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    let mut found: Option<&[u8]> = None;
    for value in values.map(<[u8]>::trim_ascii).filter(|v| !v.is_empty()) {
        match found {
            Some(f) if f != value => return None,
            _ => found = Some(value),
        }
    }
    // Shown to people: of sane length (escaping is the printer's job).
    found.map(|v| String::from_utf8_lossy(v).chars().take(MAX_LOCATION).collect())
}

/// A header value as quoted in a reason: lossy UTF-8, at most [`MAX_QUOTED`] characters.
fn quote(value: &[u8]) -> String {
    String::from_utf8_lossy(value).chars().take(MAX_QUOTED).collect()
}

/// Decodes a chunked body: `(body, complete)`; incomplete when the terminal chunk is not in
/// `raw` yet. Trailers are ignored.
pub(crate) fn dechunk(mut raw: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let malformed = || "the reply has a malformed chunk size".to_owned();
    let mut body = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(raw) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) => return Ok((body, false)),
            Err(_) => return Err(malformed()),
        };
        // httparse reads an empty size line as 0; a chunk size has at least one digit.
        if !raw[0].is_ascii_hexdigit() {
            return Err(malformed());
        }
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
        let after = &data[size..];
        if after.len() < 2 && b"\r\n".starts_with(after) {
            return Ok((body, false)); // the CRLF after the data is still on its way
        }
        raw = after.strip_prefix(b"\r\n").ok_or_else(|| "the reply has a chunk not followed by CRLF".to_owned())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(reply: &[u8]) -> Result<Option<Head>, String> {
        parse_head(reply)
    }

    #[test]
    fn heads_that_are_not_usable() {
        let table: Vec<(&str, &[u8], &str)> = vec![
            ("ssh", b"SSH-2.0-OpenSSH_9.2\r\n", "not HTTP"),
            ("binary", b"\x00\x01\x02garbage", "not HTTP"),
            ("bad length", b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "'lots'"),
            ("signed length", b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", "'+5'"),
            ("empty length", b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "bad Content-Length"),
            ("huge length", b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "bad Content-Length"),
            (
                "conflicting lengths",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                "conflicting Content-Length values (5 and 6",
            ),
            ("conflicting list", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", "conflicting"),
            (
                "conflicting on a 204",
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\n",
                "conflicting",
            ),
            (
                "length and chunked",
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "both Transfer-Encoding and Content-Length",
            ),
            ("gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "'gzip, chunked'"),
            (
                "chunked twice",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "not plain",
            ),
            ("not chunked last", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "not plain"),
            ("101", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "switched protocols"),
            ("101 after 100", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", "switched"),
        ];
        for (name, reply, why) in table {
            let err = head(reply).expect_err(name);
            assert!(err.contains(why), "{name}: {err}");
        }
        let many: Vec<u8> = [&b"HTTP/1.1 200 OK\r\n"[..], &b"X-Filler: a\r\n".repeat(200), b"\r\n"].concat();
        assert!(head(&many).unwrap_err().contains("header lines"));
        let long = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", "x".repeat(1000));
        assert!(head(long.as_bytes()).unwrap_err().len() < 200, "a quoted value is cut");
    }

    #[test]
    fn framing_table() {
        let f = |reply: &[u8]| head(reply).unwrap().unwrap().framing;
        let table: Vec<(&[u8], Framing)> = vec![
            (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Framing::Empty),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", Framing::Empty),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Framing::Length(5)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length:5 \r\n\r\n", Framing::Length(5)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", Framing::Length(5)),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n", Framing::Length(7)),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", Framing::Chunked),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ,chunked,\r\n\r\n", Framing::Chunked),
            (b"HTTP/1.1 200 OK\r\n\r\n", Framing::UntilClose),
        ];
        for (reply, want) in table {
            assert_eq!(f(reply), want, "{}", String::from_utf8_lossy(reply));
        }
    }

    #[test]
    fn interim_replies_are_skipped() {
        let final_head = b"HTTP/1.1 204 No Content\r\n\r\n";
        for interim in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\nContent-Length: 9\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
        ] {
            let reply = [interim, final_head].concat();
            let h = head(&reply).unwrap().unwrap();
            assert_eq!((h.status, h.len), (204, reply.len()), "{}", String::from_utf8_lossy(interim));
            assert_eq!(head(interim).unwrap(), None, "an interim reply alone waits for the final one");
        }
    }

    #[test]
    fn heads_split_anywhere_wait_for_more() {
        let reply: &[u8] =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n";
        for cut in 0..reply.len() {
            assert_eq!(head(&reply[..cut]), Ok(None), "cut at {cut}");
        }
        let h = head(reply).unwrap().unwrap();
        assert_eq!((h.status, h.location.as_deref(), h.len), (302, Some("/x"), reply.len()));
    }

    #[test]
    fn locations() {
        let loc = |reply: &[u8]| head(reply).unwrap().unwrap().location;
        assert_eq!(loc(b"HTTP/1.1 302 Found\r\nLocation:  /a \r\n\r\n").as_deref(), Some("/a"));
        assert_eq!(loc(b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /a\r\n\r\n").as_deref(), Some("/a"));
        assert_eq!(loc(b"HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\n\r\n"), None);
        assert_eq!(loc(b"HTTP/1.1 302 Found\r\nLocation: \r\n\r\n"), None);
        let long = format!("HTTP/1.1 302 Found\r\nLocation: /{}\r\n\r\n", "a".repeat(5000));
        assert_eq!(loc(long.as_bytes()).unwrap().len(), MAX_LOCATION);
    }

    #[test]
    fn chunks() {
        /// The decoded body and whether it is complete, or what the error says.
        type Want = Result<(&'static [u8], bool), &'static str>;
        let table: Vec<(&[u8], Want)> = vec![
            (b"3\r\nabc\r\n0\r\n\r\n", Ok((b"abc", true))),
            (b"3;ext=1\r\nabc\r\n0\r\n\r\n", Ok((b"abc", true))),
            (b"3\r\nabc\r\n2\r\nd", Ok((b"abcd", false))),
            (b"3\r\nab", Ok((b"ab", false))),
            (b"3\r\nabc", Ok((b"abc", false))),
            (b"3\r\nabc\r", Ok((b"abc", false))),
            (b"3\r\nabc\r\n", Ok((b"abc", false))),
            (b"3\r", Ok((b"", false))),
            (b"", Ok((b"", false))),
            (b"zz\r\n", Err("malformed chunk size")),
            (b"\r\nabc", Err("malformed chunk size")),
            (b"3\r\nabcX0\r\n\r\n", Err("not followed by CRLF")),
            (b"3\r\nabc\rX", Err("not followed by CRLF")),
            (b"fffffffffffffffff\r\n", Err("malformed chunk size")),
        ];
        for (raw, want) in table {
            let got = dechunk(raw);
            let name = String::from_utf8_lossy(raw);
            match want {
                Ok((body, complete)) => assert_eq!(got, Ok((body.to_vec(), complete)), "{name}"),
                Err(why) => assert!(got.as_ref().is_err_and(|e| e.contains(why)), "{name}: {got:?}"),
            }
        }
    }
}
