//! A small SMTP server for tests: speaks enough SMTP (220, EHLO/HELO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre, keeps what it accepts,
//! and can be told to refuse (451 at RCPT) the first K messages or always.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the sink answers `RCPT TO`.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// Accepts every message.
    Accept,
    /// Refuses (451) the first K message attempts, then accepts.
    RefuseFirst(usize),
    /// Refuses (451) every attempt.
    AlwaysRefuse,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Received {
    /// `MAIL FROM` path.
    pub mail_from: String,
    /// `RCPT TO` paths.
    pub rcpt_to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: String,
}

impl Received {
    /// A header's value (first occurrence), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

#[derive(Default)]
struct State {
    attempts: usize,
    refused: usize,
    messages: Vec<Received>,
}

/// A running sink; stops when dropped.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Starts a sink on a free port.
    pub async fn start(mode: Mode) -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let addr = listener.local_addr().expect("sink addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = session(stream, mode, state).await;
                });
            }
        });
        SmtpSink { addr, state, task }
    }

    /// Messages accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        self.state.lock().expect("sink state").messages.clone()
    }

    /// Messages accepted for `rcpt`.
    pub fn messages_to(&self, rcpt: &str) -> Vec<Received> {
        self.messages()
            .into_iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .collect()
    }

    /// `RCPT TO` commands seen (one per delivery attempt).
    pub fn attempts(&self) -> usize {
        self.state.lock().expect("sink state").attempts
    }

    /// Attempts refused with 451.
    pub fn refused(&self) -> usize {
        self.state.lock().expect("sink state").refused
    }
}

fn path_of(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.rfind('>').unwrap_or(arg.len());
    arg.get(start..end).unwrap_or_default().to_string()
}

async fn session(stream: TcpStream, mode: Mode, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut mail_from = String::new();
    let mut rcpt_to: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink.test greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = path_of(&cmd[10..]);
            rcpt_to.clear();
            b"250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let refuse = {
                let mut s = state.lock().expect("sink state");
                let n = s.attempts;
                s.attempts += 1;
                let refuse = match mode {
                    Mode::Accept => false,
                    Mode::RefuseFirst(k) => n < k,
                    Mode::AlwaysRefuse => true,
                };
                if refuse {
                    s.refused += 1;
                }
                refuse
            };
            if refuse {
                b"451 4.7.1 Greylisted, please try again later\r\n"
            } else {
                rcpt_to.push(path_of(&cmd[8..]));
                b"250 2.1.5 OK\r\n"
            }
        } else if upper == "DATA" {
            if rcpt_to.is_empty() {
                write
                    .write_all(b"503 5.5.1 No valid recipients\r\n")
                    .await?;
                continue;
            }
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            state.lock().expect("sink state").messages.push(Received {
                mail_from: mail_from.clone(),
                rcpt_to: std::mem::take(&mut rcpt_to),
                data,
            });
            b"250 2.0.0 Queued\r\n"
        } else if upper == "RSET" {
            rcpt_to.clear();
            b"250 2.0.0 OK\r\n"
        } else if upper == "NOOP" {
            b"250 2.0.0 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 Command not recognized\r\n"
        };
        write.write_all(reply).await?;
    }
}
