//! The edge's fast path, built like nginx's proxy module: one task per
//! client connection reads a request head, runs the edge checks, writes the
//! request to an upstream keep-alive connection it owns for the exchange,
//! and relays the response back, header bytes forwarded as they came (no
//! header maps, no channels, no second task). It takes plain HTTP/1.1
//! requests with a `Content-Length` body (buffered, ≤ 1 MiB) on `/api/` and
//! `/.well-known/`; at the first request it does not take (another path, a
//! streamed or oversized body, `Expect`, `Upgrade`, HTTP/1.0, a CORS
//! request), the connection goes to the general hyper server with the
//! bytes read so far ([`Handoff`]).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method};
use bazaar_kit::http::{BODY_LIMIT, is_sane_request_id, new_request_id};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tracing::Instrument as _;

use crate::edge::{Local, proxied_route, request_span};
use crate::proxy::Failure;
use crate::watch::Slot;

mod forward;
mod respond;
use crate::wire::{self, MAX_HEAD, MAX_HEADERS};

/// Time a client gets to send a whole head once it started one.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Time an idle keep-alive connection is kept (nginx's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Pipelined bytes read from a client while its previous response streams.
const MAX_PENDING: usize = 2 * 1024 * 1024;

/// A connection the fast path hands to the general server, with the bytes
/// it already read from it.
pub struct Handoff {
    /// The client connection.
    pub client: TcpStream,
    /// Bytes read but not yet served, from the start of a request.
    pub read: Vec<u8>,
}

/// Serves a client connection until it closes, or hands it over.
pub async fn serve(state: Rc<Local>, mut client: TcpStream, peer: SocketAddr) -> Option<Handoff> {
    let mut ip = String::with_capacity(15);
    crate::proxy::push_ip(&mut ip, peer.ip());
    let mut conn = Conn {
        ip,
        buf: Vec::new(),
        out: Vec::new(),
        rbuf: Vec::new(),
        pending: Vec::new(),
        slot: state.watch.slot(),
        state,
    };
    loop {
        match conn.read_request(&mut client).await {
            Read::Ready => {}
            Read::Closed => return None,
            Read::General => {
                return Some(Handoff {
                    client,
                    read: conn.buf,
                });
            }
        }
        // Not boxed, though an idle connection's task then carries the
        // exchange's state (~6 KiB): a box per request measured 5 % more
        // CPU per request.
        match conn.serve_one(&mut client).await {
            Next::KeepAlive => {}
            Next::Close => {
                let _ = client.shutdown().await;
                return None;
            }
            Next::General => {
                return Some(Handoff {
                    client,
                    read: conn.buf,
                });
            }
        }
    }
}

enum Read {
    /// `buf` starts with a whole request head.
    Ready,
    Closed,
    General,
}

/// What one pass over the request in `buf` came to.
enum Step {
    /// Answered: the request's bytes, and what next.
    Done(usize, Next),
    /// The body is incomplete: read until `buf` holds this many bytes.
    NeedBody(usize),
    /// For the general server.
    General,
}

enum Next {
    KeepAlive,
    Close,
    General,
}

/// Buffers lent to connections while they read and serve a request, so an
/// idle keep-alive connection holds none: a worker keeps about as many as
/// it has requests in flight, not a set per connection.
#[derive(Default)]
pub struct Buffers(RefCell<Vec<Vec<u8>>>);

/// Buffers a worker keeps for reuse, and the largest one kept.
const POOLED: usize = 256;
const POOLED_MAX: usize = 64 * 1024;

impl Buffers {
    /// An empty buffer, with room from an earlier request when one is free.
    pub fn take(&self) -> Vec<u8> {
        self.0.borrow_mut().pop().unwrap_or_default()
    }

    /// Takes a buffer back (its bytes are dropped).
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > POOLED_MAX {
            return;
        }
        buf.clear();
        let mut pool = self.0.borrow_mut();
        if pool.len() < POOLED {
            pool.push(buf);
        }
    }
}

