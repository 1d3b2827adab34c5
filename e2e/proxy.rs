//! The demo pod's `proxy` container: an nginx-like front proxy in front of the app (e2e/demo.rs)
//! on localhost, with nginx's signals: SIGHUP moves the clients off, SIGQUIT stops gracefully,
//! SIGTERM fast.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::demo::{Body, BoxError, Signals, full, log};

#[derive(Clone, Debug, clap::Args)]
pub struct ProxyArgs {
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub upstream: SocketAddr,
    /// nginx's `worker_shutdown_timeout`: how long a graceful stop waits for open connections
    /// (streams, mostly) before closing them. Unset, as in nginx: until they end.
    #[arg(long, value_parser = crate::parse_duration)]
    pub shutdown_timeout: Option<Duration>,
}

/// The front proxy, nginx-like: HTTP/1.1 (keep-alive) and h2c from clients, each request on a
/// new HTTP/1.1 connection to `upstream` (nginx's default), answers and streams relayed as
/// they arrive (`proxy_buffering off`), 502 when the upstream is not there or fails before
/// answering; an upstream that fails mid-stream cuts the client's stream (no clean end).
///
/// SIGHUP, nginx's reload as its old workers see it: keep accepting (new connections are
/// served as before), and end every connection open at the signal gracefully: idle keep-alive
/// connections are closed, a request in flight is answered with `Connection: close` (then the
/// connection closes), HTTP/2 connections get GOAWAY (NO_ERROR; their streams in flight
/// finish), and open streams go on until they end. Clients pinned to this pod reconnect,
/// wherever their path sends them now. Each SIGHUP moves the connections open at that moment;
/// one that has not sent its first bytes yet is moved when they arrive (its request answered
/// with `Connection: close`), as nginx answers a request that was still on its way.
///
/// SIGQUIT, graceful: stop accepting (new connections are refused), close idle keep-alive
/// connections, send HTTP/2 GOAWAY, finish the requests in flight, and keep open streams until
/// they end (or until `--shutdown-timeout`, then close them); exit 0. SIGTERM or SIGINT, also
/// during that drain: exit at once.
pub async fn proxy(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("proxy: cannot listen on {}", args.listen))?;
    let mut signals = Signals::new()?;
    // No header read timeout (hyper has none without a timer): the drain-helper's hold
    // connection sends a request head that never ends and must stay open until it exits.
    let builder = auto::Builder::new(TokioExecutor::new());
    // Every connection holds a receiver of `stop` (SIGQUIT) and of the `generation` it was
    // accepted in (the next SIGHUP moves it); the count of receivers is the count of
    // connections, and a sender's `closed()` says when they are all done.
    let (stop, _) = watch::channel(());
    let (mut generation, _) = watch::channel(());
    let mut moving = tokio::task::JoinSet::new();
    let awaiting = Arc::new(AtomicUsize::new(0));
    log(&format!(
        "proxy: listening on {}, upstream {}",
        args.listen, args.upstream
    ));
    loop {
        tokio::select! {
            _ = signals.term.recv() => fast_exit("SIGTERM"),
            _ = signals.int.recv() => fast_exit("SIGINT"),
            _ = signals.quit.recv() => break,
            _ = signals.hup.recv() => {
                let previous = std::mem::replace(&mut generation, watch::channel(()).0);
                let count = previous.receiver_count();
                // Sent before the line is logged: whatever a connection writes from now on
                // is written as a connection that is moving.
                let _ = previous.send(());
                log(&format!(
                    "proxy: SIGHUP, moving {count} connections off and still accepting: idle \
                     keep-alive connections closed, requests in flight answered with \
                     Connection: close, HTTP/2 GOAWAY, streams kept until they end"
                ));
                moving.spawn(async move {
                    previous.closed().await;
                    log(&format!("proxy: the {count} connections open at SIGHUP are done"));
                });
            }
            _ = signals.usr1.recv() => log_status(&awaiting, stop.receiver_count()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let (upstream, awaiting) = (args.upstream, awaiting.clone());
                let service = service_fn(move |request| {
                    let awaiting = awaiting.clone();
                    async move {
                        awaiting.fetch_add(1, Ordering::SeqCst);
                        let response = forward(request, upstream).await;
                        awaiting.fetch_sub(1, Ordering::SeqCst);
                        response
                    }
                });
                let spoke = Arc::new(Notify::new());
                let io = Noting { inner: stream, spoke: Some(spoke.clone()) };
                let connection = builder.serve_connection(TokioIo::new(io), service).into_owned();
                tokio::spawn(serve(connection, spoke, generation.subscribe(), stop.subscribe()));
            }
        }
    }
    drop(listener);
    log(&format!(
        "proxy: SIGQUIT, graceful: no longer accepting, finishing {} connections",
        stop.receiver_count()
    ));
    let _ = stop.send(());
    let drained = async {
        stop.closed().await;
        while moving.join_next().await.is_some() {}
    };
    tokio::pin!(drained);
    let limit = async {
        match args.shutdown_timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(limit);
    loop {
        tokio::select! {
            _ = signals.term.recv() => fast_exit("SIGTERM"),
            _ = signals.int.recv() => fast_exit("SIGINT"),
            _ = &mut limit => {
                log("proxy: shutdown timeout reached, closing the connections left");
                std::process::exit(0)
            }
            _ = &mut drained => break,
            // Already moving everything off: a reload during a graceful stop changes nothing.
            _ = signals.hup.recv() => log("proxy: SIGHUP ignored: already stopping"),
            _ = signals.usr1.recv() => log_status(&awaiting, stop.receiver_count()),
        }
    }
    log("proxy: drained, exiting");
    Ok(ExitCode::SUCCESS)
}

