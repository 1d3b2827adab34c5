//! The load client's ways of asking, one per client mode (docs/proof.md, "Client modes"):
//! - `new`: a new connection per request (e2e/http.rs, on plain TCP);
//! - `keepalive`: a pool of HTTP/1.1 connections per backend; a request that a reused
//!   connection lost before any byte of its answer arrived is retried once on a fresh
//!   connection, as Go's and Java's clients do;
//! - `h2`: one multiplexed HTTP/2 connection per backend; a stream refused by GOAWAY (or
//!   REFUSED_STREAM, or never sent because the connection was closing) is retried once on a
//!   fresh connection, as gRPC does;
//! - `stream`: e2e/stream.rs.
//!
//! Keep-alive, HTTP/2 and streams use hyper's client connections; only the choice of
//! connection and the retry rule are ours, since those are what the modes are about.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::http::{Failure, Lost, classify_io, lost};
use crate::lb;

/// How a load client asks (`--clients`, `E2E_CLIENTS`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    New,
    Keepalive,
    H2,
    Stream,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::New => "new",
            Mode::Keepalive => "keepalive",
            Mode::H2 => "h2",
            Mode::Stream => "stream",
        }
    }
}

/// Where the requests of one path go: a fixed address (the Service's ClusterIP) or, per
/// connection, the backend the emulated load balancer picks at that moment.
#[derive(Clone)]
pub enum Target {
    Fixed(SocketAddr),
    Balanced {
        view: lb::Shared,
        start: Instant,
        next: Arc<AtomicUsize>,
    },
}

impl Target {
    pub fn balanced(view: lb::Shared, start: Instant) -> Target {
        Target::Balanced {
            view,
            start,
            next: Arc::default(),
        }
    }

    /// The backend of a new connection (round robin over what the balancer routes to now).
    pub fn pick(&self) -> Result<SocketAddr, Lost> {
        match self {
            Target::Fixed(addr) => Ok(*addr),
            Target::Balanced { view, start, next } => {
                let mut view = view.lock().expect("view");
                let backends = view.current(start.elapsed());
                if backends.is_empty() {
                    return Err(lost(Failure::NoBackend, "the load balancer has no backend"));
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                Ok(*backends.iter().nth(n % backends.len()).expect("in range"))
            }
        }
    }
}

/// A request's outcome: its status, or why it was lost; and whether it took the retry.
#[derive(Debug)]
pub struct Outcome {
    pub result: Result<u16, Lost>,
    pub retried: bool,
}

impl Outcome {
    pub fn first_try(result: Result<u16, Lost>) -> Outcome {
        Outcome {
            result,
            retried: false,
        }
    }
}

/// The kind of a hyper error: the socket's own error where there is one, else a connection
/// that ended before the answer was complete.
pub fn classify_hyper(error: &hyper::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        if let Some(h2) = current.downcast_ref::<h2::Error>() {
            return h2.get_io().map_or(Failure::Reset, classify_io);
        }
        source = current.source();
    }
    if error.is_timeout() {
        Failure::Timeout
    } else if error.is_incomplete_message() || error.is_canceled() || error.is_closed() {
        Failure::Reset
    } else {
        Failure::Other
    }
}

fn hyper_lost(error: &hyper::Error, context: impl std::fmt::Display) -> Lost {
    lost(classify_hyper(error), format!("{context}: {error}"))
}

/// A TCP connection that counts the bytes read from it, so that a client can tell whether any
/// byte of an answer arrived before the connection failed.
pub struct Counted {
    inner: TcpStream,
    read: Arc<AtomicU64>,
}

impl Counted {
    pub fn new(inner: TcpStream) -> (Counted, Arc<AtomicU64>) {
        let read = Arc::new(AtomicU64::new(0));
        (
            Counted {
                inner,
                read: read.clone(),
            },
            read,
        )
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub async fn connect(addr: SocketAddr) -> Result<TcpStream, Lost> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| lost(classify_io(&e), format!("connect {addr}: {e}")))?;
    stream.set_nodelay(true).ok();
    Ok(stream)
}

pub fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header(hyper::header::HOST, "drain-e2e")
        .body(Empty::new())
        .expect("a valid request")
}

/// The status of a complete answer; a 5xx is a lost request.
async fn complete(response: Response<Incoming>, addr: SocketAddr) -> Result<u16, Lost> {
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| hyper_lost(&e, format!("answer from {addr} cut off")))?;
    if status >= 500 {
        return Err(lost(Failure::Http5xx, format!("{addr} answered {status}")));
    }
    Ok(status)
}

/// An HTTP/1.1 connection of the keep-alive pool.
struct PooledConnection {
    addr: SocketAddr,
    sender: http1::SendRequest<Empty<Bytes>>,
    bytes_read: Arc<AtomicU64>,
}

/// Why a request on a connection failed, and whether a retry is safe.
struct Failed {
    lost: Lost,
    /// Nothing of the answer arrived (the rule clients use to retry on a reused connection).
    before_answer: bool,
}

