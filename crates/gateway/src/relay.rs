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

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method};
use bazaar_kit::Problem;
use bazaar_kit::http::{BODY_LIMIT, SECURITY_HEADERS, is_sane_request_id, new_request_id};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tracing::Instrument as _;

use crate::edge::{Local, proxied_route};
use crate::proxy::{Failure, MAX_ATTEMPTS, is_idempotent};
use crate::watch::Slot;
use crate::wire::{self, Framing, MAX_HEAD, MAX_HEADERS};

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
        buf: Vec::with_capacity(8 * 1024),
        out: Vec::with_capacity(4 * 1024),
        rbuf: Vec::with_capacity(16 * 1024),
        pending: Vec::new(),
        chunk: Vec::new(),
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

/// One client connection's state and buffers (reused across requests).
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
    /// Room for a streamed body's reads (allocated at the first).
    chunk: Vec<u8>,
    /// This connection's deadline.
    slot: Rc<Slot>,
}

/// Where the head in `buf` ends (after its blank line), if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(at) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + at;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 2048 {
        buf.reserve(8 * 1024);
    }
    stream.read_buf(buf).await
}

impl Conn {
    /// Reads until `buf` holds a whole request the fast path takes.
    async fn read_request(&mut self, client: &mut TcpStream) -> Read {
        self.buf.append(&mut self.pending);
        let watch = &self.state.watch;
        let mut head_armed = !self.buf.is_empty();
        if head_armed {
            self.slot.arm(HEAD_TIMEOUT, false);
        } else if watch.draining() {
            return Read::Closed;
        } else {
            self.slot.arm(IDLE_TIMEOUT, true);
        }
        loop {
            if head_end(&self.buf).is_some() {
                break;
            }
            if self.buf.len() > MAX_HEAD {
                self.slot.disarm();
                return Read::General;
            }
            if !head_armed && !self.buf.is_empty() {
                self.slot.arm(HEAD_TIMEOUT, false);
                head_armed = true;
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

    /// Serves the request at the start of `buf` (its head is complete).
    async fn serve_one(&mut self, client: &mut TcpStream) -> Next {
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
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head_len)) = req.parse(buf) else {
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
        let span = tracing::info_span!(
            "request",
            service = "gateway",
            method = %method,
            route,
            request_id = ?request_id,
        );
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

    /// Sends the request to an instance of pool `idx` and reads the
    /// response head into `rbuf`: the connection, the instance and the
    /// head's length. Bodiless idempotent requests are retried on another
    /// instance when a connection cannot be opened, and on a new connection
    /// when a reused one turns out closed.
    async fn send(
        &mut self,
        idx: usize,
        ask: &Ask<'_>,
    ) -> Result<(TcpStream, usize, usize), Failure> {
        let state = self.state.clone();
        let pool = &state.proxy.pools[idx];
        let retryable = is_idempotent(ask.method) && ask.body.is_empty();
        let mut tried = [usize::MAX; MAX_ATTEMPTS];
        let mut attempts = 0;
        loop {
            let Some(i) = pool.pick(&tried[..attempts]) else {
                return Err(Failure::Connect);
            };
            tried[attempts] = i;
            attempts += 1;
            let instance = &pool.instances[i];
            let _in_flight = pool.start(i);
            self.out.clear();
            write_request_head(&mut self.out, ask, instance.authority.as_bytes(), &self.ip);
            self.out.extend_from_slice(ask.body);
            let mut reused = state.streams.take((idx, i));
            loop {
                let (mut stream, was_idle) = match reused.take() {
                    Some(stream) => (stream, true),
                    None => match state.streams.connect(instance).await {
                        Ok(stream) => (stream, false),
                        Err(e) => {
                            instance.set_healthy(&pool.name, false);
                            tracing::warn!(upstream = %pool.name, instance = %instance.url, error = %e, "connect failed");
                            if retryable && attempts < MAX_ATTEMPTS.min(pool.instances.len()) {
                                break;
                            }
                            return Err(Failure::Connect);
                        }
                    },
                };
                match self.exchange_head(&mut stream).await {
                    Ok(head_len) => return Ok((stream, i, head_len)),
                    // A kept connection the upstream closed meanwhile.
                    Err(Empty::Nothing) if was_idle && retryable => {}
                    Err(Empty::Nothing) => {
                        return Err(Failure::Other("upstream closed the connection".into()));
                    }
                    Err(Empty::Broken(e)) => return Err(Failure::Other(e)),
                }
            }
        }
    }

    /// Writes `out` to `stream` and reads a response head into `rbuf`
    /// (informational responses skipped).
    async fn exchange_head(&mut self, stream: &mut TcpStream) -> Result<usize, Empty> {
        self.rbuf.clear();
        if let Err(e) = stream.write_all(&self.out).await {
            return Err(
                if e.kind() == std::io::ErrorKind::BrokenPipe
                    || e.kind() == std::io::ErrorKind::ConnectionReset
                {
                    Empty::Nothing
                } else {
                    Empty::Broken(e.to_string())
                },
            );
        }
        loop {
            if let Some(end) = head_end(&self.rbuf) {
                if informational(&self.rbuf[..end]) {
                    self.rbuf.drain(..end);
                    continue;
                }
                return Ok(end);
            }
            if self.rbuf.len() > MAX_HEAD {
                return Err(Empty::Broken("response head too large".into()));
            }
            match read_more(stream, &mut self.rbuf).await {
                Ok(0) | Err(_) if self.rbuf.is_empty() => return Err(Empty::Nothing),
                Ok(0) => return Err(Empty::Broken("response head cut short".into())),
                Ok(_) => {}
                Err(e) => return Err(Empty::Broken(e.to_string())),
            }
        }
    }

    /// Relays the response head in `rbuf[..head_len]` and its body to the
    /// client; the connection goes back to the cache if it ended cleanly.
    async fn respond(
        &mut self,
        client: &mut TcpStream,
        ask: &Ask<'_>,
        mut upstream: TcpStream,
        key: (usize, usize),
        head_len: usize,
    ) -> Result<u16, ()> {
        let rbuf = std::mem::take(&mut self.rbuf);
        let result = self
            .respond_with(client, ask, &mut upstream, &rbuf, head_len)
            .await;
        self.rbuf = rbuf;
        let (status, reusable) = result?;
        if reusable {
            self.state.streams.put(key, upstream);
        }
        Ok(status)
    }
}

/// Why no response head came.
enum Empty {
    /// The connection ended before any response byte.
    Nothing,
    /// It broke otherwise.
    Broken(String),
}

/// Whether a response head is a 1xx (skipped: the client gets the final one).
fn informational(head: &[u8]) -> bool {
    head.len() > 9 && head.starts_with(b"HTTP/1.") && head[9] == b'1'
}

/// The upstream request head: the client's header lines as they came,
/// less `Host`, hop-by-hop headers and the edge's own, which are set here.
fn write_request_head(out: &mut Vec<u8>, ask: &Ask<'_>, authority: &[u8], client_ip: &str) {
    let headers = ask.headers;
    out.extend_from_slice(ask.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(ask.target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    wire::header(out, b"host", authority);
    let (connection, listed) = wire::connection_values(headers);
    let connection = &connection[..listed];
    let (mut host, mut forwarded_for) = (None, None);
    let (mut has_proto, mut has_fwd_host, mut has_trace) = (false, false, false);
    for h in headers {
        let name = h.name;
        if wire::is(name, "host") {
            host.get_or_insert(h.value);
            continue;
        }
        if wire::is(name, "x-forwarded-for") {
            forwarded_for.get_or_insert(h.value);
            continue;
        }
        if wire::is(name, "x-request-id") || wire::is_hop_by_hop(name, connection) {
            continue;
        }
        has_proto |= wire::is(name, "x-forwarded-proto");
        has_fwd_host |= wire::is(name, "x-forwarded-host");
        has_trace |= wire::is(name, "traceparent");
        wire::copy_line(out, ask.head, h);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(prior) = forwarded_for {
        out.extend_from_slice(prior);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(client_ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        wire::header(out, b"x-forwarded-proto", b"http");
    }
    if let Some(host) = host.filter(|_| !has_fwd_host) {
        wire::header(out, b"x-forwarded-host", host);
    }
    if !has_trace {
        wire::header(out, b"traceparent", &crate::proxy::new_traceparent());
    }
    wire::header(out, b"x-request-id", ask.request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Conn {
    async fn respond_with(
        &mut self,
        client: &mut TcpStream,
        ask: &Ask<'_>,
        upstream: &mut TcpStream,
        rbuf: &[u8],
        head_len: usize,
    ) -> Result<(u16, bool), ()> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        let parsed = matches!(
            res.parse(&rbuf[..head_len]),
            Ok(httparse::Status::Complete(_))
        );
        let facts = parsed
            .then(|| wire::response_facts(&res, *ask.method == Method::HEAD))
            .flatten();
        let (Some(facts), Some(status)) = (facts, res.code) else {
            // Unreadable upstream answer: a 502-class problem, not a relay.
            let problem =
                Problem::unavailable("The upstream answered with an unreadable response.")
                    .with_retry_after(1);
            return self
                .problem(client, ask, &problem)
                .await
                .map(|s| (s, false));
        };
        let gzip = match facts.framing {
            Framing::Length(n) => ask.accepts_gzip && facts.compressible && n <= wire::MAX_GZIP,
            _ => false,
        };
        let close = ask.close || facts.framing == Framing::UntilClose;
        self.out.clear();
        wire::status_line(&mut self.out, status, res.reason.unwrap_or_default());
        let (connection, listed) = wire::connection_values(res.headers);
        let connection = &connection[..listed];
        let chunked = facts.framing == Framing::Chunked;
        for h in res.headers.iter() {
            let name = h.name;
            let skip = wire::is_hop_by_hop(name, connection)
                || wire::is(name, "x-request-id")
                || ((gzip || chunked) && wire::is(name, "content-length"))
                || (gzip && wire::is(name, "accept-ranges"));
            if !skip {
                wire::copy_line(&mut self.out, &rbuf[..head_len], h);
            }
        }
        if chunked {
            wire::header(&mut self.out, b"transfer-encoding", b"chunked");
        }
        if facts.compressible && !facts.varies_on_encoding {
            wire::header(&mut self.out, b"vary", b"accept-encoding");
        }
        self.edge_headers(ask, &facts.security, close);
        let body = &rbuf[head_len..];
        let reusable = match facts.framing {
            Framing::Length(n) if gzip => {
                let n_bytes = usize::try_from(n).map_err(|_| ())?;
                let mut whole = Vec::with_capacity(n_bytes);
                whole.extend_from_slice(&body[..body.len().min(n_bytes)]);
                let clean = read_rest(upstream, &mut whole, n_bytes).await?;
                let zipped = wire::gzip(&whole);
                wire::header(&mut self.out, b"content-encoding", b"gzip");
                wire::header_number(&mut self.out, b"content-length", zipped.len() as u64);
                self.out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(&zipped);
                write(client, &self.out).await?;
                clean && body.len() <= n_bytes
            }
            framing => {
                self.out.extend_from_slice(b"\r\n");
                self.relay(client, upstream, body, framing).await?
            }
        };
        Ok((status, reusable && facts.keep_alive && !close))
    }

    /// `X-Request-ID`, the security headers the response lacks, CORS
    /// headers for requests without `Origin`, `Connection: close`.
    fn edge_headers(&mut self, ask: &Ask<'_>, present: &[bool; 3], close: bool) {
        for ((name, value), set) in SECURITY_HEADERS.iter().zip(present) {
            if !set {
                wire::header(&mut self.out, name.as_str().as_bytes(), value.as_bytes());
            }
        }
        for (name, value) in &self.state.cors_headers {
            wire::header(&mut self.out, name.as_str().as_bytes(), value.as_bytes());
        }
        wire::header(&mut self.out, b"x-request-id", ask.request_id.as_bytes());
        if close {
            wire::header(&mut self.out, b"connection", b"close");
        }
    }

    /// Writes `out` (the head) with the body's first bytes, then relays the
    /// rest as it arrives; whether the upstream connection ended cleanly.
    async fn relay(
        &mut self,
        client: &mut TcpStream,
        upstream: &mut TcpStream,
        first: &[u8],
        framing: Framing,
    ) -> Result<bool, ()> {
        let mut scanner = wire::ChunkedScanner::default();
        // Bytes of the body still to come (`u64::MAX`: unknown).
        let (left, extra) = match framing {
            Framing::Empty => (0, !first.is_empty()),
            Framing::Length(n) => {
                let take = first.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                self.out.extend_from_slice(&first[..take]);
                (n - take as u64, first.len() > take)
            }
            Framing::Chunked => {
                let (used, done) = scanner.feed(first).map_err(|_| ())?;
                self.out.extend_from_slice(&first[..used]);
                (if done { 0 } else { u64::MAX }, used < first.len())
            }
            Framing::UntilClose => {
                self.out.extend_from_slice(first);
                (u64::MAX, false)
            }
        };
        write(client, &self.out).await?;
        if left > 0 && self.chunk.is_empty() {
            self.chunk = vec![0u8; 16 * 1024];
        }
        let mut chunk = std::mem::take(&mut self.chunk);
        let relayed = self
            .relay_rest(client, upstream, &mut chunk, framing, scanner, left)
            .await;
        self.chunk = chunk;
        Ok(relayed? && !extra)
    }

    /// Relays the `left` bytes of a body still to come (`u64::MAX`:
    /// unknown); whether the upstream connection ended cleanly.
    async fn relay_rest(
        &mut self,
        client: &mut TcpStream,
        upstream: &mut TcpStream,
        chunk: &mut [u8],
        framing: Framing,
        mut scanner: wire::ChunkedScanner,
        mut left: u64,
    ) -> Result<bool, ()> {
        while left > 0 {
            let n = tokio::select! {
                biased;
                read = upstream.read(chunk) => read.map_err(|_| ())?,
                gone = self.client_gone(client), if self.pending.len() < MAX_PENDING => {
                    if gone { return Err(()) }
                    continue;
                }
            };
            if n == 0 {
                // The end for a body delimited by close; a cut otherwise.
                return if framing == Framing::UntilClose {
                    Ok(false)
                } else {
                    Err(())
                };
            }
            let body = match framing {
                Framing::Chunked => {
                    let (used, done) = scanner.feed(&chunk[..n]).map_err(|_| ())?;
                    if done {
                        left = 0;
                    }
                    if used < n {
                        return write(client, &chunk[..used]).await.map(|()| false);
                    }
                    &chunk[..used]
                }
                Framing::Length(_) => {
                    let take = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                    left -= take as u64;
                    if take < n {
                        return write(client, &chunk[..take]).await.map(|()| false);
                    }
                    &chunk[..take]
                }
                _ => &chunk[..n],
            };
            write(client, body).await?;
        }
        Ok(true)
    }

    /// Waits for the client to send something while its response streams:
    /// `true` when it closed, `false` when it pipelined bytes (kept).
    async fn client_gone(&mut self, client: &mut TcpStream) -> bool {
        if client.readable().await.is_err() {
            return true;
        }
        let mut byte_room = [0u8; 4096];
        match client.try_read(&mut byte_room) {
            Ok(0) => true,
            Ok(n) => {
                self.pending.extend_from_slice(&byte_room[..n]);
                false
            }
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    /// Answers with a problem body (gzipped when the client takes it).
    async fn problem(
        &mut self,
        client: &mut TcpStream,
        ask: &Ask<'_>,
        problem: &Problem,
    ) -> Result<u16, ()> {
        let id = ask.request_id.to_str().unwrap_or_default();
        let body = problem.to_body(ask.path, id).to_string().into_bytes();
        let status = problem.status;
        let compressible = body.len() >= 32;
        let body = if compressible && ask.accepts_gzip {
            wire::gzip(&body)
        } else {
            body
        };
        self.out.clear();
        let status_code = axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        wire::status_line(
            &mut self.out,
            status,
            status_code.canonical_reason().unwrap_or("Error"),
        );
        wire::header(
            &mut self.out,
            b"content-type",
            bazaar_kit::error::PROBLEM_JSON.as_bytes(),
        );
        for (name, value) in &problem.headers {
            wire::header(&mut self.out, name.as_str().as_bytes(), value.as_bytes());
        }
        if compressible {
            if ask.accepts_gzip {
                wire::header(&mut self.out, b"content-encoding", b"gzip");
            }
            wire::header(&mut self.out, b"vary", b"accept-encoding");
        }
        wire::header_number(&mut self.out, b"content-length", body.len() as u64);
        wire::header(&mut self.out, b"date", crate::edge::http_date().as_bytes());
        self.edge_headers(ask, &[false; 3], ask.close);
        self.out.extend_from_slice(b"\r\n");
        if *ask.method != Method::HEAD {
            self.out.extend_from_slice(&body);
        }
        write(client, &self.out).await?;
        Ok(status)
    }
}

/// Reads the rest of an `n`-byte body into `whole`; whether nothing came
/// after it.
async fn read_rest(upstream: &mut TcpStream, whole: &mut Vec<u8>, n: usize) -> Result<bool, ()> {
    while whole.len() < n {
        match upstream.read_buf(whole).await {
            Ok(read) if read > 0 => {}
            _ => return Err(()),
        }
    }
    let clean = whole.len() == n;
    whole.truncate(n);
    Ok(clean)
}

async fn write(client: &mut TcpStream, bytes: &[u8]) -> Result<(), ()> {
    client.write_all(bytes).await.map_err(|_| ())
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
        assert!(informational(b"HTTP/1.1 103 Early Hints\r\n\r\n"));
        assert!(!informational(b"HTTP/1.1 200 OK\r\n\r\n"));
    }
}
