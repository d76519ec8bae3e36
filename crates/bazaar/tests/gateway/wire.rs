//! The gateway on the wire: a raw TCP client sends exact bytes (pipelined
//! requests, bodies split across writes, HEAD, `Connection: close`, chunked
//! request bodies, and request-smuggling attempts) and reads exact
//! responses, so framing is checked byte for byte.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::harness::{Gateway, single};
use crate::upstream::token;

/// One response as read off the wire.
#[derive(Debug)]
struct Wire {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A client connection with its unread bytes.
struct Client {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(gw: &Gateway) -> Self {
        let addr = gw.base.trim_start_matches("http://");
        Self {
            tcp: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.expect("write");
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.tcp.read(&mut chunk))
            .await
            .expect("response in time")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads one response (to a request made with `method`).
    async fn read(&mut self, method: &str) -> Wire {
        let (status, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut res = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(n) = res.parse(&self.buf).expect("response head") {
                let headers = res
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect::<Vec<_>>();
                break (res.code.expect("status"), headers, n);
            }
            assert!(self.fill().await > 0, "connection closed before a response");
        };
        self.buf.drain(..head_len);
        let mut wire = Wire {
            status,
            headers,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 204 || status == 304 {
            return wire;
        }
        if wire.header("transfer-encoding") == Some("chunked") {
            wire.body = self.read_chunked().await;
        } else {
            let len: usize = wire
                .header("content-length")
                .expect("a length or chunks")
                .parse()
                .expect("numeric length");
            while self.buf.len() < len {
                assert!(self.fill().await > 0, "body cut short");
            }
            wire.body = self.buf.drain(..len).collect();
        }
        wire
    }

    async fn read_chunked(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                assert!(self.fill().await > 0, "chunk size cut short");
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .expect("hex chunk size");
            while self.buf.len() < line_end + 2 + size + 2 {
                assert!(self.fill().await > 0, "chunk cut short");
            }
            body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
            assert_eq!(&self.buf[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            self.buf.drain(..line_end + 4 + size);
            if size == 0 {
                return body;
            }
        }
    }

    /// Whether the server closed the connection (nothing more to read).
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill().await == 0
    }
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: shop.test\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    let mut bytes = get("/api/v1/products/?n=1", "");
    bytes.extend(get("/api/v1/products/?n=2", "X-Request-ID: rid-two\r\n"));
    bytes.extend_from_slice(
        b"POST /api/v1/auth/register/ HTTP/1.1\r\nHost: shop.test\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\nhello world",
    );
    bytes.extend(get("/api/v1/categories/", ""));
    c.send(&bytes).await;
    let first = c.read("GET").await;
    let second = c.read("GET").await;
    let third = c.read("POST").await;
    let fourth = c.read("GET").await;
    for r in [&first, &second, &third, &fourth] {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    assert_eq!(first.json()["path"], "/api/v1/products/?n=1");
    assert_eq!(second.json()["path"], "/api/v1/products/?n=2");
    assert_eq!(second.header("x-request-id"), Some("rid-two"));
    assert_eq!(second.json()["x_request_id"], "rid-two");
    assert_eq!(third.json()["method"], "POST");
    assert_eq!(third.json()["body"], "hello world");
    assert_eq!(fourth.json()["path"], "/api/v1/categories/");
    gw.stop().await;
}

#[tokio::test]
async fn a_body_split_across_writes_reaches_the_upstream_whole() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    let bearer = format!("Authorization: Bearer {}\r\n", token("u-1"));
    let head = format!(
        "POST /api/v1/orders/ HTTP/1.1\r\nHost: shop.test\r\n{bearer}Content-Length: 26\r\n\r\n"
    );
    c.send(head.as_bytes()).await;
    c.send(b"{\"items\":").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b" [1, 2, 3]}").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.send(b"      ").await;
    let r = c.read("POST").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "{\"items\": [1, 2, 3]}      ");
    assert_eq!(r.json()["authorization"], true);
    gw.stop().await;
}

#[tokio::test]
async fn head_and_problem_responses_keep_the_framing() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    c.send(
        b"HEAD /api/v1/products/ HTTP/1.1\r\nHost: shop.test\r\n\r\nHEAD /api/v1/orders/ HTTP/1.1\r\nHost: shop.test\r\n\r\n",
    )
    .await;
    let head = c.read("HEAD").await;
    assert_eq!(head.status, 200);
    assert!(head.header("content-length").is_some_and(|n| n != "0"));
    let refused = c.read("HEAD").await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("content-length").is_some_and(|n| n != "0"));
    // Neither sent a body: the next response starts right here.
    c.send(&get("/api/v1/orders/", "")).await;
    let problem = c.read("GET").await;
    assert_eq!(problem.status, 401);
    assert_eq!(problem.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        problem.header("content-type"),
        Some("application/problem+json")
    );
    assert!(problem.header("date").is_some());
    let body = problem.json();
    assert_eq!(body["status"], 401);
    assert_eq!(body["instance"], "/api/v1/orders/");
    assert_eq!(
        body["request_id"].as_str(),
        problem.header("x-request-id"),
        "the body names the response's request id"
    );
    c.send(&get("/api/v1/../internal/x", "")).await;
    assert_eq!(c.read("GET").await.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    c.send(&get("/api/v1/products/", "Connection: close\r\n"))
        .await;
    let r = c.read("GET").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed().await, "the gateway closes after the response");
    gw.stop().await;
}

