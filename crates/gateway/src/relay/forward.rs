//! The request side of the fast path: an instance picked, a kept or new
//! connection to it, the request head written from the client's header
//! lines, and the response head read back.

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use super::{Ask, Conn, head_end, read_more};
use crate::proxy::{Failure, MAX_ATTEMPTS, is_idempotent};
use crate::wire::{self, MAX_HEAD};

impl Conn {
    /// Sends the request to an instance of pool `idx` and reads the
    /// response head into `rbuf`: the connection, the instance and the
    /// head's length. Bodiless idempotent requests are retried on another
    /// instance when a connection cannot be opened, and on a new connection
    /// when a reused one turns out closed.
    pub(super) async fn send(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn informational_heads_are_recognised() {
        assert!(informational(b"HTTP/1.1 103 Early Hints\r\n\r\n"));
        assert!(!informational(b"HTTP/1.1 200 OK\r\n\r\n"));
    }
}
