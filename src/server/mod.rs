//! The HTTPS admission listener, the plain HTTP admin listener, and graceful shutdown.
//!
//! [`bind`] binds both listeners (ports may be 0) and starts the admin server, unready;
//! [`Bound::serve`] starts accepting TLS connections and turns ready. A [`ShutdownHandle`]
//! then runs the shutdown sequence: unready at once, keep serving for the shutdown delay,
//! stop accepting, let in-flight requests finish (bounded), stop.

pub mod args;
pub mod guard;
mod routes;
pub mod serve;

pub use routes::{AdminState, AppState, PEM_CONTENT_TYPE, Readiness, admin_router, router};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use self::args::DEFAULT_MAX_CONNECTIONS;
use crate::admission::DEFAULT_BODY_LIMIT;
use crate::metrics::Metrics;
use crate::observe::Observed;

/// Listener tuning. The defaults suit the API server as the only client.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Largest accepted body (413 above).
    pub body_limit: usize,
    /// Time allowed to receive a whole request body.
    pub body_timeout: Duration,
    /// Time allowed to receive a request's headers (HTTP/1.1).
    pub header_timeout: Duration,
    /// Time allowed for the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// After the shutdown trigger, how long to keep serving (endpoints take time to update).
    pub shutdown_delay: Duration,
    /// After that, how long in-flight requests get to finish.
    pub drain_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Open HTTPS connections at most; further ones wait in the listen backlog until one
    /// closes (see docs/operations.md).
    pub max_connections: usize,
    pub http2_stream_window: u32,
    pub http2_connection_window: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            shutdown_delay: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(25),
            max_concurrent_streams: 256,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http2_stream_window: 1 << 20,
            http2_connection_window: 2 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Binds `addr` and returns the listener with the address it got (port 0: an ephemeral one).
async fn listen(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Starts the shutdown sequence: readiness goes off at once.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    ready: Readiness,
    trigger: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    pub fn trigger(&self) {
        self.ready.set(false);
        self.trigger.send_replace(true);
    }
}

/// Both listeners bound, the admin server running, not yet ready.
pub struct Bound {
    options: ServerOptions,
    tls_listener: TcpListener,
    tls_addr: SocketAddr,
    admin_addr: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    metrics: Arc<Metrics>,
    ready: Readiness,
    trigger: Arc<watch::Sender<bool>>,
    stop_admin: watch::Sender<bool>,
    admin_task: JoinHandle<()>,
}

