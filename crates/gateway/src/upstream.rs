//! Keep-alive connections to upstream instances, one cache per worker
//! thread (nginx's `keepalive` per worker): a request takes an idle
//! connection of its instance or opens one; the connection returns to the
//! cache when the response body has been read to its end, so a slow stream
//! (SSE) never holds up another request. Everything here lives on one
//! thread: no locks, no cross-thread wake-ups.

use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Response};
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::pool::Instance;

/// A request body on its way upstream: the client's, size-limited.
pub type UpstreamBody = Limited<Incoming>;

type Sender = SendRequest<UpstreamBody>;

/// Idle connections kept per instance and worker.
const MAX_IDLE: usize = 256;

/// Why a request did not get a response head.
pub enum SendError {
    /// No connection could be opened: nothing reached the instance, and
    /// here is the request back.
    Connect(String, Request<UpstreamBody>),
    /// The exchange failed after the request may have been sent.
    Other(hyper::Error),
}

enum Opening {
    Refused(String),
    Failed(hyper::Error),
}

/// One worker thread's idle upstream connections, by (pool, instance).
pub struct Connections {
    idle: RefCell<HashMap<(usize, usize), Vec<Sender>, foldhash::fast::RandomState>>,
    connect_timeout: Duration,
}

impl Connections {
    /// An empty cache; new connections get `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Rc<Self> {
        Rc::new(Self {
            idle: RefCell::new(HashMap::default()),
            connect_timeout,
        })
    }

    /// Sends `request` to `instance` (pool `key.0`, instance `key.1`) on an
    /// idle connection or a new one. A request a stale idle connection
    /// refused before writing it is tried on the next one.
    pub async fn send(
        self: &Rc<Self>,
        key: (usize, usize),
        instance: &Instance,
        mut request: Request<UpstreamBody>,
    ) -> Result<Response<Pooled>, SendError> {
        loop {
            let idle = self
                .idle
                .borrow_mut()
                .get_mut(&key)
                .and_then(std::vec::Vec::pop);
            let reused = idle.is_some();
            let mut sender = match idle {
                Some(sender) if sender.is_closed() => continue,
                Some(sender) => sender,
                // Boxed: the connect path is cold and its future large.
                None => match Box::pin(self.connect(instance)).await {
                    Ok(sender) => sender,
                    Err(Opening::Refused(e)) => return Err(SendError::Connect(e, request)),
                    Err(Opening::Failed(e)) => return Err(SendError::Other(e)),
                },
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(SendError::Other(e));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(response.map(|body| Pooled {
                        body,
                        sender: Some(sender),
                        home: self.clone(),
                        key,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(SendError::Other(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self, instance: &Instance) -> Result<Sender, Opening> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(instance.addr.as_str()),
        )
        .await
        .map_err(|_| Opening::Refused("connect timed out".into()))?
        .map_err(|e| Opening::Refused(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(Opening::Failed)?;
        tokio::task::spawn_local(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    fn release(&self, key: (usize, usize), sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key).or_default();
        if list.len() < MAX_IDLE {
            list.push(sender);
        }
    }
}

/// An upstream response body that gives its connection back to the cache
/// once read to its end (a body dropped half-read closes it instead).
pub struct Pooled {
    body: Incoming,
    sender: Option<Sender>,
    home: Rc<Connections>,
    key: (usize, usize),
}

impl Pooled {
    fn release(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.home.release(self.key, sender);
        }
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Err(_))) => this.sender = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The server stops polling once `is_end_stream` says so.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}
