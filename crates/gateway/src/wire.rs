//! HTTP/1.1 on the wire for the edge's fast path ([`crate::relay`]): which
//! requests it takes, the heads it writes (header bytes forwarded as they
//! came, hop-by-hop ones dropped), response framing, chunked-body scanning
//! and gzip. Pure functions over bytes; no I/O.

use std::io::Write as _;

/// Largest request or response head the fast path reads (hyper takes the
/// connection beyond it, with its own limits).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in a head the fast path parses.
pub const MAX_HEADERS: usize = 64;
/// Largest response body gzipped in one piece; larger ones pass as they are.
pub const MAX_GZIP: u64 = 8 * 1024 * 1024;

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is a hop-by-hop header or one named by the message's
/// `Connection` header values (`connection`).
pub fn is_hop_by_hop(name: &str, connection: &[&[u8]]) -> bool {
    // By length first: most names are none of these.
    let fixed = match name.len() {
        2 => HOP_BY_HOP[5..6].iter(),
        7 => HOP_BY_HOP[6..9].iter(),
        10 => HOP_BY_HOP[0..2].iter(),
        16..=19 => HOP_BY_HOP[2..8].iter(),
        _ => HOP_BY_HOP[0..0].iter(),
    };
    let mut fixed = fixed;
    fixed.any(|h| name.eq_ignore_ascii_case(h))
        || connection.iter().any(|listed| {
            connection_tokens(listed).any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
        })
}

/// The values of a message's `Connection` headers (the first four) and
/// how many there are.
pub fn connection_values<'b>(headers: &[httparse::Header<'b>]) -> ([&'b [u8]; 4], usize) {
    let mut values: [&[u8]; 4] = [b""; 4];
    let mut n = 0;
    for h in headers.iter().filter(|h| is(h.name, "connection")) {
        if n < values.len() {
            values[n] = h.value;
            n += 1;
        }
    }
    (values, n)
}

/// Appends header `h`'s line as it appears in `head` (the bytes it was
/// parsed from), or rebuilt when it cannot be found there.
pub fn copy_line(out: &mut Vec<u8>, head: &[u8], h: &httparse::Header<'_>) {
    let base = head.as_ptr() as usize;
    let start = (h.name.as_ptr() as usize).wrapping_sub(base);
    let end = (h.value.as_ptr() as usize)
        .wrapping_sub(base)
        .wrapping_add(h.value.len());
    match head.get(start..end) {
        Some(line) if !h.value.is_empty() && line.len() > h.name.len() => {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        _ => header(out, h.name.as_bytes(), h.value),
    }
}

/// The comma-separated tokens of a `Connection` header value.
pub fn connection_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// Whether the header named `name` is `want` (ASCII case-insensitive).
pub fn is(name: &str, want: &str) -> bool {
    name.eq_ignore_ascii_case(want)
}

/// What the fast path reads off a request head.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// Declared body length (0 without a `Content-Length`).
    pub content_length: u64,
    /// The client asked to close after this exchange.
    pub close: bool,
    /// The client accepts gzip (`Accept-Encoding`, q > 0).
    pub accepts_gzip: bool,
    /// An `Origin` header was sent (CORS).
    pub has_origin: bool,
}

/// Why a request goes to the general (hyper) server instead.
#[derive(Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Not something the fast path handles; hyper serves the connection.
    General,
}

