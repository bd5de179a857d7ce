//! The `/metrics` endpoint: a minimal HTTP/1.1 responder on `std::net`.
//!
//! Hand-made on purpose: it answers one GET on one path, with `Connection: close`. A server
//! crate (tiny_http, hyper) brings a thread pool or an async runtime, keeps idle keep-alive
//! connections without read deadlines, and grows the binary; this one has no timer and no
//! idle thread beyond the blocked `accept()` (zero wake-ups between scrapes), bounds every
//! read and write with a socket timeout, caps concurrent connections and request size, and
//! never panics on what a client sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::metrics;
use super::registry::Registry;
use super::text::Format;

/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read; Prometheus sends about 300 bytes.
const MAX_REQUEST: usize = 16 * 1024;
/// Connections served at once; more are answered 503 at once.
const MAX_CONNECTIONS: usize = 16;

/// Binds `address`; the error names it and the system's reason.
pub(crate) fn bind(address: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))
}

/// A request for an exposition, and where to send it.
type Render = (Format, mpsc::SyncSender<String>);

/// Formats expositions on one long-lived thread, whatever connection asks: the formatted
/// lines each namespace keeps between scrapes are then all allocated by one thread (one malloc
/// arena), instead of being spread over the arenas of short-lived connection threads, which
/// doubled the resident memory with 200 namespaces. It sleeps in `recv()` between scrapes.
fn start_renderer(registry: Arc<Registry>) -> Result<mpsc::Sender<Render>, String> {
    let (requests, incoming) = mpsc::channel::<Render>();
    std::thread::Builder::new()
        .name("render".into())
        .spawn(move || {
            for (format, reply) in incoming {
                let _ = reply.send(metrics::render(&registry, format));
            }
        })
        .map_err(|e| format!("starting the renderer: {e}"))?;
    Ok(requests)
}

/// Serves scrapes forever (each connection on its own short-lived thread).
pub(crate) fn serve(listener: TcpListener, registry: Arc<Registry>) -> Result<std::convert::Infallible, String> {
    let renderer = start_renderer(registry)?;
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or memory: back off instead of spinning on accept();
                // the listener itself stays valid.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = respond(&stream, "503 Service Unavailable", "text/plain; charset=utf-8", b"busy\n", false);
            continue;
        }
        let (renderer, mine) = (renderer.clone(), active.clone());
        let spawned = std::thread::Builder::new().name("scrape".into()).spawn(move || {
            handle(stream, &renderer);
            mine.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The parts of a request that matter here.
#[derive(Debug, PartialEq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) accept: Option<String>,
}

/// Parses a request head (up to the blank line); `None` when it is not HTTP/1.x.
pub(crate) fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if !version.starts_with("HTTP/1.") || first.next().is_some() {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let accept = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.trim().to_owned());
    Some(Request { method: method.to_owned(), path, accept })
}

/// Reads the request head, bounded in time and size.
fn read_head(mut stream: &TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST {
            return None;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8(head).ok()
}

fn handle(stream: TcpStream, renderer: &mpsc::Sender<Render>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let text = "text/plain; charset=utf-8";
    let Some(request) = read_head(&stream).as_deref().and_then(parse) else {
        let _ = respond(&stream, "400 Bad Request", text, b"bad request\n", false);
        return;
    };
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        let _ = respond(&stream, "405 Method Not Allowed", text, b"only GET\n", false);
        return;
    }
    match request.path.as_str() {
        "/metrics" => {
            let format = Format::negotiate(request.accept.as_deref());
            let (reply, answer) = mpsc::sync_channel(1);
            let body = renderer.send((format, reply)).ok().and_then(|()| answer.recv().ok());
            match body {
                Some(body) => {
                    let _ = respond(&stream, "200 OK", format.content_type(), body.as_bytes(), head_only);
                }
                None => {
                    let _ = respond(&stream, "500 Internal Server Error", text, b"renderer gone\n", false);
                }
            }
        }
        "/" => {
            let body = b"netreach exporter: metrics at /metrics\n";
            let _ = respond(&stream, "200 OK", text, body, head_only);
        }
        _ => {
            let _ = respond(&stream, "404 Not Found", text, b"not found: try /metrics\n", head_only);
        }
    }
}

fn respond(
    mut stream: &TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse_and_junk_does_not() {
        let head = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nACCEPT: application/openmetrics-text\r\n\r\n";
        assert_eq!(
            parse(head),
            Some(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                accept: Some("application/openmetrics-text".into())
            })
        );
        for junk in ["", "GET", "GET /", "GET / SPDY/3\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n", "\u{0}\u{1}"] {
            assert_eq!(parse(junk), None, "{junk:?}");
        }
    }
}