impl PooledConnection {
    async fn open(addr: SocketAddr) -> Result<PooledConnection, Lost> {
        let (io, bytes_read) = Counted::new(connect(addr).await?);
        let (sender, connection) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| hyper_lost(&e, format!("handshake with {addr}")))?;
        tokio::spawn(connection);
        Ok(PooledConnection {
            addr,
            sender,
            bytes_read,
        })
    }

    async fn get(&mut self) -> Result<u16, Failed> {
        let before = self.bytes_read.load(Ordering::SeqCst);
        let addr = self.addr;
        let nothing_arrived = |bytes_read: &AtomicU64| bytes_read.load(Ordering::SeqCst) == before;
        if let Err(e) = self.sender.ready().await {
            return Err(Failed {
                lost: hyper_lost(&e, format!("connection to {addr} closed")),
                before_answer: true,
            });
        }
        let response = match self.sender.send_request(get("/")).await {
            Ok(response) => response,
            Err(e) => {
                return Err(Failed {
                    lost: hyper_lost(&e, format!("request to {addr}")),
                    before_answer: nothing_arrived(&self.bytes_read),
                });
            }
        };
        complete(response, addr).await.map_err(|lost| Failed {
            lost,
            before_answer: false,
        })
    }
}

/// The keep-alive mode's pool of one path: idle connections per backend.
#[derive(Default)]
pub struct KeepalivePool {
    idle: Mutex<HashMap<SocketAddr, Vec<PooledConnection>>>,
}

impl KeepalivePool {
    /// An idle connection to `addr` the server has not closed, if there is one.
    fn take(&self, addr: SocketAddr) -> Option<PooledConnection> {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.get_mut(&addr)?;
        while let Some(connection) = list.pop() {
            if !connection.sender.is_closed() {
                return Some(connection);
            }
        }
        None
    }

    fn give_back(&self, connection: PooledConnection) {
        if connection.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().expect("pool");
        idle.entry(connection.addr).or_default().push(connection);
    }

    /// One GET /: on a pooled connection to the backend `target` picks when there is one, else
    /// on a new one; retried once on a fresh connection when a reused one lost it before any
    /// byte of the answer.
    pub async fn request(&self, target: &Target) -> Outcome {
        let attempt = async |fresh: bool| -> Result<u16, Failed> {
            let addr = target.pick().map_err(|lost| Failed {
                lost,
                before_answer: false,
            })?;
            let pooled = if fresh { None } else { self.take(addr) };
            let reused = pooled.is_some();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => PooledConnection::open(addr).await.map_err(|lost| Failed {
                    lost,
                    before_answer: false,
                })?,
            };
            let result = connection.get().await;
            if result.is_ok() {
                self.give_back(connection);
            }
            result.map_err(|failed| Failed {
                before_answer: failed.before_answer && reused,
                lost: failed.lost,
            })
        };
        match attempt(false).await {
            Ok(status) => Outcome::first_try(Ok(status)),
            Err(failed) if failed.before_answer => Outcome {
                result: attempt(true).await.map_err(|again| again.lost),
                retried: true,
            },
            Err(failed) => Outcome::first_try(Err(failed.lost)),
        }
    }
}

/// The h2 mode's connections of one path: one per backend, shared by every request to it.
#[derive(Default)]
pub struct H2Connections {
    open: Mutex<HashMap<SocketAddr, http2::SendRequest<Empty<Bytes>>>>,
}

/// A stream the server did not process: refused, or never sent because the connection was
/// going away. Retrying it cannot run the request twice.
fn refused(error: &hyper::Error) -> bool {
    if error.is_canceled() || error.is_closed() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(h2) = current.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h2.is_go_away()
                    && h2.is_remote()
                    && h2.reason() == Some(h2::Reason::NO_ERROR));
        }
        source = current.source();
    }
    false
}

impl H2Connections {
    async fn connection(
        &self,
        addr: SocketAddr,
        fresh: bool,
    ) -> Result<http2::SendRequest<Empty<Bytes>>, Lost> {
        if !fresh {
            let open = self.open.lock().expect("h2 connections");
            if let Some(sender) = open.get(&addr).filter(|s| !s.is_closed()) {
                return Ok(sender.clone());
            }
        }
        let stream = connect(addr).await?;
        let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| hyper_lost(&e, format!("HTTP/2 handshake with {addr}")))?;
        tokio::spawn(connection);
        let replaced = self
            .open
            .lock()
            .expect("h2 connections")
            .insert(addr, sender.clone())
            .is_some();
        // Rare (one per backend, and one after each GOAWAY): logged, to follow a drain.
        eprintln!(
            "drain-e2e load: h2 connection to {addr} opened{}",
            if replaced { " (replacing one)" } else { "" }
        );
        Ok(sender)
    }

    /// One GET / as a stream of the backend's shared connection; retried once on a fresh
    /// connection when the stream was refused.
    pub async fn request(&self, target: &Target) -> Outcome {
        let attempt = async |fresh: bool| -> Result<u16, (Lost, bool)> {
            let addr = target.pick().map_err(|lost| (lost, false))?;
            let mut sender = self
                .connection(addr, fresh)
                .await
                .map_err(|lost| (lost, false))?;
            let sent = match sender.ready().await {
                Ok(()) => sender.send_request(get("/")).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => complete(response, addr).await.map_err(|lost| (lost, false)),
                Err(e) => Err((hyper_lost(&e, format!("stream to {addr}")), refused(&e))),
            }
        };
        match attempt(false).await {
            Ok(status) => Outcome::first_try(Ok(status)),
            Err((_, true)) => Outcome {
                result: attempt(true).await.map_err(|(lost, _)| lost),
                retried: true,
            },
            Err((lost, false)) => Outcome::first_try(Err(lost)),
        }
    }
}

/// Bounds a request, connect to last byte.
pub async fn within(timeout: Duration, request: impl Future<Output = Outcome>) -> Outcome {
    tokio::time::timeout(timeout, request)
        .await
        .unwrap_or_else(|_| {
            Outcome::first_try(Err(lost(
                Failure::Timeout,
                format!("no answer within {timeout:?}"),
            )))
        })
}