/// Reads what the fast path needs from a parsed request, or says the
/// request needs the general server: anything but HTTP/1.1 in origin form
/// with a plain target, a streamed (`Transfer-Encoding`) or over-limit body,
/// `Expect`, `Upgrade`, or conflicting lengths.
pub fn request_facts(
    req: &httparse::Request<'_, '_>,
    body_limit: u64,
) -> Result<RequestFacts, Fallback> {
    if req.version != Some(1) {
        return Err(Fallback::General);
    }
    let target = req.path.ok_or(Fallback::General)?;
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic() && b != b'#') {
        return Err(Fallback::General);
    }
    let mut facts = RequestFacts::default();
    let mut length: Option<u64> = None;
    for h in req.headers.iter() {
        let name = h.name;
        if is(name, "content-length") {
            let n = parse_length(h.value).ok_or(Fallback::General)?;
            if length.is_some_and(|l| l != n) {
                return Err(Fallback::General);
            }
            length = Some(n);
        } else if is(name, "transfer-encoding") || is(name, "expect") || is(name, "upgrade") {
            return Err(Fallback::General);
        } else if is(name, "connection") {
            if connection_tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close")) {
                facts.close = true;
            }
            if connection_tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"upgrade")) {
                return Err(Fallback::General);
            }
        } else if is(name, "accept-encoding") {
            facts.accepts_gzip |= accepts_gzip(h.value);
        } else if is(name, "origin") {
            facts.has_origin = true;
        }
    }
    facts.content_length = length.unwrap_or(0);
    if facts.content_length > body_limit {
        return Err(Fallback::General);
    }
    Ok(facts)
}

/// A decimal length with nothing else in it.
pub fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Whether an `Accept-Encoding` value accepts gzip (`gzip` or `x-gzip`
/// with a non-zero quality).
pub fn accepts_gzip(value: &[u8]) -> bool {
    value.split(|b| *b == b',').any(|item| {
        let mut parts = item.split(|b| *b == b';');
        let coding = parts.next().unwrap_or_default().trim_ascii();
        if !(coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")) {
            return false;
        }
        parts.all(|param| {
            let param = param.trim_ascii();
            match param
                .strip_prefix(b"q=")
                .or_else(|| param.strip_prefix(b"Q="))
            {
                Some(q) => q.iter().any(|d| (b'1'..=b'9').contains(d)),
                None => true,
            }
        })
    })
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (passed through as it is).
    Chunked,
    /// Until the upstream closes.
    UntilClose,
}

/// What the fast path reads off an upstream response head.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseFacts {
    /// How the body is delimited.
    pub framing: Framing,
    /// The upstream keeps the connection open after this response.
    pub keep_alive: bool,
    /// The response may be gzipped (tower-http's default predicate: not
    /// encoded already, not a range, at least 32 bytes or of unknown size,
    /// not an image, event stream or gRPC).
    pub compressible: bool,
    /// `Vary` already names `accept-encoding`.
    pub varies_on_encoding: bool,
    /// Which of the kit's security headers it sets, in `SECURITY_HEADERS` order.
    pub security: [bool; 3],
}