/// Binds the HTTPS and admin listeners and starts the admin server (unready).
pub async fn bind(
    options: ServerOptions,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Bound, ServerError> {
    let metrics = Arc::clone(&state.metrics);
    let observed = Arc::clone(&state.observed);
    let router = router(state, &options);
    bind_router(options, router, metrics, observed, tls).await
}

/// [`bind`] with another router on the HTTPS listener: the same TLS, HTTP/2, admin and
/// shutdown stack around a different handler. The benchmark baseline
/// (`examples/baseline_server.rs`) uses it; production always goes through [`bind`].
pub async fn bind_router(
    options: ServerOptions,
    router: Router,
    metrics: Arc<Metrics>,
    observed: Arc<Observed>,
    tls: Arc<rustls::ServerConfig>,
) -> Result<Bound, ServerError> {
    let ready = Readiness::default();
    let (admin_listener, admin_addr) = listen(options.admin_listen).await?;
    let (tls_listener, tls_addr) = listen(options.listen).await?;
    let admin = admin_router(AdminState {
        metrics: Arc::clone(&metrics),
        observed,
        ready: ready.clone(),
    });
    let (stop_admin, mut admin_stopped) = watch::channel(false);
    let admin_task = tokio::spawn(async move {
        let served = axum::serve(admin_listener, admin)
            .with_graceful_shutdown(async move {
                let _ = admin_stopped.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "admin server failed");
        }
    });
    let (trigger, _) = watch::channel(false);
    Ok(Bound {
        tls_listener,
        tls_addr,
        admin_addr,
        acceptor: TlsAcceptor::from(tls),
        router,
        metrics,
        ready,
        trigger: Arc::new(trigger),
        stop_admin,
        admin_task,
        options,
    })
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("tls_addr", &self.tls_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Bound {
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            ready: self.ready.clone(),
            trigger: Arc::clone(&self.trigger),
        }
    }

    /// Starts accepting TLS connections and turns ready.
    pub fn serve(self) -> Running {
        let handle = self.shutdown_handle();
        let tls_addr = self.tls_addr;
        let admin_addr = self.admin_addr;
        let mut triggered = self.trigger.subscribe();
        // A trigger sent before serve() must still count.
        triggered.mark_changed();
        let ready = self.ready.clone();
        let task = tokio::spawn(run(self, triggered));
        if !*handle.trigger.borrow() {
            ready.set(true);
        }
        tracing::info!(%tls_addr, %admin_addr, "serving");
        Running {
            tls_addr,
            admin_addr,
            handle,
            task,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub tls_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub handle: ShutdownHandle,
    task: JoinHandle<()>,
}

impl Running {
    /// Waits until the shutdown sequence has finished.
    pub async fn wait(self) {
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "server task failed");
        }
    }
}

/// One accepted connection: the TLS handshake (bounded), then HTTP/1.1 or HTTP/2 until the
/// client closes it or the graceful shutdown ends it. `first_bytes_timeout` bounds the wait
/// for a request to start after TLS ([`guard::FirstBytes`]).
async fn serve_connection(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    builder: auto::Builder<TokioExecutor>,
    service: TowerToHyperService<Router>,
    watcher: Watcher,
    handshake_timeout: Duration,
    first_bytes_timeout: Duration,
) {
    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let io = guard::FirstBytes::new(tls, first_bytes_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(err) = watcher.watch(connection).await {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}

fn connection_builder(options: &ServerOptions) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(options.http2_stream_window)
        .initial_connection_window_size(options.http2_connection_window)
        .max_concurrent_streams(options.max_concurrent_streams)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

async fn run(bound: Bound, mut triggered: watch::Receiver<bool>) {
    let Bound {
        options,
        tls_listener,
        acceptor,
        router,
        metrics,
        stop_admin,
        admin_task,
        ..
    } = bound;
    let builder = connection_builder(&options);
    let graceful = GracefulShutdown::new();
    let (stop_accepting_tx, mut stop_accepting) = watch::channel(false);
    let connections = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    // The shutdown sequence: the trigger has already turned readiness off; keep accepting for
    // the shutdown delay, then stop.
    let delay = options.shutdown_delay;
    let sequence = tokio::spawn(async move {
        let _ = triggered.wait_for(|stop| *stop).await;
        tracing::info!(delay = ?delay, "shutting down: unready, still serving for the shutdown delay");
        tokio::time::sleep(delay).await;
        stop_accepting_tx.send_replace(true);
    });
    loop {
        // A free connection slot first: at the limit, new connections wait in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = stop_accepting.wait_for(|stop| *stop) => break,
        };
        let accepted = tokio::select! {
            accepted = tls_listener.accept() => accepted,
            _ = stop_accepting.wait_for(|stop| *stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: back off a little, keep going.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let open = metrics.connection_opened();
        let service = TowerToHyperService::new(router.clone());
        // Debug level, as the review span: an enabled span costs formatting per connection.
        let span = tracing::debug_span!("conn", client.ip = %peer.ip(), client.port = peer.port());
        let connection = serve_connection(
            tcp,
            acceptor.clone(),
            builder.clone(),
            service,
            graceful.watcher(),
            options.tls_handshake_timeout,
            options.header_timeout,
        );
        tokio::spawn(
            async move {
                // Held until the connection closes: a connection slot and the gauge.
                let _permit = permit;
                let _open = open;
                connection.await;
            }
            .instrument(span),
        );
    }
    drop(tls_listener);
    sequence.abort();
    tracing::info!(
        connections = graceful.count(),
        "stopped accepting; finishing in-flight requests"
    );
    if tokio::time::timeout(options.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(timeout = ?options.drain_timeout, "in-flight requests did not finish in time");
    }
    stop_admin.send_replace(true);
    if let Err(err) = admin_task.await {
        tracing::error!(error = %err, "admin server task failed");
    }
    tracing::info!("shutdown complete");
}
