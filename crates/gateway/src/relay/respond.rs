//! The response side of the fast path: the upstream's head rewritten for
//! the client (hop-by-hop headers out, request id, security and CORS
//! headers in, gzip when asked), its body relayed by its own framing, and
//! problem answers made here.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use axum::http::Method;
use bazaar_kit::Problem;
use bazaar_kit::http::SECURITY_HEADERS;

use super::{Ask, Conn, MAX_PENDING};
use crate::wire::{self, Framing, MAX_HEADERS};

impl Conn {
    /// Relays the response head in `rbuf[..head_len]` and its body to the
    /// client; the connection goes back to the cache if it ended cleanly.
    pub(super) async fn respond(
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

    async fn respond_with(
        &mut self,
        client: &mut TcpStream,
        ask: &Ask<'_>,
        upstream: &mut TcpStream,
        rbuf: &[u8],
        head_len: usize,
    ) -> Result<(u16, bool), ()> {
        let mut headers =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut []);
        let parsed = matches!(
            httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut res,
                &rbuf[..head_len],
                &mut headers
            ),
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
        Ok((status, reusable && facts.keep_alive))
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
        if left == 0 {
            return Ok(!extra);
        }
        let mut chunk = self.state.buffers.take();
        chunk.resize(16 * 1024, 0);
        let relayed = self
            .relay_rest(client, upstream, &mut chunk, framing, scanner, left)
            .await;
        self.state.buffers.give(chunk);
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
    pub(super) async fn problem(
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
