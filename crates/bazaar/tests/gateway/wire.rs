//! The gateway on the wire: a raw TCP client sends exact bytes (pipelined
//! requests, bodies split across writes, HEAD, `Connection: close`, chunked
//! request bodies) and reads exact responses, so the fast path's framing
//! and its hand-over to the general server are checked byte for byte.

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
async fn a_connection_moves_to_the_general_server_and_keeps_working() {
    let (_up, gw) = single("").await;
    let mut c = Client::connect(&gw).await;
    c.send(&get("/api/v1/products/?n=1", "")).await;
    assert_eq!(c.read("GET").await.json()["path"], "/api/v1/products/?n=1");
    // Not a proxied path: the connection goes to the general server...
    c.send(&get("/healthz", "")).await;
    assert_eq!(c.read("GET").await.status, 200);
    // ...which serves the rest of it, a streamed upload included.
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
    // A streamed upload as the first request goes there at once.
    let mut c = Client::connect(&gw).await;
    c.send(
        b"POST /api/v1/auth/register/ HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(c.read("POST").await.json()["body"], "abc");
    gw.stop().await;
}
