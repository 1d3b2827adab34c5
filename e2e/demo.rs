//! The demo pod's two containers (`app` here, `proxy` in e2e/proxy.rs) and the load pod's
//! `stop`, on hyper: they serve every client mode of the proof (docs/proof.md): HTTP/1.1 with
//! or without keep-alive, HTTP/2 without TLS (h2c, prior knowledge, on the same port: the
//! images carry no certificates), and streams (`GET /stream`: a message every 100 ms).

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
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
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

pub fn full(text: &'static str) -> Body {
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

pub struct Signals {
    pub term: Signal,
    pub quit: Signal,
    pub int: Signal,
    /// SIGHUP: the proxy moves its clients off, as nginx's reload does (see `proxy`).
    pub hup: Signal,
    /// SIGUSR1: the proxy logs how many requests still await their answer.
    pub usr1: Signal,
}

impl Signals {
    pub fn new() -> anyhow::Result<Signals> {
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