/// One client connection's state; its buffers are borrowed from the
/// worker's [`Buffers`] while it has a request.
struct Conn {
    state: Rc<Local>,
    /// The client's address as text (limiter keys, `X-Forwarded-For`).
    ip: String,
    /// Bytes from the client: the current request first.
    buf: Vec<u8>,
    /// The head (and body) being written.
    out: Vec<u8>,
    /// Bytes from the upstream.
    rbuf: Vec<u8>,
    /// Client bytes that arrived while a response streamed.
    pending: Vec<u8>,
    /// This connection's deadline.
    slot: Rc<Slot>,
}

/// Where the head in `buf` ends (after its blank line), if it is complete:
/// after the first `\n\r\n` or `\n\n` (bare line feeds are accepted, as
/// by httparse). Line feeds are found with SIMD (`memchr`).
fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf).find_map(|nl| match buf.get(nl + 1) {
        Some(b'\n') => Some(nl + 2),
        Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => Some(nl + 3),
        _ => None,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(8 * 1024);
    }
    stream.read_buf(buf).await
}

impl Conn {
    /// Reads until `buf` holds a whole request head.
    async fn read_request(&mut self, client: &mut TcpStream) -> Read {
        self.buf.append(&mut self.pending);
        if self.buf.is_empty() {
            // Idle: wait for bytes without holding a buffer.
            if self.state.watch.draining() {
                return Read::Closed;
            }
            self.state.buffers.give(std::mem::take(&mut self.buf));
            self.slot.arm(IDLE_TIMEOUT, true);
            let readable = tokio::select! {
                biased;
                readable = client.readable() => readable.is_ok(),
                () = self.slot.expired() => false,
            };
            if !readable {
                return Read::Closed;
            }
            self.buf = self.state.buffers.take();
        }
        self.slot.arm(HEAD_TIMEOUT, false);
        loop {
            if head_end(&self.buf).is_some() {
                break;
            }
            if self.buf.len() > MAX_HEAD {
                self.slot.disarm();
                return Read::General;
            }
            let read = tokio::select! {
                biased;
                read = read_more(client, &mut self.buf) => read,
                () = self.slot.expired() => return Read::Closed,
            };
            match read {
                Ok(n) if n > 0 => {}
                _ => return Read::Closed,
            }
        }
        self.slot.disarm();
        Read::Ready
    }

    /// Serves the request at the start of `buf` (its head is complete),
    /// with buffers borrowed for the exchange.
    async fn serve_one(&mut self, client: &mut TcpStream) -> Next {
        self.out = self.state.buffers.take();
        self.rbuf = self.state.buffers.take();
        let next = self.serve_buffered(client).await;
        self.state.buffers.give(std::mem::take(&mut self.out));
        self.state.buffers.give(std::mem::take(&mut self.rbuf));
        next
    }

    async fn serve_buffered(&mut self, client: &mut TcpStream) -> Next {
        loop {
            let buf = std::mem::take(&mut self.buf);
            let step = self.exchange(client, &buf).await;
            self.buf = buf;
            match step {
                Ok(Step::Done(consumed, next)) => {
                    self.buf.drain(..consumed);
                    return next;
                }
                Ok(Step::General) => return Next::General,
                Ok(Step::NeedBody(want)) => {
                    if !self.read_body(client, want).await {
                        return Next::Close;
                    }
                }
                Err(()) => return Next::Close,
            }
        }
    }

    /// Reads until `buf` holds `want` bytes (a whole request). Small
    /// bodies are read whole before forwarding (nginx's request buffering):
    /// a refusal then never leaves unread bytes behind.
    async fn read_body(&mut self, client: &mut TcpStream, want: usize) -> bool {
        self.slot.arm(HEAD_TIMEOUT, false);
        while self.buf.len() < want {
            self.buf.reserve(want - self.buf.len());
            let read = tokio::select! {
                biased;
                read = read_more(client, &mut self.buf) => read,
                () = self.slot.expired() => return false,
            };
            if !matches!(read, Ok(n) if n > 0) {
                return false;
            }
        }
        self.slot.disarm();
        true
    }

