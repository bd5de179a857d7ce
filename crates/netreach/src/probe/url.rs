//! The probe's URLs: `http://HOST[:PORT][/PATH]`, parsed and checked at the door (pure).
//!
//! Hand-written rather than the `url` crate: a probe URL is one fixed shape (plain `http`, a
//! host, a port, a path), and the general crate (IDNA, every scheme, relative resolution
//! rules) would bring a large dependency tree for three fields.

use crate::model::Error;

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    /// Host name or address literal, without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
}

impl HttpUrl {
    /// Parses `url`, naming what is wrong with it on failure.
    pub(crate) fn parse(url: &str) -> Result<HttpUrl, Error> {
        let bad = |why: &str| Error::invalid_input(format!("probe URL '{url}': {why}"));
        if url.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(bad("contains spaces or control characters"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected http://HOST[:PORT]/PATH"));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            // A probe must see a portal's redirect or login page; TLS would hide it behind a
            // certificate error, which is why every OS probes over plain HTTP.
            return Err(bad("only plain http:// is supported (a captive portal cannot answer https)"));
        }
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(bad("user names and passwords are not supported"));
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(|| bad("unclosed '[' in the host"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("the bracketed host is not an IPv6 address"));
            }
            (host, after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("the port must be 1-65535"))?,
        };
        Ok(HttpUrl { host: host.to_owned(), port, path })
    }

    /// The `Host` header value and URL authority: brackets around IPv6, port when not 80.
    pub(crate) fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves a `Location` header against this URL: absolute stays, `//host/..` takes our
    /// scheme, `/path` takes our authority, anything else is relative to our path's directory.
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.contains("://") {
            location.to_owned()
        } else if let Some(rest) = location.strip_prefix("//") {
            format!("http://{rest}")
        } else if location.starts_with('/') {
            format!("http://{}{location}", self.authority())
        } else {
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            format!("http://{}{dir}{location}", self.authority())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_a_probe_uses() {
        let table = [
            (
                "http://connectivitycheck.gstatic.com/generate_204",
                ("connectivitycheck.gstatic.com", 80, "/generate_204"),
            ),
            ("http://192.0.2.1:8080/check?x=1", ("192.0.2.1", 8080, "/check?x=1")),
            ("http://[2001:db8::1]:81/", ("2001:db8::1", 81, "/")),
            ("http://[2001:db8::1]", ("2001:db8::1", 80, "/")),
            ("HTTP://example.test?q", ("example.test", 80, "/?q")),
            ("http://example.test/a#frag", ("example.test", 80, "/a")),
        ];
        for (url, (host, port, path)) in table {
            let u = HttpUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((u.host.as_str(), u.port, u.path.as_str()), (host, port, path), "{url}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let table = [
            ("https://example.test/", "only plain http"),
            ("example.test/", "expected http://"),
            ("http:///path", "no host"),
            ("http://example.test:0/", "1-65535"),
            ("http://example.test:99999/", "1-65535"),
            ("http://user:pw@example.test/", "passwords"),
            ("http://[2001:db8::1/", "unclosed"),
            ("http://[example]/", "not an IPv6"),
            ("http://exa mple.test/", "spaces"),
        ];
        for (url, why) in table {
            let err = HttpUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        }
    }

    #[test]
    fn resolves_locations() {
        let base = HttpUrl::parse("http://[2001:db8::1]:8080/dir/check").unwrap();
        let table = [
            ("http://portal.test/login", "http://portal.test/login"),
            ("https://portal.test/", "https://portal.test/"),
            ("//portal.test/x", "http://portal.test/x"),
            ("/login?from=1", "http://[2001:db8::1]:8080/login?from=1"),
            ("login", "http://[2001:db8::1]:8080/dir/login"),
        ];
        for (location, want) in table {
            assert_eq!(base.resolve(location), want, "{location}");
        }
        assert_eq!(HttpUrl::parse("http://192.0.2.1/").unwrap().authority(), "192.0.2.1");
    }
}