#[tokio::test]
async fn chunked_responses_pass_through_with_their_framing() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    let bearer = format!("Authorization: Bearer {}\r\n", token("u-1"));
    for _ in 0..2 {
        c.send(&get("/api/v1/payments/chunked/", &bearer)).await;
        let r = c.read("GET").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.body, b"[1,2,3]");
    }
    gw.stop().await;
}

#[tokio::test]
async fn one_connection_serves_proxied_kit_and_streamed_requests() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    c.send(&get("/api/v1/products/?n=1", "")).await;
    assert_eq!(c.read("GET").await.json()["path"], "/api/v1/products/?n=1");
    c.send(&get("/healthz", "")).await;
    assert_eq!(c.read("GET").await.status, 200);
    c.send(&get("/api/v1/products/?n=2", "")).await;
    let r = c.read("GET").await;
    assert_eq!(r.json()["path"], "/api/v1/products/?n=2");
    assert!(r.header("x-request-id").is_some());
    c.send(
        b"POST /api/v1/auth/register/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let r = c.read("POST").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["body"], "hello world");
    gw.stop().await;
}

// ---- request smuggling ------------------------------------------------------

/// What an attacker hides in a body: a registration and an internal lookup,
/// each marked so the upstream's log shows whether it ever arrived.
const SMUGGLED: &str = "POST /api/v1/auth/register/?smuggled=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GET /internal/users/1?smuggled=2 HTTP/1.1\r\nHost: x\r\n\r\n";

/// The request every attack is followed by on the same connection.
const FOLLOW_UP: &str = "GET /api/v1/products/?follow-up=1 HTTP/1.1\r\nHost: shop.test\r\nX-Request-ID: follow-up\r\n\r\n";

/// `head` (ending in the blank line) with `SMUGGLED` as its body, the body
/// chunked when `chunked`.
fn attack(head: &str, chunked: bool) -> Vec<u8> {
    let mut bytes = head
        .replace("{n}", &SMUGGLED.len().to_string())
        .into_bytes();
    if chunked {
        bytes.extend(format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len()).into_bytes());
    } else {
        bytes.extend_from_slice(SMUGGLED.as_bytes());
    }
    bytes
}