/// Reads framing and the rest off an upstream response to a request made
/// with `method`; `None` for a head the fast path cannot forward safely
/// (conflicting lengths).
pub fn response_facts(
    res: &httparse::Response<'_, '_>,
    head_request: bool,
) -> Option<ResponseFacts> {
    let status = res.code?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut coded = false;
    let mut keep_alive = res.version == Some(1);
    let mut encoded = false;
    let mut ranged = false;
    let mut excluded_type = false;
    let mut varies_on_encoding = false;
    let mut security = [false; 3];
    for h in res.headers.iter() {
        let name = h.name;
        if is(name, "content-length") {
            let n = parse_length(h.value)?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        } else if is(name, "transfer-encoding") {
            coded = true;
            chunked = h
                .value
                .split(|b| *b == b',')
                .next_back()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if is(name, "connection") {
            if connection_tokens(h.value).any(|t| t.eq_ignore_ascii_case(b"close")) {
                keep_alive = false;
            }
        } else if is(name, "content-encoding") {
            encoded = true;
        } else if is(name, "content-range") {
            ranged = true;
        } else if is(name, "content-type") {
            let t = h.value.trim_ascii_start();
            let starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
            excluded_type = starts(b"text/event-stream")
                || starts(b"application/grpc")
                || (starts(b"image/") && !starts(b"image/svg+xml"));
        } else if is(name, "vary") {
            varies_on_encoding |= h
                .value
                .split(|b| *b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"accept-encoding"));
        } else {
            for (i, (known, _)) in bazaar_kit::http::SECURITY_HEADERS.iter().enumerate() {
                if is(name, known.as_str()) {
                    security[i] = true;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if coded {
        Framing::UntilClose
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    let size = match framing {
        Framing::Empty => Some(0),
        Framing::Length(n) => Some(n),
        Framing::Chunked | Framing::UntilClose => None,
    };
    Some(ResponseFacts {
        framing,
        keep_alive,
        compressible: !encoded && !ranged && !excluded_type && size.is_none_or(|n| n >= 32),
        varies_on_encoding,
        security,
    })
}

/// Appends `name: value\r\n`.
pub fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: <n>\r\n`.
pub fn header_number(out: &mut Vec<u8>, name: &[u8], n: u64) {
    let mut digits = itoa::Buffer::new();
    header(out, name, digits.format(n).as_bytes());
}

/// Appends a status line (`HTTP/1.1 200 OK`).
pub fn status_line(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(digits.format(code).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Gzips `body` (level 6, as the compression layer does).
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 3 + 64),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// Finds where a chunked body ends, fed its bytes as they arrive (they are
/// forwarded as they are; only the framing is read).
#[derive(Debug, Default)]
pub struct ChunkedScanner {
    state: Chunk,
    /// Size digits read so far of the current size line.
    size: u64,
    digits: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size.
    #[default]
    Size,
    /// After the size: an extension up to CR.
    Extension,
    /// Expecting LF of the size line.
    SizeLf,
    /// Inside chunk data: this many bytes left.
    Data(u64),
    /// Expecting CR after the data.
    DataCr,
    /// Expecting LF after the data.
    DataLf,
    /// After the last chunk: at the start of a trailer line.
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Expecting LF of a trailer field line.
    TrailerLf,
    /// Expecting the final LF.
    EndLf,
    /// Done.
    Done,
}

/// A chunked body that breaks the framing rules.
#[derive(Debug, PartialEq, Eq)]
pub struct BadChunk;

impl ChunkedScanner {
    /// Feeds `bytes`; returns how many of them belong to the body and
    /// whether the body ended there.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(usize, bool), BadChunk> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == Chunk::Done {
                return Ok((i, true));
            }
            if let Chunk::Data(left) = self.state {
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - i);
                i += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left)
                };
                continue;
            }
            let b = bytes[i];
            i += 1;
            self.state = match (self.state, b) {
                (Chunk::Size, b) if b.is_ascii_hexdigit() => {
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(BadChunk);
                    }
                    self.size = self.size * 16 + u64::from(hex_value(b));
                    Chunk::Size
                }
                (Chunk::Size, b';' | b' ' | b'\t') if self.digits > 0 => Chunk::Extension,
                (Chunk::Size, b'\r') if self.digits > 0 => Chunk::SizeLf,
                (Chunk::Extension, b'\r') => Chunk::SizeLf,
                (Chunk::Extension, b'\n') => return Err(BadChunk),
                (Chunk::Extension, _) => Chunk::Extension,
                (Chunk::SizeLf, b'\n') => {
                    let size = std::mem::take(&mut self.size);
                    self.digits = 0;
                    if size == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data(size)
                    }
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Size,
                (Chunk::TrailerStart, b'\r') => Chunk::EndLf,
                (Chunk::TrailerStart | Chunk::TrailerLine, b'\n') => return Err(BadChunk),
                (Chunk::TrailerLine, b'\r') => Chunk::TrailerLf,
                (Chunk::TrailerStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::EndLf, b'\n') => Chunk::Done,
                _ => return Err(BadChunk),
            };
        }
        Ok((i, self.state == Chunk::Done))
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_request(raw: &[u8]) -> Result<RequestFacts, Fallback> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw).expect("parses").is_complete());
        request_facts(&req, 1024)
    }

    #[test]
    fn plain_requests_take_the_fast_path() {
        let facts = parse_request(
            b"POST /api/v1/orders/?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nAccept-Encoding: br, gzip;q=0.5\r\nConnection: close\r\n\r\n",
        )
        .expect("fast");
        assert_eq!(
            facts,
            RequestFacts {
                content_length: 12,
                close: true,
                accepts_gzip: true,
                has_origin: false
            }
        );
    }

    #[test]
    fn unusual_requests_go_to_the_general_server() {
        for raw in [
            &b"GET /x HTTP/1.0\r\n\r\n"[..],
            b"GET http://h/x HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 2048\r\n\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(raw),
                Err(Fallback::General),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn gzip_acceptance_follows_quality() {
        assert!(accepts_gzip(b"gzip"));
        assert!(accepts_gzip(b"deflate, GZIP"));
        assert!(accepts_gzip(b"x-gzip;q=0.1"));
        assert!(!accepts_gzip(b"gzip;q=0"));
        assert!(!accepts_gzip(b"gzip;q=0.000"));
        assert!(!accepts_gzip(b"br, identity"));
        assert!(!accepts_gzip(b""));
    }

    fn parse_response(raw: &[u8], head: bool) -> Option<ResponseFacts> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        assert!(res.parse(raw).expect("parses").is_complete());
        response_facts(&res, head)
    }

    #[test]
    fn response_framing_and_compressibility() {
        let f = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 40\r\nx-frame-options: DENY\r\n\r\n",
            false,
        )
        .expect("facts");
        assert_eq!(f.framing, Framing::Length(40));
        assert!(f.keep_alive && f.compressible && !f.varies_on_encoding);
        assert_eq!(f.security, [false, true, false]);
        let small =
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", false).expect("facts");
        assert!(!small.compressible);
        let sse = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        )
        .expect("facts");
        assert_eq!(sse.framing, Framing::Chunked);
        assert!(!sse.compressible);
        let head =
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\n", true).expect("facts");
        assert_eq!(head.framing, Framing::Empty);
        let closing =
            parse_response(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n", false).expect("facts");
        assert_eq!(closing.framing, Framing::UntilClose);
        assert!(!closing.keep_alive);
        let old = parse_response(b"HTTP/1.0 204 No Content\r\n\r\n", false).expect("facts");
        assert_eq!(old.framing, Framing::Empty);
        assert!(!old.keep_alive);
        assert!(
            parse_response(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
                false
            )
            .is_none()
        );
    }

    #[test]
    fn chunked_scanner_finds_the_end_across_splits() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..body.len() {
            let mut s = ChunkedScanner::default();
            let (a, done_a) = s.feed(&body[..split]).expect("valid");
            if done_a {
                assert!(split >= end && a == end, "split at {split}");
                continue;
            }
            assert_eq!(a, split);
            let (b, done) = s.feed(&body[split..]).expect("valid");
            assert!(done, "split at {split}");
            assert_eq!(split + b, end, "split at {split}");
        }
        let mut s = ChunkedScanner::default();
        assert_eq!(s.feed(b"0\r\n\r\n"), Ok((5, true)));
        assert_eq!(ChunkedScanner::default().feed(b"zz\r\n"), Err(BadChunk));
        assert_eq!(ChunkedScanner::default().feed(b"3\r\nabcX"), Err(BadChunk));
        assert_eq!(
            ChunkedScanner::default().feed(b"ffffffffffffffff\r\n"),
            Err(BadChunk)
        );
    }

    #[test]
    fn hop_by_hop_names_include_listed_ones() {
        let listed: [&[u8]; 1] = [b"close, X-Secret"];
        assert!(is_hop_by_hop("Keep-Alive", &listed));
        assert!(is_hop_by_hop("x-secret", &listed));
        assert!(!is_hop_by_hop("x-public", &listed));
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(&name.to_ascii_uppercase(), &[]), "{name}");
        }
        assert!(!is_hop_by_hop("content-length", &[]));
    }

    #[test]
    fn header_lines_are_copied_as_they_came() {
        let raw = b"GET / HTTP/1.1\r\nX-A:1\r\nX-Empty:\r\nAccept:  text/html \r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw).expect("parses").is_complete());
        let mut out = Vec::new();
        for h in req.headers.iter() {
            copy_line(&mut out, raw, h);
        }
        assert_eq!(out, b"X-A:1\r\nX-Empty: \r\nAccept:  text/html\r\n");
        let (values, n) = connection_values(req.headers);
        assert_eq!((n, values[0]), (0, &b""[..]));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let body = br#"{"count":2,"results":[{"id":1},{"id":2}]}"#.repeat(10);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body)[..])
            .read_to_end(&mut out)
            .expect("gunzips");
        assert_eq!(out, body);
    }
}