    /// One request/response, or `Err` when the connection must close
    /// without another word.
    async fn exchange(&mut self, client: &mut TcpStream, buf: &[u8]) -> Result<Step, ()> {
        let started = Instant::now();
        // Uninitialised slots: zeroing 64 headers costs more than parsing.
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let Ok(httparse::Status::Complete(head_len)) =
            req.parse_with_uninit_headers(buf, &mut headers)
        else {
            return Ok(Step::General);
        };
        let Ok(facts) = wire::request_facts(&req, BODY_LIMIT as u64) else {
            return Ok(Step::General);
        };
        let (Some(method_text), Some(target)) = (req.method, req.path) else {
            return Ok(Step::General);
        };
        let path = target.split('?').next().unwrap_or_default();
        let cors = self.state.cors.is_some() && (facts.has_origin || method_text == "OPTIONS");
        let (Some(route), Ok(method), false) = (
            proxied_route(path),
            Method::from_bytes(method_text.as_bytes()),
            cors,
        ) else {
            return Ok(Step::General);
        };
        let consumed = head_len + facts.content_length as usize;
        if buf.len() < consumed {
            return Ok(Step::NeedBody(consumed));
        }
        let request_id = req
            .headers
            .iter()
            .find(|h| wire::is(h.name, "x-request-id") && is_sane_request_id(h.value))
            .and_then(|h| HeaderValue::from_bytes(h.value).ok())
            .unwrap_or_else(new_request_id);
        let close = facts.close || self.state.watch.draining();
        let ask = Ask {
            head: &buf[..head_len],
            headers: &*req.headers,
            method: &method,
            target,
            path,
            body: &buf[head_len..consumed],
            request_id: &request_id,
            accepts_gzip: facts.accepts_gzip,
            close,
        };
        let span = request_span(&method, route, &request_id);
        let status = self.answer(client, &ask).instrument(span).await?;
        self.state.record(route, method, status, started);
        let next = if close { Next::Close } else { Next::KeepAlive };
        Ok(Step::Done(consumed, next))
    }
}

/// A request on its way through the fast path.
struct Ask<'a> {
    /// The request head's bytes (the headers point into them).
    head: &'a [u8],
    headers: &'a [httparse::Header<'a>],
    method: &'a Method,
    target: &'a str,
    path: &'a str,
    body: &'a [u8],
    request_id: &'a HeaderValue,
    accepts_gzip: bool,
    close: bool,
}

impl Conn {
    /// Answers `ask` (from an upstream, or with a problem); the status sent.
    async fn answer(&mut self, client: &mut TcpStream, ask: &Ask<'_>) -> Result<u16, ()> {
        let state = self.state.clone();
        let proxy = &state.proxy;
        let admitted = match proxy.route(ask.path) {
            Ok(idx) => {
                let authorization = ask
                    .headers
                    .iter()
                    .find(|h| wire::is(h.name, "authorization"))
                    .map(|h| h.value);
                proxy
                    .admit(idx, ask.method, ask.path, authorization, &self.ip)
                    .await
                    .map(|admission| (idx, admission))
            }
            Err(problem) => Err(problem),
        };
        let (idx, admission) = match admitted {
            Ok(admitted) => admitted,
            Err(problem) => return self.problem(client, ask, &problem).await,
        };
        let started = Instant::now();
        // The slot is this connection's: cloned so `send` may borrow `self`.
        let slot = self.slot.clone();
        slot.arm(proxy.timeout, false);
        let outcome = tokio::select! {
            biased;
            sent = self.send(idx, ask) => sent,
            () = slot.expired() => Err(Failure::Timeout),
        };
        slot.disarm();
        proxy.record(idx, admission, started, outcome.is_ok());
        match outcome {
            Ok((upstream, instance, head_len)) => {
                self.respond(client, ask, upstream, (idx, instance), head_len)
                    .await
            }
            Err(failure) => {
                let problem = proxy.failed(idx, failure);
                self.problem(client, ask, &problem).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_ends_after_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\nBODY"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
    }
}
