//! The demo pod's `proxy` container: an nginx-like front proxy in front of the app (e2e/demo.rs)
//! on localhost, with nginx's signals: SIGHUP moves the clients off, SIGQUIT stops gracefully,
//! SIGTERM fast.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};

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
/// wherever their path sends them now. Each SIGHUP moves the connections open at that moment.
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
    // The connections accepted since the last SIGHUP; those before it drain in `moving`.
    let mut graceful = GracefulShutdown::new();
    let mut moving = tokio::task::JoinSet::new();
    let open = Arc::new(AtomicUsize::new(0));
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
                let previous = std::mem::replace(&mut graceful, GracefulShutdown::new());
                let count = previous.count();
                log(&format!(
                    "proxy: SIGHUP, moving {count} connections off and still accepting: idle \
                     keep-alive connections closed, requests in flight answered with \
                     Connection: close, HTTP/2 GOAWAY, streams kept until they end"
                ));
                moving.spawn(async move {
                    previous.shutdown().await;
                    log(&format!("proxy: the {count} connections open at SIGHUP are done"));
                });
            }
            _ = signals.usr1.recv() => log_status(&awaiting, open.load(Ordering::SeqCst)),
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
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let watched = graceful.watch(connection);
                let open = open.clone();
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = watched.await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    }
    drop(listener);
    log(&format!(
        "proxy: SIGQUIT, graceful: no longer accepting, finishing {} connections",
        open.load(Ordering::SeqCst)
    ));
    let drained = async move {
        graceful.shutdown().await;
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
            _ = signals.usr1.recv() => log_status(&awaiting, open.load(Ordering::SeqCst)),
        }
    }
    log("proxy: drained, exiting");
    Ok(ExitCode::SUCCESS)
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