/// Serves one connection until it ends, and ends it gracefully when asked: at once on SIGQUIT
/// (`stop`, as hyper's graceful shutdown does); on SIGHUP (`moved`) once the client has sent its
/// first bytes, since hyper would close a connection still waiting for them unanswered, where
/// nginx answers the request that was on its way (with `Connection: close`).
async fn serve<C: GracefulConnection>(
    connection: C,
    spoke: Arc<Notify>,
    mut moved: watch::Receiver<()>,
    mut stop: watch::Receiver<()>,
) {
    tokio::pin!(connection);
    let (mut asked_to_move, mut has_spoken, mut ending) = (false, false, false);
    loop {
        // Biased, the connection last: a signal is applied before anything more is written.
        tokio::select! {
            biased;
            _ = stop.changed(), if !ending => {
                ending = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = moved.changed(), if !asked_to_move => asked_to_move = true,
            _ = spoke.notified(), if !has_spoken => has_spoken = true,
            _ = &mut connection => return,
        }
        if asked_to_move && has_spoken && !ending {
            ending = true;
            connection.as_mut().graceful_shutdown();
        }
    }
}

/// A client connection that notifies once, when its first bytes are read.
struct Noting {
    inner: TcpStream,
    spoke: Option<Arc<Notify>>,
}

impl AsyncRead for Noting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && let Some(spoke) = self.spoke.take()
        {
            spoke.notify_one();
        }
        polled
    }
}

impl AsyncWrite for Noting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What SIGUSR1 asks: with none awaiting an answer, only answers being relayed (streams) keep
/// a draining proxy, so a measurement (or a test) can tell requests in flight from streams.
fn log_status(awaiting: &AtomicUsize, connections: usize) {
    log(&format!(
        "proxy: status: {} requests awaiting their answer; {connections} connections",
        awaiting.load(Ordering::SeqCst)
    ));
}

fn fast_exit(signal: &str) -> ! {
    log(&format!("proxy: {signal}, fast shutdown"));
    std::process::exit(0)
}

/// Headers that belong to one connection, not to the message (RFC 9110, section 7.6.1).
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
];

async fn forward(
    request: Request<Incoming>,
    upstream: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let bad_gateway = || {
        let mut response = Response::new(full("upstream unavailable\n"));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    };
    let connect = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(upstream)).await;
    let Ok(Ok(stream)) = connect else {
        return Ok(bad_gateway());
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Incoming>(TokioIo::new(stream)).await
    else {
        return Ok(bad_gateway());
    };
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    parts.version = hyper::Version::HTTP_11;
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/".parse().expect("a path"), |p| {
            p.as_str().parse().expect("a path")
        });
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    if !parts.headers.contains_key(HOST) {
        parts
            .headers
            .insert(HOST, HeaderValue::from_static("drain-e2e"));
    }
    // An upstream that closes before its answer gets a 502, as nginx's "upstream prematurely
    // closed connection" does.
    match sender.send_request(Request::from_parts(parts, body)).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Ok(Response::from_parts(
                parts,
                body.map_err(BoxError::from).boxed(),
            ))
        }
        Err(_) => Ok(bad_gateway()),
    }
}