impl Client {
    /// Reads responses until the connection closes or goes quiet; `None`
    /// ends the list. A response the gateway could not frame fails.
    async fn responses(&mut self) -> Vec<Wire> {
        let mut all = Vec::new();
        loop {
            let head_done = loop {
                let mut slots = [httparse::EMPTY_HEADER; 64];
                let mut res = httparse::Response::new(&mut slots);
                match res.parse(&self.buf) {
                    Ok(httparse::Status::Complete(_)) => break true,
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => panic!(
                        "unparsable response: {e}: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                }
                let mut chunk = [0u8; 8192];
                match tokio::time::timeout(Duration::from_secs(3), self.tcp.read(&mut chunk)).await
                {
                    Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                    // Closed (or reset) or quiet: no more responses.
                    _ => break false,
                }
            };
            if !head_done {
                assert!(
                    self.buf.is_empty(),
                    "a partial response: {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
                return all;
            }
            all.push(self.read("GET").await);
        }
    }
}

/// Sends `bytes` then the follow-up on one connection and checks that
/// every response is the gateway's own framing, the follow-up (when the
/// connection is still open for it) gets its own response, no 5xx, and
/// nothing smuggled reached the upstream.
async fn assert_not_smuggled(
    gw: &Gateway,
    up: &crate::upstream::Upstream,
    case: &str,
    bytes: &[u8],
) {
    let mut c = Client::connect(gw).await;
    let mut all = bytes.to_vec();
    all.extend_from_slice(FOLLOW_UP.as_bytes());
    c.send(&all).await;
    let responses = c.responses().await;
    assert!(!responses.is_empty(), "{case}: no response at all");
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    println!("{case}: {statuses:?}");
    for r in &responses {
        assert!(r.status < 500, "{case}: {r:?}");
        // The echo upstream names the request it answered (a smuggled
        // request's text inside a body it echoes is only data).
        let json: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
        let path = json.as_ref().and_then(|j| j["path"].as_str()).unwrap_or("");
        assert!(
            !path.contains("smuggled"),
            "{case}: a smuggled request was answered: {r:?}"
        );
        if r.header("x-request-id") == Some("follow-up") {
            assert_eq!(r.status, 200, "{case}: {r:?}");
            assert_eq!(path, "/api/v1/products/?follow-up=1", "{case}");
        } else {
            assert_ne!(
                path, "/api/v1/products/?follow-up=1",
                "{case}: the follow-up's answer under another id"
            );
        }
    }
    let follow_ups = responses
        .iter()
        .filter(|r| r.header("x-request-id") == Some("follow-up"))
        .count();
    assert!(
        follow_ups <= 1,
        "{case}: the follow-up was answered {follow_ups} times"
    );
    // The refusals end the connection; anything accepted keeps it going.
    if responses[0].status == 400 {
        assert_eq!(
            responses.len(),
            1,
            "{case}: a response after a refused request: {responses:?}"
        );
    }
    let seen = up.seen();
    assert!(
        !seen.iter().any(|r| r.contains("smuggled")),
        "{case}: the upstream received a smuggled request: {seen:?}"
    );
}

#[tokio::test]
async fn smuggling_attempts_never_reach_a_service() {
    let (up, gw) = single("").await;
    let json =
        "POST /api/v1/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Framing headers named as connection options.
        (
            "Connection: Content-Length",
            attack(
                &format!("{json}Connection: Content-Length\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
        (
            "Connection: keep-alive, Content-Length",
            attack(
                &format!(
                    "{json}Connection: keep-alive, Content-Length\r\nContent-Length: {{n}}\r\n\r\n"
                ),
                false,
            ),
        ),
        (
            "Connection: Transfer-Encoding",
            attack(
                &format!(
                    "{json}Connection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                ),
                true,
            ),
        ),
        (
            "Connection: keep-alive, transfer-encoding",
            attack(
                &format!(
                    "{json}Connection: keep-alive\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n"
                ),
                true,
            ),
        ),
        (
            "Connection: Host",
            attack(
                &format!("{json}Connection: Host\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
        (
            "Connection: keep-alive, Host",
            attack(
                &format!("{json}Connection: keep-alive, Host\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
        // CL.TE: a length covering the whole, chunks ending at once.
        ("CL.TE", cl_te("Transfer-Encoding: chunked")),
        (
            "CL.TE space before colon",
            cl_te("Transfer-Encoding : chunked"),
        ),
        ("CL.TE tab", cl_te("Transfer-Encoding:\tchunked")),
        (
            "CL.TE chunked, identity",
            cl_te("Transfer-Encoding: chunked, identity"),
        ),
        (
            "CL.TE identity, chunked",
            cl_te("Transfer-Encoding: identity, chunked"),
        ),
        (
            "CL.TE duplicate",
            cl_te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity"),
        ),
        ("CL.TE uppercase", cl_te("TRANSFER-ENCODING: CHUNKED")),
        ("CL.TE xchunked", cl_te("Transfer-Encoding: xchunked")),
        ("CL.TE obs-fold", cl_te("Transfer-Encoding:\r\n chunked")),
        (
            "CL.TE obs-fold name",
            cl_te("X-Pad: a\r\n Transfer-Encoding: chunked"),
        ),
        // TE.CL: chunks carrying the smuggled request, a short length.
        ("TE.CL", te_cl("Transfer-Encoding: chunked")),
        ("TE.CL uppercase", te_cl("Transfer-Encoding: CHUNKED")),
        (
            "TE.CL space before colon",
            te_cl("Transfer-Encoding : chunked"),
        ),
        // Duplicate and conflicting lengths.
        (
            "duplicate Content-Length",
            attack(
                &format!("{json}Content-Length: 0\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
        (
            "conflicting Content-Length list",
            attack(&format!("{json}Content-Length: 0, {{n}}\r\n\r\n"), false),
        ),
        (
            "signed Content-Length",
            attack(&format!("{json}Content-Length: +{{n}}\r\n\r\n"), false),
        ),
        // Bare LF line ends, NUL and CR inside values.
        (
            "bare LF",
            attack(
                "POST /api/v1/auth/register/ HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: {n}\n\n",
                false,
            ),
        ),
        (
            "NUL in a value",
            attack(
                &format!("{json}X-Pad: a\0b\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
        (
            "CR in a value",
            attack(
                &format!("{json}X-Pad: a\rContent-Length: 0\r\nContent-Length: {{n}}\r\n\r\n"),
                false,
            ),
        ),
    ];
    for (case, bytes) in &cases {
        assert_not_smuggled(&gw, &up, case, bytes).await;
    }
    // The connection-option cases are refused outright.
    let mut c = Client::connect(&gw).await;
    c.send(&cases[0].1).await;
    let refused = c.read("POST").await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert!(c.closed().await, "the connection ends after the refusal");
    gw.stop().await;
}

/// CL.TE with `te` as the Transfer-Encoding line(s).
fn cl_te(te: &str) -> Vec<u8> {
    let body = format!("0\r\n\r\n{SMUGGLED}");
    format!(
        "POST /api/v1/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{te}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// TE.CL with `te` as the Transfer-Encoding line.
fn te_cl(te: &str) -> Vec<u8> {
    format!(
        "POST /api/v1/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n{te}\r\n\r\n{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n",
        SMUGGLED.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn no_response_reaches_the_wrong_client() {
    // One worker: both clients share its upstream keep-alive connections.
    let (up, gw) = single("workers = 1").await;
    let attacker = async {
        for round in 0..20 {
            let mut c = Client::connect(&gw).await;
            let bytes = if round % 2 == 0 {
                attack(
                    "POST /api/v1/auth/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: Content-Length\r\nContent-Length: {n}\r\n\r\n",
                    false,
                )
            } else {
                cl_te("Transfer-Encoding: chunked")
            };
            c.send(&bytes).await;
            let _ = c.responses().await;
        }
    };
    let victim = async {
        let mut c = Client::connect(&gw).await;
        for i in 0..60 {
            c.send(&get(
                &format!("/api/v1/products/?victim={i}"),
                &format!("X-Request-ID: victim-{i}\r\n"),
            ))
            .await;
            let r = c.read("GET").await;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(
                r.header("x-request-id"),
                Some(format!("victim-{i}").as_str())
            );
            assert_eq!(r.json()["path"], format!("/api/v1/products/?victim={i}"));
        }
    };
    tokio::join!(attacker, victim);
    assert!(
        !up.seen().iter().any(|r| r.contains("smuggled")),
        "{:?}",
        up.seen()
    );
    gw.stop().await;
}
