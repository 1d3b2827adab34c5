//! The demo pod's two containers (`app`, `proxy`) and the load pod's `stop`, on hyper: they
//! serve every client mode of the proof (docs/proof.md): HTTP/1.1 with or without keep-alive,
//! HTTP/2 without TLS (h2c, prior knowledge, on the same port: the images carry no
//! certificates), and streams (`GET /stream`: a message every 100 ms).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, watch};

use crate::clock;
use crate::feed;

/// The header naming the pod that answered (so stream ends can be matched with pod deletions).
pub const POD_HEADER: &str = "x-drain-e2e-pod";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

/// Log lines go to stderr, where `kubectl logs` shows them, stamped like the helper's lines
/// (RFC 3339 UTC, milliseconds) so the report can place them on one time axis.
pub fn log(message: &str) {
    eprintln!(
        "{} drain-e2e {message}",
        clock::format_rfc3339_ms(clock::now_unix())
    );
}

fn full(text: &'static str) -> Body {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

/// The pod's name (downward API `POD_NAME`), else the host name, which is the pod's name in
/// Kubernetes too.
fn pod_name() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_default()
}

struct Signals {
    term: Signal,
    quit: Signal,
    int: Signal,
    /// SIGHUP: the proxy moves its clients off, as nginx's reload does (see `proxy`).
    hup: Signal,
    /// SIGUSR1: the proxy logs how many requests still await their answer.
    usr1: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            quit: signal(SignalKind::quit())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct AppArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Time each request takes, so that requests are in flight when a pod stops.
    #[arg(long, default_value = "50ms", value_parser = crate::parse_duration)]
    pub work: Duration,
    /// How far back a stream resumed with `?from=SEQ` is replayed; older messages are gone,
    /// as in a live feed with a short buffer.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    pub stream_replay: Duration,
    /// How long open streams go on after SIGTERM before the app ends them (0: at once). An
    /// app whose streams outlive the grace period is cut by SIGKILL (docs/proof.md).
    #[arg(long, default_value = "0s", value_parser = crate::parse_duration)]
    pub stream_linger: Duration,
}

/// Streams and the connections that carry them, so that SIGTERM can end them cleanly and
/// exit once their last bytes are written.
#[derive(Default)]
struct Streams {
    /// Connections that carry (or carried) a stream and are not finished.
    connections: AtomicUsize,
    finished: Notify,
}

/// The application. `GET /` answers 200 after `work`; `GET /stream?from=SEQ` sends the feed's
/// messages (one line each, `SEQ\n`, every 100 ms) until the app stops. On SIGTERM (or SIGQUIT,
/// SIGINT) it stops accepting, ends its streams cleanly (after `stream_linger`), and exits as
/// soon as they are written: requests still in flight are cut off, as many apps do.
pub async fn app(args: AppArgs) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("app: cannot listen on {}", args.listen))?;
    let mut signals = Signals::new()?;
    let pod = HeaderValue::from_str(&pod_name()).unwrap_or(HeaderValue::from_static(""));
    let (end_streams, streams_end) = watch::channel(false);
    let streams = Arc::new(Streams::default());
    let builder = auto::Builder::new(TokioExecutor::new());
    log(&format!("app: listening on {}", args.listen));
    let name = loop {
        tokio::select! {
            _ = signals.term.recv() => break "SIGTERM",
            _ = signals.quit.recv() => break "SIGQUIT",
            _ = signals.int.recv() => break "SIGINT",
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let carries_stream = Arc::new(AtomicBool::new(false));
                let (args, pod, streams_end, counted) =
                    (args.clone(), pod.clone(), streams_end.clone(), streams.clone());
                let flag = carries_stream.clone();
                let service = service_fn(move |request| {
                    let (args, pod, streams_end) = (args.clone(), pod.clone(), streams_end.clone());
                    if request.uri().path() == "/stream" && !flag.swap(true, Ordering::SeqCst) {
                        counted.connections.fetch_add(1, Ordering::SeqCst);
                    }
                    async move { Ok::<_, Infallible>(app_answer(request, &args, pod, streams_end).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let streams = streams.clone();
                tokio::spawn(async move {
                    let _ = connection.await;
                    if carries_stream.load(Ordering::SeqCst) {
                        streams.connections.fetch_sub(1, Ordering::SeqCst);
                        streams.finished.notify_waiters();
                    }
                });
            }
        }
    };
    drop(listener);
    let open = streams.connections.load(Ordering::SeqCst);
    if args.stream_linger.is_zero() {
        log(&format!(
            "app: {name}, ending {open} streams, then exiting (requests in flight are cut off)"
        ));
    } else {
        log(&format!(
            "app: {name}, keeping {open} streams for {:?} more, then ending them",
            args.stream_linger
        ));
        tokio::time::sleep(args.stream_linger).await;
    }
    let _ = end_streams.send(true);
    // The streams' last chunk is written within milliseconds; the bound only guards against a
    // client that stopped reading.
    let written = async {
        loop {
            let finished = streams.finished.notified();
            if streams.connections.load(Ordering::SeqCst) == 0 {
                break;
            }
            finished.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
    log("app: exiting");
    // Process exit, not a drain: plain requests in flight are cut off.
    std::process::exit(0)
}

async fn app_answer(
    request: Request<Incoming>,
    args: &AppArgs,
    pod: HeaderValue,
    streams_end: watch::Receiver<bool>,
) -> Response<Body> {
    let mut response = if request.uri().path() == "/stream" {
        let from = request.uri().query().and_then(feed::from_query);
        let start = feed::first_message(from, clock::now_unix(), args.stream_replay);
        let body = StreamBody::new(feed::messages(start, streams_end));
        let mut response = Response::new(BoxBody::new(body));
        // One stream per connection (the proxy opens one per request anyway): the
        // connection's end tells the app that the stream's last bytes are written.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    } else {
        tokio::time::sleep(args.work).await;
        Response::new(full("ok\n"))
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(POD_HEADER, pod);
    response
}

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

/// `kubectl exec LOAD -- /drain-e2e stop`: the load runs as PID 1 of the same container.
pub fn stop_pid1() -> anyhow::Result<ExitCode> {
    // SAFETY: kill has no memory effects; PID 1 is the load client in this container.
    let rc = unsafe { libc::kill(1, libc::SIGTERM) };
    if rc != 0 {
        anyhow::bail!(
            "cannot signal PID 1: {} (run this inside the load pod: kubectl exec POD -- /drain-e2e stop)",
            std::io::Error::last_os_error()
        );
    }
    Ok(ExitCode::SUCCESS)
}
